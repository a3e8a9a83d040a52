"""Twilio through the real ``twilio`` client, with a configurable API base URL.

The client builds absolute ``https://api.twilio.com/...`` URLs; ``BaseUrlHttpClient`` (a
``twilio.http.HttpClient`` backed by a pooled httpx client) rewrites scheme and host to the
configured base, so tests, the demo and drills talk to the local Twilio-compatible fake server
with exactly the requests production sends.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from responses.messaging.notifiers.base import PermanentError, TransientError

log = logging.getLogger("jiaoying.twilio")

# Twilio error codes that say the number itself is wrong, unreachable or has opted out: retrying
# cannot help, the callout moves to the next channel or number.
PERMANENT_CODES = frozenset({
    13223, 13224, 13225, 13227,  # calls: invalid / unreachable / blocked / no international permission
    21211, 21214, 21215, 21216, 21217, 21401, 21407, 21408, 21421, 21612, 21614, 21610, 21635,
})


class BaseUrlHttpClient(HttpClient):
    """A twilio HttpClient on httpx that sends every request to ``base_url`` instead of twilio.com."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 10.0, max_connections: int = 32) -> None:
        super().__init__(log, False, timeout)
        self.base = urlsplit(base_url.rstrip("/")) if base_url else None
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    def rewrite(self, url: str) -> str:
        if self.base is None:
            return url
        parts = urlsplit(url)
        return urlunsplit((self.base.scheme, self.base.netloc, self.base.path + parts.path, parts.query, ""))

    def request(self, method: str, uri: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        resp = self._http.request(
            method.upper(), self.rewrite(uri), params=params, data=data, headers=headers,  # type: ignore[arg-type]
            auth=auth, timeout=timeout or self.timeout, follow_redirects=allow_redirects,
        )
        return Response(resp.status_code, resp.text, resp.headers)

    def close(self) -> None:
        self._http.close()


def classify(exc: TwilioRestException) -> TransientError | PermanentError:
    """Which failures are worth another try: 429 and 5xx yes, a bad number never."""
    code = int(exc.code) if isinstance(exc.code, int) or str(exc.code).isdigit() else None
    reason = f"HTTP {exc.status} code {exc.code}: {exc.msg}"
    if code in PERMANENT_CODES:
        return PermanentError(reason, code=str(code), status=exc.status)
    if exc.status == 429 or exc.status >= 500 or exc.status in (401, 403, 408):
        # 401/403: credentials or account trouble an operator can fix; the message must not be lost.
        return TransientError(reason, code=str(exc.code), status=exc.status)
    return PermanentError(reason, code=str(exc.code), status=exc.status)


class TwilioNotifier:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, from_number: str | None, *,
                 api_base_url: str | None = None, timeout: float = 10.0, max_connections: int = 32) -> None:
        self.http_client = BaseUrlHttpClient(api_base_url, timeout=timeout, max_connections=max_connections)
        self.client = Client(account_sid, auth_token, http_client=self.http_client)
        self.from_number = from_number
        # The client imports its API modules on first use (hundreds of ms); do it now, not while the
        # first paced requests wait on the import lock and then leave together.
        _ = self.client.messages, self.client.calls

    def _call(self, fn: Any, **kwargs: Any) -> str:
        try:
            resource = fn(**kwargs)
        except TwilioRestException as exc:
            raise classify(exc) from exc
        except httpx.TimeoutException as exc:
            raise TransientError(f"timeout: {type(exc).__name__}", code="timeout") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"transport: {type(exc).__name__}: {exc}", code="transport") from exc
        except TwilioException as exc:
            raise TransientError(f"twilio: {exc}", code="client") from exc
        return str(resource.sid)

    def send_sms(self, to: str, body: str, status_callback_url: str | None, *,
                 from_number: str | None = None, validity_seconds: int | None = None) -> str:
        return self._call(
            self.client.messages.create, to=to, from_=from_number or self.from_number, body=body,
            status_callback=status_callback_url, validity_period=validity_seconds,
        )

    def place_call(self, to: str, *, twiml_url: str | None = None, twiml: str | None = None,
                   status_callback_url: str | None = None, from_number: str | None = None) -> str:
        return self._call(
            self.client.calls.create, to=to, from_=from_number or self.from_number, url=twiml_url, twiml=twiml,
            status_callback=status_callback_url,
            status_callback_event=["initiated", "ringing", "answered", "completed"] if status_callback_url else None,
        )

    def close(self) -> None:
        self.http_client.close()
