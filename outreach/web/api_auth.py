"""API clients on the wire: ``Authorization: Bearer <key>``, scopes, and a rate limit per client.

The limit is a sliding window per client (the ``limits`` library, in this process's memory).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from outreach import api_clients
from outreach.api_clients import Caller
from outreach.db import session_scope
from outreach.web.deps import engine_of, settings_of

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `outreach api-clients create`: `Authorization: Bearer ock_...`",
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="outreach-consent"'}


def _limiter(request: Request) -> SlidingWindowCounterRateLimiter:
    state = request.app.state
    if getattr(state, "api_limiter", None) is None:
        state.api_limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
    return state.api_limiter


def authenticated(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing API key: send Authorization: Bearer <key>", CHALLENGE)
    if len(credentials.credentials) > 128:
        raise HTTPException(401, "unknown, rotated or revoked API key", CHALLENGE)
    with session_scope(engine_of(request)) as session:
        caller = api_clients.authenticate(session, credentials.credentials)
    if caller is None:
        raise HTTPException(401, "unknown, rotated or revoked API key", CHALLENGE)
    rate = parse(caller.rate_limit or settings_of(request).consent.api_rate_limit)
    limiter = _limiter(request)
    if not limiter.hit(rate, str(caller.id)):
        reset = limiter.get_window_stats(rate, str(caller.id)).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise HTTPException(429, f"rate limit {rate} exceeded for this client", {"Retry-After": str(wait)})
    return caller


def needs(scope: str) -> Callable[..., Caller]:
    """A dependency: the authenticated caller, if its key carries ``scope`` (else 403)."""

    def check(caller: Caller = Depends(authenticated)) -> Caller:
        if scope not in caller.scopes:
            raise HTTPException(403, f"this API key lacks the scope {scope}")
        return caller

    return check
