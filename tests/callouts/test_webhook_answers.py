"""Signed provider webhooks reach the callout layer through the wiring; a bad signature changes nothing."""

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
from responses.callouts.models import Answer, Callout
from responses.runs.models import ResponseRun

TOKEN = "test-auth-token-callouts"
PUBLIC = "http://jiaoying.test"
CALLS = {"answer_minutes": 5, "retries": {"count": 1, "interval_minutes": 2}, "channels": ["voice", "sms"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township"]}


@pytest.fixture
def hook_client(sqlite_engine: Engine, clock: VirtualClock) -> Iterator[tuple[TestClient, Runtime]]:
    settings = Settings(env="test", database={"url": "sqlite://", "auto_upgrade": False},
                        scheduler={"enabled": False}, security={"secret_key": "test-secret-" + "x" * 40},
                        public_base_url=PUBLIC,
                        twilio={"account_sid": "AC" + "2" * 32, "auth_token": TOKEN, "from_number": "+15005550006"})
    rt = Runtime(settings, sqlite_engine, make_session_factory(sqlite_engine), clock)
    with TestClient(create_app(settings, runtime=rt, scheduler=False)) as c:
        yield c, rt


def post_signed(c: TestClient, path: str, params: dict[str, str], token: str = TOKEN) -> Any:
    sig = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return c.post(path, data=params, headers={"X-Twilio-Signature": sig})


def test_keypress_and_reply_answer_through_webhooks(hook_client: tuple[TestClient, Runtime], kit: Any) -> None:
    c, rt = hook_client
    t0 = rt.now()
    d = kit.build_district(rt.session_factory, t0, townships=1, per_township=2, two_way_every=1)
    run_id = kit.make_run(rt.session_factory, t0, villages=d.villages, calls=CALLS)
    with session_scope(rt.session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        made = svc.create_run_callouts(s, run, now=t0)
        first = [(co.id, co.attempts[0].message_id, co.attempts[0].number) for co in made]
    (cid1, mid1, num1), (cid2, _mid2, num2) = first

    # forged: refused, nothing recorded
    r = post_signed(c, f"/twilio/voice/gather?m={mid1}", {"Digits": "1", "To": num1, "CallSid": "CA1"}, token="bad")
    assert r.status_code == 403
    with session_scope(rt.session_factory) as s:
        assert s.execute(select(func.count(Answer.id))).scalar() == 0

    r = post_signed(c, f"/twilio/voice/gather?m={mid1}", {"Digits": "2", "To": num1, "CallSid": "CA1"})
    assert r.status_code == 200 and "支援" in r.text
    rt.clock.advance(dt.timedelta(minutes=6))  # type: ignore[attr-defined]
    r = post_signed(c, "/twilio/sms/inbound", {"From": num2, "To": "+15005550006", "Body": "收到 转移8人",
                                               "MessageSid": "SM9"})
    assert r.status_code == 200
    with session_scope(rt.session_factory) as s:
        a1 = s.execute(select(Answer).where(Answer.callout_id == cid1)).scalar_one()
        assert (a1.channel, a1.kind, a1.late) == ("keypress", "need_support", False)
        a2 = s.execute(select(Answer).where(Answer.callout_id == cid2)).scalar_one()
        assert (a2.channel, a2.kind, a2.late, a2.report) == ("sms_reply", "received", True, {"evacuated": 8})
        assert {co.state for co in s.execute(select(Callout)).scalars()} == {"answered"}
