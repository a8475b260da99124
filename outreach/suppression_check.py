"""Suppression lists checked again right before a message goes out.

The policy engine applies the lists when the day is decided; a list entry that arrives later the
same day (a customer reported deceased at 11:00, a complaint opened, debt collection started)
must still stop messages that are planned or held for quiet hours. Same rules as the engine
(``outreach.policy.engine``, whose ``suppression_precedence`` decides which list is named): an
entry is active on a date from ``valid_from`` through ``valid_until`` (open-ended when empty); a
configured reason blocks the offers of its scope ("all" or a list of topics); a reason the policy
does not name blocks everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from outreach.config import SuppressionScope
from outreach.models import Suppression
from outreach.policy.engine import SUPPRESSION_ORDER, suppression_precedence


def active_suppressions(
    session: Session,
    pairs: Iterable[tuple[str, str]],
    on: date,
    scopes: Mapping[str, SuppressionScope],
) -> dict[tuple[str, str], str]:
    """For (customer_id, topic) pairs: the most severe active suppression covering the topic,
    as the engine reports it (``deceased`` … ``complaint``, else ``other``). Pairs not suppressed
    are absent."""
    pairs = list(pairs)
    customers = sorted({customer for customer, _ in pairs})
    if not customers:
        return {}
    active: dict[str, set[str]] = {}
    for start in range(0, len(customers), 1000):  # keep IN lists within every database's limits
        rows = session.execute(
            select(Suppression.customer_id, Suppression.reason).where(
                Suppression.customer_id.in_(customers[start : start + 1000]),
                Suppression.valid_from <= on,
                or_(Suppression.valid_until.is_(None), Suppression.valid_until >= on),
            )
        )
        for customer, reason in rows:
            active.setdefault(customer, set()).add(reason)
    order = suppression_precedence(scopes)
    found: dict[tuple[str, str], str] = {}
    for customer, topic in pairs:
        lists = active.get(customer, set())
        worst = next((r for r in order if r in lists and (scopes[r] == "all" or topic in scopes[r])), None)
        if worst is None and lists - set(scopes):  # a list the policy does not name blocks everything
            worst = "other"
        if worst is not None:
            found[(customer, topic)] = worst if worst in SUPPRESSION_ORDER else "other"
    return found
