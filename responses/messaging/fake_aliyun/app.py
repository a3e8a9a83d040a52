"""A fake Alibaba Cloud SMS and voice API (ASGI, Starlette) for tests, the demo and drills.

It answers the RPC requests the official SDKs send (``POST /`` with the action in ``x-acs-action``:
``SendSms``, ``SingleCallByTts``, ``IvrCall``) after checking their ACS3-HMAC-SHA256 signature in full: the
access key must exist, the signed headers must include the ones the provider requires, the body must match
``x-acs-content-sha256``, the signature is recomputed with the key's secret, ``x-acs-date`` must be within
the allowed skew and a signature nonce is accepted once. It counts requests per access key in any 1-second
window (``max_per_second``), injects seeded faults, and pushes what the provider pushes — delivery receipts,
call records and IVR keypresses, replies — as the documented JSON arrays (built by
``responses.messaging.aliyun_push``) to ``{push_base_url}/{kind}``. ``/_fake/...`` is its control API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from responses.messaging import aliyun_push as push
from responses.messaging.fake_aliyun.state import FakeAliyun, FakeConfig
from responses.messaging.sms import find_links

log = logging.getLogger("jiaoying.fake_aliyun")

ALGORITHM = "ACS3-HMAC-SHA256"
REQUIRED_SIGNED = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce",
                   "x-acs-version")
VERSION = "2017-05-25"
PARAM_LIMIT = 35
_AUTH = re.compile(r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)$")
_MAINLAND = re.compile(r"^1\d{10}$")


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, *, fault: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fault, self.headers = status, code, message, fault, headers


def _body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), **extra}


def canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(params[k], safe='~', encoding='utf-8')}" for k in sorted(params))


def expected_signature(secret: str, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                       signed: list[str], payload_hash: str) -> str:
    """The signature the SDK computes (``alibabacloud_tea_openapi.utils.Utils.get_authorization``)."""
    canon_headers = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed)
    canonical = (f"{method}\n{path or '/'}\n{canonical_query(query)}\n{canon_headers}\n{';'.join(signed)}\n"
                 f"{payload_hash}")
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


class FakeAliyunApp:
    def __init__(self, fake: FakeAliyun) -> None:
        self.fake = fake
        self.http: httpx.AsyncClient | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    # --- signature -------------------------------------------------------------------------------
    def verify(self, request: Request, body: bytes) -> str:
        """The access key id of a correctly signed request; raises ``Refusal`` otherwise."""
        m = _AUTH.match(request.headers.get("authorization", ""))
        if m is None:
            raise Refusal(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.",
                          fault="auth")
        ak, signed_text, signature = m.groups()
        secret = self.fake.config.accounts.get(ak)
        if secret is None:
            raise Refusal(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", fault="auth")
        self.fake.hit(ak)
        signed = signed_text.split(";")
        missing = [h for h in REQUIRED_SIGNED if h not in signed]
        if missing or signed != sorted(signed):
            raise Refusal(400, "IncompleteSignature", f"Signed headers missing or unsorted: {missing}", fault="auth")
        headers = {k.lower(): v for k, v in request.headers.items()}
        payload_hash = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") != payload_hash:
            raise Refusal(400, "SignatureDoesNotMatch", "x-acs-content-sha256 does not match the body.", fault="auth")
        query = {k: v for k, v in request.query_params.multi_items()}
        want = expected_signature(secret, request.method, request.url.path, query, headers, signed, payload_hash)
        if not hmac.compare_digest(want, signature):
            raise Refusal(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation.",
                          fault="auth")
        try:
            sent = dt.datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            raise Refusal(400, "InvalidTimeStamp.Format", "x-acs-date is not ISO 8601 UTC.", fault="auth") from None
        if abs((dt.datetime.now(dt.UTC) - sent).total_seconds()) > self.fake.config.max_skew_seconds:
            raise Refusal(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.",
                          fault="auth")
        if self.fake.nonce_used(headers["x-acs-signature-nonce"]):
            raise Refusal(400, "SignatureNonceUsed", "Specified signature nonce was used already.", fault="auth")
        return ak

    # --- the API ---------------------------------------------------------------------------------
    async def api(self, request: Request) -> Response:
        body = await request.body()
        action = request.headers.get("x-acs-action", "")
        params = {k: v for k, v in request.query_params.multi_items()}
        if body and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            params.update({k: str(v) for k, v in (await request.form()).multi_items()})
        account: str | None = None
        try:
            account = self.verify(request, body)
            if request.headers.get("x-acs-version") != VERSION:
                raise Refusal(400, "InvalidVersion", f"Specified version {request.headers.get('x-acs-version')} "
                              "is not valid.")
            handler = {"SendSms": self.send_sms, "SingleCallByTts": self.single_call_by_tts,
                       "IvrCall": self.ivr_call}.get(action)
            if handler is None:
                raise Refusal(400, "InvalidAction.NotFound", f"Specified api {action} is not found.")
            await self._faults(action)
            if self.fake.config.response_delay > 0:
                await asyncio.sleep(self.fake.config.response_delay)
            answer, pid = handler(account, params)
        except Refusal as r:
            self.fake.record(action, account, params, r.status, r.code, r.fault)
            return JSONResponse(_body(r.code, r.message), status_code=r.status, headers=r.headers)
        self.fake.record(action, account, params, 200, "OK", provider_id=pid)
        return JSONResponse(answer)

    async def _faults(self, action: str) -> None:
        fault = self.fake.draw_fault()
        if fault == "throttled":
            raise _BusinessError("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", fault="throttled")
        if fault == "rate_limited":
            raise Refusal(429, "Throttling.User", "Request was denied due to user flow control.",
                          fault="rate_limited",
                          headers={"x-acs-retry-after": str(self.fake.config.faults.retry_after_ms)})
        if fault == "server_error":
            if self.fake.server_error_form() == "http":
                raise Refusal(503, "ServiceUnavailable", "The request has failed due to a temporary failure of "
                              "the server.", fault="server_error")
            raise _BusinessError("isp.SYSTEM_ERROR", "系统错误", fault="server_error")
        if fault == "timeout":
            await asyncio.sleep(self.fake.config.faults.timeout_seconds)
            raise Refusal(504, "GatewayTimeout", "The request timed out (injected).", fault="timeout")

    def _number(self, raw: str, *, voice: bool) -> str:
        n = raw.strip()
        if n.startswith("+86"):
            n = n[3:]
        elif n.startswith("86") and len(n) == 13:
            n = n[2:]
        if not _MAINLAND.match(n) or self.fake.invalid(n):
            code = "isv.CALLED_NUMBER_ILLEGAL" if voice else "isv.MOBILE_NUMBER_ILLEGAL"
            raise _BusinessError(code, f"{raw} invalid mobile number", fault="invalid_number")
        return n

    @staticmethod
    def _template_params(raw: str | None, field: str) -> dict[str, str]:
        if raw is None or raw == "":
            return {}
        try:
            values = json.loads(raw)
        except ValueError:
            raise _BusinessError("isv.INVALID_JSON_PARAM", f"{field} 不是合法 JSON") from None
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise _BusinessError("isv.INVALID_JSON_PARAM", f"{field} 须为字符串值的 JSON 对象")
        for k, v in values.items():
            if not v.strip():
                raise _BusinessError("isv.TEMPLATE_PARAMS_ILLEGAL", f"变量 {k} 为空")
            if len(v) > PARAM_LIMIT:
                raise _BusinessError("isv.PARAM_LENGTH_LIMIT", f"变量 {k} 超过 {PARAM_LIMIT} 字")
            if find_links(v):
                raise _BusinessError("isv.PARAM_NOT_SUPPORT_URL", f"变量 {k} 含链接")
        return values

    def send_sms(self, account: str, p: dict[str, str]) -> tuple[dict[str, Any], str]:
        if not p.get("PhoneNumbers"):
            raise Refusal(400, "MissingPhoneNumbers", "PhoneNumbers is mandatory for this action.")
        if not p.get("SignName"):
            raise _BusinessError("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法")
        if not p.get("TemplateCode", "").startswith("SMS_"):
            raise _BusinessError("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法")
        numbers = [self._number(n, voice=False) for n in p["PhoneNumbers"].split(",")]
        values = self._template_params(p.get("TemplateParam"), "TemplateParam")
        biz_id = self.fake.new_id("sms")
        now = dt.datetime.now(dt.UTC)
        with self.fake.lock:
            self.fake.sms[biz_id] = {"biz_id": biz_id, "account": account, "numbers": numbers,
                                     "sign_name": p["SignName"], "template_code": p["TemplateCode"],
                                     "params": values, "out_id": p.get("OutId"), "at": now.isoformat()}
        if self.fake.config.auto_report:
            deliver = self.fake.config.deliver
            for n in numbers:
                self._push_later("sms-report", push.sms_report(
                    phone=n, biz_id=biz_id, out_id=p.get("OutId"), success=deliver, send_time=now,
                    report_time=now, err_code=None if deliver else "UNDELIVERED"))
        return _body("OK", "OK", BizId=biz_id), biz_id

    def _call(self, account: str, p: dict[str, str], kind: str, code_field: str,
              params_field: str) -> tuple[dict[str, Any], str]:
        if not p.get("CalledNumber"):
            raise Refusal(400, "MissingCalledNumber", "CalledNumber is mandatory for this action.")
        number = self._number(p["CalledNumber"], voice=True)
        if not p.get(code_field, "").startswith("TTS_"):
            raise _BusinessError("isv.TTS_TEMPLATE_ILLEGAL", "语音模板不合法")
        values = self._template_params(p.get(params_field), params_field)
        menu = {}
        i = 1
        while f"MenuKeyMap.{i}.Key" in p:
            menu[p[f"MenuKeyMap.{i}.Key"]] = p.get(f"MenuKeyMap.{i}.Code", "")
            i += 1
        if kind == "ivr" and not menu:
            raise _BusinessError("isv.INVALID_PARAMETERS", "MenuKeyMap 不能为空")
        call_id = self.fake.new_id("call")
        now = dt.datetime.now(dt.UTC)
        call = {"call_id": call_id, "account": account, "kind": kind, "number": number, "code": p[code_field],
                "params": values, "menu": menu, "out_id": p.get("OutId"), "show": p.get("CalledShowNumber", ""),
                "at": now.isoformat(), "state": "calling", "dtmf": None}
        with self.fake.lock:
            self.fake.calls[call_id] = call
        if self.fake.config.auto_report:
            if number in self.fake.config.unanswered_numbers or f"+86{number}" in self.fake.config.unanswered_numbers:
                self._end_call(call, push.NO_ANSWER)
            elif kind == "tts":
                self._end_call(call, push.LISTENED)
            else:  # an IVR call is answered and waits for a key (``/_fake/keypress``) or a hang-up
                call["state"] = "answered"
                self._push_later("ivr", push.voice_call_status(call_id=call_id, status_code=push.ANSWERED,
                                                               time=now, out_id=call["out_id"]))
        return _body("OK", "OK", CallId=call_id), call_id

    def single_call_by_tts(self, account: str, p: dict[str, str]) -> tuple[dict[str, Any], str]:
        return self._call(account, p, "tts", "TtsCode", "TtsParam")

    def ivr_call(self, account: str, p: dict[str, str]) -> tuple[dict[str, Any], str]:
        return self._call(account, p, "ivr", "StartCode", "StartTtsParams")

    def _end_call(self, call: dict[str, Any], status: str, dtmf: str | None = None) -> None:
        now = dt.datetime.now(dt.UTC)
        started = dt.datetime.fromisoformat(call["at"])
        answered = status in (push.LISTENED, push.HUNG_UP_EARLY, push.KEY_TIMEOUT)
        call["state"] = "ended"
        self._push_later("voice-report", push.voice_report(
            phone=call["number"], call_id=call["call_id"], out_id=call["out_id"], status_code=status,
            caller=call["show"] or "", originate_time=started, start_time=started if answered else None,
            end_time=now, dtmf=dtmf))

    # --- pushes ----------------------------------------------------------------------------------
    def _push_later(self, kind: str, items: list[dict[str, Any]]) -> None:
        if not self.fake.config.push_base_url:
            return
        task = asyncio.get_running_loop().create_task(self._push(kind, items, self.fake.config.report_delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _push(self, kind: str, items: list[dict[str, Any]], delay: float = 0.0) -> dict[str, Any]:
        if delay > 0:
            await asyncio.sleep(delay)
        url = f"{(self.fake.config.push_base_url or '').rstrip('/')}/{kind}"
        entry: dict[str, Any] = {"kind": kind, "url": url, "items": items, "status": None}
        try:
            assert self.http is not None
            resp = await self.http.post(url, content=json.dumps(items, ensure_ascii=False).encode(),
                                        headers={"content-type": "application/json;charset=utf-8"})
            entry["status"] = resp.status_code
            entry["response"] = resp.text[:2000]
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        with self.fake.lock:
            self.fake.pushes.append(entry)
        return entry

    # --- control API -----------------------------------------------------------------------------
    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise Refusal(400, "BadJson", "body must be a JSON object") from None
        if not isinstance(data, dict):
            raise Refusal(400, "BadJson", "body must be a JSON object")
        return data

    def _find_call(self, data: dict[str, Any]) -> dict[str, Any]:
        with self.fake.lock:
            if data.get("call_id"):
                call = self.fake.calls.get(str(data["call_id"]))
            else:
                to = str(data.get("to", "")).removeprefix("+86")
                found = [c for c in self.fake.calls.values() if c["number"] == to]
                call = found[-1] if found else None
        if call is None:
            raise Refusal(404, "NoSuchCall", "no such call")
        return call

    async def _control(self, request: Request, fn: Any) -> Response:
        try:
            return JSONResponse(await fn(await self._json(request)))
        except Refusal as r:
            return JSONResponse({"error": r.code, "message": r.message}, status_code=r.status)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": "BadRequest", "message": str(exc)}, status_code=400)

    async def keypress(self, request: Request) -> Response:
        async def run(data: dict[str, Any]) -> dict[str, Any]:
            call = self._find_call(data)
            digits = str(data.get("digits", ""))
            if not digits:
                raise Refusal(400, "BadRequest", "digits required")
            if call["kind"] != "ivr":
                raise Refusal(409, "NotIvr", "keys are taken only in IVR calls")
            call["dtmf"] = digits
            entry = await self._push("ivr", push.ivr_keypress(call_id=call["call_id"], dtmf=digits,
                                                               time=dt.datetime.now(dt.UTC), out_id=call["out_id"]))
            if data.get("hangup", True):
                call["state"] = "ended"
                started = dt.datetime.fromisoformat(call["at"])
                await self._push("voice-report", push.voice_report(
                    phone=call["number"], call_id=call["call_id"], out_id=call["out_id"], status_code=push.LISTENED,
                    caller=call["show"] or "", originate_time=started, start_time=started,
                    end_time=dt.datetime.now(dt.UTC), dtmf=digits))
            return {"call_id": call["call_id"], "push": entry}
        return await self._control(request, run)

    async def hangup(self, request: Request) -> Response:
        async def run(data: dict[str, Any]) -> dict[str, Any]:
            call = self._find_call(data)
            status = str(data.get("status_code") or push.KEY_TIMEOUT)
            started = dt.datetime.fromisoformat(call["at"])
            answered = status in (push.LISTENED, push.HUNG_UP_EARLY, push.KEY_TIMEOUT)
            call["state"] = "ended"
            entry = await self._push("voice-report", push.voice_report(
                phone=call["number"], call_id=call["call_id"], out_id=call["out_id"], status_code=status,
                caller=call["show"] or "", originate_time=started, start_time=started if answered else None,
                end_time=dt.datetime.now(dt.UTC), dtmf=call["dtmf"]))
            return {"call_id": call["call_id"], "push": entry}
        return await self._control(request, run)

    async def reply(self, request: Request) -> Response:
        async def run(data: dict[str, Any]) -> dict[str, Any]:
            phone, text = str(data.get("from", "")), data.get("text")
            if not phone or not isinstance(text, str):
                raise Refusal(400, "BadRequest", "from and text required")
            sign = None
            with self.fake.lock:
                sent = [s for s in self.fake.sms.values() if phone.removeprefix("+86") in s["numbers"]]
                if sent:
                    sign = sent[-1]["sign_name"]
            entry = await self._push("sms-up", push.sms_up(
                phone=phone, content=text, send_time=dt.datetime.now(dt.UTC),
                sequence_id=self.fake.next_sequence(), dest_code=self.fake.config.dest_code, sign_name=sign))
            return {"push": entry}
        return await self._control(request, run)

    async def sms_report(self, request: Request) -> Response:
        async def run(data: dict[str, Any]) -> dict[str, Any]:
            with self.fake.lock:
                if data.get("biz_id"):
                    sms = self.fake.sms.get(str(data["biz_id"]))
                else:
                    to = str(data.get("to", "")).removeprefix("+86")
                    found = [s for s in self.fake.sms.values() if to in s["numbers"]]
                    sms = found[-1] if found else None
            if sms is None:
                raise Refusal(404, "NoSuchSms", "no such SMS")
            success = bool(data.get("success", True))
            phone = str(data.get("to") or sms["numbers"][0]).removeprefix("+86")
            entry = await self._push("sms-report", push.sms_report(
                phone=phone, biz_id=sms["biz_id"], out_id=sms["out_id"], success=success,
                err_code=data.get("err_code"), send_time=dt.datetime.fromisoformat(sms["at"]),
                report_time=dt.datetime.now(dt.UTC)))
            return {"biz_id": sms["biz_id"], "push": entry}
        return await self._control(request, run)

    async def set_faults(self, request: Request) -> Response:
        async def run(data: dict[str, Any]) -> dict[str, Any]:
            return asdict(self.fake.set_faults(**data))
        return await self._control(request, run)

    async def set_config(self, request: Request) -> Response:
        allowed = {"push_base_url", "auto_report", "deliver", "unanswered_numbers", "report_delay", "response_delay",
                   "dest_code"}

        async def run(data: dict[str, Any]) -> dict[str, Any]:
            unknown = set(data) - allowed
            if unknown:
                raise Refusal(400, "BadRequest", f"unknown settings: {', '.join(sorted(unknown))}")
            for k, v in data.items():
                setattr(self.fake.config, k, v)
            return {k: getattr(self.fake.config, k) for k in sorted(allowed)}
        return await self._control(request, run)

    async def reset(self, _request: Request) -> Response:
        self.fake.reset()
        return JSONResponse({"ok": True})

    async def stats(self, _request: Request) -> Response:
        return JSONResponse(self.fake.stats())

    async def requests_list(self, _request: Request) -> Response:
        with self.fake.lock:
            return JSONResponse([asdict(r) for r in self.fake.requests])

    async def pushes(self, _request: Request) -> Response:
        with self.fake.lock:
            return JSONResponse(list(self.fake.pushes))

    async def records(self, _request: Request) -> Response:
        with self.fake.lock:
            return JSONResponse({"sms": list(self.fake.sms.values()), "calls": list(self.fake.calls.values())})


class _BusinessError(Refusal):
    """The provider's business errors come back as HTTP 200 with a Code other than OK."""

    def __init__(self, code: str, message: str, *, fault: str | None = None) -> None:
        super().__init__(200, code, message, fault=fault)


def create_fake_app(config: FakeConfig | None = None, fake: FakeAliyun | None = None) -> Starlette:
    fake = fake or FakeAliyun(config)
    handler = FakeAliyunApp(fake)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> Any:
        handler.http = httpx.AsyncClient(timeout=10.0)
        try:
            yield
        finally:
            for task in list(handler.tasks):
                task.cancel()
            await handler.http.aclose()

    app = Starlette(routes=[
        Route("/", handler.api, methods=["POST", "GET"]),
        Route("/_fake/keypress", handler.keypress, methods=["POST"]),
        Route("/_fake/hangup", handler.hangup, methods=["POST"]),
        Route("/_fake/reply", handler.reply, methods=["POST"]),
        Route("/_fake/sms-report", handler.sms_report, methods=["POST"]),
        Route("/_fake/faults", handler.set_faults, methods=["POST"]),
        Route("/_fake/config", handler.set_config, methods=["POST"]),
        Route("/_fake/reset", handler.reset, methods=["POST"]),
        Route("/_fake/stats", handler.stats, methods=["GET"]),
        Route("/_fake/requests", handler.requests_list, methods=["GET"]),
        Route("/_fake/pushes", handler.pushes, methods=["GET"]),
        Route("/_fake/records", handler.records, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.fake = fake
    app.state.handler = handler
    return app
