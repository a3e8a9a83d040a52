"""The fake Alibaba Cloud through the real SDKs: the signature is checked in full, requests are counted per
access key, seeded faults come back as the provider sends them (and become the right errors), and the fake
pushes receipts, replies and keypresses as the documented JSON arrays."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from responses.messaging import aliyun_push as push
from responses.messaging.fake_aliyun.server import FakeAliyunServer
from responses.messaging.fake_twilio.server import ThreadedServer
from responses.messaging.notifiers.base import PermanentError, TransientError

PARAMS = {"kind": "callout", "warning": "红色暴雨预警", "areas": "城关镇、东关村", "minutes": "30"}
TO = "+8613800138000"


class Receiver:
    """Jiaoying's push endpoints stood in for: records each push, answers like the real ones."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

        async def take(request: Request) -> JSONResponse:
            with self.lock:
                self.got.append((request.path_params["kind"], json.loads(await request.body())))
            return JSONResponse({"code": 0, "msg": "接收成功"})

        self.server = ThreadedServer(Starlette(routes=[Route("/webhooks/aliyun/tok/{kind}", take,
                                                             methods=["POST"])]))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [item for k, items in self.got if k == kind for item in items]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.server.start()
    yield r
    r.server.stop()


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_sms_through_the_sdk_is_signed_templated_and_recorded(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    n = al.notifier(fake_aliyun.endpoint)
    biz_id = n.send_sms(TO, "ignored body", None, template="callout_sms", params=PARAMS, out_id="41")
    sms = fake_aliyun.fake.sms[biz_id]
    assert sms["numbers"] == ["13800138000"] and sms["sign_name"] == al.sign_name
    assert sms["template_code"] == "SMS_100" and sms["out_id"] == "41"
    assert sms["params"] == {"warning": "红色暴雨预警", "areas": "城关镇、东关村", "minutes": "30"}
    rec = fake_aliyun.fake.requests[-1]
    assert (rec.action, rec.account, rec.code) == ("SendSms", al.access_key_id, "OK")


def test_voice_callout_is_an_ivr_call_with_keys_1_and_2(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    n = al.notifier(fake_aliyun.endpoint)
    call_id = n.place_call(TO, template="callout_voice", params=PARAMS, out_id="42")
    call = fake_aliyun.fake.calls[call_id]
    assert call["kind"] == "ivr" and call["code"] == "TTS_300" and call["out_id"] == "42"
    assert call["menu"] == {"1": "TTS_301", "2": "TTS_302"}
    assert call["params"]["warning"] == "红色暴雨预警"
    measure = n.place_call(TO, template="measure_voice", out_id="43",
                           params={"kind": "measure_order", "areas": "城关镇", "unit": "城关镇政府",
                                   "label": "转移群众", "deadline": "18:30"})
    assert fake_aliyun.fake.calls[measure]["kind"] == "tts"
    assert fake_aliyun.fake.calls[measure]["code"] == "TTS_201"


def test_wrong_secret_unknown_key_and_unsigned_requests_are_refused(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    wrong = al.notifier(fake_aliyun.endpoint, access_key_secret="not-the-secret")
    with pytest.raises(TransientError) as exc:
        wrong.send_sms(TO, "", None, template="callout_sms", params=PARAMS)
    assert exc.value.code == "SignatureDoesNotMatch"
    unknown = al.notifier(fake_aliyun.endpoint, access_key_id="LTAInobody")
    with pytest.raises(TransientError) as exc:
        unknown.send_sms(TO, "", None, template="callout_sms", params=PARAMS)
    assert exc.value.code == "InvalidAccessKeyId.NotFound"
    bare = httpx.post(f"{fake_aliyun.url}/?PhoneNumbers=13800138000", headers={"x-acs-action": "SendSms"})
    assert bare.status_code == 400 and bare.json()["Code"] == "IncompleteSignature"
    assert fake_aliyun.fake.sms == {}


def test_a_replayed_nonce_is_refused(fake_aliyun: FakeAliyunServer, al: Any, monkeypatch: Any) -> None:
    from alibabacloud_tea_openapi.utils import Utils

    n = al.notifier(fake_aliyun.endpoint)
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "same-nonce"))
    n.send_sms(TO, "", None, template="callout_sms", params=PARAMS)
    with pytest.raises(TransientError) as exc:
        n.send_sms(TO, "", None, template="callout_sms", params=PARAMS)
    assert exc.value.code == "SignatureNonceUsed"
    assert len(fake_aliyun.fake.sms) == 1


def test_tampered_query_breaks_the_signature(fake_aliyun: FakeAliyunServer, al: Any, monkeypatch: Any) -> None:
    """A request changed after signing (a parameter added on the way) is refused."""
    from darabonba.core import DaraCore

    real = DaraCore.do_action

    def tamper(request: Any, runtime: Any = None) -> Any:
        request.query["PhoneNumbers"] = "13900000000"
        return real(request, runtime)

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(tamper))
    with pytest.raises(TransientError) as exc:
        al.notifier(fake_aliyun.endpoint).send_sms(TO, "", None, template="callout_sms", params=PARAMS)
    assert exc.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize(("fault", "kind", "code", "wait"), [
    ("throttled", TransientError, "isv.BUSINESS_LIMIT_CONTROL", 60.0),
    ("rate_limited", TransientError, "Throttling.User", 0.2),
])
def test_throttling_faults_become_throttled_errors(fake_aliyun: FakeAliyunServer, al: Any, fault: str,
                                                   kind: type, code: str, wait: float) -> None:
    fake_aliyun.fake.set_faults(**{fault: 1.0})
    with pytest.raises(kind) as exc:
        al.notifier(fake_aliyun.endpoint).send_sms(TO, "", None, template="callout_sms", params=PARAMS)
    assert exc.value.code == code and exc.value.retry_after == pytest.approx(wait)
    assert fake_aliyun.fake.faults_seen == {fault: 1}


def test_server_errors_come_both_ways_and_are_transient(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    fake_aliyun.fake.set_faults(server_error=1.0)
    n = al.notifier(fake_aliyun.endpoint)
    codes = []
    for _ in range(2):
        with pytest.raises(TransientError) as exc:
            n.send_sms(TO, "", None, template="callout_sms", params=PARAMS)
        codes.append(exc.value.code)
    assert sorted(codes) == ["ServiceUnavailable", "isp.SYSTEM_ERROR"]


def test_a_timeout_is_transient_and_ends_at_the_client_timeout(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    fake_aliyun.fake.set_faults(timeout=1.0, timeout_seconds=3.0)
    n = al.notifier(fake_aliyun.endpoint, request_timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(TransientError) as exc:
        n.place_call(TO, template="callout_voice", params=PARAMS)
    assert exc.value.code == "timeout"
    assert time.monotonic() - started < 2.5


def test_invalid_numbers_are_permanent_and_stay_invalid(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    fake_aliyun.fake.set_faults(invalid_numbers=["+8613800000009"])
    n = al.notifier(fake_aliyun.endpoint)
    for _ in range(2):
        with pytest.raises(PermanentError) as exc:
            n.send_sms("+8613800000009", "", None, template="callout_sms", params=PARAMS)
        assert exc.value.code == "isv.MOBILE_NUMBER_ILLEGAL"
    with pytest.raises(PermanentError) as exc:
        n.place_call("+8613800000009", template="callout_voice", params=PARAMS)
    assert exc.value.code == "isv.CALLED_NUMBER_ILLEGAL"
    with pytest.raises(PermanentError):  # not a mainland mobile number at all
        n.send_sms("+1415555012", "", None, template="callout_sms", params=PARAMS)


def test_seeded_faults_repeat_and_the_meter_counts_per_key(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    def run() -> list[str]:
        fake_aliyun.fake.reset()
        fake_aliyun.fake.set_faults(throttled=0.1, server_error=0.1, rate_limited=0.1, seed=7)
        n = al.notifier(fake_aliyun.endpoint)
        out = []
        for i in range(30):
            try:
                n.send_sms(f"+86138000000{i:02d}", "", None, template="callout_sms", params=PARAMS)
                out.append("OK")
            except TransientError as exc:
                out.append(str(exc.code))
        return out

    first, second = run(), run()
    assert first == second and 3 <= sum(1 for c in first if c != "OK") <= 20
    stats = fake_aliyun.fake.stats()
    assert stats["total_per_account"] == {al.access_key_id: 30}
    assert stats["max_per_second"][al.access_key_id] >= 2


def test_the_fake_pushes_documented_payloads(fake_aliyun: FakeAliyunServer, al: Any, receiver: Receiver) -> None:
    fake_aliyun.fake.config.push_base_url = f"{receiver.server.url}/webhooks/aliyun/tok"
    n = al.notifier(fake_aliyun.endpoint)
    biz_id = n.send_sms(TO, "", None, template="callout_sms", params=PARAMS, out_id="7")
    call_id = n.place_call(TO, template="callout_voice", params=PARAMS, out_id="8")
    wait_for(lambda: receiver.of("sms-report") and receiver.of("ivr"))
    report = push.SmsReportItem.model_validate(receiver.of("sms-report")[0])
    assert report.biz_id == biz_id and report.out_id == "7" and report.success
    fake_aliyun.reply(TO, "收到")
    fake_aliyun.keypress("2", to=TO)
    up = push.SmsUpItem.model_validate(receiver.of("sms-up")[0])
    assert up.content == "收到" and push.to_e164(up.phone_number) == TO
    keys = [push.VoiceCallReportItem.model_validate(i) for i in receiver.of("ivr")]
    assert [(k.call_id, k.status_code, k.dtmf) for k in keys] == [(call_id, push.ANSWERED, None),
                                                                  (call_id, push.DTMF, "2")]
    record = push.VoiceReportItem.model_validate(receiver.of("voice-report")[0])
    assert record.call_id == call_id and record.out_id == "8"
    assert all(p["status"] == 200 for p in fake_aliyun.fake.pushes)


def test_control_api_refuses_bad_commands(fake_aliyun: FakeAliyunServer) -> None:
    assert httpx.post(f"{fake_aliyun.url}/_fake/keypress", json={"to": TO, "digits": "1"}).status_code == 404
    assert httpx.post(f"{fake_aliyun.url}/_fake/reply", json={"text": "1"}).status_code == 400
    assert httpx.post(f"{fake_aliyun.url}/_fake/faults", json={"throttled": 2}).status_code == 400
    assert httpx.post(f"{fake_aliyun.url}/_fake/faults", json={"bogus": 1}).status_code == 400
    assert httpx.post(f"{fake_aliyun.url}/_fake/config", content=b"[").status_code == 400
    ok = httpx.post(f"{fake_aliyun.url}/_fake/faults", json={"timeout": 0.3, "seed": 3})
    assert ok.status_code == 200 and ok.json()["timeout"] == 0.3
