"""SendGrid Inbound Parse: mails to the bank's objection address, posted as multipart forms to a
URL that carries a secret (SendGrid signs nothing here; the secret path is what it supports)."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Path, Request
from starlette.concurrency import run_in_threadpool

from outreach import objections
from outreach.db import session_scope
from outreach.objection_reply import send_confirmation
from outreach.web.deps import engine_of, settings_of

log = logging.getLogger("outreach.objections")
router = APIRouter(tags=["objections"])
TEXT_FIELDS = ("from", "subject", "SPF", "spf", "dkim", "headers")


@router.post(
    "/inbound/sendgrid/{secret}",
    summary="SendGrid Inbound Parse: an e-mailed objection",
    responses={403: {"description": "wrong secret"}, 404: {"description": "no secret configured"}},
)
async def inbound_parse(request: Request, secret: str = Path(..., max_length=200)) -> dict:
    settings = settings_of(request)
    expected = settings.consent.inbound_parse_secret
    if expected is None or not expected.get_secret_value():
        log.warning("inbound parse post refused: OUTREACH_CONSENT__INBOUND_PARSE_SECRET is not set")
        raise HTTPException(404, "inbound parse is not configured")
    if not hmac.compare_digest(secret.encode(), expected.get_secret_value().encode()):
        raise HTTPException(403, "not our inbound parse URL")
    form = await request.form()
    fields = {k: v for k in TEXT_FIELDS if isinstance(v := form.get(k), str)}
    mail = objections.InboundMail.from_form(fields)

    def store() -> objections.Received:
        with session_scope(engine_of(request)) as session:
            return objections.receive(session, mail)

    received = await run_in_threadpool(store)
    reply = None
    if received.status == "applied" and received.id is not None:
        reply = await run_in_threadpool(send_confirmation, engine_of(request), settings, received.id)
    # no addresses, names or subjects in the log: the id leads a reviewer to the stored mail
    log.info("objection mail %s: %s (%s), reply %s", received.id, received.status, received.reason, reply)
    return {"status": received.status, "reason": received.reason}
