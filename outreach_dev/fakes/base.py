"""What both local provider servers share: an HTTP/1.1 keep-alive server in a thread, a record of
every request, spec checks, fault injection and a queue of signed callbacks to post back.

Plain ``http.server.ThreadingHTTPServer``: no framework between the socket and the handler, one
thread per client connection, connections kept alive (the Twilio SDK pools them), so the server
costs well under the SDK's own ~1.5 ms per call.

Control endpoints (for a server started by ``outreach fake-providers`` in another process):
``GET /_fake/requests``, ``GET /_fake/state``, ``POST /_fake/faults`` (a FaultPlan as JSON),
``POST /_fake/reset``.

``FaultPlan.lost_callbacks`` loses that share of the callbacks and events the server would post
(recorded as ``"lost"`` in ``callback_results``): the provider still advances its messages, so
its API reports a status no callback ever brought (what reconciliation has to catch).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import socket
import struct
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict  # HTTP header names are case-insensitive

from outreach_dev.fakes.spec import SpecCheck

log = logging.getLogger(__name__)

# fault kinds: what the server does instead of (or after) handling a request
REFUSE_KINDS = ("429", "503")  # refused before processing: safe to retry
AFTER_KINDS = ("500", "slow", "reset")  # processed, then the answer is lost or an error
BEFORE_KINDS = ("drop",)  # connection reset before processing: nothing created, client can't know
ALL_KINDS = REFUSE_KINDS + AFTER_KINDS + BEFORE_KINDS


@dataclass
class FaultPlan:
    """Faults to inject. ``rate`` is the share of eligible requests that get one of ``kinds``
    (chosen at random with ``seed``); ``script`` lists faults for the next requests in order;
    ``reject`` maps a recipient to a permanent error (Twilio code, or a SendGrid message)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = REFUSE_KINDS
    retry_after: float = 1.0
    slow_seconds: float = 3.0
    script: list[str] = field(default_factory=list)
    reject: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    only_sends: bool = True  # faults only on the send endpoint, not on listings
    latency: float = 0.0  # seconds added to every answer to a send (a slower provider)
    lost_callbacks: float = 0.0  # share of status callbacks / event posts never sent

    def __post_init__(self) -> None:
        unknown = [k for k in [*self.kinds, *self.script] if k not in ALL_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(ALL_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if not 0.0 <= self.lost_callbacks <= 1.0:
            raise ValueError("lost_callbacks must be between 0 and 1")
        self.kinds = tuple(self.kinds)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        return cls(**{k: (tuple(v) if k == "kinds" else v) for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the server saw it (``at``: time.time() on arrival)."""

    at: float
    method: str
    path: str
    status: int
    fault: str | None
    created: tuple[str, ...]  # ids of what it created (message SIDs, our outreach ids for mail)
    recipients: tuple[str, ...]
    spec_errors: tuple[str, ...]
    query: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # "reset": close with RST instead of answering; "slow": delay
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})


class FakeProvider:
    """Base of the Twilio and SendGrid servers: state, faults, record, callbacks, HTTP plumbing."""

    name = "fake"

    def __init__(
        self, spec_file: str, *, host: str = "127.0.0.1", port: int = 0, strict: bool = False
    ) -> None:
        self.spec = SpecCheck(spec_file)
        self.strict = strict
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.plan = FaultPlan()
        self._random = random.Random()
        self._script: deque[str] = deque()
        self._callbacks: queue.Queue[tuple[float, str, bytes, dict[str, str]] | None] = queue.Queue()
        self.callback_results: list[tuple[str, int | str]] = []
        self._httpd = _Server((host, port), _Handler)
        self._httpd.provider = self
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> FakeProvider:
        serve = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=f"{self.name}-http", daemon=True
        )
        post = threading.Thread(target=self._post_callbacks, name=f"{self.name}-callbacks", daemon=True)
        self._threads = [serve, post]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._callbacks.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and record ----------------------------------------------------------------------

    def set_faults(self, plan: FaultPlan | None = None, **kwargs: Any) -> FaultPlan:
        plan = plan or FaultPlan(**kwargs)
        with self.lock:
            self.plan = plan
            self._random = random.Random(plan.seed)
            self._script = deque(plan.script)
        return plan

    def next_fault(self, is_send: bool) -> str | None:
        with self.lock:
            if self.plan.only_sends and not is_send:
                return None
            if self._script:
                return self._script.popleft()
            if self.plan.rate and self._random.random() < self.plan.rate:
                return self._random.choice(self.plan.kinds)
        return None

    def record(self, entry: Recorded) -> None:
        with self.lock:
            self.requests.append(entry)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.callback_results.clear()
        self.set_faults(FaultPlan())
        self.clear_state()

    def clear_state(self) -> None:  # provider-specific stores
        pass

    def state(self) -> dict[str, Any]:  # provider-specific summary for /_fake/state
        return {}

    def check_spec(self, request: Request, **parsed: Any) -> list[str]:
        """Fast spec check always; the full openapi-core check too when ``strict``."""
        errors = [
            f"{field_}: {message}" if field_ else message
            for field_, message in self.spec.fast_errors(
                request.method, request.path, request.params, **parsed
            )
        ]
        if self.strict:
            errors += self.spec.strict_errors(
                request.method, request.path, request.query, request.headers, request.body or None
            )
        return errors

    def response_problems(self, request: Request, response: Response) -> list[str]:
        """In strict mode, where the response body departs from the spec (prefixed 'response')."""
        if not self.strict or response.action or not response.body:
            return []
        try:
            body = json.loads(response.body)
        except ValueError:
            return ["response: body is not JSON"]
        return [
            f"response: {e}"
            for e in self.spec.response_errors(request.method, request.path, response.status, body)
        ]

    # -- callbacks ------------------------------------------------------------------------------

    def post_later(self, delay: float, url: str, body: bytes, headers: dict[str, str]) -> None:
        with self.lock:
            lost = bool(self.plan.lost_callbacks) and self._random.random() < self.plan.lost_callbacks
            if lost:
                self.callback_results.append((url.split("?")[0], "lost"))
        if not lost:
            self._callbacks.put((time.monotonic() + delay, url, body, headers))

    def _post_callbacks(self) -> None:
        while True:
            item = self._callbacks.get()
            if item is None:
                return
            due, url, body, headers = item
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=5) as response:
                    outcome: int | str = response.status
            except Exception as exc:  # the receiver may be down: record, never crash the server
                outcome = getattr(exc, "code", None) or type(exc).__name__
            with self.lock:
                self.callback_results.append((url.split("?")[0], outcome))

    # -- HTTP -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def control(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/_fake/requests":
            with self.lock:
                rows = [r.to_json() for r in self.requests]
            return Response.json(200, rows)
        if request.method == "GET" and request.path == "/_fake/state":
            return Response.json(200, self.state())
        if request.method == "POST" and request.path == "/_fake/faults":
            try:
                plan = self.set_faults(FaultPlan.from_json(json.loads(request.body or b"{}")))
            except (TypeError, ValueError) as exc:
                return Response.json(400, {"error": str(exc)})
            return Response.json(200, asdict(plan))
        if request.method == "POST" and request.path == "/_fake/reset":
            self.reset()
            return Response.json(200, {"reset": True})
        return Response.json(404, {"error": f"no control endpoint {request.method} {request.path}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    provider: FakeProvider


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect from the real APIs
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # request lines carry phone numbers in query strings: never log them

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command, parts.path, parts.query, CaseInsensitiveDict(self.headers.items()), body
        )
        provider = self.server.provider
        try:
            if parts.path.startswith("/_fake/"):
                response = provider.control(request)
            else:
                response = provider.handle(request)
        except Exception:
            log.exception("%s fake server error", provider.name)
            response = Response.json(500, {"message": "fake server error"})
        if response.action == "reset":
            self._reset()
            return
        delay = response.delay + (provider.plan.latency if request.method == "POST" else 0.0)
        if delay:
            time.sleep(delay)
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def _reset(self) -> None:
        """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.rfile.close()  # drop the makefile reference so close() really closes now
            self.connection.close()
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionResetError, BrokenPipeError, OSError):
            self.close_connection = True


def basic_auth(headers: Mapping[str, str]) -> tuple[str, str] | None:
    import base64

    value = headers.get("Authorization") or ""
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


Clock = Callable[[], float]
