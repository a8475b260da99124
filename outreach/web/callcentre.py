"""The call-centre pages: sign in, the team's queue, "Next call", the call page, the supervisor's view.

Server-rendered (Jinja2), no JavaScript. The session is an itsdangerous-signed cookie (HttpOnly,
SameSite=Strict, Secure behind https) carrying the agent id, a per-agent nonce that sign-out
rotates (so sign-out ends every copy of the cookie) and the CSRF token every form posts back.
Secret: OUTREACH_SESSION_SECRET. An agent sees their own team only; another team's call is a 404.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup
from sqlalchemy import Engine, func, select

from outreach.calls import accounts, tasks
from outreach.calls.hours import zone
from outreach.calls.models import Agent, CallAttempt, CallTask, Team
from outreach.calls.progress import OUTCOME_LABELS, STATES, team_progress
from outreach.calls.script import render_script
from outreach.config import ConfigError, Settings, load_offers
from outreach.db import as_utc, engine_for, session_scope
from outreach.models import Customer
from outreach.rendering import Renderer, TemplateError
from outreach.web.svgchart import stacked_bars

log = logging.getLogger(__name__)
router = APIRouter(prefix="/calls", tags=["call centre"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

COOKIE = "outreach_callcentre"
SESSION_HOURS = 12
NOTICES = {
    "none": "No call to make right now: the queue is empty or the next calls are later today.",
    "saved": "Outcome recorded.",
    "retry": "No answer: the call goes back in the queue for later today.",
    "signed-out": "You are signed out.",
    "gone": "That call is no longer in your hands.",
    "csrf": "The form had expired. Please try again.",
}
BUTTONS = (  # (form value, label) in the order the call page shows them
    ("interested", "Interested"),
    ("not_interested", "Not interested"),
    ("no_answer", "No answer"),
    ("wrong_number", "Wrong number"),
    ("do_not_contact:phone", "Do not call me again"),
    ("do_not_contact:all", "No marketing at all"),
)


@dataclass(frozen=True)
class SignedIn:
    id: int
    username: str
    display_name: str
    role: str
    team_id: int
    team_name: str
    csrf: str

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"


# --------------------------------------------------------------------------- plumbing


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _engine(request: Request) -> Engine:
    return engine_for(_settings(request).database_url)


def _clock(request: Request) -> datetime:
    """Now; an app may set ``state.clock`` (a rehearsal day, the browser tests)."""
    clock: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return clock() if clock else datetime.now(UTC)


def _today(request: Request) -> date:
    return _clock(request).astimezone(zone("Europe/Amsterdam")).date()


def _serializer(request: Request) -> URLSafeTimedSerializer:
    state = request.app.state
    if getattr(state, "callcentre_signer", None) is None:
        configured = _settings(request).calls.session_secret
        secret = configured.get_secret_value() if configured else None
        if not secret:
            log.warning("OUTREACH_SESSION_SECRET is not set: using a random one (sessions end on restart)")
            secret = secrets.token_urlsafe(32)
        state.callcentre_signer = URLSafeTimedSerializer(secret, salt="outreach.callcentre.session")
    return state.callcentre_signer


def _read_cookie(request: Request) -> dict:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(request).loads(raw, max_age=SESSION_HOURS * 3600)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def _write_cookie(request: Request, response: Response, data: dict) -> None:
    secure = request.url.scheme == "https" or _settings(request).public_url.startswith("https:")
    response.set_cookie(
        COOKIE,
        _serializer(request).dumps(data),
        max_age=SESSION_HOURS * 3600,
        path="/calls",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def _signed_in(request: Request) -> SignedIn | None:
    data = _read_cookie(request)
    if "agent" not in data:
        return None
    with session_scope(_engine(request)) as session:
        row = session.execute(
            select(Agent, Team.name).join(Team, Team.id == Agent.team_id).where(Agent.id == data["agent"])
        ).first()
        if row is None:
            return None
        agent, team_name = row
        if not agent.active or not secrets.compare_digest(agent.session_nonce, str(data.get("nonce", ""))):
            return None
        return SignedIn(
            agent.id,
            agent.username,
            agent.display_name,
            agent.role,
            agent.team_id,
            team_name,
            str(data.get("csrf", "")),
        )


def _csrf_ok(request: Request, token: str) -> bool:
    expected = str(_read_cookie(request).get("csrf", ""))
    return bool(expected) and secrets.compare_digest(expected, token)


def _redirect(path: str, notice: str | None = None) -> RedirectResponse:
    return RedirectResponse(f"{path}?notice={quote(notice)}" if notice else path, status_code=303)


def _page(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    response = templates.TemplateResponse(
        request, name, {"notice": notice, **context}, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"  # customer data must not linger in caches
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _not_found(request: Request, me: SignedIn | None) -> HTMLResponse:
    return _page(request, "callcentre/error.html", {"me": me, "message": "No such call."}, status_code=404)


# --------------------------------------------------------------------------- sign in / out


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if _signed_in(request):
        return _redirect("/calls")
    csrf = str(_read_cookie(request).get("csrf") or secrets.token_urlsafe(24))  # keep other tabs' forms valid
    response = _page(request, "callcentre/login.html", {"me": None, "csrf": csrf, "error": None})
    _write_cookie(request, response, {"csrf": csrf})
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not _csrf_ok(request, csrf_token):
        return _redirect("/calls/login", "csrf")
    with session_scope(_engine(request)) as session:
        agent = accounts.authenticate(session, username, password)
        ident = (agent.id, agent.session_nonce) if agent else None
    if ident is None:
        csrf = secrets.token_urlsafe(24)
        response = _page(
            request,
            "callcentre/login.html",
            {
                "me": None,
                "csrf": csrf,
                # one answer for every refusal: it must not tell which accounts exist or are locked
                "error": (
                    "Unknown username or wrong password. After "
                    f"{accounts.MAX_FAILED_LOGINS} wrong passwords an account is locked for "
                    f"{int(accounts.LOCKOUT.total_seconds() // 60)} minutes."
                ),
            },
            status_code=401,
        )
        _write_cookie(request, response, {"csrf": csrf})
        return response
    response = _redirect("/calls")
    # a fresh CSRF token at sign-in: a token planted before sign-in is worth nothing after it
    _write_cookie(
        request, response, {"agent": ident[0], "nonce": ident[1], "csrf": secrets.token_urlsafe(24)}
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    me = _signed_in(request)
    if me is None or not _csrf_ok(request, csrf_token):
        return _redirect("/calls/login")
    with session_scope(_engine(request)) as session:
        accounts.end_sessions(session, me.id)
    response = _redirect("/calls/login", "signed-out")
    response.delete_cookie(COOKIE, path="/calls", httponly=True, samesite="strict")
    return response


# --------------------------------------------------------------------------- the agent's day


@router.get("", response_class=HTMLResponse)
def home(request: Request) -> Response:
    me = _signed_in(request)
    if me is None:
        return _redirect("/calls/login")
    now, today = _clock(request), _today(request)
    with session_scope(_engine(request)) as session:
        in_hand = session.scalar(
            select(CallTask.id).where(CallTask.claimed_by == me.id, CallTask.status == "claimed")
        )
        counts = dict(
            session.execute(
                select(CallTask.status, func.count())
                .where(CallTask.team_id == me.team_id, CallTask.call_date == today)
                .group_by(CallTask.status)
            ).all()
        )
        callable_now = session.scalar(
            select(func.count()).where(
                CallTask.team_id == me.team_id,
                CallTask.status == "open",
                CallTask.next_attempt_at <= now,
                CallTask.window_end > now,
            )
        )
        # the queue without customer identities: what is waiting, not who
        queue = session.execute(
            select(
                CallTask.offer_code,
                CallTask.status,
                CallTask.attempts,
                CallTask.next_attempt_at,
                Customer.language,
            )
            .join(Customer, Customer.customer_id == CallTask.customer_id)
            .where(CallTask.team_id == me.team_id, CallTask.call_date == today, CallTask.status == "open")
            .order_by(CallTask.priority.desc(), CallTask.score.desc(), CallTask.id)
            .limit(50)
        ).all()
        mine = session.execute(
            select(
                CallAttempt.at,
                CallAttempt.outcome,
                CallTask.offer_code,
                Customer.first_name,
                Customer.last_name,
            )
            .join(CallTask, CallTask.id == CallAttempt.task_id)
            .join(Customer, Customer.customer_id == CallTask.customer_id)
            .where(CallAttempt.agent_id == me.id, CallTask.call_date == today)
            .order_by(CallAttempt.at.desc())
        ).all()
    local = zone("Europe/Amsterdam")
    return _page(
        request,
        "callcentre/home.html",
        {
            "me": me,
            "today": today,
            "in_hand": in_hand,
            "counts": counts,
            "states": STATES,
            "callable_now": callable_now or 0,
            "queue": [
                {
                    "offer": q.offer_code,
                    "language": q.language,
                    "attempts": q.attempts,
                    "from": as_utc(q.next_attempt_at).astimezone(local).strftime("%H:%M"),
                    "waiting": as_utc(q.next_attempt_at) > now,
                }
                for q in queue
            ],
            "mine": [
                {
                    "at": as_utc(m.at).astimezone(local).strftime("%H:%M"),
                    "outcome": OUTCOME_LABELS.get(m.outcome, m.outcome),
                    "offer": m.offer_code,
                    "customer": f"{m.first_name} {m.last_name[:1]}.",
                }
                for m in mine
            ],
        },
    )


@router.post("/next")
def next_call(request: Request, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    me = _signed_in(request)
    if me is None:
        return _redirect("/calls/login")
    if not _csrf_ok(request, csrf_token):
        return _redirect("/calls", "csrf")
    task_id = tasks.claim_next(_engine(request), me.id, now=_clock(request))
    if task_id is None:
        return _redirect("/calls", "none")
    return _redirect(f"/calls/tasks/{task_id}")


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, task_id: int) -> Response:
    me = _signed_in(request)
    if me is None:
        return _redirect("/calls/login")
    settings = _settings(request)
    with session_scope(_engine(request)) as session:
        task = session.get(CallTask, task_id)
        if task is None or task.team_id != me.team_id:
            return _not_found(request, me)  # another team's call does not exist for this agent
        mine = task.status == "claimed" and task.claimed_by == me.id
        if not mine and not me.supervisor:
            return _page(
                request,
                "callcentre/error.html",
                {"me": me, "message": "This call is not in your hands."},
                status_code=403,
            )
        customer = session.get(Customer, task.customer_id)
        try:
            offers = load_offers(settings.offers_file)
            offer = offers.by_code().get(task.offer_code)
            script = render_script(
                Renderer(settings.templates_dir), customer, offer, task.offer_code, me.display_name
            )
            script_text, script_error = script.body, None
        except (ConfigError, TemplateError) as exc:
            offer, script_text, script_error = None, None, str(exc)
        local = zone(customer.timezone)
        details = {  # what the call needs and nothing more: no address, email, balance or id
            "name": f"{customer.first_name} {customer.last_name}",
            "phone": customer.mobile or "",
            "language": {"nl": "Dutch", "en": "English"}.get(customer.language, customer.language),
            "offer": offer.product.replace("_", " ") if offer else task.offer_code,
            "offer_code": task.offer_code,
            "why": task.trigger_text or "",
            "local_time": _clock(request).astimezone(local).strftime("%H:%M"),
            "zone": str(local),
            "call_until": as_utc(task.window_end).astimezone(local).strftime("%H:%M"),
        }
        facts = {"id": task.id, "status": task.status, "attempts": task.attempts}
    return _page(
        request,
        "callcentre/task.html",
        {
            "me": me,
            "task": facts,
            "c": details,
            "mine": mine,
            "script": script_text,
            "script_error": script_error,
            "buttons": BUTTONS,
            "max_attempts": _settings(request).calls.max_attempts,
        },
    )


@router.post("/tasks/{task_id}/outcome")
def outcome(
    request: Request,
    task_id: int,
    outcome: Annotated[str, Form(max_length=40)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    me = _signed_in(request)
    if me is None:
        return _redirect("/calls/login")
    if not _csrf_ok(request, csrf_token):
        return _redirect(f"/calls/tasks/{task_id}", "csrf")
    kind, _, scope = outcome.partition(":")
    try:
        result = tasks.record_outcome(
            _engine(request), task_id, me.id, kind, scope=scope or "phone", note=note, now=_clock(request)
        )
    except tasks.CallError:
        return _redirect("/calls", "gone")
    return _redirect("/calls", "retry" if result.task_status == "open" else "saved")


# --------------------------------------------------------------------------- supervisor


@router.get("/supervisor", response_class=HTMLResponse)
def supervisor(request: Request, day: str | None = None) -> Response:
    me = _signed_in(request)
    if me is None:
        return _redirect("/calls/login")
    if not me.supervisor:
        return _page(
            request, "callcentre/error.html", {"me": me, "message": "For supervisors only."}, status_code=403
        )
    try:
        wanted = date.fromisoformat(day) if day else _today(request)
    except ValueError:
        wanted = _today(request)
    with session_scope(_engine(request)) as session:
        progress = team_progress(session, me.team_id, wanted)
    outcome_keys = list(OUTCOME_LABELS)
    chart = stacked_bars(
        [(a.display_name, a.outcomes) for a in progress.agents],
        outcome_keys,
        OUTCOME_LABELS,
        title=f"Calls per agent by outcome, {wanted.isoformat()}",
    )
    states_chart = stacked_bars(
        [("Team", progress.states)],
        list(STATES),
        {s: s.capitalize() for s in STATES},
        title="Tasks by state",
        bar=22,
    )
    return _page(
        request,
        "callcentre/supervisor.html",
        {
            "me": me,
            "day": wanted,
            "progress": progress,
            "states": STATES,
            "outcome_keys": outcome_keys,
            "labels": OUTCOME_LABELS,
            "chart": Markup(chart),  # built from numbers and escaped names only
            "states_chart": Markup(states_chart),
        },
    )
