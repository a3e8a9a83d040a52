"""The call-and-answer scenario through Alibaba Cloud, end to end: 150 callees on SQLite and PostgreSQL.

Everything goes through the real wiring: the sender sends the outbox through the official SDKs to the fake
Alibaba Cloud (signatures checked), the fake pushes its delivery receipts, call records, replies (上行短信 "收到",
"1", "转移35人") and IVR keypresses over HTTP to Jiaoying's own server on a loopback port, and the push endpoints
feed the message states and the answer handler. Deadlines run on a virtual clock shared by the sweep and the
server. 70 % answer the first SMS in time by replying, 20 % answer the voice retry late by a key, 10 % never:
they escalate to their township chiefs, who stay silent too, and then to the leader on duty.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.runtime import Runtime
from jiaoying.app import create_app
from responses.callouts import board
from responses.callouts import service as svc
from responses.callouts.models import Answer, Attempt, Callout, Escalation
from responses.messaging.fake_aliyun.server import FakeAliyunServer
from responses.messaging.fake_twilio.server import ThreadedServer
from responses.messaging.models import InboundMessage, OutboxMessage
from responses.messaging.sender import Sender, sender_for
from responses.runs.models import Notice, ResponseRun

MIN = dt.timedelta(minutes=1)
CALLS = {"answer_minutes": 5, "retries": {"count": 1, "interval_minutes": 2}, "channels": ["sms", "voice"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township", "leader_on_duty"]}
REPLIES = ("收到", "1", "转移35人")


def _messaging_kit() -> Any:
    """tests/messaging/conftest.py's Alibaba Cloud test account (importlib mode keeps conftests unimportable)."""
    path = Path(__file__).resolve().parents[1] / "messaging" / "conftest.py"
    spec = importlib.util.spec_from_file_location("messaging_kit", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


al = _messaging_kit().AliyunCreds


class Live:
    """Jiaoying served on a loopback port with the runtime the test drives, the fake pushing to it."""

    def __init__(self, rt: Runtime, server: ThreadedServer, fake: FakeAliyunServer) -> None:
        self.rt, self.server, self.fake = rt, server, fake
        sender = sender_for(rt)
        assert sender is not None and set(sender.notifiers) == {"aliyun"}
        self.sender: Sender = sender

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.rt.session_factory

    def send(self) -> int:
        """Send what is due; wait for the receipts the fake pushes back; the number accepted."""
        stats = self.sender.run_once()
        assert stats.failed == stats.retried == stats.expired == 0, stats
        self.fake.drain(timeout=30)
        return stats.sent

    def states(self, ids: list[int]) -> Counter[str]:
        with session_scope(self.factory) as s:
            return Counter(s.execute(select(OutboxMessage.state).where(OutboxMessage.id.in_(ids))).scalars())

    def wait_states(self, ids: list[int], want: dict[str, int], timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while (got := self.states(ids)) != want:
            if time.monotonic() > end:
                raise AssertionError(f"message states {dict(got)}, expected {want}; fake: {self.fake.fake.stats()}")
            time.sleep(0.05)


@pytest.fixture
def live(engine: Engine, clock: VirtualClock) -> Iterator[Live]:
    from responses.messaging.fake_aliyun.state import FakeConfig

    # a generous account limit keeps the fan-out quick (the pacing itself is proven in test_aliyun_faults);
    # no faults are seeded here, and the long request timeout keeps a busy machine from making some
    with FakeAliyunServer(FakeConfig(accounts={al.access_key_id: al.access_key_secret})) as fake_aliyun:
        assert isinstance(fake_aliyun, FakeAliyunServer)
        settings = al.settings(fake_aliyun.endpoint, messages_per_second=100.0,
                               request_timeout_seconds=20.0)
        rt = Runtime(settings, engine, make_session_factory(engine), clock)
        app = create_app(settings, runtime=rt, scheduler=False)
        with ThreadedServer(app) as ours:
            fake_aliyun.fake.config.push_base_url = al.push_base(ours.url)
            lv = Live(rt, ours, fake_aliyun)
            try:
                yield lv
            finally:
                lv.sender.close()


def domestic(number: str) -> str:
    """The provider names numbers in domestic form, without +86."""
    return number.removeprefix("+86")


def first_attempt(s: Session, cid: int, seq: int = 1) -> Attempt:
    return s.execute(select(Attempt).where(Attempt.callout_id == cid, Attempt.seq == seq)).scalar_one()


def sweep_twice(factory: sessionmaker[Session], now: dt.datetime) -> svc.SweepStats:
    first = svc.sweep(factory, now=now)
    again = svc.sweep(factory, now=now)
    assert again.retries == again.escalated == again.exhausted == again.new_callouts == 0, again
    return first


def test_150_callees_answer_by_sms_reply_and_keypress_through_aliyun(live: Live, clock: VirtualClock,
                                                                     kit: Any) -> None:
    f, fake = live.factory, live.fake
    t0 = clock.now()
    district = kit.build_district(f, t0, townships=5, per_township=30)
    run_id = kit.make_run(f, t0, villages=district.villages, calls=CALLS)
    with session_scope(f) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        assert len(svc.create_run_callouts(s, run, now=t0)) == 150
        assert svc.create_run_callouts(s, run, now=t0) == []
    with session_scope(f) as s:
        ids = list(s.execute(select(Callout.id).order_by(Callout.id)).scalars())
        first = {cid: first_attempt(s, cid) for cid in ids}
        numbers = {cid: a.number for cid, a in first.items()}
        sms_ids = [a.message_id for a in first.values()]
        assert {a.channel for a in first.values()} == {"sms"}

    # the first SMS: 150 SendSms through the SDK, each receipt pushed back → delivered
    assert live.send() == 150
    live.wait_states(sms_ids, {"delivered": 150})
    sent = {int(m["out_id"]): m for m in fake.fake.sms.values()}
    assert set(sent) == set(sms_ids) and len(fake.fake.sms) == 150  # one SendSms accepted per message
    with session_scope(f) as s:
        for mid in sms_ids:
            m = s.get(OutboxMessage, mid)
            assert m is not None and m.provider == "aliyun" and sent[mid]["biz_id"] == m.provider_id
            assert sent[mid]["numbers"] == [domestic(m.to_number)] and sent[mid]["template_code"] == "SMS_100"
            assert sent[mid]["sign_name"] == "某某区应急管理局" and sent[mid]["params"]["minutes"] == "5"

    in_time, late, never = [], [], []
    for i, cid in enumerate(ids):
        bucket = i % 10
        (never if bucket == 9 else late if bucket in (7, 8) else in_time).append(cid)
    assert (len(in_time), len(late), len(never)) == (105, 30, 15)

    clock.advance(2 * MIN)  # replies to the SMS (上行短信), pushed by the fake to /sms-up
    for n, cid in enumerate(in_time):
        got = fake.reply(domestic(numbers[cid]), REPLIES[n % 3])
        assert got["push"]["status"] == 200, got
    with session_scope(f) as s:
        assert Counter(s.execute(select(Callout.state)).scalars()) == {"answered": 105, "calling": 45}

    clock.set(t0 + 5 * MIN)  # the deadline: the 45 silent ones are retried by an IVR call
    st = sweep_twice(f, clock.now())
    assert st.retries == 45 and st.escalated == 0
    with session_scope(f) as s:
        calls = {cid: first_attempt(s, cid, 2) for cid in late + never}
        assert {a.channel for a in calls.values()} == {"voice"}
        call_ids = [a.message_id for a in calls.values()]
    assert live.send() == 45
    live.wait_states(call_ids, {"delivered": 45})  # the IVR reports the call answered
    ivr = {int(c["out_id"]): c for c in fake.fake.calls.values()}
    assert set(ivr) == set(call_ids) and {c["kind"] for c in ivr.values()} == {"ivr"}
    assert all(c["menu"] == {"1": "TTS_301", "2": "TTS_302"} for c in ivr.values())

    clock.advance(MIN)  # late answers: a key in the IVR call (1 = 收到, every fifth 2 = 需要支援)
    for n, cid in enumerate(late):
        got = fake.keypress("2" if n % 5 == 0 else "1", to=numbers[cid])
        assert got["push"]["status"] == 200, got
    for cid in never:  # the silent ones hear the call and press nothing (the IVR times out)
        fake.hangup(to=numbers[cid])
    fake.drain()

    clock.set(t0 + 7 * MIN)  # retries used up: the never group escalates to their township chiefs
    st = sweep_twice(f, clock.now())
    assert st.escalated == 15 and st.exhausted == 0
    with session_scope(f) as s:
        esc = list(s.execute(select(Escalation).where(Escalation.from_callout_id.in_(never))).scalars())
        assert len(esc) == 15 and {e.step for e in esc} == {"township"}
        chiefs = {c.contact_id: c for c in s.execute(
            select(Callout).where(Callout.reason == "escalation", Callout.tier == "township")).scalars()}
        assert set(chiefs) == set(district.chiefs.values())
        chief_msgs = {c.attempts[0].message_id: c for c in chiefs.values()}
        for c in chiefs.values():
            assert len(c.context["from_callouts"]) == 3 and len(c.areas) == 3
        for cid in never:
            c = s.get(Callout, cid)
            assert c is not None and c.state == "escalated" and c.escalated_at == clock.now()
            assert c.id in chiefs[district.chiefs[c.areas[0][:9] + "000"]].context["from_callouts"]
        assert s.execute(select(func.count(Notice.id)).where(Notice.kind == "callout_escalated")).scalar() == 15
    assert live.send() == 5  # the chiefs' SMS go out as the escalation template, naming who missed
    live.wait_states(list(chief_msgs), {"delivered": 5})
    chief_sms = [m for m in fake.fake.sms.values() if m["out_id"] and int(m["out_id"]) in chief_msgs]
    assert len(chief_sms) == 5 and {m["template_code"] for m in chief_sms} == {"SMS_101"}
    assert all(m["params"]["missed"] for m in chief_sms)

    clock.set(t0 + 14 * MIN)  # chiefs silent too: one retry at +12 skipped by a late tick, then the leader
    st = sweep_twice(f, clock.now())
    assert st.escalated == 5 and st.skipped_retries == 5
    with session_scope(f) as s:
        [top] = s.execute(select(Callout).where(Callout.tier == "leader_on_duty")).scalars().all()
        assert top.numbers == [kit.LEADER_PHONE] and top.name == "带班领导乙" and len(top.areas) == 15
        assert sorted(top.context["from_callouts"]) == sorted(c.id for c in chiefs.values())
        leader_msg = top.attempts[0].message_id
    assert live.send() == 1
    live.wait_states([leader_msg], {"delivered": 1})
    assert [m["numbers"] for m in fake.fake.sms.values() if m["out_id"] == str(leader_msg)] == [
        [domestic(kit.LEADER_PHONE)]]

    clock.set(t0 + 30 * MIN)  # the leader on duty is silent as well: nobody above → the duty officer
    sweep_twice(f, clock.now())

    with session_scope(f) as s:
        answers = list(s.execute(select(Answer)).scalars())
        by_callout = {a.callout_id: a for a in answers}
        assert len(answers) == len(by_callout) == 135  # one answer per callee who answered, none twice
        assert set(by_callout) == set(in_time) | set(late)
        assert not any(by_callout[cid].late for cid in in_time) and all(by_callout[cid].late for cid in late)
        assert Counter(a.channel for a in answers) == {"sms_reply": 105, "keypress": 30}
        assert Counter(by_callout[cid].kind for cid in late) == {"received": 24, "need_support": 6}
        assert {by_callout[cid].kind for cid in in_time} == {"received"}
        assert sum(1 for cid in in_time if by_callout[cid].report.get("evacuated") == 35) == 35
        assert Counter(s.execute(select(Callout.state).where(Callout.reason == "plan")).scalars()) == {
            "answered": 135, "escalated": 15}
        assert s.execute(select(Callout.state).where(Callout.tier == "leader_on_duty")).scalar_one() == "unanswered"
        # 15 heads escalated to their chiefs, then the 5 chiefs to the leader, each once
        assert s.execute(select(func.count(Notice.id)).where(Notice.kind == "callout_escalated")).scalar() == 20
        assert s.execute(select(func.count(Notice.id)).where(Notice.kind == "callout_unanswered")).scalar() == 1
        # every reply and key stored once, all from the provider's pushes
        inbound = Counter(s.execute(select(InboundMessage.kind).where(InboundMessage.provider == "aliyun"))
                          .scalars())
        assert inbound == {"sms": 105, "keypress": 30}
        # every message accepted exactly once by the provider, and its state set by the provider's receipts
        msgs = list(s.execute(select(OutboxMessage)).scalars())
        assert len(msgs) == 150 + 45 + 5 + 1
        assert Counter(m.state for m in msgs) == {"delivered": 201}
        accepted = [r.params.get("OutId") for r in fake.fake.requests if r.code == "OK"]
        assert sorted(int(x) for x in accepted) == sorted(m.id for m in msgs)
        assert {m.provider_id for m in msgs} == set(fake.fake.sms) | set(fake.fake.calls)
        assert all(m.provider == "aliyun" for m in msgs)

    # a late answer after the escalation is still taken, marked late: a reply from a never-answering head
    got = fake.reply(domestic(numbers[never[0]]), "收到")
    assert got["push"]["status"] == 200
    with session_scope(f) as s:
        c = s.get(Callout, never[0])
        assert c is not None and c.state == "answered" and c.answer_late is True
        b = board.board(s, run_id, now=clock.now())
        assert b["total"] == 150 + 5 + 1
        row = next(r for r in b["callouts"] if r["id"] == never[0])
        assert [e["step"] for e in row["escalations"]] == ["township"] and len(row["attempts"]) == 2
    # nothing the pushes carried was refused or kept as bad
    assert all(p.get("status") == 200 for p in fake.fake.pushes), [p for p in fake.fake.pushes
                                                                    if p.get("status") != 200][:3]
