"""Provider callbacks: Twilio status and inbound SMS, SendGrid events. Verified first, then recorded.

Anything not signed by the provider gets 403 before a byte of it is stored. A storage failure
gives 500, so the provider retries (Twilio and SendGrid both do) and nothing is lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Header, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from channels import sendgrid_webhooks, twilio_webhooks
from channels.errors import ConfigurationError
from channels.twilio_webhooks import FormParams
from outreach import inbound, tracking
from outreach.db import session_scope
from outreach.web.deps import engine_of, settings_of
from outreach.web.metrics import note_webhook_outcome

log = logging.getLogger("outreach.web.webhooks")
router = APIRouter(tags=["webhooks"])

_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "MessageSid": {"type": "string"},
                        "MessageStatus": {"type": "string"},
                        "ErrorCode": {"type": "string"},
                        "From": {"type": "string"},
                        "To": {"type": "string"},
                        "Body": {"type": "string"},
                        "OptOutType": {"type": "string"},
                    },
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    }
}
_EVENTS = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    }
}
_REFUSALS = {
    400: {"description": "signed, but not a payload this webhook understands"},
    403: {"description": "signature missing, wrong or stale: nothing was recorded"},
    413: {"description": "request body over the size cap"},
    503: {"description": "the verification secret for this provider is not configured"},
}


def _public_url(request: Request) -> str:
    """The URL the provider called, as it signed it: the configured public base, not our Host header."""
    url = settings_of(request).public_url.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def _twilio_params(
    request: Request, signature: str | None, signature_settings: str | None
) -> FormParams:
    token = settings_of(request).twilio_auth_token
    if token is None or not token.get_secret_value():
        raise HTTPException(503, "TWILIO_AUTH_TOKEN is not configured")
    body = await request.body()
    try:
        params = FormParams.parse(body)
    except twilio_webhooks.WebhookPayloadError:
        params = None
    if params is None or not twilio_webhooks.verify(
        token.get_secret_value(), _public_url(request), params, signature, signature_settings
    ):
        log.warning("twilio request refused: bad signature", extra={"path": request.url.path})
        raise HTTPException(403, "X-Twilio-Signature missing or wrong")
    return params


def _ingest(request: Request, events: list) -> tracking.IngestResult:
    with session_scope(engine_of(request)) as session:
        result = tracking.ingest(session, events)
    note_webhook_outcome(request, accepted=result.received - result.duplicates, duplicates=result.duplicates)
    return result


@router.post(
    "/webhooks/twilio/status",
    status_code=204,
    response_class=Response,
    responses=_REFUSALS,
    openapi_extra=_FORM,
    summary="Twilio message status callback",
)
async def twilio_status(
    request: Request,
    x_twilio_signature: str | None = Header(None),
    x_twilio_webhooks_signature_settings: str | None = Header(None),
) -> Response:
    params = await _twilio_params(request, x_twilio_signature, x_twilio_webhooks_signature_settings)
    try:
        event = twilio_webhooks.parse_status(params, _public_url(request), datetime.now(UTC))
    except twilio_webhooks.WebhookPayloadError as exc:
        raise HTTPException(400, str(exc)) from exc
    result = await run_in_threadpool(_ingest, request, [event])
    log.info(
        "twilio status",
        extra={
            "status": event.metadata.get("status"),
            "stored": result.stored,
            "matched": result.matched,
            "moved": result.moved,
            "duplicates": result.duplicates,
        },
    )
    return Response(status_code=204)


@router.post(
    "/webhooks/twilio/inbound",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "TwiML answer"}, **_REFUSALS},
    openapi_extra=_FORM,
    summary="Twilio inbound SMS (STOP, START, HELP, replies)",
)
async def twilio_inbound(
    request: Request,
    x_twilio_signature: str | None = Header(None),
    x_twilio_webhooks_signature_settings: str | None = Header(None),
) -> Response:
    params = await _twilio_params(request, x_twilio_signature, x_twilio_webhooks_signature_settings)
    try:
        sms = twilio_webhooks.parse_inbound(params, datetime.now(UTC))
    except twilio_webhooks.WebhookPayloadError as exc:
        raise HTTPException(400, str(exc)) from exc

    def handle() -> inbound.InboundOutcome:
        with session_scope(engine_of(request)) as session:
            return inbound.handle_sms(session, sms, settings_of(request))

    outcome = await run_in_threadpool(handle)
    note_webhook_outcome(request, accepted=0 if outcome.duplicate else 1, duplicates=int(outcome.duplicate))
    log.info(
        "twilio inbound",
        extra={
            "intent": str(outcome.intent),
            "customers": len(outcome.customers),
            "consent_changes": outcome.consent_changes,
            "duplicate": outcome.duplicate,
        },
    )
    return Response(twilio_webhooks.twiml(outcome.reply), media_type="application/xml")


_verifiers: dict[tuple[str, int], sendgrid_webhooks.Verifier] = {}


def _sendgrid_verifier(request: Request) -> sendgrid_webhooks.Verifier:
    settings = settings_of(request)
    key = settings.sendgrid_webhook_public_key
    if not key:
        raise HTTPException(503, "OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY is not configured")
    cache_key = (key, settings.sendgrid_webhook_tolerance_seconds)
    if cache_key not in _verifiers:
        try:
            _verifiers[cache_key] = sendgrid_webhooks.Verifier(
                key, settings.sendgrid_webhook_tolerance_seconds
            )
        except ConfigurationError as exc:
            log.error("sendgrid public key unusable: %s", exc)
            raise HTTPException(503, str(exc)) from exc
    return _verifiers[cache_key]


@router.post(
    "/webhooks/sendgrid/events",
    status_code=204,
    response_class=Response,
    responses=_REFUSALS,
    openapi_extra=_EVENTS,
    summary="SendGrid signed event webhook",
)
async def sendgrid_events(
    request: Request,
    x_twilio_email_event_webhook_signature: str | None = Header(None),
    x_twilio_email_event_webhook_timestamp: str | None = Header(None),
) -> Response:
    verifier = _sendgrid_verifier(request)
    body = await request.body()
    try:
        verifier.verify(body, x_twilio_email_event_webhook_signature, x_twilio_email_event_webhook_timestamp)
    except sendgrid_webhooks.SignatureRejected as exc:
        log.warning("sendgrid request refused: %s", exc, extra={"path": request.url.path})
        raise HTTPException(403, f"event webhook signature rejected: {exc}") from exc
    try:
        events = sendgrid_webhooks.parse_events(body)
    except sendgrid_webhooks.WebhookPayloadError as exc:
        raise HTTPException(400, str(exc)) from exc
    result = await run_in_threadpool(_ingest, request, events)
    log.info(
        "sendgrid events",
        extra={
            "received": result.received,
            "stored": result.stored,
            "matched": result.matched,
            "unmatched": result.unmatched,
            "moved": result.moved,
            "duplicates": result.duplicates,
            "consent_changes": result.consent_changes,
        },
    )
    return Response(status_code=204)
