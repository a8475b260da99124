"""Unsubscribe links: a GET page with a confirm button, and the RFC 8058 one-click POST.

GET never changes anything (mail scanners fetch links); only POST records the opt-out.
"""

from __future__ import annotations

import logging
from html import escape

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from outreach import consent, unsubscribe
from outreach.config import ConfigError
from outreach.db import session_scope
from outreach.web.deps import engine_of, request_id_of, settings_of

log = logging.getLogger("outreach.web.unsubscribe")
router = APIRouter(tags=["unsubscribe"])

SCOPE_NAMES = {
    "email": "e-mail",
    "sms": "sms",
    "letter": "post",
    "phone": "telefoon",
    "all": "alle berichten",
}
TOKEN = Path(..., max_length=unsubscribe.MAX_TOKEN_LENGTH, description="the signed token from the link")
_PAGES = {
    200: {"content": {"text/html": {}}, "description": "confirmation page"},
    403: {"content": {"text/html": {}}, "description": "not a link we sent"},
    410: {"content": {"text/html": {}}, "description": "the link has expired"},
    413: {"description": "request body over the size cap"},
    503: {"content": {"text/html": {}}, "description": "unsubscribe secret not configured"},
}


# the one step to every channel, offered beside (and after) the channel's own unsubscribe
ALL_MARKETING_FORM = (
    '<form method="post"><input type="hidden" name="everything" value="yes">'
    "<p>Helemaal geen aanbiedingen meer, via geen enkel kanaal? / No offers at all, by any channel?</p>"
    '<button type="submit">Alles afmelden / Stop all offers</button></form>'
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1.1rem;padding:.6rem 1.4rem}}</style></head>
<body><h1>{escape(title)}</h1>{body}</body></html>"""
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _check(request: Request, token: str) -> tuple[str, str] | HTMLResponse:
    try:
        return unsubscribe.verify(token, settings_of(request))
    except unsubscribe.ExpiredToken:
        return _page(
            "Link verlopen / Link expired",
            "<p>Deze afmeldlink is verlopen. Meld u af via de app of bel ons.</p>"
            "<p>This link has expired. Please unsubscribe in the app or call us.</p>",
            410,
        )
    except unsubscribe.InvalidToken:
        return _page(
            "Ongeldige link / Invalid link", "<p>Deze link is niet geldig. This link is not valid.</p>", 403
        )
    except ConfigError:
        log.error("unsubscribe link used but OUTREACH_UNSUBSCRIBE_SECRET is not set")
        return _page("Tijdelijk niet beschikbaar", "<p>Probeer het later opnieuw. Please try later.</p>", 503)


@router.get("/unsubscribe", response_class=HTMLResponse, summary="General opt-out page (no personal link)")
def general_page() -> HTMLResponse:
    """Where links point when no personal token could be made (dev runs without a secret)."""
    return _page(
        "Afmelden / Unsubscribe",
        "<p>Afmelden voor aanbiedingen kan in de app, via internetbankieren of telefonisch. "
        "Op een sms kunt u STOP antwoorden.</p>"
        "<p>To stop offers, use the app or online banking, or call us. Reply STOP to a text.</p>",
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, responses=_PAGES, summary="Confirm page")
def unsubscribe_page(request: Request, token: str = TOKEN) -> HTMLResponse:
    checked = _check(request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    what = escape(SCOPE_NAMES.get(checked[1], checked[1]))
    return _page(
        "Afmelden / Unsubscribe",
        f"<p>Wilt u geen aanbiedingen meer ontvangen per {what}?</p>"
        "<p>Stop receiving offers by this channel?</p>"
        '<form method="post"><input type="hidden" name="confirm" value="yes">'
        '<button type="submit">Afmelden / Unsubscribe</button></form>' + ALL_MARKETING_FORM,
    )


@router.post(
    "/unsubscribe/{token}", response_class=HTMLResponse, responses=_PAGES, summary="Unsubscribe (RFC 8058)"
)
async def unsubscribe_post(request: Request, token: str = TOKEN) -> HTMLResponse:
    checked = _check(request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    customer_id, scope = checked
    body = await request.body()
    # RFC 8058: the mail client posts List-Unsubscribe=One-Click; our page posts confirm=yes, or
    # everything=yes for the one step that stops all marketing (the link's channel or not)
    source = "email:list-unsubscribe" if b"One-Click" in body else "web:unsubscribe-page"
    if b"everything=yes" in body and source == "web:unsubscribe-page":
        scope = "all"

    actor = consent.Actor("customer", source.split(":", 1)[1], request_id_of(request))

    def record() -> bool:
        with session_scope(engine_of(request)) as session:
            if consent.current(session, customer_id).choices.get(scope) == "opt_out":
                return False
            consent.record(session, customer_id, scope, "opt_out", source, actor=actor)
            return True

    recorded = await run_in_threadpool(record)
    log.info("unsubscribe", extra={"scope": scope, "source": source, "recorded": recorded})
    if scope == "all":
        return _page(
            "U bent afgemeld / Unsubscribed",
            "<p>U ontvangt van ons geen aanbiedingen meer, via geen enkel kanaal.</p>"
            "<p>You will not receive offers from us any more, by any channel.</p>",
        )
    what = escape(SCOPE_NAMES.get(scope, scope))
    return _page(
        "U bent afgemeld / Unsubscribed",
        f"<p>U ontvangt van ons geen aanbiedingen meer per {what}.</p>"
        "<p>You will not receive offers from us by this channel any more.</p>" + ALL_MARKETING_FORM,
    )
