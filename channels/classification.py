"""Which provider answers may be retried: one table per provider, read by both adapters.

The rule underneath: retry only when the provider cannot have acted on the request.

* 429 and 503 mean the request was refused before processing ("never processed and always safe
  to retry", Twilio errors/20429; 503 is the HTTP "cannot handle the request now"): TransientError,
  retried with backoff, honouring Retry-After.
* A connection that failed before the request was written (refused, DNS, connect timeout) cannot
  have sent anything: TransientError.
* 500, 502, 504 and any other 5xx on a POST may have been processed ("sending an SMS is not
  idempotent ... customer may receive multiple messages", Twilio errors/20500): OutcomeUnknown.
  So is a read timeout or a connection reset after the request left. Those are reconciled against
  the provider, never resent blindly: marketing prefers a missed message to a duplicate.
* A 4xx with a known code is permanent (invalid or unsubscribed recipient, bad content) and is
  recorded with the provider's code and message. 21610 (the recipient texted STOP) is a
  RecipientRejected with ``opted_out=True`` so the core can record the SMS opt-out.
* 401/403 mean our credentials are wrong: ConfigurationError, for the whole channel.
* A 4xx with an *unknown* code is treated as transient with the bounded retry budget. Twilio
  renumbers its codes without notice (changelog 2024-07-10), so a new code must not fail messages
  for good on its first sighting; and a 4xx proves the provider created nothing, so a retry cannot
  duplicate. After the budget it reaches the core as TransientError (slot given back, counted).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from channels.errors import (
    ChannelError,
    ConfigurationError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RecipientRejected,
    TransientError,
)


class Verdict(StrEnum):
    TRANSIENT = "transient"  # refused before processing: retry
    RATE_LIMITED = "rate_limited"  # transient, wait Retry-After first
    PERMANENT = "permanent"  # this message will never go: record, no retry
    REJECTED = "rejected"  # the recipient cannot receive this channel
    OPTED_OUT = "opted_out"  # the recipient opted out at the provider
    CONFIGURATION = "configuration"  # our account or settings are wrong: stop the channel
    UNKNOWN = "unknown"  # may have been processed: reconcile, never resend blindly


@dataclass(frozen=True, slots=True)
class Rule:
    verdict: Verdict
    meaning: str


# Twilio error codes (twilio.com/docs/api/errors). 30xxx codes arrive in status callbacks, not
# at creation; they are here so webhook handling classifies them the same way.
TWILIO_CODES: dict[int, Rule] = {
    20003: Rule(Verdict.CONFIGURATION, "authentication failed"),
    20404: Rule(Verdict.CONFIGURATION, "resource not found (wrong account SID or API URL)"),
    20429: Rule(Verdict.RATE_LIMITED, "too many requests"),
    20500: Rule(Verdict.UNKNOWN, "internal server error: the message may have been created"),
    20503: Rule(Verdict.TRANSIENT, "service unavailable"),
    21211: Rule(Verdict.REJECTED, "invalid 'To' phone number"),
    21214: Rule(Verdict.REJECTED, "'To' phone number cannot be reached"),
    21408: Rule(Verdict.PERMANENT, "permission to send to this region is not enabled"),
    21602: Rule(Verdict.PERMANENT, "message body is required"),
    21606: Rule(Verdict.CONFIGURATION, "the 'From' number cannot send this message"),
    21610: Rule(Verdict.OPTED_OUT, "the recipient replied STOP"),
    21611: Rule(Verdict.TRANSIENT, "the sender's queue is full"),
    21612: Rule(Verdict.REJECTED, "cannot route to this number"),
    21614: Rule(Verdict.REJECTED, "'To' number is not a valid mobile number"),
    21617: Rule(Verdict.PERMANENT, "message body exceeds 1600 characters"),
    21635: Rule(Verdict.REJECTED, "'To' number is a landline"),
    30001: Rule(Verdict.TRANSIENT, "queue overflow"),
    30003: Rule(Verdict.TRANSIENT, "unreachable destination handset"),
    30004: Rule(Verdict.REJECTED, "message blocked by the recipient"),
    30005: Rule(Verdict.REJECTED, "unknown destination handset"),
    30006: Rule(Verdict.REJECTED, "landline or unreachable carrier"),
    30007: Rule(Verdict.PERMANENT, "message filtered by the carrier"),
    30008: Rule(Verdict.TRANSIENT, "unknown error"),
    30450: Rule(Verdict.TRANSIENT, "blocked by SMS pumping protection (15-30 min)"),
    30500: Rule(Verdict.TRANSIENT, "internal error"),
}

# HTTP status alone, when the body carries no code we know.
HTTP_STATUS: dict[int, Rule] = {
    401: Rule(Verdict.CONFIGURATION, "unauthorised: check the credentials"),
    403: Rule(Verdict.CONFIGURATION, "forbidden: the account may not do this"),
    413: Rule(Verdict.PERMANENT, "payload too large"),
    429: Rule(Verdict.RATE_LIMITED, "too many requests"),
    503: Rule(Verdict.TRANSIENT, "service unavailable: not processed"),
}


def rule_for(status: int | None, code: int | None = None, codes: dict[int, Rule] | None = None) -> Rule:
    """The rule for a provider answer: its code first, then its HTTP status, then the defaults."""
    if code is not None and codes and code in codes:
        return codes[code]
    if status in HTTP_STATUS:
        return HTTP_STATUS[status]
    if status is not None and status >= 500:
        return Rule(Verdict.UNKNOWN, f"HTTP {status}: may have been processed")
    if status is not None and 400 <= status < 500:
        return Rule(Verdict.TRANSIENT, f"HTTP {status} with an unknown code: ambiguous, retried in budget")
    return Rule(Verdict.UNKNOWN, "unrecognised answer")


def to_error(
    rule: Rule,
    detail: str,
    *,
    provider: str,
    code: int | str | None = None,
    retry_after: float | None = None,
) -> ChannelError:
    """The ChannelError for a rule; ``detail`` must already be masked."""
    text = f"{rule.meaning}: {detail}" if detail else rule.meaning
    code_text = None if code is None else str(code)
    match rule.verdict:
        case Verdict.RATE_LIMITED:
            return RateLimited(text, retry_after=retry_after, code=code_text, provider=provider)
        case Verdict.TRANSIENT:
            return TransientError(text, code=code_text, provider=provider)
        case Verdict.REJECTED:
            return RecipientRejected(text, code=code_text, provider=provider)
        case Verdict.OPTED_OUT:
            return RecipientRejected(text, opted_out=True, code=code_text, provider=provider)
        case Verdict.PERMANENT:
            return PermanentError(text, code=code_text, provider=provider)
        case Verdict.CONFIGURATION:
            return ConfigurationError(text, code=code_text, provider=provider)
        case _:
            return OutcomeUnknown(text, code=code_text, provider=provider)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def retry_policy(
    max_attempts: int,
    *,
    sleep: Callable[[float], None] = time.sleep,
    initial: float = 0.25,
    maximum: float = 10.0,
    longest_retry_after: float = 60.0,
) -> Retrying:
    """Tenacity policy for one provider call: retry TransientError only, exponential backoff with
    jitter, at most ``max_attempts`` calls. A Retry-After is honoured as a floor on the wait; one
    longer than ``longest_retry_after`` is not waited out in a worker thread but handed back."""
    backoff = wait_exponential_jitter(initial=initial, max=maximum)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        pause = backoff(state)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after + random.uniform(0, min(pause, 1.0))  # jitter on top, never below
        return pause

    def give_up(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and (exc.retry_after or 0) > longest_retry_after:
            return True
        return state.attempt_number >= max_attempts

    return Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=give_up,
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
