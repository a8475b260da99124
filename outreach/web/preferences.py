"""The preference centre: a customer reached by a link (e-mail, SMS) or a typed code (letter)
turns off all marketing, a channel or a topic, in Dutch or English, without logging in.

Only objections are offered here: opting back in needs the customer authenticated by the bank,
so it goes through the consent API (online banking, the app). The code in the URL is the only
key: pages are never cached, send no referrer and cannot be framed.
"""

from __future__ import annotations

import logging
from pathlib import Path as FilePath

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from outreach import consent, preferences
from outreach.config import ConfigError, load_offers
from outreach.db import session_scope
from outreach.web.deps import engine_of, request_id_of, settings_of

log = logging.getLogger("outreach.web.preferences")
router = APIRouter(tags=["preference centre"])
templates = Jinja2Templates(directory=str(FilePath(__file__).parent / "templates"))
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CODE = Path(..., max_length=preferences.MAX_CODE_LENGTH + 40, description="the code from a message")
LANG = Query(None, pattern="^(nl|en)$")
CHANNELS = {
    "nl": {"email": "e-mail", "sms": "sms", "letter": "post", "phone": "telefoon"},
    "en": {"email": "e-mail", "sms": "text messages", "letter": "post", "phone": "phone calls"},
}
# topics as customers read them; a topic not listed here shows its own name
TOPIC_NAMES = {
    "nl": {
        "credit": "lenen en creditcards",
        "insurance": "verzekeringen",
        "investing": "beleggen",
        "savings": "sparen",
    },
    "en": {"credit": "loans and credit cards", "investing": "investing", "savings": "savings"},
}
TEXT = {
    "nl": {
        "title": "Uw voorkeuren voor aanbiedingen",
        "language": "Taal",
        "intro": "Kies waarover en hoe u geen aanbiedingen meer wilt ontvangen. Dit gaat direct in.",
        "global_legend": "Alles in één keer",
        "global_label": "Geen enkele aanbieding meer, via geen enkel kanaal",
        "channels_legend": "Per kanaal",
        "topics_legend": "Per onderwerp",
        "stop": "Geen aanbiedingen meer per",
        "stop_topic": "Geen aanbiedingen meer over",
        "already_off": "afgemeld",
        "save": "Afmelden voor wat ik heb aangevinkt",
        "saved": "Opgeslagen. Dit geldt vanaf nu.",
        "all_off": "U ontvangt van ons geen aanbiedingen meer, via geen enkel kanaal.",
        "opt_in_elsewhere": "Wilt u weer aanbiedingen ontvangen? Dat kan in de app of via internetbankieren.",
        "enter_code_intro": "Staat er een code in onze brief? Vul die hier in.",
        "code_label": "Code uit de brief",
        "code_hint": "Hoofdletters, spaties en streepjes maken niet uit.",
        "open": "Open mijn voorkeuren",
        "bad_code": "Deze code kennen we niet. Controleer de code in de brief.",
        "nothing": "U heeft niets aangevinkt.",
    },
    "en": {
        "title": "Your preferences for offers",
        "language": "Language",
        "intro": "Choose what you no longer want offers about, and how. It takes effect at once.",
        "global_legend": "Everything at once",
        "global_label": "No offers at all, by any channel",
        "channels_legend": "By channel",
        "topics_legend": "By topic",
        "stop": "No more offers by",
        "stop_topic": "No more offers about",
        "already_off": "turned off",
        "save": "Turn off what I ticked",
        "saved": "Saved. This applies from now on.",
        "all_off": "You will not receive offers from us any more, by any channel.",
        "opt_in_elsewhere": "Want offers again? Use the app or online banking.",
        "enter_code_intro": "Is there a code in our letter? Enter it here.",
        "code_label": "Code from the letter",
        "code_hint": "Capitals, spaces and dashes do not matter.",
        "open": "Open my preferences",
        "bad_code": "We do not know this code. Please check the code in the letter.",
        "nothing": "You did not tick anything.",
    },
}
STYLE = """
:root { color-scheme: light; }
body { margin:0; font:17px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1d2733;
  background:#fff; }
main { max-width:36rem; margin:2rem auto; padding:0 1rem; }
h1 { font-size:1.5rem; }
fieldset { border:1px solid #8a96a3; border-radius:8px; margin:0 0 1rem; padding:.5rem 1rem 1rem; }
legend { font-weight:600; padding:0 .3rem; }
.choice { display:flex; align-items:center; gap:.6rem; margin:.5rem 0; }
.choice input { width:1.3rem; height:1.3rem; }
.strong label { font-weight:600; }
.off { color:#4a5562; }
button { font:inherit; background:#0b5394; color:#fff; border:2px solid #0b5394; border-radius:6px;
  padding:.6rem 1.2rem; cursor:pointer; }
input[type=text] { font:inherit; padding:.4rem; border:1px solid #5f6b7a; border-radius:6px; width:100%; }
a { color:#0b5394; }
:focus-visible { outline:3px solid #b35c00; outline-offset:2px; }
.hint { color:#4a5562; }
.notice { background:#e6f4ea; border:1px solid #1e7b34; padding:.5rem .8rem; border-radius:6px; }
.error { background:#fdecea; border:1px solid #b3261e; padding:.5rem .8rem; border-radius:6px; }
.lang { text-align:right; }
"""


def _lang(request: Request, lang: str | None) -> str:
    if lang:
        return lang
    accepted = request.headers.get("accept-language", "").lower()
    return "en" if accepted.startswith("en") else "nl"


def _topics(request: Request) -> list[str]:
    try:
        return sorted({o.topic for o in load_offers(settings_of(request).offers_file).offers})
    except ConfigError:
        return []


def _render(request: Request, lang: str, status: int = 200, **context) -> HTMLResponse:
    values = {"lang": lang, "t": TEXT[lang], "code": None, "saved": False, "error": None} | context
    return templates.TemplateResponse(request, "preferences/page.html", values, status, headers=HEADERS)


@router.get("/p/style.css", include_in_schema=False)
def style() -> Response:
    return Response(STYLE, media_type="text/css", headers={"Cache-Control": "max-age=3600"} | HEADERS)


_PAGES = {
    200: {"content": {"text/html": {}}, "description": "the page"},
    404: {"content": {"text/html": {}}, "description": "not a code we issued (the page says so)"},
}


@router.get(
    "/p",
    response_class=HTMLResponse,
    responses=_PAGES | {303: {"description": "a valid code: on to its page"}},
    summary="Preference centre: enter a letter's code",
)
def enter_code(request: Request, code: str | None = Query(None, max_length=160), lang: str | None = LANG):
    lang = _lang(request, lang)
    if code:
        try:
            preferences.read_code(settings_of(request), code)
        except preferences.InvalidCode:
            return _render(request, lang, 404, error=TEXT[lang]["bad_code"])
        cleaned = "".join(ch for ch in code if ch.isalnum()).lower()
        return RedirectResponse(f"/p/{cleaned}?lang={lang}", 303, headers=HEADERS)
    return _render(request, lang)


def _customer(request: Request, code: str) -> str | None:
    try:
        return preferences.read_code(settings_of(request), code)
    except (preferences.InvalidCode, ConfigError):
        return None


def _page(request: Request, code: str, customer_id: str, lang: str, **extra) -> HTMLResponse:
    with session_scope(engine_of(request)) as session:
        state = consent.current(session, customer_id)
    off = {scope for scope, choice in state.choices.items() if choice == "opt_out"}
    channels = [(s, label, s in off) for s, label in CHANNELS[lang].items()]
    names = TOPIC_NAMES[lang]
    topics = [
        (f"topic:{t}", names.get(t, t.replace("_", " ")), f"topic:{t}" in off) for t in _topics(request)
    ]
    return _render(
        request, lang, code=code, channels=channels, topics=topics, everything_off="all" in off, **extra
    )


@router.get("/p/{code}", response_class=HTMLResponse, responses=_PAGES, summary="Preference centre page")
def preference_page(request: Request, code: str = CODE, lang: str | None = LANG) -> HTMLResponse:
    lang = _lang(request, lang)
    customer_id = _customer(request, code)
    if customer_id is None:
        return _render(request, lang, 404, error=TEXT[lang]["bad_code"])
    return _page(request, code, customer_id, lang)


@router.post(
    "/p/{code}", response_class=HTMLResponse, responses=_PAGES, summary="Preference centre: record objections"
)
async def preference_post(request: Request, code: str = CODE, lang: str | None = LANG) -> HTMLResponse:
    lang = _lang(request, lang)
    customer_id = _customer(request, code)
    if customer_id is None:
        return _render(request, lang, 404, error=TEXT[lang]["bad_code"])
    form = await request.form()
    allowed = {"all", *CHANNELS["nl"], *(f"topic:{t}" for t in _topics(request))}
    chosen = sorted({s for s in form.getlist("scope") if isinstance(s, str) and s in allowed})
    if not chosen:
        return _page(request, code, customer_id, lang, error=TEXT[lang]["nothing"])
    actor = consent.Actor("customer", "preference-centre", request_id_of(request))

    def record() -> int:
        with session_scope(engine_of(request)) as session:
            state = consent.current(session, customer_id).choices
            todo = [s for s in chosen if state.get(s) != "opt_out"]
            for scope in todo:
                consent.record(session, customer_id, scope, "opt_out", "web:preference-centre", actor=actor)
            return len(todo)

    recorded = await run_in_threadpool(record)
    log.info("preference centre: %d objection(s) recorded", recorded)
    return _page(request, code, customer_id, lang, saved=True)
