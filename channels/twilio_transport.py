"""An HTTP transport for the Twilio SDK on urllib3, through the SDK's ``http_client`` extension point.

The SDK's default client goes through ``requests``: per call it re-reads the environment for
proxies, prepares the request through sessions, hooks, cookie jars and adapters. That is about
0.35 ms of CPU per message, half of all the SDK costs us (measured with ``bench/bench_dispatch.py``:
0.66 ms CPU per message on the default client, 0.31 ms on this one). Sending is CPU-bound on the
client side, so that half is throughput.

What it keeps from the default client: the SDK's own request logging (the ``twilio.http_client``
logger, masked by the adapter), one connection pool per client (clients are per thread), the
environment's proxy and CA bundle (read once, when the client is made), and no retries or
redirects of its own (retries are the adapter's decision: a POST is retried only when it cannot
have left). What it adds: the last response's headers, for 429's ``Retry-After``.

Errors are urllib3's own (``urllib3.exceptions``): ``channels.twilio_sms.classify_network_error``
tells the ones raised before the request left from the ones after.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import certifi
import urllib3
from requests.utils import get_environ_proxies
from twilio.http import HttpClient
from twilio.http.response import Response

JSON_TYPES = ("application/json", "application/scim+json")


class Urllib3HttpClient(HttpClient):
    """One per thread, like the SDK's Client: a pool with one connection to the API host."""

    last_headers: Mapping[str, str] = {}

    def __init__(self, *, api_url: str, timeout: float, logger: logging.Logger | None = None) -> None:
        super().__init__(
            logger=logger or logging.getLogger("twilio.http_client"), is_async=False, timeout=timeout
        )
        proxies = get_environ_proxies(api_url)  # honours HTTPS_PROXY / NO_PROXY, as requests would
        proxy = proxies.get(api_url.split(":", 1)[0]) or proxies.get("all")
        ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        options: dict[str, Any] = {"maxsize": 1, "retries": False, "ca_certs": ca_certs}
        self.pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        timeout = self.timeout if timeout is None else timeout
        if timeout is not None and timeout <= 0:
            raise ValueError(timeout)
        headers = dict(headers or {})
        # the SDK's request logging formats its lines before asking the logger: only when it logs
        logging_on = self.logger.isEnabledFor(logging.INFO)
        if logging_on:
            self.log_request({"method": method.upper(), "url": uri, "params": params, "headers": headers})
        if auth:
            headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        url = f"{uri}?{urlencode(params, doseq=True)}" if params else uri
        body = None
        if data is not None:
            if headers.get("Content-Type") in JSON_TYPES:
                body = json.dumps(data)
            else:
                body = urlencode(data, doseq=True)
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self.last_headers = {}
        answer = self.pool.request(
            method.upper(),
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),  # what requests does with one number
            retries=False,
            redirect=allow_redirects,
        )
        self.last_headers = answer.headers
        response = Response(answer.status, answer.data.decode("utf-8", errors="replace"), answer.headers)
        if logging_on:
            self.log_response(answer.status, response)
        self._test_only_last_response = response
        return response

    def close(self) -> None:
        self.pool.clear()
