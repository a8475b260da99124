"""`outreach explain`: why a customer did or did not get an offer on a day, rule by rule."""

from __future__ import annotations

import json
from datetime import date

import typer
from rich.console import Console

from outreach.cli import app
from outreach.cli.day_args import DayOption, offers_and_day
from outreach.cli.errors import UserError
from outreach.cli.message import content_lines
from outreach.config import get_settings
from outreach.db import make_engine
from outreach.policy.explain import explain_customer

console = Console(highlight=False)
MARK = {
    "passed": "[green]✓[/green]",
    "failed": "[red]✗[/red]",
    "held": "[yellow]⏸[/yellow]",
    "not reached": "·",
}
OUTCOME = {
    "planned": "[green]PLANNED[/green]",
    "held": "[yellow]HELD[/yellow]",
    "suppressed": "[red]NOT CONTACTED[/red]",
    "rejected": "[red]REJECTED[/red]",
}


@app.command("explain")
def explain(
    customer_id: str = typer.Argument(..., help="Customer id."),
    day: date | None = DayOption("The day (YYYY-MM-DD); default the bank's today."),
    output: str = typer.Option("text", "--format", help="text | json"),
) -> None:
    """Each candidate of the customer that day: every rule in order, outcome, legal basis, messages."""
    settings = get_settings()
    offers, run_date = offers_and_day(settings, day)
    engine = make_engine(settings.database_url)
    try:
        result = explain_customer(engine, customer_id, run_date, offers)
    finally:
        engine.dispose()
    if not result.customer_known and not result.candidates:
        raise UserError(
            f"no customer {customer_id!r} in the customer table ({settings.database_url.split('@')[-1]})"
        )
    if output == "json":
        print(json.dumps(result.to_json(), indent=2, default=str))
        return
    console.print(f"[bold]Customer {customer_id} on {run_date}[/bold]")
    if not result.customer_known:
        console.print("  This customer is not in the customer table.")
    if not result.candidates:
        console.print("  No offer candidates for this customer on this day, so no contact was considered.")
    for c in result.candidates:
        console.print()
        console.print(
            f"[bold]Offer {c.offer_code}[/bold] (candidate {c.candidate_id}, trigger {c.trigger}"
            f"{' ' + c.trigger_ref if c.trigger_ref else ''}, score {c.score:g})"
        )
        decided = (
            f"decided {c.decided_at}" if c.decided_at else "not decided yet: this is what the engine would do"
        )
        if c.event:
            console.print(f"  Trigger: {c.event}")
        outcome = OUTCOME.get(c.outcome, c.outcome)
        console.print(f"  Outcome: {outcome} — {c.reason_text} [dim]({c.reason}; {decided})[/dim]")
        if c.channel:
            console.print(f"  Channel: {c.channel}")
        if c.legal_basis_text:
            console.print(f"  Legal basis: {c.legal_basis_text}")
        console.print("  Rules, in the order they are applied:")
        for line in c.rules:
            facts = f" — {line.facts}" if line.facts else ""
            style = "dim" if line.verdict == "not reached" else ""
            text = f"    {MARK[line.verdict]} {line.question}{facts}"
            console.print(f"[{style}]{text}[/{style}]" if style else text)
        if c.note:
            console.print(f"  [yellow]Note:[/yellow] {c.note}")
    console.print()
    if result.messages:
        console.print("[bold]Messages that resulted[/bold]")
        for m in result.messages:
            extra = []
            if m.not_before:
                extra.append(f"not before {m.not_before}")
            if m.sent_at:
                extra.append(f"sent {m.sent_at}")
            console.print(
                f"  #{m.message_id} {m.offer_code} by {m.channel}: [bold]{m.status}[/bold] {'; '.join(extra)}"
            )
            if m.content is not None:
                console.print("      What was sent:")
                for line in content_lines(m.content, "        "):
                    console.print(line, markup=False, soft_wrap=True)
            elif m.status not in ("planned", "cancelled"):
                console.print(
                    "      No stored content (its template failed, or purged after the retention period)."
                )
            for t in m.transitions:
                console.print(f"      {t}")
            for e in m.events:
                console.print(f"      event {e}")
    else:
        console.print("No messages in the ledger for this customer on this day.")
