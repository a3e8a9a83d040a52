"""A Twilio-compatible fake server (ASGI, Starlette).

It answers the Messages and Calls requests the real ``twilio`` client makes, with Twilio-shaped
JSON and error bodies; records every request; counts the request rate per account; injects
faults; and calls back like Twilio does — status callbacks, the call's TwiML URL, the
``<Gather>`` action with the digits pressed, the number's inbound SMS webhook — each request
signed with ``X-Twilio-Signature`` from the account's auth token. ``/_fake/...`` is its control API.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
from contextlib import asynccontextmanager
from dataclasses import asdict
from email.utils import format_datetime
from typing import Any
from urllib.parse import urljoin

import httpx
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from responses.messaging.fake_twilio.state import FakeConfig, FakeTwilio

log = logging.getLogger("jiaoying.fake_twilio")
API = "/2010-04-01/Accounts/{sid}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status)


def _now_rfc2822() -> str:
    return format_datetime(dt.datetime.now(dt.UTC), usegmt=True)


def _segments(body: str) -> int:
    from responses.messaging.sms import count_segments

    return count_segments(body).segments



CALLBACK_CONNECTIONS = 32  # callbacks in flight at once (the client's pool holds as many connections)

class FakeTwilioApp:
    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        self.http: httpx.AsyncClient | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._posting = asyncio.Semaphore(CALLBACK_CONNECTIONS)

    # --- plumbing ----------------------------------------------------------------------------
    def _auth(self, request: Request, sid: str) -> str | None:
        """The account sid if basic auth matches an account and the path's sid, else None."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        token = self.fake.config.accounts.get(user)
        if token is None or token != password or user != sid:
            return None
        return user

    def _token(self, account: str | None) -> str:
        accounts = self.fake.config.accounts
        return accounts.get(account or "", next(iter(accounts.values())))

    async def _signed_post(self, url: str, params: dict[str, str], account: str | None,
                           kind: str) -> httpx.Response | None:
        sig = RequestValidator(self._token(account)).compute_signature(url, params)
        entry: dict[str, Any] = {"kind": kind, "url": url, "params": params, "status": None}
        try:
            assert self.http is not None
            # Callbacks wait for a turn here, not in the HTTP client's pool: thousands queued there (a district's
            # fan-out) made each of its scheduling passes walk the whole queue, the fake spent its CPU on that and
            # the waits ran into the pool timeout.
            async with self._posting:
                resp = await self.http.post(url, data=params, headers={"X-Twilio-Signature": sig})
            entry["status"] = resp.status_code
            entry["response"] = resp.text[:2000]
            return resp
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            return None
        finally:
            with self.fake.lock:
                self.fake.callbacks.append(entry)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _api_guard(self, request: Request, kind: str) -> tuple[str | None, dict[str, str], Response | None]:
        sid = request.path_params["sid"]
        form = await request.form()
        params = {k: str(v) for k, v in form.multi_items()}
        account = self._auth(request, sid)
        path = request.url.path
        if account is None:
            self.fake.record("POST", path, sid, params, 401, "auth")
            return None, params, _error(401, 20003, "Authenticate")
        fault = self.fake.draw_fault()
        if fault == "server_error":
            self.fake.record("POST", path, account, params, 503, fault)
            return account, params, _error(503, 20500, "Service unavailable (injected)")
        if fault == "rate_limited":
            self.fake.record("POST", path, account, params, 429, fault)
            return account, params, _error(429, 20429, "Too Many Requests (injected)")
        if fault == "timeout":
            self.fake.record("POST", path, account, params, 504, fault)
            await asyncio.sleep(self.fake.config.faults.timeout_seconds)
            return account, params, _error(504, 20504, "Gateway timeout (injected)")
        if self.fake.config.response_delay > 0:
            await asyncio.sleep(self.fake.config.response_delay)
        to = params.get("To", "")
        if not to:
            self.fake.record("POST", path, account, params, 400, "missing_to")
            return account, params, _error(400, 21604, "A 'To' phone number is required.")
        bad = self.fake.number_fault(to)
        if bad is not None:
            code, msg = bad
            self.fake.record("POST", path, account, params, 400, f"number_{code}")
            return account, params, _error(400, code, msg)
        return account, params, None

    # --- Twilio API --------------------------------------------------------------------------
    async def messages_create(self, request: Request) -> Response:
        account, params, refused = await self._api_guard(request, "sms")
        if refused is not None:
            return refused
        sid = self.fake.new_sid("SM")
        body = params.get("Body", "")
        msg = {
            "sid": sid, "account_sid": account, "to": params["To"], "from": params.get("From"), "body": body,
            "status": "queued", "num_segments": str(_segments(body)), "num_media": "0", "direction": "outbound-api",
            "api_version": "2010-04-01", "date_created": _now_rfc2822(), "date_updated": _now_rfc2822(),
            "date_sent": None, "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
            "messaging_service_sid": params.get("MessagingServiceSid"),
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"},
            "status_callback": params.get("StatusCallback"),
        }
        with self.fake.lock:
            self.fake.messages[sid] = msg
        self.fake.record("POST", request.url.path, account, params, 201, sid=sid)
        if self.fake.config.callbacks and params.get("StatusCallback"):
            self._spawn(self._sms_progress(msg))
        return JSONResponse({k: v for k, v in msg.items() if k != "status_callback"}, status_code=201)

    async def _sms_progress(self, msg: dict[str, Any]) -> None:
        delay = self.fake.config.callback_delay
        steps = ["sent", "delivered" if self.fake.config.deliver else "undelivered"]
        for status in steps:
            if delay:
                await asyncio.sleep(delay)
            msg["status"] = status
            params = {"AccountSid": msg["account_sid"], "MessageSid": msg["sid"], "SmsSid": msg["sid"],
                      "MessageStatus": status, "SmsStatus": status, "To": msg["to"], "From": msg["from"] or "",
                      "ApiVersion": "2010-04-01"}
            if status == "undelivered":
                params["ErrorCode"] = "30003"
            await self._signed_post(msg["status_callback"], params, msg["account_sid"], "sms_status")

    async def message_fetch(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        if self._auth(request, sid) is None:
            return _error(401, 20003, "Authenticate")
        msg = self.fake.messages.get(request.path_params["msid"])
        if msg is None:
            return _error(404, 20404, "The requested resource was not found")
        return JSONResponse({k: v for k, v in msg.items() if k != "status_callback"})

    async def calls_create(self, request: Request) -> Response:
        account, params, refused = await self._api_guard(request, "voice")
        if refused is not None:
            return refused
        if not params.get("Url") and not params.get("Twiml"):
            self.fake.record("POST", request.url.path, account, params, 400, "missing_url")
            return _error(400, 21205, "Url or Twiml is required")
        sid = self.fake.new_sid("CA")
        call = {
            "sid": sid, "account_sid": account, "to": params["To"], "from": params.get("From"), "status": "queued",
            "direction": "outbound-api", "api_version": "2010-04-01", "date_created": _now_rfc2822(),
            "date_updated": _now_rfc2822(), "start_time": None, "end_time": None, "duration": None, "price": None,
            "uri": f"/2010-04-01/Accounts/{account}/Calls/{sid}.json", "subresource_uris": {},
            "url": params.get("Url"), "twiml": params.get("Twiml"), "status_callback": params.get("StatusCallback"),
            "gather_action": None, "twiml_seen": [],
        }
        with self.fake.lock:
            self.fake.calls[sid] = call
        self.fake.record("POST", request.url.path, account, params, 201, sid=sid)
        self._spawn(self._call_progress(call))
        public = {k: v for k, v in call.items() if k not in ("url", "twiml", "status_callback", "gather_action",
                                                               "twiml_seen")}
        return JSONResponse(public, status_code=201)

    def _call_params(self, call: dict[str, Any], status: str) -> dict[str, str]:
        return {"AccountSid": call["account_sid"], "CallSid": call["sid"], "CallStatus": status, "To": call["to"],
                "From": call["from"] or "", "Direction": "outbound-api", "ApiVersion": "2010-04-01"}

    async def _call_status(self, call: dict[str, Any], status: str, **extra: str) -> None:
        call["status"] = status
        if self.fake.config.callbacks and call["status_callback"]:
            await self._signed_post(call["status_callback"], {**self._call_params(call, status), **extra},
                                    call["account_sid"], "call_status")

    async def _call_progress(self, call: dict[str, Any]) -> None:
        delay = self.fake.config.callback_delay
        for status in ("initiated", "ringing"):
            if delay:
                await asyncio.sleep(delay)
            await self._call_status(call, status)
        if not self.fake.config.auto_answer or call["to"] in self.fake.config.unanswered_numbers:
            await self._call_status(call, "no-answer", CallDuration="0")
            return
        await self._call_status(call, "in-progress")
        twiml = call["twiml"]
        if call["url"]:
            resp = await self._signed_post(call["url"], self._call_params(call, "in-progress"), call["account_sid"],
                                           "voice_url")
            twiml = resp.text if resp is not None and resp.status_code == 200 else None
        self._read_twiml(call, twiml, call["url"])
        if call["gather_action"] is None:
            await self._call_status(call, "completed", CallDuration="5")

    def _read_twiml(self, call: dict[str, Any], twiml: str | None, base: str | None) -> None:
        call["gather_action"] = None
        if not twiml:
            return
        call["twiml_seen"].append(twiml)
        try:
            root = etree.fromstring(twiml.encode(), _PARSER)
        except etree.XMLSyntaxError:
            return
        gather = root.find(".//Gather")
        if gather is not None:
            action = gather.get("action") or base
            call["gather_action"] = urljoin(base or "", action) if action else None
        redirect = root.find(".//Redirect")
        if gather is None and redirect is not None and redirect.text:
            call["redirect"] = urljoin(base or "", redirect.text.strip())

    # --- control API -------------------------------------------------------------------------
    def _find_call(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("call_sid"):
            return self.fake.calls.get(body["call_sid"])
        number = body.get("to") or body.get("number")
        live = [c for c in self.fake.calls.values() if c["to"] == number and c["status"] == "in-progress"]
        return live[-1] if live else None

    async def keypress(self, request: Request) -> Response:
        body = await request.json()
        call = self._find_call(body)
        if call is None:
            return JSONResponse({"error": "no call in progress for that sid/number"}, status_code=404)
        if not call["gather_action"]:
            return JSONResponse({"error": "the call is not waiting for digits"}, status_code=409)
        params = {**self._call_params(call, "in-progress"), "Digits": str(body.get("digits", ""))}
        url = call["gather_action"]
        resp = await self._signed_post(url, params, call["account_sid"], "gather")
        text = resp.text if resp is not None else None
        self._read_twiml(call, text, url)
        if call["gather_action"] is None:
            await self._call_status(call, "completed", CallDuration="20")
        return JSONResponse({"call_sid": call["sid"], "status": resp.status_code if resp is not None else None,
                             "response": text, "waiting_for_digits": call["gather_action"] is not None})

    async def hangup(self, request: Request) -> Response:
        body = await request.json()
        call = self._find_call(body)
        if call is None:
            return JSONResponse({"error": "no call in progress"}, status_code=404)
        await self._call_status(call, str(body.get("status", "completed")), CallDuration="10")
        call["gather_action"] = None
        return JSONResponse({"call_sid": call["sid"], "status": call["status"]})

    async def reply(self, request: Request) -> Response:
        body = await request.json()
        url = body.get("url") or self.fake.config.sms_url
        sender = body.get("from")
        if not url or not sender:
            return JSONResponse({"error": "need 'from' and a configured sms_url (or 'url')"}, status_code=400)
        account = body.get("account_sid") or next(iter(self.fake.config.accounts))
        sid = self.fake.new_sid("SM")
        params = {"AccountSid": account, "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
                  "From": sender, "To": body.get("to") or self.fake.config.phone_number,
                  "Body": str(body.get("body", "")), "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}
        with self.fake.lock:
            self.fake.inbound.append(params)
        resp = await self._signed_post(url, params, account, "inbound_sms")
        return JSONResponse({"message_sid": sid, "status": resp.status_code if resp is not None else None,
                             "response": resp.text if resp is not None else None})

    async def requests_list(self, request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        with self.fake.lock:
            rows = [asdict(r) for r in self.fake.requests if r.seq > since]
        return JSONResponse({"requests": rows})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.fake.stats())

    async def callbacks(self, request: Request) -> Response:
        with self.fake.lock:
            return JSONResponse({"callbacks": list(self.fake.callbacks)})

    async def set_faults(self, request: Request) -> Response:
        body = await request.json()
        try:
            faults = self.fake.set_faults(**body)
        except TypeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(faults))

    async def set_config(self, request: Request) -> Response:
        body = await request.json()
        allowed = {"sms_url", "callbacks", "deliver", "auto_answer", "unanswered_numbers", "callback_delay",
                   "phone_number", "response_delay"}
        unknown = set(body) - allowed
        if unknown:
            return JSONResponse({"error": f"unknown settings {sorted(unknown)}"}, status_code=400)
        for k, v in body.items():
            setattr(self.fake.config, k, v)
        return JSONResponse({k: getattr(self.fake.config, k) for k in allowed})

    async def reset(self, request: Request) -> Response:
        self.fake.reset()
        return JSONResponse({"ok": True})

    async def drain(self) -> None:
        """Wait for callbacks still being sent (tests call this before asserting)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def create_fake_app(config: FakeConfig | None = None, fake: FakeTwilio | None = None) -> Starlette:
    fake = fake or FakeTwilio(config)
    handler = FakeTwilioApp(fake)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> Any:
        handler.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0),
                                         limits=httpx.Limits(max_connections=CALLBACK_CONNECTIONS))
        handler._posting = asyncio.Semaphore(CALLBACK_CONNECTIONS)  # this loop's
        try:
            yield
        finally:
            for t in list(handler.tasks):
                t.cancel()
            await handler.http.aclose()

    routes = [
        Route(f"{API}/Messages.json", handler.messages_create, methods=["POST"]),
        Route(API + "/Messages/{msid}.json", handler.message_fetch, methods=["GET"]),
        Route(f"{API}/Calls.json", handler.calls_create, methods=["POST"]),
        Route("/_fake/keypress", handler.keypress, methods=["POST"]),
        Route("/_fake/hangup", handler.hangup, methods=["POST"]),
        Route("/_fake/reply", handler.reply, methods=["POST"]),
        Route("/_fake/requests", handler.requests_list, methods=["GET"]),
        Route("/_fake/stats", handler.stats, methods=["GET"]),
        Route("/_fake/callbacks", handler.callbacks, methods=["GET"]),
        Route("/_fake/faults", handler.set_faults, methods=["POST"]),
        Route("/_fake/config", handler.set_config, methods=["POST"]),
        Route("/_fake/reset", handler.reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.fake = fake
    app.state.handler = handler
    return RateMeterMiddleware(app, fake)  # type: ignore[return-value]


class RateMeterMiddleware:
    """Counts each API request the moment it reaches the server, before any parsing, per account
    (from the path) — the provider's view of our request rate."""

    def __init__(self, app: Starlette, fake: FakeTwilio) -> None:
        self.app, self.fake = app, fake
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            if path.startswith("/2010-04-01/Accounts/") and scope.get("method") == "POST":
                self.fake.hit(path.split("/")[3])
        await self.app(scope, receive, send)
