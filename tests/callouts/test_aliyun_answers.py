"""Alibaba Cloud pushes answer callouts exactly as Twilio's webhooks do, through the real wiring.

The same scenario runs once through each provider's inbound path — a keypress 2 (需要支援), a keypress 1
(收到), a late SMS reply "收到 转移8人", a reply "转移35人", a call not answered and a call to a switched-off
phone — and must leave the same callouts, answers and attempts behind, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from twilio.request_validator import RequestValidator

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.runtime import Runtime
from config.settings import Settings
from jiaoying.app import create_app
from responses.callouts import service as svc
from responses.callouts.models import Answer, Attempt, Callout
from responses.messaging import aliyun_push as push
from responses.messaging.models import InboundMessage
from responses.runs.models import ResponseRun

TOKEN = "test-auth-token-callouts"
PUSH_TOKEN = "aliyun-push-token-" + "p" * 20
PUBLIC = "http://jiaoying.test"
CALLS = {"answer_minutes": 5, "retries": {"count": 1, "interval_minutes": 2}, "channels": ["voice", "sms"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township"]}


@pytest.fixture
def hook_client(engine: Engine, clock: VirtualClock) -> Iterator[tuple[TestClient, Runtime]]:
    settings = Settings(env="test", database={"url": "sqlite://", "auto_upgrade": False},
                        scheduler={"enabled": False}, security={"secret_key": "test-secret-" + "x" * 40},
                        public_base_url=PUBLIC,
                        twilio={"account_sid": "AC" + "2" * 32, "auth_token": TOKEN, "from_number": "+15005550006"},
                        aliyun={"push_token": PUSH_TOKEN})
    rt = Runtime(settings, engine, make_session_factory(engine), clock)
    with TestClient(create_app(settings, runtime=rt, scheduler=False)) as c:
        yield c, rt


class Twilio:
    @staticmethod
    def _post(c: TestClient, path: str, params: dict[str, str]) -> Any:
        sig = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
        r = c.post(path, data=params, headers={"X-Twilio-Signature": sig})
        assert r.status_code in (200, 204), r.text
        return r

    @classmethod
    def keypress(cls, c: TestClient, now: dt.datetime, mid: int, number: str, digit: str) -> None:
        cls._post(c, f"/twilio/voice/gather?m={mid}", {"Digits": digit, "To": number, "CallSid": f"CA{mid}"})

    @classmethod
    def reply(cls, c: TestClient, now: dt.datetime, number: str, text: str, seq: int) -> None:
        cls._post(c, "/twilio/sms/inbound", {"From": number, "To": "+15005550006", "Body": text,
                                             "MessageSid": f"SM{seq}"})

    @classmethod
    def call_ended(cls, c: TestClient, now: dt.datetime, mid: int, number: str, outcome: str) -> None:
        status = {"no_answer": "no-answer", "switched_off": "failed"}[outcome]
        cls._post(c, f"/twilio/status?m={mid}", {"CallSid": f"CA{mid}", "CallStatus": status})


class Aliyun:
    @staticmethod
    def _post(c: TestClient, kind: str, body: list[dict[str, Any]]) -> None:
        r = c.post(f"/webhooks/aliyun/{PUSH_TOKEN}/{kind}", json=body)
        assert (r.status_code, r.json()) == (200, {"code": 0, "msg": "接收成功"}), r.text

    @classmethod
    def keypress(cls, c: TestClient, now: dt.datetime, mid: int, number: str, digit: str) -> None:
        # OutId carries our message id; the CallId is not recorded yet (nothing was sent in this test)
        cls._post(c, "ivr", push.ivr_keypress(call_id=f"10000{mid}^1", dtmf=digit, time=now, out_id=str(mid)))

    @classmethod
    def reply(cls, c: TestClient, now: dt.datetime, number: str, text: str, seq: int) -> None:
        cls._post(c, "sms-up", push.sms_up(phone=number, content=text, send_time=now, sequence_id=seq))

    @classmethod
    def call_ended(cls, c: TestClient, now: dt.datetime, mid: int, number: str, outcome: str) -> None:
        code = {"no_answer": push.NO_ANSWER, "switched_off": push.POWERED_OFF}[outcome]
        cls._post(c, "voice-report", push.voice_report(phone=number, call_id=f"10000{mid}^1", out_id=str(mid),
                                                       status_code=code, originate_time=now))


def _outcome(rt: Runtime) -> list[tuple[Any, ...]]:
    with session_scope(rt.session_factory) as s:
        out = []
        for co in s.execute(select(Callout).order_by(Callout.id)).scalars():
            answers = [(a.channel, a.kind, a.late, a.report)
                       for a in s.execute(select(Answer).where(Answer.callout_id == co.id).order_by(Answer.id))
                       .scalars()]
            channels = [a.channel for a in s.execute(select(Attempt).where(Attempt.callout_id == co.id)
                                                     .order_by(Attempt.id)).scalars()]
            out.append((co.state, answers, channels))
        return out


EXPECTED = [
    ("answered", [("keypress", "need_support", False, {})], ["voice"]),
    ("answered", [("keypress", "received", False, {})], ["voice"]),
    ("answered", [("sms_reply", "received", True, {"evacuated": 8})], ["voice"]),
    ("answered", [("sms_reply", "received", True, {"evacuated": 35})], ["voice"]),
    ("calling", [], ["voice"]),  # not answered: the next retry slot calls again, no failover
    ("calling", [], ["voice", "sms"]),  # switched off: fails over to the next channel at once
]


@pytest.mark.parametrize("via", [Twilio, Aliyun], ids=["twilio", "aliyun"])
def test_pushes_answer_callouts_as_twilio_webhooks_do(hook_client: tuple[TestClient, Runtime], kit: Any,
                                                      via: Any) -> None:
    c, rt = hook_client
    t0 = rt.now()
    d = kit.build_district(rt.session_factory, t0, townships=1, per_township=6, two_way_every=1)
    run_id = kit.make_run(rt.session_factory, t0, villages=d.villages, calls=CALLS)
    with session_scope(rt.session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        made = sorted(svc.create_run_callouts(s, run, now=t0), key=lambda co: co.id)
        first = [(co.attempts[0].message_id, co.attempts[0].number) for co in made]
    assert len(first) == 6

    via.keypress(c, rt.now(), first[0][0], first[0][1], "2")
    via.keypress(c, rt.now(), first[1][0], first[1][1], "1")
    via.call_ended(c, rt.now(), first[4][0], first[4][1], "no_answer")
    via.call_ended(c, rt.now(), first[5][0], first[5][1], "switched_off")
    rt.clock.advance(dt.timedelta(minutes=6))  # type: ignore[attr-defined]
    via.reply(c, rt.now(), first[2][1], "收到 转移8人", 1)
    via.reply(c, rt.now(), first[3][1], "转移35人", 2)
    assert _outcome(rt) == EXPECTED

    # the provider pushing everything once more changes nothing (Twilio does not repeat, Alibaba Cloud does)
    if via is Aliyun:
        via.keypress(c, rt.now(), first[0][0], first[0][1], "2")
        via.reply(c, rt.now(), first[2][1], "收到 转移8人", 1)
        via.call_ended(c, rt.now(), first[5][0], first[5][1], "switched_off")
        assert _outcome(rt) == EXPECTED
        with session_scope(rt.session_factory) as s:
            assert s.execute(select(func.count(InboundMessage.id))).scalar() == 4
            assert set(s.execute(select(InboundMessage.provider)).scalars()) == {"aliyun"}


def test_a_wrong_push_token_answers_nothing(hook_client: tuple[TestClient, Runtime], kit: Any) -> None:
    c, rt = hook_client
    t0 = rt.now()
    d = kit.build_district(rt.session_factory, t0, townships=1, per_township=1, two_way_every=1)
    run_id = kit.make_run(rt.session_factory, t0, villages=d.villages, calls=CALLS)
    with session_scope(rt.session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        [co] = svc.create_run_callouts(s, run, now=t0)
        mid, number = co.attempts[0].message_id, co.attempts[0].number
    r = c.post("/webhooks/aliyun/not-the-token/ivr",
               json=push.ivr_keypress(call_id="1^1", dtmf="1", time=t0, out_id=str(mid)))
    assert r.status_code == 403
    r = c.post("/webhooks/aliyun/not-the-token/sms-up",
               json=push.sms_up(phone=number, content="收到", send_time=t0, sequence_id=1))
    assert r.status_code == 403
    with session_scope(rt.session_factory) as s:
        assert s.execute(select(func.count(Answer.id))).scalar() == 0
        assert s.execute(select(func.count(InboundMessage.id))).scalar() == 0
        assert s.execute(select(Callout.state)).scalar_one() == "calling"
