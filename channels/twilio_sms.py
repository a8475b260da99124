"""SMS through Twilio's Messages API with the official ``twilio`` SDK.

The pool, the client per thread, the retries and the per-message outcomes come from
``channels.pooled.PooledChannel``; here: the requests, an HTTP timeout on every call (the SDK has
none), and the classification of Twilio's answers (the table is in ``channels.classification``).
Capabilities: send, reconcile (list by number), status lookup (fetch by SID), webhooks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client

from channels.base import BatchOutcome, Capability, OutboundMessage, SendResult, SentMessage, StatusOutcome
from channels.classification import (
    TWILIO_CODES,
    Rule,
    Verdict,
    parse_retry_after,
    rule_for,
    to_error,
)
from channels.errors import ChannelError, ConfigurationError, OutcomeUnknown, TransientError
from channels.events import DeliveryEvent
from channels.pooled import PooledChannel, secret_value
from channels.redact import mask_logger, mask_phone, scrub
from channels.twilio_transport import Urllib3HttpClient
from channels.twilio_webhooks import status_event

log = logging.getLogger(__name__)
PROVIDER = "twilio"
DEFAULT_API_URL = "https://api.twilio.com"
# what the transport raises when the network fails (requests too: a caller may pass its own client)
NETWORK_ERRORS = (urllib3.exceptions.HTTPError, requests.RequestException)


class TwilioSMS(PooledChannel):
    kind: ClassVar[str] = "sms"
    provider: ClassVar[str] = PROVIDER
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    thread_name: ClassVar[str] = "twilio-sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: object,
        *,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        validity_period: int | None = None,
        api_url: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        concurrency: int = 4,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        missing = [
            name
            for name, value in (("account_sid", account_sid), ("auth_token", auth_token))
            if not value or not secret_value(value)
        ]
        if not (from_ or messaging_service_sid):
            missing.append("from_ or messaging_service_sid")
        if missing:
            raise ConfigurationError(f"Twilio SMS needs {', '.join(missing)}", provider=PROVIDER)
        if validity_period is not None and not 1 <= validity_period <= 36000:
            raise ConfigurationError("validity_period must be 1..36000 seconds", provider=PROVIDER)
        super().__init__(timeout=timeout, max_attempts=max_attempts, concurrency=concurrency, sleep=sleep)
        self.account_sid = account_sid
        self._auth_token = secret_value(auth_token)
        self.from_ = from_
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.validity_period = validity_period
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        # after this long a message Twilio does not list was never created (the POST is synchronous)
        self.reconcile_settle = timedelta(seconds=timeout + 60)
        # the SDK logs query strings (a list by To= carries the number): mask what it logs
        self._http_logger = mask_logger("twilio.http_client")
        mask_logger("urllib3.connectionpool")

    def make_client(self) -> Client:
        http = Urllib3HttpClient(api_url=self.api_url, timeout=self.timeout, logger=self._http_logger)
        self.closing(http.close)  # closed with the adapter, whichever thread made it
        client = Client(self.account_sid, self._auth_token, http_client=http)
        client.edge = client.region = None  # TWILIO_EDGE/REGION would rewrite the host
        client.api.base_url = self.api_url
        return client

    # -- sending --------------------------------------------------------------------------------

    def callback_url(self, message: OutboundMessage) -> str | None:
        """The status callback URL with our message id added (``outreach_id``), so a callback that
        overtakes the ledger update still finds its message. Not personal data."""
        if not self.status_callback:
            return None
        parts = urlsplit(self.status_callback)
        query = parse_qsl(parts.query) + [("outreach_id", message.message_id)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def send_batch(self, messages: Sequence[OutboundMessage]) -> BatchOutcome:
        outcome = BatchOutcome()
        if not messages:
            return outcome
        stop = threading.Event()  # set on a configuration error: send nothing more
        futures = {m.message_id: self.submit(self._send_one, m, stop) for m in messages}
        outcome.results, outcome.errors = self.gather(futures, "sending SMS")
        return outcome

    def _send_one(self, message: OutboundMessage, stop: threading.Event) -> SendResult:
        if stop.is_set():
            raise ConfigurationError("not sent: the channel stopped on a configuration error")
        params: dict[str, Any] = {"to": message.to, "body": message.body}
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        if self.from_:
            params["from_"] = self.from_
        if callback := self.callback_url(message):
            params["status_callback"] = callback
        if self.validity_period:
            params["validity_period"] = self.validity_period
        try:
            created = self.retrying(self._create, params)
        except ConfigurationError:
            stop.set()
            raise
        except TransientError as exc:
            log.warning(
                "SMS %s to %s not sent after retries: %s", message.message_id, mask_phone(message.to), exc
            )
            raise
        return SendResult(message.message_id, created.sid, "sent")

    def _create(self, params: dict[str, Any]):  # noqa: ANN202 - the SDK's MessageInstance
        client = self._client()
        try:
            return client.messages.create(**params)
        except TwilioException as exc:
            raise self.classify(exc, client.http_client.last_headers) from None
        except NETWORK_ERRORS as exc:
            raise classify_network_error(exc) from None

    @staticmethod
    def classify(exc: TwilioException, headers: Mapping[str, str] | None = None) -> ChannelError:
        """Map an SDK exception to our error tree, through the table in channels.classification."""
        if isinstance(exc, TwilioServiceException):  # RFC-9457 answers (SDK >= 9.10)
            status, code, text = exc.status, exc.code, exc.detail or exc.title
        elif isinstance(exc, TwilioRestException):
            status, code, text = exc.status, exc.code, exc.msg
        else:
            return OutcomeUnknown(f"twilio SDK error: {scrub(str(exc))}", provider=PROVIDER)
        try:
            code = int(code) if code is not None else None
        except (TypeError, ValueError):
            code = None
        rule: Rule = rule_for(status, code, TWILIO_CODES)
        retry_after = None
        if rule.verdict is Verdict.RATE_LIMITED and headers:
            retry_after = parse_retry_after(headers.get("Retry-After"))
        detail = scrub(str(text or "")).removeprefix("Unable to create record: ")
        return to_error(
            rule, f"HTTP {status}: {detail}", provider=PROVIDER, code=code, retry_after=retry_after
        )

    # -- reconciliation -------------------------------------------------------------------------

    def reconcile(
        self, messages: Sequence[OutboundMessage], sent_after: datetime
    ) -> dict[str, SendResult | None]:
        """Did Twilio create these messages? For each in-doubt message (left ``sending`` by a crash,
        or ``unknown`` after a timeout or reset), list Twilio's messages to the same number sent
        since ``sent_after`` from our sender, and match on the body; any message from us to that
        number in the window counts when no body matches (a miss rather than a duplicate).

        A match returns its SendResult (provider SID): the message was sent. ``None`` means Twilio
        has no such message: the dispatcher marks it failed-not-sent rather than sending it again,
        because the listing lags creation by an unknown delay and marketing prefers a missed
        message to a duplicate. Raises TransientError/OutcomeUnknown when Twilio cannot be asked
        (the message then stays in doubt for the next run).

        Caveat (GUESS, undocumented): Twilio filters ``DateSent`` by day, and a message still
        queued may have no send date yet; we filter by day and then by ``date_created``.
        """
        found: dict[str, SendResult | None] = {}
        if not messages:
            return found
        since = sent_after.astimezone(UTC) - timedelta(minutes=5)  # clock skew between us and Twilio
        futures = {m.message_id: self.submit(self._find, m, since) for m in messages}
        for message_id, future in futures.items():
            found[message_id] = future.result()
        return found

    def _find(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        def listing() -> list:
            client = self._client()
            try:
                return client.messages.list(to=message.to, date_sent_after=since.date(), limit=200)
            except TwilioException as exc:
                raise self.classify(exc, client.http_client.last_headers) from None
            except NETWORK_ERRORS as exc:
                raise classify_network_error(exc, idempotent=True) from None

        ours = [
            m
            for m in self.retrying(listing)
            if (m.date_created is None or m.date_created >= since)
            and (not self.from_ or m.from_ in (None, self.from_))
            and (
                not self.messaging_service_sid
                or m.messaging_service_sid in (None, self.messaging_service_sid)
            )
        ]
        # the same text first; failing that, any message from our sender to that number in the
        # window counts as sent (the body may differ if customer data changed before the rerun):
        # a possible miss is preferred to a possible duplicate
        matches = [m for m in ours if m.body == message.body] or ours
        if not matches:
            return None
        if len(matches) > 1:
            log.warning(
                "%d Twilio messages match SMS %s to %s",
                len(matches),
                message.message_id,
                mask_phone(message.to),
            )
        first = min(matches, key=lambda m: m.date_created or since)
        return SendResult(message.message_id, first.sid, "sent")

    def fetch_status(self, messages: Sequence[SentMessage]) -> StatusOutcome:
        """What Twilio says now about messages it accepted (``sent``, with no final callback): one
        ``GET .../Messages/{Sid}.json`` each, through the SDK (``client.messages(sid).fetch()``),
        at most ``concurrency`` at a time, each with the adapter's timeout and retries.

        The answer is a DeliveryEvent built exactly as a status callback is (same event id, SID
        plus status), so a status both fetched and called back is stored once: ``delivered``,
        ``undelivered``/``failed`` with Twilio's error code and text, or a status that is not
        final yet (``queued``, ``sent``...). A 404 means Twilio has no such message: reported in
        ``not_found``, nothing guessed. Other failures are classified as for sending (a GET
        creates nothing, so a 5xx is retried like a 503) and reported per message; a
        configuration error (401/403) stops the look-ups not yet made.
        """
        outcome = StatusOutcome()
        stop = threading.Event()
        futures = {
            m.message_id: self.submit(self._fetch_one, m, stop) for m in messages if m.provider_message_id
        }
        answers, outcome.errors = self.gather(futures, "fetching the status of SMS")
        for message_id, event in answers.items():
            if event is None:
                outcome.not_found.add(message_id)
            else:
                outcome.events[message_id] = event
        return outcome

    def _fetch_one(self, message: SentMessage, stop: threading.Event) -> DeliveryEvent | None:
        if stop.is_set():
            raise ConfigurationError("not asked: the look-ups stopped on a configuration error")

        def fetch():  # noqa: ANN202 - the SDK's MessageInstance, or None for a 404
            client = self._client()
            try:
                return client.messages(message.provider_message_id).fetch()
            except TwilioException as exc:
                if getattr(exc, "status", None) == 404:
                    return None
                error = self.classify(exc, client.http_client.last_headers)
                if isinstance(error, OutcomeUnknown):  # a GET changes nothing: safe to ask again
                    status = getattr(exc, "status", None)
                    error = TransientError(f"no answer: HTTP {status}", code=error.code, provider=PROVIDER)
                raise error from None
            except NETWORK_ERRORS as exc:
                raise classify_network_error(exc, idempotent=True) from None

        try:
            found = self.retrying(fetch)
        except ConfigurationError:
            stop.set()
            raise
        if found is None:
            return None
        code = found.error_code
        return status_event(
            found.sid or message.provider_message_id,
            str(found.status or "unknown"),
            str(code) if code else None,
            message_id=message.message_id,
            timestamp=_aware(found.date_updated) if found.date_updated else datetime.now(UTC),
            recipient=found.to or message.to or None,
            error_text=scrub(found.error_message) if found.error_message else None,
            raw={
                "MessageSid": found.sid,
                "MessageStatus": str(found.status),
                "ErrorCode": code,
                "via": "fetch",
            },
        )


def classify_network_error(exc: BaseException, *, idempotent: bool = False) -> ChannelError:
    """Before the request left (refused, DNS, connect timeout) a retry is safe; after it left
    (read timeout, reset, broken response) the message may exist: OutcomeUnknown. A GET
    (``idempotent``) is always safe to retry."""
    text = scrub(f"{type(exc).__name__}: {exc}")
    if idempotent:
        return TransientError(f"request not sent: {text}", provider=PROVIDER)
    if _connect_failed(exc):
        return TransientError(f"connection failed before sending: {text}", provider=PROVIDER)
    return OutcomeUnknown(f"request may have reached Twilio: {text}", provider=PROVIDER)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _connect_failed(exc: BaseException) -> bool:
    """True when the connection could not be opened (nothing was written): urllib3's connect
    timeout (NewConnectionError is one) or name resolution, however deeply wrapped."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError

    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(
            node, ConnectTimeoutError | NameResolutionError | ConnectionRefusedError | requests.ConnectTimeout
        ):
            return True
        pending.extend([getattr(node, "reason", None), node.__cause__, node.__context__])
        pending.extend(arg for arg in getattr(node, "args", ()) if isinstance(arg, BaseException))
    return False
