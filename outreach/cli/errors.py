"""The command line's one error boundary: errors a user can cause or fix end in one line and a
non-zero exit; anything else is a bug and keeps its traceback.

Every command runs inside ``OutreachGroup.invoke``, so the mapping below holds for all of them,
including bad arguments (exit 2, like click's own usage errors, but on one line).
"""

from __future__ import annotations

import logging

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from typer.core import TyperGroup

from outreach.config import ConfigError, get_settings
from outreach.day_lock import DayAlreadyRunning
from outreach.errors import InputError

# Typer (>= 0.2x) ships its own copy of click: take its usage-error classes from its BadParameter
_MRO = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError, ClickException = _MRO["UsageError"], _MRO["ClickException"]

PREFECT_SERVER_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"
PREFECT_UNREACHABLE = "Failed to reach API at"


class UserError(InputError):
    """A problem the user can fix, said in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _database() -> str:
    """The configured database without its password, for messages."""
    url = get_settings().database_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "OUTREACH_DATABASE_URL"


def _database_problem(exc: OperationalError | ProgrammingError) -> str | None:
    text = str(exc.orig).lower()
    if "database is locked" in text:
        return (
            f"the database {_database()} is locked by another process (a run or an import?): "
            "wait for it to finish, then try again"
        )
    if "no such table" in text or ("does not exist" in text and "relation" in text):
        return f"the database {_database()} has no Outreach schema yet: run `outreach db upgrade`"
    if isinstance(exc, OperationalError) and (
        "connect" in text or "unable to open database" in text or "could not translate host" in text
    ):
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        return (
            f"cannot reach the database {_database()} ({first}): is it running? check OUTREACH_DATABASE_URL"
        )
    return None


def _prefect_problem(exc: BaseException) -> str | None:
    if isinstance(exc, RuntimeError) and PREFECT_SERVER_TIMEOUT in str(exc):
        return (
            "Prefect's embedded server did not start in time (a busy machine?): run the command again, "
            "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start `prefect server start` "
            "and set PREFECT_API_URL"
        )
    if isinstance(exc, RuntimeError) and str(exc).startswith(PREFECT_UNREACHABLE):
        api = str(exc).removeprefix(PREFECT_UNREACHABLE).strip().rstrip("/")
        return f"cannot reach {api}: is the Prefect server up? check PREFECT_API_URL"
    if type(exc).__module__.startswith("httpx") and type(exc).__name__ in ("ConnectError", "ConnectTimeout"):
        return f"cannot reach {_request_url(exc)}: is the Prefect server up? check PREFECT_API_URL"
    return None


def _request_url(exc: BaseException) -> str:
    """Where httpx was going (its errors carry the request), without the path."""
    try:
        url = exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
        return "the Prefect API"
    return f"{url.scheme}://{url.netloc.decode()}"


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The one line and the exit status for an error the user can fix; None for a bug."""
    if isinstance(exc, UserError):
        return str(exc), exc.code
    if isinstance(exc, DayAlreadyRunning):
        return str(exc), 1
    if isinstance(exc, ConfigError):
        return str(exc), 2
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename or exc}", 1
    if isinstance(exc, OperationalError | ProgrammingError):
        message = _database_problem(exc)
        return (message, 1) if message else None
    message = _prefect_problem(exc)
    return (message, 1) if message else None


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say ``message`` on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


class _KnownErrorFilter(logging.Filter):
    """Drops a log record carrying an error the boundary will say in one line (Prefect logs a
    failed flow's exception with its traceback on the console before the flow call returns)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or explain(exc) is None


def quiet_known_errors() -> None:
    """Keep the console handlers of the root logger (Prefect's) from printing known errors' tracebacks."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _KnownErrorFilter) for f in handler.filters):
            handler.addFilter(_KnownErrorFilter())


class OutreachGroup(TyperGroup):
    """The top-level group: runs every command inside the error boundary."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            raise fail(f"{where}: {exc.format_message()} (see `{where} --help`)", exc.exit_code) from None
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as exc:
            known = explain(exc)
            if known is None:
                raise
            message, code = known
            if "\n" in message and code != 2:  # several lines only for a list of bad config keys
                message = message.splitlines()[0]
            raise fail(message, code) from None
