"""The web service: provider webhooks, unsubscribe pages and the call-centre pages."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from outreach.config import Settings, get_settings
from outreach.web import callcentre, consent_api, inbound_mail, preferences, unsubscribe, webhooks
from outreach.web.deps import engine_of
from outreach.web.headers import SecurityHeaders
from outreach.web.limits import BodySizeLimit
from outreach.web.metrics import Metrics, exposition


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Outreach", version="0.1.0")
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(Metrics)  # outside the size cap: its 413s are counted and timed too
    app.add_middleware(SecurityHeaders)  # added last: outermost, so the 413 pages carry them too

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus text format (docs/operations.md); counts only, no personal data."""
        return exposition(lambda: engine_of(request), settings.metrics_ledger_days)

    # Routers register here (one line each): webhooks, unsubscribe, call centre, consent API,
    # e-mailed objections, preference centre.
    app.include_router(webhooks.router)
    app.include_router(unsubscribe.router)
    app.include_router(callcentre.router)
    app.include_router(consent_api.router)
    app.include_router(inbound_mail.router)
    app.include_router(preferences.router)
    return app
