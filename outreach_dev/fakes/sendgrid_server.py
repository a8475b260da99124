"""A local server that speaks SendGrid's v3 Mail Send as the ``sendgrid`` SDK uses it.

``POST /v3/mail/send`` (Bearer auth) checks the body against SendGrid's OpenAPI description,
answers 400 with SendGrid's ``{"errors": [{"message", "field"}]}`` naming the failing
personalization, and otherwise 202 with ``X-Message-Id``; it stores one mail per personalization
with the substitutions applied, so tests can read what each customer would receive.

``GET /v3/messages?query=…&limit=…`` answers like the Email Activity API for the query forms the
adapter uses (``unique_args['k']="v"``, ``to_email="…"``, ``msg_id LIKE '…%'``, joined by OR),
with each mail's status: ``delivered``, ``not_delivered`` (addresses in ``bounces``) or
``processed`` (addresses in ``pending``: a receiving server that keeps deferring; the
values are those of the API's documented ``status`` enum). That endpoint
is not in the provided spec files, so it is not spec-checked. It gets faults (429, 503, 500,
reset) only from a plan with ``only_sends=False``.

Event webhook: with ``event_webhook_url`` set, the server posts ``processed`` and ``delivered``
(or ``bounce`` for addresses in ``bounces``) events per accepted mail, signed with ECDSA P-256
over ``timestamp + payload`` as SendGrid signs them; ``public_key`` is the base64 key a receiver
passes to ``sendgrid.helpers.eventwebhook.EventWebhook``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from outreach_dev.fakes.base import AFTER_KINDS, FakeProvider, Recorded, Request, Response

SEND = "/v3/mail/send"
ACTIVITY = "/v3/messages"
MAX_RECIPIENTS = 1000
_CONDITION = re.compile(
    r"""^\s*(?:(?P<arg>unique_args\['(?P<key>[^']+)'\])\s*=\s*"(?P<argvalue>[^"]*)"|"""
    r"""(?P<field>to_email|msg_id|subject|status)\s*=\s*"(?P<value>[^"]*)"|"""
    r"""msg_id\s+LIKE\s+'(?P<prefix>[^'%]*)%')\s*$"""
)


@dataclass
class StoredMail:
    msg_id: str  # sg_message_id: X-Message-Id + suffix
    x_message_id: str
    to_email: str
    from_email: str
    subject: str
    text: str
    html: str | None
    custom_args: dict[str, str]
    headers: dict[str, str]
    categories: list[str]
    asm_group_id: int | None
    at: float
    status: str = "delivered"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def outreach_id(self) -> str | None:
        return self.custom_args.get("outreach_id")

    def activity(self) -> dict[str, Any]:
        return {
            "from_email": self.from_email,
            "msg_id": self.msg_id,
            "subject": self.subject,
            "to_email": self.to_email,
            "status": {"bounce": "not_delivered"}.get(self.status, self.status),
            "opens_count": 0,
            "clicks_count": 0,
            "last_event_time": datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def _substitute(text: str | None, substitutions: dict[str, str]) -> str | None:
    if text is None:
        return None
    for tag, value in substitutions.items():
        text = text.replace(tag, str(value))
    return text


class SendGridServer(FakeProvider):
    name = "sendgrid"

    def __init__(
        self,
        api_key: str = "SG.test-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        strict: bool = False,
        event_webhook_url: str | None = None,
        event_delay: float = 0.05,
        bounces: set[str] | None = None,
        pending: set[str] | None = None,
    ) -> None:
        super().__init__("sendgrid_mail_v3.json", host=host, port=port, strict=strict)
        self.api_key = api_key
        self.event_webhook_url = event_webhook_url
        self.event_delay = event_delay
        self.bounces = {b.lower() for b in bounces or ()}
        self.pending = {p.lower() for p in pending or ()}
        self.mails: list[StoredMail] = []
        self._by_id: dict[str, list[StoredMail]] = {}
        self._store_lock = threading.Lock()
        self._key = ec.generate_private_key(ec.SECP256R1())

    # -- keys and state -------------------------------------------------------------------------

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it (base64 DER SubjectPublicKeyInfo)."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, payload: str, timestamp: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        signature = self._key.sign((timestamp + payload).encode(), ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }

    def clear_state(self) -> None:
        with self._store_lock:
            self.mails.clear()
            self._by_id.clear()

    def state(self) -> dict[str, Any]:
        return {"mails": len(self.mails), "duplicates": self.duplicates()}

    def accepted_ids(self) -> dict[str, int]:
        """How many mails the server accepted per outreach message id."""
        with self._store_lock:
            return {key: len(mails) for key, mails in self._by_id.items()}

    def duplicates(self) -> dict[str, int]:
        return {key: n for key, n in self.accepted_ids().items() if n > 1}

    # -- HTTP -----------------------------------------------------------------------------------

    @staticmethod
    def _errors(status: int, *errors: tuple[str | None, str], **headers: str) -> Response:
        body = {"errors": [{"message": message, "field": field_} for field_, message in errors]}
        return Response.json(status, body, **headers)

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "599",
            "X-RateLimit-Reset": str(int(time.time()) + 60),
        }

    def handle(self, request: Request) -> Response:
        arrived = time.time()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            response = self._errors(
                401, (None, "The provided authorization grant is invalid, expired, or revoked")
            )
            self.record(Recorded(arrived, request.method, request.path, 401, None, (), (), ()))
            return response
        if request.path == SEND and request.method == "POST":
            return self._send(arrived, request)
        if request.path == ACTIVITY and request.method == "GET":
            return self._activity(arrived, request)
        response = self._errors(404, (None, "resource not found"))
        self.record(Recorded(arrived, request.method, request.path, 404, None, (), (), ()))
        return response

    def _send(self, arrived: float, request: Request) -> Response:
        try:
            mail = json.loads(request.body or b"null")
        except ValueError:
            mail = None
        recipients: tuple[str, ...] = ()
        if isinstance(mail, dict):
            recipients = tuple(
                str(to.get("email", ""))
                for p in mail.get("personalizations") or []
                if isinstance(p, dict)
                for to in p.get("to") or []
                if isinstance(to, dict)
            )
        fast = self.spec.fast_errors("post", SEND, {}, body=mail) if mail is not None else []
        spec_errors = [f"{f}: {m}" if f else m for f, m in fast] if mail is not None else ["body is not JSON"]
        if self.strict and mail is not None:
            spec_errors += self.spec.strict_errors("post", SEND, request.query, request.headers, request.body)

        def done(response: Response, fault: str | None = None, created: tuple[str, ...] = ()) -> Response:
            response.headers.update(self._rate_headers())
            problems = tuple(spec_errors) + tuple(self.response_problems(request, response))
            self.record(
                Recorded(arrived, "POST", SEND, response.status, fault, created, recipients, problems)
            )
            return response

        if mail is None:
            return done(self._errors(400, (None, "Bad Request")))
        if fast:
            return done(self._errors(400, *[(f or None, _sendgrid_message(f, m)) for f, m in fast[:20]]))
        personalizations = mail["personalizations"]
        if len(recipients) > MAX_RECIPIENTS:
            return done(
                self._errors(
                    400, ("personalizations", "The total number of recipients must be less than 1000")
                )
            )
        seen: dict[str, int] = {}
        problems: list[tuple[str | None, str]] = []
        for index, item in enumerate(personalizations):
            for n, to in enumerate(item.get("to", [])):
                address = to["email"].lower()
                where = f"personalizations.{index}.to.{n}.email"
                if address in seen:
                    problems.append((where, "Each email address may only appear once in a request."))
                seen.setdefault(address, index)
                if address in {k.lower() for k in self.plan.reject}:
                    problems.append((where, "Does not contain a valid address."))
        if problems:
            return done(self._errors(400, *problems))

        fault = self.next_fault(is_send=True)
        if fault == "429":
            return done(
                self._errors(
                    429, (None, "too many requests"), **{"Retry-After": f"{self.plan.retry_after:g}"}
                ),
                fault,
            )
        if fault == "503":
            return done(self._errors(503, (None, "service unavailable")), fault)
        if fault == "drop":
            return done(Response(0, action="reset"), fault)

        x_message_id = secrets.token_urlsafe(16)[:22]
        stored = self._store(mail, x_message_id, arrived)
        if self.event_webhook_url:
            self._schedule_events(stored)
        response = Response(202, b"", {"X-Message-Id": x_message_id})
        if fault in AFTER_KINDS:
            if fault == "500":
                response = self._errors(500, (None, "internal error"))
            elif fault == "slow":
                response.delay = self.plan.slow_seconds
            else:
                response = Response(0, action="reset")
        return done(response, fault, tuple(m.outreach_id or m.msg_id for m in stored))

    def _store(self, mail: dict[str, Any], x_message_id: str, arrived: float) -> list[StoredMail]:
        contents = {c["type"]: c["value"] for c in mail.get("content", [])}
        stored: list[StoredMail] = []
        for index, item in enumerate(mail["personalizations"]):
            subs = item.get("substitutions") or {}
            for to in item["to"]:
                address = to["email"]
                stored.append(
                    StoredMail(
                        msg_id=f"{x_message_id}.filterdrecv-fake-{index}",
                        x_message_id=x_message_id,
                        to_email=address,
                        from_email=mail["from"]["email"],
                        subject=_substitute(item.get("subject") or mail.get("subject") or "", subs) or "",
                        text=_substitute(contents.get("text/plain", ""), subs) or "",
                        html=_substitute(contents.get("text/html"), subs),
                        custom_args={**(mail.get("custom_args") or {}), **(item.get("custom_args") or {})},
                        headers={**(mail.get("headers") or {}), **(item.get("headers") or {})},
                        categories=list(mail.get("categories") or []),
                        asm_group_id=(mail.get("asm") or {}).get("group_id"),
                        at=arrived,
                        status=self._status_for(address),
                    )
                )
        with self._store_lock:
            self.mails.extend(stored)
            for m in stored:
                self._by_id.setdefault(m.outreach_id or m.msg_id, []).append(m)
        return stored

    def _status_for(self, address: str) -> str:
        if address.lower() in self.bounces:
            return "bounce"
        return "processed" if address.lower() in self.pending else "delivered"

    def _activity(self, arrived: float, request: Request) -> Response:
        params = request.params
        fault = self.next_fault(is_send=False)
        if fault in ("429", "503", "500", "reset", "drop"):
            if fault == "429":
                response = self._errors(
                    429, (None, "too many requests"), **{"Retry-After": f"{self.plan.retry_after:g}"}
                )
            elif fault in ("503", "500"):
                response = self._errors(int(fault), (None, "service unavailable"))
            else:
                response = Response(0, action="reset")
            self.record(Recorded(arrived, "GET", ACTIVITY, response.status, fault, (), (), (), request.query))
            return response
        query = (params.get("query") or [""])[0]
        try:
            limit = int((params.get("limit") or ["10"])[0])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            response = self._errors(400, ("limit", "limit must be between 1 and 1000"))
            self.record(Recorded(arrived, "GET", ACTIVITY, 400, None, (), (), (), request.query))
            return response
        conditions = []
        for part in re.split(r"\s+OR\s+", query) if query.strip() else []:
            match = _CONDITION.match(part)
            if not match:
                response = self._errors(400, ("query", f"invalid query: {part[:80]}"))
                self.record(Recorded(arrived, "GET", ACTIVITY, 400, None, (), (), (), request.query))
                return response
            conditions.append(match)
        with self._store_lock:
            mails = list(self.mails)

        def hit(m: StoredMail) -> bool:
            if not conditions:
                return True
            for c in conditions:
                if c["arg"] and m.custom_args.get(c["key"]) == c["argvalue"]:
                    return True
                if c["field"] and str(getattr(m, c["field"], "")).lower() == c["value"].lower():
                    return True
                if c["prefix"] is not None and c["prefix"] and m.msg_id.startswith(c["prefix"]):
                    return True
            return False

        rows = [m.activity() for m in sorted(mails, key=lambda m: m.at, reverse=True) if hit(m)][:limit]
        response = Response.json(200, {"messages": rows}, **self._rate_headers())
        self.record(Recorded(arrived, "GET", ACTIVITY, 200, None, (), (), (), request.query))
        return response

    # -- event webhook --------------------------------------------------------------------------

    def events_for(self, mails: list[StoredMail]) -> list[dict[str, Any]]:
        events = []
        for m in mails:
            common = {
                "email": m.to_email,
                "sg_message_id": m.msg_id,
                "smtp-id": f"<{m.x_message_id}@fake.sendgrid>",
                "category": m.categories,
                **m.custom_args,
            }
            stamp = int(m.at)
            events.append(
                {**common, "event": "processed", "timestamp": stamp, "sg_event_id": secrets.token_urlsafe(16)}
            )
            if m.status == "processed":
                continue  # still trying: no final event yet
            if m.status == "bounce":
                final = {"event": "bounce", "reason": "550 5.1.1 mailbox does not exist", "type": "bounce"}
            else:
                final = {"event": "delivered", "response": "250 OK"}
            events.append(
                {**common, **final, "timestamp": stamp + 1, "sg_event_id": secrets.token_urlsafe(16)}
            )
        return events

    def _schedule_events(self, mails: list[StoredMail]) -> None:
        payload = json.dumps(self.events_for(mails)) + "\r\n"
        self.post_later(self.event_delay, self.event_webhook_url or "", payload.encode(), self.sign(payload))


def _sendgrid_message(field_: str, message: str) -> str:
    """SendGrid's wording for the failures adapters act on."""
    if field_.endswith(".email") and "is not a 'email'" in message:
        return "Does not contain a valid address."
    return message
