"""The ``outreach`` command line (Typer). Each topic lives in its own module and registers here."""

from __future__ import annotations

import typer

from outreach.cli.errors import OutreachGroup

app = typer.Typer(
    cls=OutreachGroup,  # the one error boundary: see outreach/cli/errors.py
    name="outreach",
    help="Outreach: send a bank's personalised offers to customers who have not opted out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Topic modules attach their commands to ``app`` on import: one line each, sorted.
import outreach.cli.api_clients  # noqa: E402,F401
import outreach.cli.audit  # noqa: E402,F401
import outreach.cli.calls  # noqa: E402,F401
import outreach.cli.campaigns  # noqa: E402,F401
import outreach.cli.compliance  # noqa: E402,F401
import outreach.cli.consent  # noqa: E402,F401
import outreach.cli.core  # noqa: E402,F401
import outreach.cli.data  # noqa: E402,F401
import outreach.cli.explain  # noqa: E402,F401
import outreach.cli.fakes  # noqa: E402,F401
import outreach.cli.live  # noqa: E402,F401
import outreach.cli.message  # noqa: E402,F401
import outreach.cli.objections  # noqa: E402,F401
import outreach.cli.preview  # noqa: E402,F401
import outreach.cli.run  # noqa: E402,F401
import outreach.cli.serve  # noqa: E402,F401
import outreach.cli.status  # noqa: E402,F401
import outreach.cli.subject  # noqa: E402,F401
import outreach.cli.templates  # noqa: E402,F401


def main() -> None:
    app()
