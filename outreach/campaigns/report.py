"""Did the campaign work? Counts per variant and channel, and uplift against the control group.

Everyone who entered the campaign counts in their arm whether or not a message reached them
(intention to treat): conversion rate = converted / entered. A customer converted when a holding of
the offer's product was opened on or after the day they entered and within the attribution window.
A response is a click, a reply or a call outcome "interested" on their message (delivery events).

Uplift = treated rate - control rate, with a 95% confidence interval (Newcombe's hybrid score
interval, statsmodels) and a two-sided p-value. Rows per channel compare with the control customers
who would have had that channel (channel choice comes before the random split), so every
comparison is between randomised groups. Counts only: no customer appears in a report.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl
from jinja2 import Environment
from sqlalchemy import Engine, and_, or_, select

from outreach.campaigns import state
from outreach.campaigns.assignment import CONTROL, TREATMENT
from outreach.campaigns.model import Campaign
from outreach.campaigns.tables import CampaignAssignment, assignments_with_messages
from outreach.config import OffersFile
from outreach.db import session_scope
from outreach.models import Decision, DeliveryEventRecord, Holding, Message

CONTACTED = ("sent", "delivered", "undelivered", "bounced")
RESPONSE_EVENTS = ("clicked", "replied")  # email click, SMS reply; and a call answered "interested"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Uplift:
    difference: float  # treated rate - control rate (a fraction: 0.02 is 2 percentage points)
    low: float
    high: float
    p_value: float


def uplift(
    converted_t: int, n_t: int, converted_c: int, n_c: int, confidence: float = CONFIDENCE
) -> Uplift | None:
    """Difference of two proportions with its confidence interval; None when a group is empty."""
    if n_t <= 0 or n_c <= 0:
        return None
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    with warnings.catch_warnings():  # 0/n and n/n give harmless divide warnings inside statsmodels
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = confint_proportions_2indep(
            converted_t, n_t, converted_c, n_c, compare="diff", method="newcomb", alpha=1 - confidence
        )
        p_value = test_proportions_2indep(converted_t, n_t, converted_c, n_c, compare="diff").pvalue
    return Uplift(converted_t / n_t - converted_c / n_c, float(low), float(high), float(p_value))


@dataclass
class Row:
    arm: str  # treatment | control
    variant: str  # a variant name, or "all"
    channel: str  # a channel, or "all"
    entered: int
    contacted: int
    delivered: int
    responded: int
    converted: int
    versus: str = ""  # which control row the uplift compares with
    uplift: Uplift | None = None

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None


@dataclass
class CampaignReport:
    campaign: Campaign
    state: str
    as_of: date
    attribution_days: int
    rows: list[Row]
    daily: pl.DataFrame  # day, arm, entered (so far), converted (so far), share (of the whole arm)
    curve: pl.DataFrame  # days since entering, arm, share converted within that many days
    held_back: int = 0  # messages a pause kept from batches (sum of held_back events)
    notes: list[str] = field(default_factory=list)

    # -- views -----------------------------------------------------------------------------
    def overall(self) -> Row | None:
        return next(
            (r for r in self.rows if r.arm == TREATMENT and r.variant == "all" and r.channel == "all"), None
        )

    def table(self) -> list[dict[str, object]]:
        """Flat rows (for a Prefect table artifact or a CSV): counts and rounded figures only."""
        out = []
        for r in self.rows:
            out.append(
                {
                    "arm": r.arm,
                    "variant": r.variant,
                    "channel": r.channel,
                    "entered": r.entered,
                    "contacted": r.contacted,
                    "delivered": r.delivered,
                    "responded": r.responded,
                    "converted": r.converted,
                    "conversion_rate_pct": _pct(r.rate),
                    "uplift_pp": _pct(r.uplift.difference) if r.uplift else None,
                    "ci95_low_pp": _pct(r.uplift.low) if r.uplift else None,
                    "ci95_high_pp": _pct(r.uplift.high) if r.uplift else None,
                    "p_value": round(r.uplift.p_value, 4) if r.uplift else None,
                    "versus": r.versus,
                }
            )
        return out

    def headline(self) -> str:
        row = self.overall()
        if row is None or row.uplift is None:
            return "No result yet: nobody has entered both arms of the campaign."
        u = row.uplift
        verdict = (
            "a significant uplift"
            if u.low > 0
            else "a significant drop"
            if u.high < 0
            else "no difference we can tell from chance"
        )
        return (
            f"Treated customers converted at {_pct(row.rate)}% against {_pct(self._control_rate())}% in the "
            f"control group: {verdict}, {_signed(u.difference)} percentage points "
            f"(95% CI {_signed(u.low)} to {_signed(u.high)}, p = {u.p_value:.3g})."
        )

    def _control_rate(self) -> float | None:
        row = next((r for r in self.rows if r.arm == CONTROL and r.channel == "all"), None)
        return row.rate if row else None

    def chart_png(self) -> bytes:
        """Conversions over time, treated vs control (matplotlib, PNG bytes): by calendar day, and by
        days since entering the campaign (where the two arms line up exactly)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (by_day, by_age) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, width_ratios=(3, 2))
        styles = {TREATMENT: ("#1f6feb", "treated"), CONTROL: ("#8c959f", "control")}
        for arm_name, (colour, label) in styles.items():
            part = self.daily.filter(pl.col("arm") == arm_name).sort("day")
            if not part.is_empty():
                by_day.step(
                    part["day"].to_list(),
                    (part["share"] * 100).to_list(),
                    where="post",
                    color=colour,
                    linewidth=2,
                    label=f"{label} (n={part['entered'][-1]:,})",
                )
            curve = self.curve.filter(pl.col("arm") == arm_name).sort("days")
            if not curve.is_empty():
                by_age.step(
                    curve["days"].to_list(),
                    (curve["share"] * 100).to_list(),
                    where="post",
                    color=colour,
                    linewidth=2,
                    label=label,
                )
        window = self.campaign.window
        by_day.axvspan(window.start, window.end, color="#fff3b0", alpha=0.6, label="campaign window")
        by_day.set_title("converted by date (% of everyone who entered)", fontsize=10)
        by_day.set_ylabel("converted (%)")
        by_day.legend(loc="upper left", fontsize=9)
        by_day.tick_params(axis="x", labelrotation=30)
        by_age.set_title("converted by days since entering (%)", fontsize=10)
        by_age.set_xlabel(f"days since entering (attribution window {self.attribution_days} days)")
        by_age.set_xlim(0, self.attribution_days + 0.5)  # the last day's step shows
        by_age.legend(loc="upper left", fontsize=9)
        for ax in (by_day, by_age):
            ax.grid(alpha=0.3)
            ax.set_ylim(bottom=0)
        fig.suptitle(f"{self.campaign.name}: conversions, treated vs control", fontsize=12)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
        return buffer.getvalue()

    def to_markdown(self, chart: str | None = None) -> str:
        """The report as Markdown; ``chart`` is the path or URL of the PNG to link, if any."""
        c = self.campaign
        lines = [
            f"# Campaign report: {c.name}",
            "",
            f"- owner: {c.owner}",
            f"- state: {self.state} (as of {self.as_of.isoformat()})",
            f"- window: {c.window.start} to {c.window.end}",
            f"- offers: {', '.join(c.offers)}; holdout {c.holdout_percent:g}%; variants "
            + ", ".join(f"{v.name} {v.percent:g}%" for v in c.variants),
            f"- conversion: the offer's product opened within {self.attribution_days} days of entering",
            f"- messages held back by a pause: {self.held_back}",
            "",
            f"**{self.headline()}**",
            "",
            "| arm | variant | channel | entered | contacted | delivered | responded | converted | "
            "conv. rate | uplift (pp) | 95% CI (pp) | p | vs |",
            "|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|---|",
        ]
        for r in self.rows:
            u = r.uplift
            counts = [r.entered, r.contacted, r.delivered, r.responded, r.converted]
            figures = (
                [_signed(u.difference), f"{_signed(u.low)} to {_signed(u.high)}", f"{u.p_value:.3g}"]
                if u
                else ["", "", ""]
            )
            cells = [r.arm, r.variant, r.channel, *[f"{n:,}" for n in counts], _fmt_pct(r.rate), *figures]
            lines.append("| " + " | ".join([*cells, r.versus]) + " |")
        if chart:
            lines += ["", f"![conversions over time, treated vs control]({chart})"]
        if self.notes:
            lines += ["", *[f"> {note}" for note in self.notes]]
        lines += [
            "",
            "Everyone who entered counts in their arm, reached or not (intention to treat). Uplift: "
            "treated minus control conversion rate, 95% Newcombe interval (statsmodels). Per-channel rows "
            "compare with the control customers who would have had that channel. Delivered: confirmed by the "
            "provider (letters and calls have no delivery receipt).",
        ]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """A self-contained HTML page with the chart embedded."""
        chart = base64.b64encode(self.chart_png()).decode()
        return _HTML.render(report=self, rows=self.table(), chart=chart, headline=self.headline())


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _fmt_pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def _signed(value: float) -> str:
    return f"{value * 100:+.2f}"


_HTML = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Campaign report: {{ report.campaign.name }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#1f2328}
table{border-collapse:collapse;font-size:.9rem}th,td{border:1px solid #d0d7de;padding:.3rem .5rem}
td.n{text-align:right}th{background:#f6f8fa}.lead{font-weight:600;margin:1rem 0}
td{white-space:nowrap}img{max-width:100%;height:auto}
</style></head><body>
<h1>Campaign report: {{ report.campaign.name }}</h1>
<p>Owner {{ report.campaign.owner }} · state {{ report.state }} (as of {{ report.as_of }})
· window {{ report.campaign.window.start }} to {{ report.campaign.window.end }}
· offers {{ report.campaign.offers|join(", ") }} · holdout {{ report.campaign.holdout_percent }}%
· attribution {{ report.attribution_days }} days
· messages held back by a pause: {{ report.held_back }}</p>
<p class="lead">{{ headline }}</p>
<table><thead><tr><th>arm</th><th>variant</th><th>channel</th><th>entered</th><th>contacted</th>
<th>delivered</th><th>responded</th><th>converted</th><th>conv. rate %</th><th>uplift pp</th>
<th>95% CI pp</th><th>p</th><th>vs</th></tr></thead><tbody>
{% for r in rows %}<tr><td>{{ r.arm }}</td><td>{{ r.variant }}</td><td>{{ r.channel }}</td>
<td class="n">{{ r.entered }}</td><td class="n">{{ r.contacted }}</td><td class="n">{{ r.delivered }}</td>
<td class="n">{{ r.responded }}</td><td class="n">{{ r.converted }}</td>
<td class="n">{{ "%.2f"|format(r.conversion_rate_pct) if r.conversion_rate_pct is not none else "" }}</td>
<td class="n">{{ "%+.2f"|format(r.uplift_pp) if r.uplift_pp is not none else "" }}</td>
<td>{% if r.uplift_pp is not none %}{{ "%+.2f"|format(r.ci95_low_pp) }} to
{{- " %+.2f"|format(r.ci95_high_pp) }}{% endif %}</td>
<td class="n">{{ r.p_value if r.p_value is not none else "" }}</td><td>{{ r.versus }}</td></tr>
{% endfor %}</tbody></table>
<p><img alt="Cumulative conversion rate over time, treated vs control"
 src="data:image/png;base64,{{ chart }}"></p>
{% for note in report.notes %}<p><em>{{ note }}</em></p>{% endfor %}
<p>Everyone who entered counts in their arm, reached or not (intention to treat). Uplift: treated minus
control conversion rate, 95% Newcombe interval (statsmodels). Per-channel rows compare with the control
customers who would have had that channel. Delivered: confirmed by the provider (letters and calls
have no delivery receipt).</p>
</body></html>
"""
)


# -- building the report from the database -----------------------------------------------------
def _assignments(engine: Engine, name: str) -> pl.DataFrame:
    """One row per customer who entered: arm, variant, channel, day, offer, message status, response."""
    schema = {
        "candidate_id": pl.Int64,
        "customer_id": pl.Utf8,
        "offer_code": pl.Utf8,
        "assigned_on": pl.Date,
        "arm": pl.Utf8,
        "variant": pl.Utf8,
        "channel": pl.Utf8,
        "message_id": pl.Int64,
        "status": pl.Utf8,
    }
    with session_scope(engine) as session:
        rows = session.execute(assignments_with_messages(name)).all()
        events = session.execute(
            select(DeliveryEventRecord.message_id, DeliveryEventRecord.event_type, DeliveryEventRecord.raw)
            .join(Message, Message.id == DeliveryEventRecord.message_id)
            .join(Decision, Decision.id == Message.decision_id)
            .join(CampaignAssignment, CampaignAssignment.candidate_id == Decision.candidate_id)
            .where(
                CampaignAssignment.campaign == name,
                or_(
                    DeliveryEventRecord.event_type.in_(RESPONSE_EVENTS),
                    and_(
                        DeliveryEventRecord.channel == "call", DeliveryEventRecord.event_type == "delivered"
                    ),
                ),
            )
        ).all()
    responded = {mid for mid, kind, raw in events if kind in RESPONSE_EVENTS or _interested(raw)}
    frame = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    return frame.with_columns(
        responded=pl.col("message_id").is_in(pl.Series(sorted(responded), dtype=pl.Int64).implode())
    )


def _interested(raw: object) -> bool:
    """The call centre records an answered call as ``delivered`` with the agent's outcome in raw."""
    return isinstance(raw, dict) and raw.get("outcome") == "interested"


def _conversions(engine: Engine, name: str, products: dict[str, str]) -> pl.DataFrame:
    """Holdings of the campaign's products opened by customers who entered it: customer, product, day."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Holding.customer_id, Holding.product, Holding.opened_at).where(
                Holding.product.in_(sorted(set(products.values()))),
                Holding.opened_at.is_not(None),
                Holding.customer_id.in_(
                    select(CampaignAssignment.customer_id).where(CampaignAssignment.campaign == name)
                ),
            )
        ).all()
    return pl.DataFrame(
        [tuple(r) for r in rows],
        schema={"customer_id": pl.Utf8, "product": pl.Utf8, "opened_at": pl.Date},
        orient="row",
    )


def _count(part: pl.DataFrame) -> dict[str, int]:
    return {
        "entered": part.height,
        "contacted": int(part["status"].is_in(CONTACTED).sum()),
        "delivered": int((part["status"] == "delivered").sum()),
        "responded": int(part["responded"].sum()),
        "converted": int(part["converted"].sum()),
    }


def build_report(
    engine: Engine,
    name: str,
    offers: OffersFile,
    *,
    as_of: date | None = None,
    attribution_days: int | None = None,
) -> CampaignReport:
    """The campaign's report from the database (definition as last synced)."""
    saved = state.stored(engine, [name]).get(name)
    if saved is None:
        raise state.UnknownCampaign(name)
    campaign = saved.campaign
    as_of = as_of or date.today()
    days = attribution_days or campaign.attribution_days
    by_code = offers.by_code()
    products = {code: by_code[code].product for code in campaign.offers if code in by_code}
    frame = _assignments(engine, name)
    conversions = _conversions(engine, name, products)
    product_of = pl.DataFrame(
        {"offer_code": list(products), "product": list(products.values())},
        schema={"offer_code": pl.Utf8, "product": pl.Utf8},
    )
    matched = (
        frame.select("candidate_id", "customer_id", "offer_code", "assigned_on")
        .join(product_of, on="offer_code", how="inner")
        .join(conversions, on=["customer_id", "product"], how="inner")
        .filter(
            (pl.col("opened_at") >= pl.col("assigned_on"))
            & (pl.col("opened_at") <= pl.col("assigned_on") + pl.duration(days=days))
            & (pl.col("opened_at") <= as_of)
        )
        .group_by("candidate_id")
        .agg(pl.col("opened_at").min())
    )
    frame = frame.join(matched, on="candidate_id", how="left").with_columns(
        converted=pl.col("opened_at").is_not_null()
    )
    rows = _rows(frame)
    held_back = sum(e.count for e in state.events(engine, name, limit=10_000) if e.kind == "held_back")
    report = CampaignReport(
        campaign=campaign,
        state=campaign.state_on(as_of, saved.paused),
        as_of=as_of,
        attribution_days=days,
        rows=rows,
        daily=_daily(frame, as_of),
        curve=_curve(frame, days),
        held_back=held_back,
    )
    last_entry = frame["assigned_on"].max() if frame.height else None
    if last_entry is not None and last_entry + timedelta(days=days) > as_of:
        report.notes.append(
            f"The attribution window of the last entries ({last_entry}) is still open until "
            f"{last_entry + timedelta(days=days)}: conversions may still come in."
        )
    return report


def _rows(frame: pl.DataFrame) -> list[Row]:
    treated = frame.filter(pl.col("arm") == TREATMENT)
    control = frame.filter(pl.col("arm") == CONTROL)
    control_all = Row(CONTROL, "all", "all", **_count(control))
    rows = [Row(TREATMENT, "all", "all", **_count(treated), versus="control, all channels")]
    rows[0].uplift = uplift(rows[0].converted, rows[0].entered, control_all.converted, control_all.entered)
    variants = sorted(set(treated["variant"].drop_nulls()))
    channels = sorted(set(frame["channel"].drop_nulls()))
    if len(variants) > 1:
        for v in variants:
            row = Row(
                TREATMENT,
                v,
                "all",
                **_count(treated.filter(pl.col("variant") == v)),
                versus="control, all channels",
            )
            row.uplift = uplift(row.converted, row.entered, control_all.converted, control_all.entered)
            rows.append(row)
    control_rows = [control_all]
    for ch in channels:
        base = Row(CONTROL, "all", ch, **_count(control.filter(pl.col("channel") == ch)))
        control_rows.append(base)
        for v in variants:
            part = treated.filter((pl.col("variant") == v) & (pl.col("channel") == ch))
            if part.is_empty():
                continue
            row = Row(TREATMENT, v, ch, **_count(part), versus=f"control, {ch}")
            row.uplift = uplift(row.converted, row.entered, base.converted, base.entered)
            rows.append(row)
    return rows + control_rows


def _daily(frame: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Per arm and calendar day: conversions so far as a share of the whole arm (so the line ends at
    the arm's conversion rate), and how many had entered by then."""
    schema = {"day": pl.Date, "arm": pl.Utf8, "entered": pl.Int64, "converted": pl.Int64, "share": pl.Float64}
    if frame.is_empty():
        return pl.DataFrame(schema=schema)
    start = frame["assigned_on"].min()
    days = pl.DataFrame({"day": pl.date_range(start, max(as_of, start), "1d", eager=True)})
    out = []
    for arm_name in (TREATMENT, CONTROL):
        part = frame.filter(pl.col("arm") == arm_name)
        if part.is_empty():
            continue
        entered = part.group_by(pl.col("assigned_on").alias("day")).len(name="n")
        converted = part.filter(pl.col("converted")).group_by(pl.col("opened_at").alias("day")).len(name="c")
        daily = (
            days.join(entered, on="day", how="left")
            .join(converted, on="day", how="left")
            .fill_null(0)
            .sort("day")
        )
        out.append(
            daily.select(
                "day",
                pl.lit(arm_name).alias("arm"),
                pl.col("n").cum_sum().cast(pl.Int64).alias("entered"),
                pl.col("c").cum_sum().cast(pl.Int64).alias("converted"),
                (pl.col("c").cum_sum() / part.height).alias("share"),
            )
        )
    return pl.concat(out).cast(schema)


def _curve(frame: pl.DataFrame, days: int) -> pl.DataFrame:
    """Per arm: the share converted within d days of entering, d = 0 .. the attribution window."""
    schema = {"days": pl.Int64, "arm": pl.Utf8, "share": pl.Float64}
    out = []
    for arm_name in (TREATMENT, CONTROL):
        part = frame.filter(pl.col("arm") == arm_name)
        if part.is_empty():
            continue
        after = (
            part.filter(pl.col("converted"))
            .select((pl.col("opened_at") - pl.col("assigned_on")).dt.total_days().alias("days"))
            .group_by("days")
            .len(name="c")
        )
        curve = (
            pl.DataFrame({"days": list(range(days + 1))}, schema={"days": pl.Int64})
            .join(after, on="days", how="left")
            .fill_null(0)
            .sort("days")
        )
        out.append(
            curve.select(
                "days", pl.lit(arm_name).alias("arm"), (pl.col("c").cum_sum() / part.height).alias("share")
            )
        )
    return pl.concat(out).cast(schema) if out else pl.DataFrame(schema=schema)
