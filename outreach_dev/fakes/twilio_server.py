"""A local server that speaks Twilio's Messages API as the ``twilio`` SDK uses it.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` creates a message (201, the spec's
message resource), ``GET`` on the same path lists them (filters ``To``, ``From``, ``DateSent``,
``DateSent<``, ``DateSent>``; pages), ``GET .../Messages/{Sid}.json`` fetches one. Basic auth with
the account SID and auth token; Twilio's error bodies (``code``, ``message``, ``more_info``,
``status``); every request checked against Twilio's OpenAPI description and recorded.

Message lifecycle: a message is ``queued`` (``accepted`` with a Messaging Service), ``sent``
after ``callback_delay`` seconds and final after twice that: ``delivered``, or what ``outcomes``
names for its recipient (``(status, error_code)``, e.g. ``("failed", 30008)``; recipients in
``undeliverable`` end ``undelivered`` with 30003). A fetch (``GET .../Messages/{Sid}.json``) and a
listing report the status the message has reached at that moment, with its ``error_code`` and
``error_message`` once final; an unknown SID is Twilio's 404 (code 20404). Reads get faults only
from a plan with ``only_sends=False``.

Status callbacks: when a message has a ``StatusCallback`` and ``callbacks`` is on, the server
posts each status change at the moment the message reaches it (``sent`` then the final status, or
only ``failed``), form-encoded and signed with ``X-Twilio-Signature`` exactly as Twilio does (the
SDK's RequestValidator algorithm, keyed by the auth token). ``FaultPlan.lost_callbacks`` loses
them while the messages still advance.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from twilio.request_validator import RequestValidator

from outreach_dev.fakes.base import AFTER_KINDS, FakeProvider, Recorded, Request, Response, basic_auth

API = "/2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
MESSAGE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$")

# Twilio's texts for the permanent errors it returns at creation (recipient in the message, as
# Twilio does: the adapter must mask it)
ERROR_TEXT = {
    21211: "The 'To' number {to} is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number {to} is not a valid mobile number",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}",
}
# error_message of a message that ended badly (no recipient in them)
FINAL_ERROR_TEXT = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Carrier violation",
    30008: "Unknown error",
}


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True).replace("GMT", "+0000")


@dataclass
class StoredMessage:
    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    created: datetime
    status: str  # the status at creation
    params: dict[str, str] = field(default_factory=dict)
    final: tuple[str, int | None] = ("delivered", None)  # where the message ends, with its code
    step: float = 0.05  # seconds between status changes

    def timeline(self) -> list[tuple[datetime, str]]:
        """The status changes after creation: ``sent`` then the final status (``failed`` alone:
        a failed message never left Twilio)."""
        first, second = (
            self.created + timedelta(seconds=self.step),
            self.created + timedelta(seconds=2 * self.step),
        )
        if self.final[0] == "failed":
            return [(first, "failed")]
        return [(first, "sent"), (second, self.final[0])]

    def current(self, now: datetime | None = None) -> tuple[str, datetime, bool]:
        """(status, when it changed, final?) at ``now``."""
        now = now or datetime.now(UTC)
        status, since, final = self.status, self.created, False
        changes = self.timeline()
        for n, (at, step_status) in enumerate(changes):
            if at <= now:
                status, since, final = step_status, at, n == len(changes) - 1
        return status, since, final

    def resource(self, account_sid: str, now: datetime | None = None) -> dict[str, Any]:
        status, since, final = self.current(now)
        code = self.final[1] if final else None
        stamp = _rfc2822(self.created)
        uri = f"{API}/Accounts/{account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": stamp,
            "date_sent": stamp,
            "date_updated": _rfc2822(since),
            "direction": "outbound-api",
            "error_code": code,
            "error_message": FINAL_ERROR_TEXT.get(code, "Message failed") if code else None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(self.body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": uri,
        }


class TwilioServer(FakeProvider):
    name = "twilio"

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-auth-token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        strict: bool = False,
        callbacks: bool = False,
        callback_delay: float = 0.05,
        undeliverable: set[str] | None = None,
        outcomes: dict[str, tuple[str, int | None]] | None = None,
    ) -> None:
        super().__init__("twilio_api_v2010_messages.json", host=host, port=port, strict=strict)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.callbacks = callbacks
        self.callback_delay = callback_delay
        self.undeliverable = set(undeliverable or ())
        self.outcomes = dict(outcomes or {})
        self.messages: dict[str, StoredMessage] = {}
        self._by_to: dict[str, list[str]] = {}
        self._store_lock = threading.Lock()
        self.validator = RequestValidator(auth_token)

    # -- state ----------------------------------------------------------------------------------

    def clear_state(self) -> None:
        with self._store_lock:
            self.messages.clear()
            self._by_to.clear()

    def state(self) -> dict[str, Any]:
        with self._store_lock:
            per_to: dict[str, int] = {to: len(sids) for to, sids in self._by_to.items()}
        return {"messages": len(self.messages), "recipients": len(per_to), "duplicates": self.duplicates()}

    def sent_to(self) -> dict[str, int]:
        """How many messages the server created per recipient number."""
        with self._store_lock:
            return {to: len(sids) for to, sids in self._by_to.items()}

    def duplicates(self) -> dict[str, int]:
        """Recipients who got the same body more than once (what exactly-once forbids)."""
        seen: dict[tuple[str, str], int] = {}
        with self._store_lock:
            for message in self.messages.values():
                key = (message.to, message.body)
                seen[key] = seen.get(key, 0) + 1
        return {f"{to}|{body[:20]}": n for (to, body), n in seen.items() if n > 1}

    # -- HTTP -----------------------------------------------------------------------------------

    def _error(self, status: int, code: int, message: str, **headers: str) -> Response:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return Response.json(status, body, **headers)

    def handle(self, request: Request) -> Response:
        arrived = datetime.now(UTC).timestamp()
        creds = basic_auth(request.headers)
        if creds != (self.account_sid, self.auth_token):
            response = self._error(401, 20003, "Authenticate")
            self.record(Recorded(arrived, request.method, request.path, 401, None, (), (), ()))
            return response
        if match := MESSAGES.match(request.path):
            if match["account"] != self.account_sid:
                return self._recorded(
                    arrived, request, self._error(404, 20404, "The requested resource was not found")
                )
            if request.method == "POST":
                return self._create(arrived, request)
            if request.method == "GET":
                return self._list(arrived, request)
        if (match := MESSAGE.match(request.path)) and request.method == "GET":
            return self._fetch(arrived, request, match["account"], match["sid"])
        return self._recorded(
            arrived, request, self._error(404, 20404, "The requested resource was not found")
        )

    def _recorded(
        self, arrived: float, request: Request, response: Response, errors: list[str] | None = None
    ) -> Response:
        problems = tuple(errors or ()) + tuple(self.response_problems(request, response))
        self.record(
            Recorded(
                arrived, request.method, request.path, response.status, None, (), (), problems, request.query
            )
        )
        return response

    def _create(self, arrived: float, request: Request) -> Response:
        form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        spec_errors = self.check_spec(request, form=form)
        to = (form.get("To") or [""])[-1]
        recipients = (to,) if to else ()

        def done(response: Response, fault: str | None = None, created: tuple[str, ...] = ()) -> Response:
            problems = tuple(spec_errors) + tuple(self.response_problems(request, response))
            self.record(
                Recorded(arrived, "POST", request.path, response.status, fault, created, recipients, problems)
            )
            return response

        if spec_errors:
            return done(self._error(400, 21604 if not to else 20001, "; ".join(spec_errors)[:500]))
        body = (form.get("Body") or [""])[-1]
        from_ = (form.get("From") or [None])[-1]
        service = (form.get("MessagingServiceSid") or [None])[-1]
        if not E164.match(to):
            return done(self._error(400, 21211, ERROR_TEXT[21211].format(to=to)))
        if not (from_ or service):
            return done(self._error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required"))
        if not body:
            return done(self._error(400, 21602, "Message body is required"))
        if to in self.plan.reject:
            code = int(self.plan.reject[to])
            return done(self._error(400, code, ERROR_TEXT.get(code, "Message refused").format(to=to)))

        fault = self.next_fault(is_send=True)
        if fault == "429":
            return done(
                self._error(429, 20429, "Too Many Requests", **{"Retry-After": f"{self.plan.retry_after:g}"}),
                fault,
            )
        if fault == "503":
            return done(self._error(503, 20503, "Service Unavailable"), fault)
        if fault == "drop":
            return done(Response(0, action="reset"), fault)

        stored = StoredMessage(
            sid="SM" + secrets.token_hex(16),
            to=to,
            from_=from_,
            messaging_service_sid=service,
            body=body,
            status_callback=(form.get("StatusCallback") or [None])[-1],
            created=datetime.fromtimestamp(arrived, UTC),
            status="accepted" if service else "queued",
            params={k: v[-1] for k, v in form.items()},
            final=self.outcomes.get(to)
            or (("undelivered", 30003) if to in self.undeliverable else ("delivered", None)),
            step=self.callback_delay,
        )
        with self._store_lock:
            self.messages[stored.sid] = stored
            self._by_to.setdefault(to, []).append(stored.sid)
        if self.callbacks and stored.status_callback:
            self._schedule_callbacks(stored)
        response = Response.json(201, stored.resource(self.account_sid))
        if fault in AFTER_KINDS:
            if fault == "500":
                response = self._error(500, 20500, "Internal Server Error")
            elif fault == "slow":
                response.delay = self.plan.slow_seconds
            else:
                response = Response(0, action="reset")
        return done(response, fault, (stored.sid,))

    def _read_fault(self, arrived: float, request: Request) -> tuple[str | None, Response | None]:
        """A fault for a read, when the plan covers reads (``only_sends=False``): the fault, and the
        answer that replaces the real one (None for ``slow``: the real answer, late)."""
        fault = self.next_fault(is_send=False)
        if fault is None or fault == "slow":
            return fault, None
        if fault == "429":
            headers = {"Retry-After": f"{self.plan.retry_after:g}"}
            response = self._error(429, 20429, "Too Many Requests", **headers)
        elif fault == "503":
            response = self._error(503, 20503, "Service Unavailable")
        elif fault == "500":
            response = self._error(500, 20500, "Internal Server Error")
        else:  # reset, drop: the connection dies
            response = Response(0, action="reset")
        self.record(
            Recorded(arrived, request.method, request.path, response.status, fault, (), (), (), request.query)
        )
        return fault, response

    def _fetch(self, arrived: float, request: Request, account: str, sid: str) -> Response:
        spec_errors = self.check_spec(request)
        fault, faulty = self._read_fault(arrived, request)
        if faulty is not None:
            return faulty
        with self._store_lock:
            stored = self.messages.get(sid)
        if stored is None or account != self.account_sid:
            # Twilio answers a malformed SID the same way as an unknown one
            response = self._error(404, 20404, "The requested resource was not found")
        else:
            response = Response.json(200, stored.resource(self.account_sid))
        if fault == "slow":
            response.delay = self.plan.slow_seconds
        return self._recorded(arrived, request, response, spec_errors)

    def _list(self, arrived: float, request: Request) -> Response:
        params = request.params
        spec_errors = self.check_spec(request)
        if spec_errors:
            return self._recorded(
                arrived, request, self._error(400, 20001, "; ".join(spec_errors)[:500]), spec_errors
            )
        fault, faulty = self._read_fault(arrived, request)
        if faulty is not None:
            return faulty
        to = (params.get("To") or [None])[0]
        from_ = (params.get("From") or [None])[0]
        on = (params.get("DateSent") or [None])[0]
        before = (params.get("DateSent<") or [None])[0]
        after = (params.get("DateSent>") or [None])[0]
        page_size = min(int((params.get("PageSize") or ["50"])[0]), 1000)
        page = int((params.get("Page") or ["0"])[0])
        with self._store_lock:
            sids = list(self._by_to.get(to, [])) if to else list(self.messages)
            rows = [self.messages[s] for s in sids]

        def day(m: StoredMessage) -> str:
            return m.created.date().isoformat()

        rows = [
            m
            for m in rows
            if (not from_ or m.from_ == from_)
            and (not on or day(m) == on[:10])
            and (not before or day(m) <= before[:10])
            and (not after or day(m) >= after[:10])
        ]
        rows.sort(key=lambda m: m.created, reverse=True)  # Twilio lists newest first
        chunk = rows[page * page_size : (page + 1) * page_size]
        base = f"{API}/Accounts/{self.account_sid}/Messages.json"
        keep = {k: v[0] for k, v in params.items() if k not in ("Page", "PageToken", "PageSize")}

        def page_uri(n: int) -> str:
            return f"{base}?{urlencode({**keep, 'PageSize': page_size, 'Page': n})}"

        has_next = (page + 1) * page_size < len(rows)
        payload = {
            "messages": [m.resource(self.account_sid) for m in chunk],
            "end": page * page_size + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": page * page_size,
            "uri": page_uri(page),
        }
        response = Response.json(200, payload)
        if fault == "slow":
            response.delay = self.plan.slow_seconds
        return self._recorded(arrived, request, response)

    # -- status callbacks -----------------------------------------------------------------------

    def signed_callback(self, url: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        """A status callback body and headers, signed as Twilio signs them."""
        signature = self.validator.compute_signature(url, params)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        return urlencode(params).encode(), headers

    def _schedule_callbacks(self, message: StoredMessage) -> None:
        base = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message.from_ or "",
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "To": message.to,
        }
        if message.messaging_service_sid:
            base["MessagingServiceSid"] = message.messaging_service_sid
        now = datetime.now(UTC)
        for at, status in message.timeline():
            extra = {"MessageStatus": status, "SmsStatus": status}
            if status == message.final[0] and message.final[1]:
                extra["ErrorCode"] = str(message.final[1])
            params = {**base, **extra}
            body, headers = self.signed_callback(message.status_callback or "", params)
            delay = max((at - now).total_seconds(), 0.0)
            self.post_later(delay, message.status_callback or "", body, headers)
