"""The accountability report: per offer and channel, the figures of ``figures``, the legitimate-interest
assessment of each offer, as a self-contained HTML page and a PDF (ReportLab) with the same charts."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from sqlalchemy import Engine

from outreach.compliance import figures
from outreach.compliance.figures import Key, Period
from outreach.config import OffersFile
from outreach.db import session_scope

OPT_OUT_WINDOW_DAYS = 30


@dataclass
class Row:
    offer: str
    channel: str
    contacts: int = 0
    customers: int = 0
    objected_after: int = 0  # contacted customers who objected within OPT_OUT_WINDOW_DAYS
    complaints: int = 0
    despite_objection: int = 0  # must be 0
    despite_suppression: int = 0  # must be 0
    quiet_hours: int = 0  # must be 0

    @property
    def opt_out_rate(self) -> float | None:
        return self.objected_after / self.customers if self.customers else None


@dataclass
class Report:
    period: Period
    generated_at: datetime
    rows: list[Row]
    objections: list[dict]  # path, scope, objections, customers
    effect_seconds: list[float]
    assessments: dict[str, list[tuple[str, str]]]  # offer -> (label, text)
    notes: list[str] = field(default_factory=list)

    @property
    def effect_max(self) -> float | None:
        return max(self.effect_seconds) if self.effect_seconds else None

    @property
    def effect_p99(self) -> float | None:
        """Nearest-rank 99th percentile: a value some objection actually had."""
        if not self.effect_seconds:
            return None
        ordered = sorted(self.effect_seconds)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]

    @property
    def violations(self) -> int:
        return sum(r.despite_objection + r.despite_suppression + r.quiet_hours for r in self.rows)

    def total(self) -> Row:
        total = Row("all offers", "all channels")
        for r in self.rows:
            for name in ("contacts", "customers", "objected_after", "complaints"):
                setattr(total, name, getattr(total, name) + getattr(r, name))
            for name in ("despite_objection", "despite_suppression", "quiet_hours"):
                setattr(total, name, getattr(total, name) + getattr(r, name))
        return total


def build(engine: Engine, period: Period, offers: OffersFile, now: datetime | None = None) -> Report:
    with session_scope(engine) as session:
        sent = figures.sent_frame(session, period)
        counts = figures.contacts(sent)
        after = figures.opt_out_after_contact(session, sent, OPT_OUT_WINDOW_DAYS)
        complained = figures.complaints(session, period)
        objected, suppressed = figures.contacts_despite(session, sent, offers)
        quiet = figures.quiet_hour_contacts(session, sent, period, offers)
        by_path = figures.objections_by_path(session, period)
        effect = figures.objection_effect(session, period, offers)
    keys: set[Key] = {(o.code, c) for o in offers.offers for c in o.channels}
    keys |= set(counts) | set(complained) | set(quiet)
    rows = []
    for offer, channel in sorted(keys):
        key = (offer, channel)
        rows.append(
            Row(
                offer,
                channel,
                contacts=counts.get(key, (0, 0))[0],
                customers=counts.get(key, (0, 0))[1],
                objected_after=after.get(key, (0, 0))[1],
                complaints=complained.get(key, 0),
                despite_objection=objected.get(key, 0),
                despite_suppression=suppressed.get(key, 0),
                quiet_hours=quiet.get(key, 0),
            )
        )
    assessments = {
        o.code: o.legitimate_interest.as_rows()
        if o.legitimate_interest
        else [("Legal basis", "consent: no legitimate-interest assessment needed")]
        for o in offers.offers
    }
    return Report(period, now or datetime.now(UTC), rows, by_path, effect, assessments)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "no objections in the period"
    if seconds == 0:
        return "0 s (no contact after any objection)"
    return f"{seconds:,.0f} s ({seconds / 3600:.1f} h)"


def charts_png(report: Report) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    labels = [f"{r.offer}\n{r.channel}" for r in report.rows if r.contacts]
    left.barh(labels, [r.contacts for r in report.rows if r.contacts], color="#1f6feb")
    left.set_title("Contacts per offer and channel")
    left.invert_yaxis()
    left.tick_params(axis="y", labelsize=7)
    paths: dict[str, int] = {}
    for item in report.objections:
        paths[item["path"]] = paths.get(item["path"], 0) + item["objections"]
    right.bar(list(paths) or ["none"], list(paths.values()) or [0], color="#cf222e")
    right.set_title("Objections by path")
    right.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 2.5 objections
    right.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def to_html(report: Report, chart: bytes | None = None) -> str:
    chart = chart if chart is not None else charts_png(report)
    return _HTML.render(
        r=report,
        total=report.total(),
        chart=base64.b64encode(chart).decode(),
        pct=_pct,
        effect_max=_duration(report.effect_max),
        effect_p99=_duration(report.effect_p99),
        window=OPT_OUT_WINDOW_DAYS,
    )


# a file beside this module: the page is long, and HTML reads better without Python quoting
_HTML = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True).get_template(
    "report.html.j2"
)


def to_pdf(report: Report, chart: bytes | None = None) -> bytes:
    """The same content as the HTML page, as an A4 PDF."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    chart = chart if chart is not None else charts_png(report)
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    total = report.total()
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
            ("FONTSIZE", (0, 0), (-1, -1), 7.5),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )
    story = [
        Paragraph(f"Accountability report: {report.period.first} to {report.period.last}", styles["Title"]),
        Paragraph(
            f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC from the ledger, consent history and "
            "delivery events. Counts only.",
            styles["BodyText"],
        ),
        Paragraph("Must be zero", styles["Heading2"]),
    ]
    zero = [
        ["contacts of customers who had objected", str(total.despite_objection)],
        ["contacts of customers on a suppression list", str(total.despite_suppression)],
        ["contacts in quiet hours", str(total.quiet_hours)],
        ["time from an objection to its effect: max", _duration(report.effect_max)],
        ["time from an objection to its effect: p99", _duration(report.effect_p99)],
    ]
    story += [Table(zero, style=grid), Paragraph("Per offer and channel", styles["Heading2"])]
    header = ["offer", "channel", "contacts", "customers", f"objected {OPT_OUT_WINDOW_DAYS}d", "opt-out rate"]
    header += ["complaints", "despite objection", "despite suppression", "quiet hours"]
    body = [
        [
            x.offer,
            x.channel,
            x.contacts,
            x.customers,
            x.objected_after,
            _pct(x.opt_out_rate),
            x.complaints,
            x.despite_objection,
            x.despite_suppression,
            x.quiet_hours,
        ]
        for x in [*report.rows, total]
    ]
    story += [Table([header, *body], style=grid, repeatRows=1), Spacer(1, 0.3 * cm)]
    story.append(Image(io.BytesIO(chart), width=25 * cm, height=25 * cm * 4 / 11))
    story.append(Paragraph("Objections by path", styles["Heading2"]))
    rows = [[o["path"], o["scope"], o["objections"], o["customers"]] for o in report.objections]
    story.append(
        Table([["path", "scope", "objections", "customers"], *rows], style=grid)
        if rows
        else Paragraph("None.", styles["BodyText"])
    )
    story.append(Paragraph("The legitimate-interest assessment of each offer", styles["Heading2"]))
    for code, items in report.assessments.items():
        story.append(Paragraph(code, styles["Heading3"]))
        cells = [[Paragraph(label, small), Paragraph(text, small)] for label, text in items]
        story.append(Table(cells, colWidths=[4.5 * cm, 20 * cm], style=grid))
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=1.5 * cm,
        rightMargin=1.5 * cm,
        topMargin=1.5 * cm,
        bottomMargin=1.5 * cm,
        title=f"Accountability report {report.period.first} to {report.period.last}",
        invariant=1,
    ).build(story)
    return buffer.getvalue()
