"""Access: everything Outreach holds about one customer, as JSON and as a readable HTML page.

Every table in ``holdings.HELD`` is read whole for the customer; each recorded decision comes with
its rule trail (every rule in the engine's order: passed, the one that decided, not reached), and
the audit entries about the customer are added. The trail is read from the record, not evaluated
again, so an export takes the same time however many days the customer was decided on; ``outreach
explain CUSTOMER --date D`` adds each rule's facts for one day. An erased customer's export is the
tombstone alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment
from sqlalchemy import Engine, select

from outreach import audit
from outreach.db import session_scope
from outreach.errors import NotFound
from outreach.models import AuditEntry, Customer, Decision, ErasureTombstone
from outreach.policy.engine import REASONS, RULES
from outreach.pseudonym import pseudonym, subject_hash
from outreach.subjects.holdings import HELD, rows_of


class UnknownSubject(NotFound):
    """Neither a customer nor an erased one."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


@dataclass(frozen=True)
class Export:
    customer_id: str
    data: dict

    @property
    def erased(self) -> bool:
        return "erased" in self.data


def collect(engine: Engine, customer_id: str, now: datetime | None = None) -> Export:
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        known = session.get(Customer, customer_id) is not None
        if not known:
            tombstone = session.get(ErasureTombstone, subject_hash(customer_id))
            if tombstone is None:
                raise UnknownSubject(customer_id)
            return Export(customer_id, _tombstone_only(customer_id, tombstone, now))
        data: dict[str, Any] = {"customer_id": customer_id, "exported_at": now.isoformat()}
        for held in HELD:
            rows = [
                {k: _plain(v) for k, v in row._mapping.items()}
                for row in session.execute(rows_of(held, customer_id))
            ]
            data[held.section] = rows[0] if held.section == "profile" else rows
        decisions = session.scalars(
            select(Decision)
            .where(Decision.customer_id == customer_id)
            .order_by(Decision.decided_at, Decision.id)
        ).all()
        data["decision_trails"] = [_trail(d) for d in decisions]
        data["audit_entries"] = [
            {"seq": e.seq, "at": _plain(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
            for e in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.subject == pseudonym(customer_id))
                .order_by(AuditEntry.seq)
            )
        ]
    return Export(customer_id, data)


def _deciding_rule(reason: str) -> int:
    for i, rule in enumerate(RULES):
        if reason in rule.code.split("|") or (
            rule.code == "suppressed_*" and reason.startswith("suppressed_")
        ):
            return i
    return len(RULES)  # planned: every rule passed


def _trail(decision: Decision) -> dict:
    deciding = _deciding_rule(decision.reason)
    rules = []
    for i, rule in enumerate(RULES):
        verdict = "passed" if i < deciding else "not reached"
        if i == deciding:
            verdict = "held" if decision.reason == "quiet_hours_held" else "failed"
        rules.append(
            {"rule": rule.code.replace("_*", "_<list>"), "question": rule.question, "verdict": verdict}
        )
    return {
        "decision_date": _plain(decision.decision_date),
        "offer_code": decision.offer_code,
        "outcome": decision.outcome,
        "reason": decision.reason,
        "reason_text": REASONS.get(decision.reason, decision.reason),
        "channel": decision.channel,
        "legal_basis": decision.legal_basis,
        "detail": decision.detail,
        "decided_at": _plain(decision.decided_at),
        "rules": rules,
    }


def _tombstone_only(customer_id: str, tombstone: ErasureTombstone, now: datetime) -> dict:
    return {
        "customer_id": customer_id,
        "exported_at": now.isoformat(),
        "erased": {
            "erased_at": _plain(tombstone.erased_at),
            "objected_at": _plain(tombstone.objected_at),
            "audit_seq": tombstone.audit_seq,
            "kept": "a keyed hash of the customer id, so the customer is never contacted again",
        },
    }


def write(export: Export, out_dir: Path) -> tuple[Path, Path]:
    """``<customer>.json`` and ``<customer>.html`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in export.customer_id)
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    json_path.write_text(
        json.dumps(export.data, indent=1, ensure_ascii=False, default=_plain), encoding="utf-8"
    )
    html_path.write_text(render_html(export), encoding="utf-8")
    return json_path, html_path


def record(engine: Engine, customer_id: str, files: int, actor: str | None = None) -> None:
    with session_scope(engine) as session:
        audit.append(session, "subject.exported", {"files": files}, actor=actor, customer_id=customer_id)


def _sections(data: dict) -> list[tuple[str, list[dict]]]:
    skip = {"customer_id", "exported_at", "profile", "erased", "decision_trails"}
    return [(key.replace("_", " ").capitalize(), value) for key, value in data.items() if key not in skip]


def render_html(export: Export) -> str:
    return _HTML.render(data=export.data, sections=_sections(export.data), dumps=_cell)


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=_plain)
    return "" if value is None else str(value)


_HTML = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>Your data at the bank's offers service: {{ data.customer_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:90rem;color:#1f2328}
table{border-collapse:collapse;font-size:.85rem;margin-bottom:1.5rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}td{max-width:40rem;overflow-wrap:anywhere}pre{white-space:pre-wrap}
</style></head><body>
<h1>Everything the offers service holds about customer {{ data.customer_id }}</h1>
<p>Exported {{ data.exported_at }} (UTC).</p>
{% if data.erased %}
<p>This customer's data was erased on {{ data.erased.erased_at }}. Kept: {{ data.erased.kept }}
{% if data.erased.objected_at %}; objection to marketing recorded {{ data.erased.objected_at }}
{%- endif %}.</p>
{% else %}
<h2>Profile</h2>
<table>{% for k, v in data.profile.items() %}
<tr><th>{{ k }}</th><td>{{ dumps(v) }}</td></tr>{% endfor %}</table>
{% for title, rows in sections %}
<h2>{{ title }} ({{ rows|length }})</h2>
{% if rows %}<table><thead><tr>{% for k in rows[0].keys() %}<th>{{ k }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr>{% for v in row.values() %}<td>{{ dumps(v) }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table>{% else %}<p>None.</p>{% endif %}
{% endfor %}
<h2>Why each offer was or was not sent</h2>
{% for c in data.decision_trails %}<h3>{{ c.decision_date }}: {{ c.offer_code }}</h3>
<p>{{ c.outcome }} ({{ c.reason_text }}){% if c.channel %} by {{ c.channel }}{% endif %}{%
 if c.legal_basis %}; legal basis: {{ c.legal_basis }}{% endif %}</p>
<table><thead><tr><th>rule</th><th>verdict</th></tr></thead><tbody>
{% for r in c.rules %}<tr><td>{{ r.question }}</td><td>{{ r.verdict }}</td></tr>{% endfor %}
</tbody></table>{% endfor %}
{% endif %}
</body></html>
"""
)
