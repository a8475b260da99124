"""The consent API for the bank's systems (online banking, the app): read a customer's switches and
history, set the global switch, a channel or a topic, and follow every change since a cursor.

Writes need an ``Idempotency-Key``: a retried request changes nothing twice. A change is one row in
the consent registry, which the dispatcher reads right before each batch: it counts at once.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach import consent, consent_feed, idempotency
from outreach.api_clients import Caller
from outreach.config import ConfigError, load_offers
from outreach.db import session_scope
from outreach.models import Customer
from outreach.web.api_auth import needs
from outreach.web.deps import engine_of, request_id_of, settings_of

router = APIRouter(prefix="/api/consent/v1", tags=["consent"])

CustomerId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[\w.-]+$")]
Topic = Annotated[str, Path(pattern=r"^[a-z0-9_-]{1,56}$", description="an offer topic, e.g. credit")]
Channel = Literal["sms", "email", "letter", "phone"]
IdemKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="unique per intended change; a retry with the same key changes nothing again",
    ),
]
_ERRORS = {
    400: {"description": "the body is not JSON"},
    401: {"description": "missing, unknown, rotated or revoked API key"},
    403: {"description": "the key lacks the scope"},
    404: {"description": "unknown customer"},
    422: {"description": "invalid request (the body says which field)"},
    429: {"description": "rate limit exceeded (see Retry-After)"},
}


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choice: Literal["opt_out", "opt_in"]
    source: str = Field(
        "api", min_length=1, max_length=64, pattern=r"^[\w.:/ -]+$", description="e.g. online_banking, app"
    )


class ChangeResult(BaseModel):
    customer_id: str
    scope: str
    choice: str
    changed: bool = Field(description="false when the latest choice in this scope was already this one")
    event_id: int | None


def _topics(request: Request) -> list[str]:
    state = request.app.state
    if getattr(state, "offer_topics", None) is None:
        try:
            offers = load_offers(settings_of(request).offers_file).offers
            state.offer_topics = sorted({o.topic for o in offers})
        except ConfigError:
            state.offer_topics = []
    return state.offer_topics


def _require_customer(session: Session, customer_id: str) -> None:
    if session.scalar(select(Customer.customer_id).where(Customer.customer_id == customer_id)) is None:
        raise HTTPException(404, f"unknown customer {customer_id}")


def _set(request: Request, caller: Caller, customer_id: str, scope: str, change: Change, key: str):
    digest = idempotency.request_digest(
        "PUT", request.url.path, json.dumps(change.model_dump(), sort_keys=True).encode()
    )
    actor = consent.Actor("api_client", caller.name, request_id_of(request))

    def work() -> tuple[int, dict]:
        known, latest = session.execute(
            select(
                select(Customer.customer_id).where(Customer.customer_id == customer_id).exists(),
                consent.latest_choice_query(customer_id, scope).scalar_subquery(),
            )
        ).one()  # one round trip: is the customer known, and the scope's latest choice
        if not known:
            raise HTTPException(404, f"unknown customer {customer_id}")
        event = None
        if latest != change.choice:
            event = consent.record(session, customer_id, scope, change.choice, change.source, actor=actor)
        result = ChangeResult(
            customer_id=customer_id,
            scope=scope,
            choice=change.choice,
            changed=event is not None,
            event_id=event.id if event else None,
        )
        return 200, result.model_dump()

    try:
        with session_scope(engine_of(request)) as session:
            status, body, replayed = idempotency.run_once(session, caller.id, key, digest, work)
    except idempotency.KeyReused as exc:
        raise HTTPException(422, str(exc)) from exc
    return JSONResponse(body, status, headers={"Idempotent-Replayed": "true"} if replayed else None)


WRITE = Depends(needs("consent:write"))
READ = Depends(needs("consent:read"))


@router.put("/customers/{customer_id}/global", response_model=ChangeResult, responses=_ERRORS)
def set_global(
    request: Request, customer_id: CustomerId, change: Change, key: IdemKey, caller: Caller = WRITE
) -> JSONResponse:
    """The global switch: opt_out stops all marketing, whatever the channels and topics say."""
    return _set(request, caller, customer_id, "all", change, key)


@router.put("/customers/{customer_id}/channels/{channel}", response_model=ChangeResult, responses=_ERRORS)
def set_channel(
    request: Request,
    customer_id: CustomerId,
    channel: Channel,
    change: Change,
    key: IdemKey,
    caller: Caller = WRITE,
) -> JSONResponse:
    """One channel: sms, email, letter or phone."""
    return _set(request, caller, customer_id, channel, change, key)


@router.put("/customers/{customer_id}/topics/{topic}", response_model=ChangeResult, responses=_ERRORS)
def set_topic(
    request: Request,
    customer_id: CustomerId,
    topic: Topic,
    change: Change,
    key: IdemKey,
    caller: Caller = WRITE,
) -> JSONResponse:
    """One topic of offers (e.g. credit, savings), on every channel."""
    return _set(request, caller, customer_id, f"topic:{topic}", change, key)


@router.get("/customers/{customer_id}", responses=_ERRORS)
def read_state(request: Request, customer_id: CustomerId, caller: Caller = READ) -> dict:
    """The global switch, each channel and each topic: latest choice, since when, allowed now."""
    with session_scope(engine_of(request)) as session:
        _require_customer(session, customer_id)
        return consent_feed.state(session, customer_id, _topics(request))


@router.get("/customers/{customer_id}/history", responses=_ERRORS)
def read_history(request: Request, customer_id: CustomerId, caller: Caller = READ) -> dict:
    """Every change, oldest first, with who made it (actor) and through which request."""
    with session_scope(engine_of(request)) as session:
        _require_customer(session, customer_id)
        events = consent.history(session, customer_id)
        return {"customer_id": customer_id, "events": [consent_feed.event_dict(e) for e in events]}


@router.get("/changes", responses={k: v for k, v in _ERRORS.items() if k != 404})
def read_changes(
    request: Request,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the last page")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    caller: Caller = READ,
) -> dict:
    """Every change by any path (API, pages, e-mail, SMS, call centre, imports), in a stable order.
    Store ``next_cursor`` and ask again with it; an empty page means nothing new yet."""
    limit = min(limit, settings_of(request).consent.changes_page_max)
    try:
        with session_scope(engine_of(request)) as session:
            events, next_cursor = consent_feed.changes(session, cursor, limit)
            return {"changes": [consent_feed.event_dict(e) for e in events], "next_cursor": next_cursor}
    except consent_feed.BadCursor as exc:
        raise HTTPException(422, str(exc)) from exc
