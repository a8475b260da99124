"""A naive per-candidate Python implementation of the same rules as ``engine.decide``.

Not for production: it is the yardstick. The benchmark measures the set-based engine against it
(bench/bench_policy.py) and the property tests check that both agree on random days, so a rule
changed in one place and not the other shows up. It reads the same ``DayInputs`` and returns the
same columns; every rule is written the obvious way, one candidate at a time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from outreach.config import CHANNEL_SCOPE
from outreach.policy.engine import CONTACT_FLAG, OUTPUT_SCHEMA, REJECTED, SUPPRESSION_ORDER
from outreach.policy.inputs import NOT_CONTACTS, DayInputs
from outreach.policy.windows import release_time


def _rows(frame: pl.DataFrame) -> list[dict]:
    return frame.to_dicts()


def decide_naive(inputs: DayInputs) -> pl.DataFrame:
    policy = inputs.offers.policy
    day = inputs.run_date
    offers = inputs.offers.by_code()
    customers = {r["customer_id"]: r for r in _rows(inputs.customers)}
    latest: dict[tuple[str, str], tuple] = {}
    for e in _rows(inputs.consent):
        if e["recorded_at"] > inputs.now:
            continue  # recorded after the moment of the decision
        key = (e["customer_id"], e["scope"])
        stamp = (e["recorded_at"], e["event_id"])
        if key not in latest or stamp > latest[key][0]:
            latest[key] = (stamp, e["choice"])
    choice = {key: value[1] for key, value in latest.items()}
    suppressions = defaultdict(list)
    for s in _rows(inputs.suppressions):
        if s["valid_from"] <= day and (s["valid_until"] is None or s["valid_until"] >= day):
            suppressions[s["customer_id"]].append(s["reason"])
    holdings = {(h["customer_id"], h["product"]) for h in _rows(inputs.holdings)}
    contacts = defaultdict(list)
    for c in _rows(inputs.contacts):
        age = (day - c["sent_date"]).days
        if c["status"] not in NOT_CONTACTS and age >= 0:
            contacts[c["customer_id"]].append((age, c["offer_code"], c["channel"]))
    answers = defaultdict(list)
    for a in _rows(inputs.answers):
        if a["offer_code"] in offers and a["occurred_at"] <= inputs.now:
            answers[(a["customer_id"], offers[a["offer_code"]].topic)].append(a["occurred_at"])

    def not_interested(customer_id: str, topic: str) -> bool:
        times = sorted(answers.get((customer_id, topic), []))
        window = timedelta(days=policy.not_interested_window_days)
        triggers = [
            t for t in times if sum(1 for b in times if t - window < b <= t) >= policy.not_interested_limit
        ]
        if not triggers:
            return False
        until = max(triggers).astimezone(UTC).date() + timedelta(days=policy.not_interested_suppress_days)
        return until > day

    def suppression(customer_id: str, topic: str) -> str | None:
        hits = []
        for reason in suppressions.get(customer_id, []):
            scope = policy.suppression_scopes.get(reason, "all")
            if scope == "all" or topic in scope:
                hits.append(reason)
        if not hits:
            return None
        hits.sort(key=lambda r: (SUPPRESSION_ORDER.index(r) if r in SUPPRESSION_ORDER else 99, r))
        return hits[0] if hits[0] in SUPPRESSION_ORDER else "other"

    def channel_status(customer: dict, customer_id: str, channel: str) -> str:
        scope_choice = choice.get((customer_id, CHANNEL_SCOPE[channel]))
        if channel in policy.opt_in_channels:
            consent_ok = scope_choice == "opt_in"
        else:
            consent_ok = scope_choice in (None, "opt_in")
        if not consent_ok:
            return "opted_out"
        if not customer.get(CONTACT_FLAG[channel]):
            return "no_contact"
        mine = [age for age, _, ch in contacts.get(customer_id, []) if ch == channel]
        limit_7 = policy.caps.per_channel_7_days.get(channel)
        limit_30 = policy.caps.per_channel_30_days.get(channel)
        if limit_7 is not None and sum(1 for a in mine if a < 7) >= limit_7:
            return "cap"
        if limit_30 is not None and sum(1 for a in mine if a < 30) >= limit_30:
            return "cap"
        return "ok"

    results: dict[int, dict] = {}
    eligible: dict[str, list[dict]] = defaultdict(list)
    for cand in _rows(inputs.candidates):
        cid, code = cand["customer_id"], cand["offer_code"]
        offer = offers.get(code)
        row = {"candidate_id": cand["candidate_id"], "customer_id": cid, "offer_code": code}
        basis = offer.legal_basis if offer else None
        row.update(channel=None, detail=None, release_at=None, legal_basis=basis)
        results[cand["candidate_id"]] = row
        customer = customers.get(cid)
        if customer is None:
            row["reason"] = "unknown_customer"
            continue
        if offer is None:
            row["reason"] = "unknown_offer"
            continue
        history = contacts.get(cid, [])
        cooldown = offer.cooldown_days if offer.cooldown_days is not None else policy.cooldown_days
        topic_choice = choice.get((cid, f"topic:{offer.topic}"))
        supp = suppression(cid, offer.topic)
        statuses = [(ch, channel_status(customer, cid, ch)) for ch in offer.channels]
        allowed = [ch for ch, st in statuses if st == "ok"]
        if not offer.valid_on(day):
            reason = "offer_not_valid"
        elif choice.get((cid, "all")) == "opt_out":
            reason = "opted_out_global"
        elif supp is not None:
            reason = f"suppressed_{supp}"
        elif topic_choice == "opt_out":
            reason = "opted_out_topic"
        elif offer.legal_basis == "consent" and topic_choice != "opt_in":
            reason = "no_consent"
        elif (cid, offer.product) in holdings:
            reason = "holds_product"
        elif not_interested(cid, offer.topic):
            reason = "not_interested_topic"
        elif any(age == 0 for age, _, _ in history):
            reason = "contacted_today"
        elif sum(1 for age, _, _ in history if age < 7) >= policy.caps.per_7_days:
            reason = "cap_7d"
        elif sum(1 for age, _, _ in history if age < 30) >= policy.caps.per_30_days:
            reason = "cap_30d"
        elif any(age < cooldown for age, o, _ in history if o == code):
            reason = "cooldown_offer"
        elif not allowed:
            if all(st == "opted_out" for _, st in statuses):
                reason = "opted_out_channel"
            elif not any(st in ("ok", "cap") for _, st in statuses):
                reason = "no_valid_contact"
            else:
                reason = "cap_channel"
        else:
            reason = None
            row["allowed"] = allowed
            row["rank_value"] = offer.priority * (cand["score"] or 0.0)
            row["zone"] = customer.get("timezone") or policy.default_timezone
            eligible[cid].append(row)
        row["reason"] = reason

    winners = []
    for rows in eligible.values():
        rows.sort(key=lambda r: (-r["rank_value"], r["offer_code"], r["candidate_id"]))
        winners.append(rows[0])
        for loser in rows[1:]:
            loser["reason"] = "lost_arbitration"
    winners.sort(key=lambda r: (-r["rank_value"], r["candidate_id"]))
    used: dict[str, int] = defaultdict(int)
    for row in winners:
        passed = []
        for ch in row["allowed"]:
            if ch in policy.capacity and used[ch] >= policy.capacity[ch]:
                passed.append(ch)
                continue
            used[ch] += 1
            row["channel"] = ch
            break
        if passed:
            row["detail"] = "full=" + ",".join(passed)
        if row["channel"] is None:
            row["reason"] = "over_capacity"
            continue
        if row["channel"] in policy.opt_in_channels:
            row["legal_basis"] = "consent"
        window = policy.quiet_hours.get(row["channel"])
        if window is None:
            continue
        try:
            ZoneInfo(row["zone"])
        except (ZoneInfoNotFoundError, ValueError):
            row["reason"], row["channel"] = "invalid_timezone", None
            continue
        at = release_time(inputs.now, window, row["zone"], policy.holiday_country)
        if at is not None:
            row["reason"] = "quiet_hours_held"
            row["release_at"] = at.isoformat()

    out = []
    for cid in sorted(results):
        row = results[cid]
        reason = row["reason"]
        outcome = (
            "rejected"
            if reason in REJECTED
            else "held"
            if reason == "quiet_hours_held"
            else "planned"
            if reason is None
            else "suppressed"
        )
        live = outcome in ("planned", "held")
        out.append(
            {
                "candidate_id": cid,
                "customer_id": row["customer_id"],
                "offer_code": row["offer_code"],
                "outcome": outcome,
                "reason": reason or "planned",
                "channel": row["channel"] if live else None,
                "legal_basis": row["legal_basis"],
                "detail": row["detail"] if live or reason == "over_capacity" else None,
                "release_at": row["release_at"] if outcome == "held" else None,
            }
        )
    return pl.DataFrame(out, schema=OUTPUT_SCHEMA)
