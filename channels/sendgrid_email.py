"""Email through SendGrid's v3 Mail Send with the official ``sendgrid`` SDK, many mails per request.

Each customer's mail is fully rendered by our templates (subject, text, HTML differ per person),
while Mail Send has one ``content`` per request. We therefore send up to 1,000 personalizations
per request with a shared content of two substitution tags (``%outreach_text%``,
``%outreach_html%``) and put each customer's rendered text and HTML in that personalization's
``substitutions``, and their subject in its ``subject``. One request then carries 1,000 different
mails, which is what makes 20,000+ mails a minute cheap. SendGrid caps substitutions at 10,000
bytes per personalization; a mail whose rendered parts are bigger goes alone in its own request
with the content inline. (Dynamic templates were the alternative, but they would move our
templates into SendGrid and out of the strict Jinja2 preview; and grouping identical bodies does
not help when every body names its customer.)

Per personalization: ``to``, ``subject``, ``custom_args`` with only our message id
(``outreach_id``) and campaign, and the ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` headers
from the message's unsubscribe URL. Per request: ``from``, categories, the ASM group.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import urllib.error
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from channels.base import BatchOutcome, Capability, OutboundMessage, SendResult, SentMessage, StatusOutcome
from channels.classification import Rule, parse_retry_after, rule_for, to_error
from channels.errors import (
    ChannelError,
    ConfigurationError,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    TransientError,
)
from channels.events import DeliveryEvent, EventType, Reason
from channels.pooled import PooledChannel, secret_value
from channels.redact import mask_email, mask_logger, scrub

log = logging.getLogger(__name__)
PROVIDER = "sendgrid"
DEFAULT_API_URL = "https://api.sendgrid.com"
MAX_PERSONALIZATIONS = 1000
SUBSTITUTION_LIMIT = 10_000  # bytes per personalization (SendGrid docs)
TEXT_TAG, HTML_TAG = "%outreach_text%", "%outreach_html%"
ID_ARG = "outreach_id"
# the Email Activity API's ``status`` (documented enum: processed, delivered, not_delivered).
# not_delivered covers bounces, drops and blocks alike: the message failed, the address is not
# judged from it (the event webhook's bounce/dropped say which, and carry the effect)
ACTIVITY_STATUS: dict[str, tuple[EventType, Reason | None]] = {
    "processed": (EventType.QUEUED, None),
    "processing": (EventType.QUEUED, None),
    "delivered": (EventType.DELIVERED, None),
    "not_delivered": (EventType.UNDELIVERED, Reason.OTHER),
}
_FIELD_INDEX = re.compile(r"^personalizations\.(\d+)\.")


class _Chunk:
    """The messages of one Mail Send request and how their content travels."""

    def __init__(self, messages: list[OutboundMessage], inline: bool) -> None:
        self.messages = messages
        self.inline = inline  # content at request level (one oversized mail), not substitutions


class SendGridEmail(PooledChannel):
    kind: ClassVar[str] = "email"
    provider: ClassVar[str] = PROVIDER
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    thread_name: ClassVar[str] = "sendgrid-email"
    # the Email Activity feed shows an accepted mail only after a delay (minutes, undocumented)
    reconcile_settle: ClassVar[timedelta] = timedelta(minutes=10)

    def __init__(
        self,
        api_key: object,
        from_email: str,
        *,
        from_name: str | None = None,
        api_url: str | None = None,
        asm_group_id: int | None = None,
        categories: Sequence[str] = (),
        timeout: float = 15.0,
        max_attempts: int = 4,
        concurrency: int = 2,
        chunk_size: int = MAX_PERSONALIZATIONS,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        missing = [
            n
            for n, v in (("api_key", api_key and secret_value(api_key)), ("from_email", from_email))
            if not v
        ]
        if missing:
            raise ConfigurationError(f"SendGrid email needs {', '.join(missing)}", provider=PROVIDER)
        if not 1 <= chunk_size <= MAX_PERSONALIZATIONS:
            raise ConfigurationError(f"chunk_size must be 1..{MAX_PERSONALIZATIONS}", provider=PROVIDER)
        if len(categories) > 10:
            raise ConfigurationError("SendGrid allows at most 10 categories", provider=PROVIDER)
        super().__init__(timeout=timeout, max_attempts=max_attempts, concurrency=concurrency, sleep=sleep)
        self._api_key = secret_value(api_key)
        self.from_email = from_email
        self.from_name = from_name
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.asm_group_id = asm_group_id
        self.categories = list(dict.fromkeys(categories))
        self.chunk_size = chunk_size
        mask_logger("python_http_client.client")  # it logs whole payloads at DEBUG

    def make_client(self) -> SendGridAPIClient:
        """Request headers live on the client and are mutated: one per thread (PooledChannel)."""
        return SendGridAPIClient(api_key=self._api_key, host=self.api_url)

    # -- building requests ----------------------------------------------------------------------

    def chunks(self, messages: Sequence[OutboundMessage]) -> Iterator[_Chunk]:
        """Requests of at most ``chunk_size`` personalizations, no address twice in one request,
        oversized mails alone, text-only and text+HTML mails apart (content is per request)."""
        # open requests per content shape, each with the addresses it already holds
        open_chunks: dict[bool, list[tuple[list[OutboundMessage], set[str]]]] = {False: [], True: []}
        for message in messages:
            if _substitution_size(message) > SUBSTITUTION_LIMIT:
                yield _Chunk([message], inline=True)
                continue
            address = message.to.strip().lower()
            groups = open_chunks[bool(message.html)]
            target = next((g for g in groups if address not in g[1]), None)
            if target is None:
                target = ([], set())
                groups.append(target)
            target[0].append(message)
            target[1].add(address)
            if len(target[0]) == self.chunk_size:
                groups.remove(target)
                yield _Chunk(target[0], inline=False)
        for groups in open_chunks.values():
            for group, _ in groups:
                yield _Chunk(group, inline=False)

    def payload(self, chunk: _Chunk) -> dict[str, Any]:
        """The Mail Send body for one request."""
        first = chunk.messages[0]
        body: dict[str, Any] = {
            "from": {"email": self.from_email, **({"name": self.from_name} if self.from_name else {})},
            "subject": first.subject or " ",
            "personalizations": [self._personalization(m, chunk.inline) for m in chunk.messages],
        }
        if chunk.inline:
            body["content"] = [{"type": "text/plain", "value": first.body or " "}]
            if first.html:
                body["content"].append({"type": "text/html", "value": first.html})
        else:
            body["content"] = [{"type": "text/plain", "value": TEXT_TAG}]
            if first.html:
                body["content"].append({"type": "text/html", "value": HTML_TAG})
        if self.categories:
            body["categories"] = self.categories
        if self.asm_group_id is not None:
            body["asm"] = {"group_id": self.asm_group_id}
        return body

    @staticmethod
    def _personalization(message: OutboundMessage, inline: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "to": [{"email": message.to}],
            "custom_args": {ID_ARG: message.message_id},
        }
        if message.campaign:
            item["custom_args"]["campaign"] = message.campaign
        if message.subject:
            item["subject"] = message.subject
        if not inline:
            item["substitutions"] = {TEXT_TAG: message.body or " "}
            if message.html:
                item["substitutions"][HTML_TAG] = message.html
        if message.unsubscribe_url:
            item["headers"] = {
                "List-Unsubscribe": f"<{message.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        return item

    # -- sending --------------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        outcome = BatchOutcome()
        if not messages:
            return outcome
        futures = [self.submit(self._send_chunk, chunk) for chunk in self.chunks(messages)]
        for future in futures:
            part = future.result()  # _send_chunk never raises: every message gets an outcome
            outcome.results.update(part.results)
            outcome.errors.update(part.errors)
        return outcome

    def _send_chunk(self, chunk: _Chunk, depth: int = 0) -> BatchOutcome:
        """Send one request; on a 400 naming personalizations, drop those and send the rest again
        (a 400 proves SendGrid accepted nothing); on 413 split in two."""
        outcome = BatchOutcome()
        pending = list(chunk.messages)
        while pending:
            current = _Chunk(pending, chunk.inline)
            try:
                message_id = self._post(self.payload(current))
            except _Rejected as rejected:
                if not rejected.by_index or depth > 3:
                    for m in pending:
                        outcome.errors[m.message_id] = rejected.error
                    return outcome
                for index, error in rejected.by_index.items():
                    if 0 <= index < len(pending):
                        outcome.errors[pending[index].message_id] = error
                pending = [m for i, m in enumerate(pending) if i not in rejected.by_index]
                depth += 1
                continue
            except _TooLarge as too_large:
                if len(pending) == 1:
                    outcome.errors[pending[0].message_id] = too_large.error
                    return outcome
                half = len(pending) // 2
                for part in (pending[:half], pending[half:]):
                    sub = self._send_chunk(_Chunk(part, chunk.inline), depth)
                    outcome.results.update(sub.results)
                    outcome.errors.update(sub.errors)
                return outcome
            except ChannelError as exc:
                if not isinstance(exc, ConfigurationError):
                    log.warning("SendGrid request of %d mails failed: %s", len(pending), exc)
                for m in pending:
                    outcome.errors[m.message_id] = exc
                return outcome
            except Exception as exc:  # a bug must not lose the messages' outcomes
                log.exception("unexpected error in a SendGrid request of %d mails", len(pending))
                error = OutcomeUnknown(
                    f"unexpected {type(exc).__name__}: {scrub(str(exc))}", provider=PROVIDER
                )
                for m in pending:
                    outcome.errors[m.message_id] = error
                return outcome
            for m in pending:
                outcome.results[m.message_id] = SendResult(m.message_id, message_id, "sent")
            return outcome
        return outcome

    def _post(self, payload: dict[str, Any]) -> str | None:
        """One Mail Send with retries for transient answers; returns X-Message-Id."""

        def attempt() -> str | None:
            try:
                response = self._client().client.mail.send.post(request_body=payload, timeout=self.timeout)
            except HTTPError as exc:
                raise classify_http_error(exc, len(payload["personalizations"])) from None
            except urllib.error.URLError as exc:
                # urllib wraps only errors raised while connecting and writing the request
                raise TransientError(
                    f"request not sent: {scrub(str(exc.reason))}", provider=PROVIDER
                ) from None
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                raise OutcomeUnknown(
                    f"request may have reached SendGrid: {type(exc).__name__}: {scrub(str(exc))}",
                    provider=PROVIDER,
                ) from None
            return response.headers.get("X-Message-Id")

        return self.retrying(attempt)

    # -- reconciliation -------------------------------------------------------------------------

    def reconcile(
        self, messages: Sequence[OutboundMessage], sent_after: datetime
    ) -> dict[str, SendResult | None]:
        """Did SendGrid accept these mails? Asks the Email Activity API for messages whose custom
        arg ``outreach_id`` is ours (``unique_args['outreach_id']="…"``, OR-ed in groups of 50),
        matching the answers back by recipient address.

        A match returns its SendResult (the X-Message-Id part of ``msg_id``): the mail was
        accepted. ``None`` means SendGrid has no record: the dispatcher marks the message
        failed-not-sent rather than sending it again, because the activity feed lags acceptance
        and marketing prefers a missed mail to a duplicate. ``sent_after`` is not needed: our id
        is unique. Raises a ChannelError when the API cannot be asked (the add-on is missing, or
        SendGrid is down); the messages then stay in doubt for the next run.
        """
        found: dict[str, SendResult | None] = {m.message_id: None for m in messages}
        groups = [list(messages[i : i + 50]) for i in range(0, len(messages), 50)]
        for group in groups:
            rows = self._activity(group)
            by_address: dict[str, list[OutboundMessage]] = {}
            for m in group:
                by_address.setdefault(m.to.strip().lower(), []).append(m)
            for row in rows:
                mine = by_address.get(str(row.get("to_email", "")).strip().lower(), [])
                if len(mine) == 1:
                    msg_id = str(row.get("msg_id") or "").split(".")[0] or None
                    found[mine[0].message_id] = SendResult(mine[0].message_id, msg_id, "sent")
            for shared in (ms for ms in by_address.values() if len(ms) > 1):
                for m in shared:  # one address, several of our ids: ask one by one
                    rows = self._activity([m])
                    if rows:
                        msg_id = str(rows[0].get("msg_id") or "").split(".")[0] or None
                        found[m.message_id] = SendResult(m.message_id, msg_id, "sent")
        return found

    def fetch_status(self, messages: Sequence[SentMessage]) -> StatusOutcome:
        """What SendGrid says now about mails it accepted (``sent``, no final event came): the
        Email Activity API, asked for our ``outreach_id`` custom args in groups of 50, each row
        matched back by its ``msg_id`` (our X-Message-Id plus a suffix) and address.

        ``delivered`` and ``not_delivered`` become DELIVERED / UNDELIVERED events (id
        ``activity:<msg_id>:<status>``, so a rerun stores nothing twice); ``processed`` is a
        QUEUED event: still open. A mail the feed does not show is ``not_found`` (the feed lags
        and needs the Email Activity add-on: nothing is concluded from it). A failed query is
        reported for the mails of its group.
        """
        outcome = StatusOutcome()
        for start in range(0, len(messages), 50):
            group = list(messages[start : start + 50])
            try:
                rows = self._activity(group)
            except ChannelError as exc:
                outcome.errors.update({m.message_id: exc for m in group})
                if isinstance(exc, ConfigurationError):  # no access: the other groups fail alike
                    outcome.errors.update({m.message_id: exc for m in messages[start + 50 :]})
                    break
                continue
            for m in group:
                row = _activity_row(m, rows)
                if row is None:
                    outcome.not_found.add(m.message_id)
                else:
                    outcome.events[m.message_id] = _activity_event(m, row)
        return outcome

    def _activity(self, messages: Sequence[OutboundMessage | SentMessage]) -> list[dict[str, Any]]:
        query = " OR ".join(f"unique_args['{ID_ARG}']=\"{m.message_id}\"" for m in messages)

        def attempt() -> list[dict[str, Any]]:
            try:
                response = self._client().client.messages.get(
                    query_params={"query": query, "limit": 1000}, timeout=self.timeout
                )
            except HTTPError as exc:
                error = classify_http_error(exc, 0)
                if isinstance(error, OutcomeUnknown):  # a GET changes nothing: safe to ask again
                    error = TransientError(
                        f"activity query not answered: HTTP {exc.status_code}",
                        code=error.code,
                        provider=PROVIDER,
                    )
                raise error from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                raise TransientError(f"activity query failed: {scrub(str(exc))}", provider=PROVIDER) from None
            return list(json.loads(response.body or b"{}").get("messages", []))

        try:
            return self.retrying(attempt)
        except _Rejected as rejected:
            raise rejected.error from None


class _Rejected(PermanentError):
    """A 400: nothing accepted; ``by_index`` names the personalizations at fault, if any."""

    def __init__(self, error: ChannelError, by_index: dict[int, ChannelError]) -> None:
        super().__init__(str(error), code=error.code, provider=PROVIDER)
        self.error = error
        self.by_index = by_index


class _TooLarge(PermanentError):
    def __init__(self, error: ChannelError) -> None:
        super().__init__(str(error), code=error.code, provider=PROVIDER)
        self.error = error


def classify_http_error(exc: HTTPError, personalizations: int) -> ChannelError:
    """A SendGrid HTTP error to our tree. 400s become _Rejected with per-personalization errors."""
    status = int(exc.status_code)
    errors = _errors(exc.body)
    detail = "; ".join(scrub(str(e.get("message", ""))) for e in errors) or f"HTTP {status}"
    if status == 400:
        by_index: dict[int, ChannelError] = {}
        for e in errors:
            match = _FIELD_INDEX.match(str(e.get("field") or ""))
            if match and int(match.group(1)) < personalizations:
                field = str(e.get("field"))
                text = f"{scrub(str(e.get('message', '')))} ({field})"
                cls = RecipientRejected if field.endswith(".email") else PermanentError
                by_index[int(match.group(1))] = cls(
                    f"SendGrid refused: {text}", code="400", provider=PROVIDER
                )
        whole = PermanentError(f"SendGrid refused the request: {detail}", code="400", provider=PROVIDER)
        return _Rejected(whole, by_index)
    rule: Rule = rule_for(status)
    retry_after = None
    headers = exc.headers
    if status == 429 and headers is not None:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        reset = headers.get("X-RateLimit-Reset")
        if retry_after is None and reset and reset.isdigit():
            retry_after = max(int(reset) - datetime.now().timestamp(), 0.0)
    error = to_error(
        rule, f"HTTP {status}: {detail}", provider=PROVIDER, code=status, retry_after=retry_after
    )
    return _TooLarge(error) if status == 413 else error


def _errors(body: bytes | str | None) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(body or b"{}")
    except (ValueError, TypeError):
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _activity_row(message: SentMessage, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The activity row of one of our mails: same request (msg_id starts with our X-Message-Id)
    and same address; failing a provider id, the only row to that address."""
    address = message.to.strip().lower()
    to_us = [r for r in rows if str(r.get("to_email", "")).strip().lower() == address]
    if message.provider_message_id:
        exact = [r for r in to_us if str(r.get("msg_id", "")).startswith(message.provider_message_id)]
        if exact:
            return exact[0]
    return to_us[0] if len(to_us) == 1 else None


def _activity_event(message: SentMessage, row: Mapping[str, Any]) -> DeliveryEvent:
    status = str(row.get("status") or "").lower()
    kind, reason = ACTIVITY_STATUS.get(status, (EventType.UNKNOWN, None))
    msg_id = str(row.get("msg_id") or message.provider_message_id)
    try:
        at = datetime.fromisoformat(str(row.get("last_event_time")).replace("Z", "+00:00"))
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    except ValueError:
        at = datetime.now(UTC)
    return DeliveryEvent(
        type=kind,
        channel="email",
        provider=PROVIDER,
        message_id=message.message_id,
        provider_message_id=msg_id,
        timestamp=at,
        reason=reason,
        description=f"SendGrid activity: {status or 'no status'}",
        event_id=f"activity:{msg_id}:{status}",
        metadata={"status": status, **({"recipient": message.to} if message.to else {})},
        raw={
            "msg_id": msg_id,
            "status": status,
            "last_event_time": row.get("last_event_time"),
            "via": "activity",
        },
    )


def _substitution_size(message: OutboundMessage) -> int:
    size = len(TEXT_TAG) + len((message.body or "").encode("utf-8"))
    if message.html:
        size += len(HTML_TAG) + len(message.html.encode("utf-8"))
    return size


__all__ = ["SendGridEmail", "classify_http_error", "mask_email"]
