"""Provider callbacks through one route, ``/webhooks/{provider}/{kind}``: verified, parsed by the
provider's parser (``channels.webhooks``), then handed to the core by kind.

The URLs configured at the providers (Twilio status and inbound, SendGrid events) are instances of
that route, registered with their request schemas for the OpenAPI document. Anything not signed
by the provider gets 403 before a byte of it is stored; a signed body of the wrong shape 400. A
storage failure gives 500, so the provider retries (Twilio and SendGrid both do) and nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from channels import sendgrid_webhooks, twilio_webhooks
from channels.errors import ConfigurationError, SignatureRejected, WebhookPayloadError
from channels.events import DeliveryEvent
from channels.twilio_webhooks import InboundSMS
from channels.webhooks import SendGridWebhooks, TwilioWebhooks, WebhookParser, WebhookRequest
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


_verifiers: dict[tuple[str, int], sendgrid_webhooks.Verifier] = {}


def _sendgrid_verifier(request: Request) -> sendgrid_webhooks.Verifier:
    settings = settings_of(request)
    key = settings.sendgrid.webhook_public_key
    if not key:
        raise HTTPException(503, "OUTREACH_SENDGRID_WEBHOOK_PUBLIC_KEY is not configured")
    cache_key = (key, settings.sendgrid.webhook_tolerance_seconds)
    if cache_key not in _verifiers:
        try:
            _verifiers[cache_key] = sendgrid_webhooks.Verifier(
                key, settings.sendgrid.webhook_tolerance_seconds
            )
        except ConfigurationError as exc:
            log.error("sendgrid public key unusable: %s", exc)
            raise HTTPException(503, str(exc)) from exc
    return _verifiers[cache_key]


def _parser(request: Request, provider: str) -> WebhookParser:
    """The provider's parser with its verification secret from the settings (503 when unset)."""
    if provider == "twilio":
        token = settings_of(request).twilio.auth_token
        if token is None or not token.get_secret_value():
            raise HTTPException(503, "TWILIO_AUTH_TOKEN is not configured")
        return TwilioWebhooks(token.get_secret_value())
    if provider == "sendgrid":
        return SendGridWebhooks(_sendgrid_verifier(request))
    raise HTTPException(404, f"no webhooks for provider {provider!r}")


def _ingest(request: Request, events: list[DeliveryEvent]) -> tracking.IngestResult:
    with session_scope(engine_of(request)) as session:
        result = tracking.ingest(session, events)
    note_webhook_outcome(request, accepted=result.received - result.duplicates, duplicates=result.duplicates)
    return result


async def _delivery_events(request: Request, provider: str, events: list[DeliveryEvent]) -> Response:
    result = await run_in_threadpool(_ingest, request, events)
    extra = {
        "received": result.received,
        "stored": result.stored,
        "matched": result.matched,
        "unmatched": result.unmatched,
        "moved": result.moved,
        "duplicates": result.duplicates,
        "consent_changes": result.consent_changes,
    }
    if provider == "twilio":
        extra = {"status": events[0].metadata.get("status"), **extra}
    log.info(f"{provider} {'status' if provider == 'twilio' else 'events'}", extra=extra)
    return Response(status_code=204)


async def _inbound_sms(request: Request, provider: str, sms: InboundSMS) -> Response:
    def handle() -> inbound.InboundOutcome:
        with session_scope(engine_of(request)) as session:
            return inbound.handle_sms(session, sms, settings_of(request))

    outcome = await run_in_threadpool(handle)
    note_webhook_outcome(request, accepted=0 if outcome.duplicate else 1, duplicates=int(outcome.duplicate))
    log.info(
        f"{provider} inbound",
        extra={
            "intent": str(outcome.intent),
            "customers": len(outcome.customers),
            "consent_changes": outcome.consent_changes,
            "duplicate": outcome.duplicate,
        },
    )
    return Response(twilio_webhooks.twiml(outcome.reply), media_type="application/xml")


# what the core does with each kind of callback
HANDLERS: dict[tuple[str, str], Callable[[Request, str, object], Awaitable[Response]]] = {
    ("twilio", "status"): _delivery_events,
    ("twilio", "inbound"): _inbound_sms,
    ("sendgrid", "events"): _delivery_events,
}


async def receive(request: Request, provider: str, kind: str) -> Response:
    """Verify, parse and record one provider callback."""
    handler = HANDLERS.get((provider, kind))
    if handler is None:
        raise HTTPException(404, f"no webhook {provider}/{kind}")
    parser = _parser(request, provider)
    body = await request.body()
    try:
        parsed = parser.parse(kind, WebhookRequest(body, request.headers, _public_url(request)))
    except SignatureRejected as exc:
        log.warning("%s request refused: %s", provider, exc, extra={"path": request.url.path})
        raise HTTPException(403, f"signature rejected: {exc}") from exc
    except WebhookPayloadError as exc:
        raise HTTPException(400, str(exc)) from exc
    return await handler(request, provider, parsed)


def _instance(provider: str, kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await receive(request, provider, kind)

    endpoint.__name__ = f"{provider}_{kind}"
    return endpoint


# the URLs the providers are configured with: instances of the one route, with their schemas
INSTANCES = (
    ("twilio", "status", 204, _FORM, "Twilio message status callback", _REFUSALS),
    (
        "twilio",
        "inbound",
        200,
        _FORM,
        "Twilio inbound SMS (STOP, START, HELP, replies)",
        {200: {"content": {"application/xml": {}}, "description": "TwiML answer"}, **_REFUSALS},
    ),
    ("sendgrid", "events", 204, _EVENTS, "SendGrid signed event webhook", _REFUSALS),
)
for _provider, _kind, _status, _schema, _summary, _responses in INSTANCES:
    router.add_api_route(
        f"/webhooks/{_provider}/{_kind}",
        _instance(_provider, _kind),
        methods=["POST"],
        status_code=_status,
        response_class=Response,
        responses=_responses,
        openapi_extra=_schema,
        summary=_summary,
    )


@router.post("/webhooks/{provider}/{kind}", include_in_schema=False)
async def webhook(request: Request, provider: str, kind: str) -> Response:
    """Any other provider's callbacks, once a parser and a handler are registered for them."""
    return await receive(request, provider, kind)
