"""A keypress or SMS reply from the person a measure order was sent to acknowledges the order (and
"已转移35人" reports progress), with the channel recorded; a reply from someone with both an open
callout and an open order answers both, never one at the other's expense."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from twilio.request_validator import RequestValidator

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.eventlog import events_for
from config.runtime import Runtime
from config.settings import Settings
from jiaoying.app import create_app
from responses.callouts.core import parse_keypress, parse_reply
from responses.callouts.models import Answer, Callout
from responses.contacts.models import Contact, Duty
from responses.measures import core as rules
from responses.measures import service as measure_service
from responses.measures.core import MeasureAction as A
from responses.measures.core import MeasureState as S
from responses.measures.core import OrderAwaiting
from responses.messaging.models import InboundMessage, OutboxMessage
from responses.runs import service
from responses.runs.core import Trigger
from warning.models import Warning

from .conftest import make_region  # noqa: TID252

TOKEN = "test-auth-token-measures"
PUBLIC = "http://jiaoying.test"
CHIEF = "+8613900000001"
TEACHER = "+8613900000002"


# ---------------------------------------------------------------------------------------------- the rule


def order(oid: int, state: S = S.ORDERED, kind: str = "evacuation", **kw: Any) -> OrderAwaiting:
    return OrderAwaiting(oid, kind, state, reached=kw.pop("reached", True), **kw)


def test_keypress_answers_only_the_call_it_was_pressed_in() -> None:
    one = parse_keypress("1")
    assert one is not None
    r = rules.route_reply(keypress=True, parsed=one, pointed_order=2, pointed_callout=False, callout_waiting=True,
                          orders=[order(1), order(2, kind="stop_school")])
    assert r.steps == {2: (A.ACKNOWLEDGE,)} and not r.to_callout
    # a keypress on a lift order's call acknowledges the lift
    r = rules.route_reply(keypress=True, parsed=one, pointed_order=3, pointed_callout=False, callout_waiting=False,
                          orders=[order(3, S.LIFTING)])
    assert r.steps == {3: (A.ACKNOWLEDGE_LIFT,)}
    # pressed in a callout's call: the callout layer's
    r = rules.route_reply(keypress=True, parsed=one, pointed_order=None, pointed_callout=True, callout_waiting=True,
                          orders=[order(1)])
    assert r.to_callout and r.steps == {}


def test_sms_reply_answers_everything_waiting_and_reports_progress_once() -> None:
    reply = parse_reply("已转移35人")
    orders = [order(1), order(2, kind="stop_school"), order(3, S.IN_PROGRESS), order(4, reached=False),
              order(5, S.LIFTING, lift_reached=True), order(6, S.CARRIED_OUT)]
    r = rules.route_reply(keypress=False, parsed=reply, pointed_order=1, pointed_callout=False, callout_waiting=True,
                          orders=orders)
    assert r.to_callout  # the callout still waits: the reply answers it too
    assert r.steps == {1: (A.ACKNOWLEDGE, A.REPORT_PROGRESS), 2: (A.ACKNOWLEDGE,), 5: (A.ACKNOWLEDGE_LIFT,)}
    assert r.progress == {"people_evacuated": 35}
    # not pointed at an evacuation: the newest open one the person was sent takes the figure
    r = rules.route_reply(keypress=False, parsed=reply, pointed_order=None, pointed_callout=True,
                          callout_waiting=False, orders=orders)
    assert r.steps[3] == (A.REPORT_PROGRESS,) and A.REPORT_PROGRESS not in r.steps[1] and r.to_callout


def test_a_reply_that_changes_nothing_is_still_kept() -> None:
    reply = parse_reply("好的")
    r = rules.route_reply(keypress=False, parsed=reply, pointed_order=6, pointed_callout=False,
                          callout_waiting=False, orders=[order(6, S.CARRIED_OUT)])
    assert r.steps == {} and r.noted == (6,) and not r.to_callout
    r = rules.route_reply(keypress=False, parsed=reply, pointed_order=None, pointed_callout=False,
                          callout_waiting=False, orders=[])
    assert r.to_callout  # nothing of the measures': the callout layer records it as before


def test_progress_keeps_earlier_figures_and_shows_the_gap() -> None:
    p = rules.clean_progress("evacuation", {"people_evacuated": 35}, expected=130)
    assert p == {"people_evacuated": 35, "expected": 130}
    p = rules.clean_progress("evacuation", {"note": "下村还在转移"}, expected=130, before=p)
    assert p == {"people_evacuated": 35, "expected": 130, "note": "下村还在转移"}
    with pytest.raises(rules.ReportError):
        rules.clean_progress("evacuation", {})
    assert rules.apply(S.IN_PROGRESS, A.REPORT_PROGRESS) is S.IN_PROGRESS


# ---------------------------------------------------------------------------------------------- webhooks


@pytest.fixture
def hook_client(engine: Engine, clock: VirtualClock) -> Iterator[tuple[TestClient, Runtime]]:
    settings = Settings(env="test", database={"url": "sqlite://", "auto_upgrade": False},
                        scheduler={"enabled": False}, security={"secret_key": "test-secret-" + "x" * 40},
                        public_base_url=PUBLIC,
                        twilio={"account_sid": "AC" + "3" * 32, "auth_token": TOKEN, "from_number": "+15005550006"})
    rt = Runtime(settings, engine, make_session_factory(engine), clock)
    with TestClient(create_app(settings, runtime=rt, scheduler=False)) as c:
        yield c, rt


def post_signed(c: TestClient, path: str, params: dict[str, str]) -> Any:
    sig = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    r = c.post(path, data=params, headers={"X-Twilio-Signature": sig})
    assert r.status_code == 200, r.text
    return r


def test_replies_and_keypresses_acknowledge_orders_and_answer_callouts(
        hook_client: tuple[TestClient, Runtime], orange_measures: list[dict[str, object]]) -> None:
    c, rt = hook_client
    t0 = rt.now()
    with session_scope(rt.session_factory) as s:
        teacher = Contact(name="李老师", phone=TEACHER, created_at=t0, updated_at=t0, duties=[])
        teacher.duties.append(Duty(role="department_duty", department="education", place="dept:education",
                                   created_at=t0))
        s.add(teacher)
        region = make_region(s, t0)
        w = s.get(Warning, region.warning_id)
        assert w is not None
        run, _ = service.start_run(s, warning=w, level="orange", areas=w.affected, trigger=Trigger.DECISION,
                                   actor="user:leader", now=t0, measures=orange_measures)
        assert run is not None
        orders = {o.kind: o for o in measure_service.for_run(s, run.id)}
        evac_id, school_id = orders["evacuation"].id, orders["stop_school"].id
        # the chief is called for the run too, and has not answered
        [callout] = s.execute(select(Callout).where(Callout.run_id == run.id)).scalars().all()
        assert callout.numbers[0] == CHIEF and callout.state == "calling"
        callout_id = callout.id
        # the provider accepted everything queued
        s.execute(update(OutboxMessage).values(state="sent", sent_at=t0))
        voice_to_teacher = s.execute(select(OutboxMessage.id).where(
            OutboxMessage.subject_type == "measure_order", OutboxMessage.subject_id == str(school_id),
            OutboxMessage.channel == "voice")).scalar_one()

    # 1. 李老师 presses 1 in the 停学 order's call: that order is acknowledged, by keypress
    rt.clock.advance(dt.timedelta(minutes=2))  # type: ignore[attr-defined]
    post_signed(c, f"/twilio/voice/gather?m={voice_to_teacher}", {"Digits": "1", "To": TEACHER, "CallSid": "CA7"})
    with session_scope(rt.session_factory) as s:
        school = measure_service.get(s, school_id)
        assert school is not None
        assert (school.state, school.acknowledged_at, school.acknowledged_via) == (
            "acknowledged", rt.now(), "keypress")
        ack = [e for e in events_for(s, "measure_order", school_id) if e.action == "measure.acknowledge"]
        assert ack[0].payload["via"] == "keypress" and ack[0].actor == f"phone:{TEACHER}"
        assert measure_service.view(school, rt.now())["acknowledged_via"] == "keypress"

    # 2. the chief, with an open callout AND an open evacuation order, texts "已转移35人": both are answered
    rt.clock.advance(dt.timedelta(minutes=3))  # type: ignore[attr-defined]
    post_signed(c, "/twilio/sms/inbound", {"From": CHIEF, "To": "+15005550006", "Body": "已转移35人",
                                           "MessageSid": "SM1"})
    with session_scope(rt.session_factory) as s:
        evac = measure_service.get(s, evac_id)
        assert evac is not None
        assert (evac.state, evac.acknowledged_via, evac.report) == (
            "in_progress", "sms_reply", {"people_evacuated": 35, "expected": 130})
        v = measure_service.view(evac, rt.now())
        assert v["gap"]["gap"] == 95 and "尚有 95 人未转移" in v["gap"]["text"]
        progress = [e for e in events_for(s, "measure_order", evac_id) if e.action == "measure.report_progress"]
        assert progress[0].payload["via"] == "sms_reply" and progress[0].payload["raw"] == "已转移35人"
        [answer] = s.execute(select(Answer).where(Answer.callout_id == callout_id)).scalars().all()
        assert (answer.channel, answer.report) == ("sms_reply", {"evacuated": 35})
        assert s.get(Callout, callout_id).state == "answered"  # type: ignore[union-attr]

    # 3. a later figure updates the progress; the answered callout is not answered again
    post_signed(c, "/twilio/sms/inbound", {"From": CHIEF, "To": "+15005550006", "Body": "转移130人",
                                           "MessageSid": "SM2"})
    with session_scope(rt.session_factory) as s:
        evac = measure_service.get(s, evac_id)
        assert evac is not None and evac.report["people_evacuated"] == 130
        assert measure_service.view(evac, rt.now())["gap"]["complete"]
        assert len(s.execute(select(Answer).where(Answer.callout_id == callout_id)).scalars().all()) == 1
        assert all(m.handled and m.handler_error is None for m in s.execute(select(InboundMessage)).scalars())


def test_an_order_no_longer_theirs_is_not_acknowledged_by_them() -> None:
    one = parse_keypress("1")
    assert one is not None
    moved = order(2, mine=False)  # reassigned to another unit after the call
    r = rules.route_reply(keypress=True, parsed=one, pointed_order=2, pointed_callout=False, callout_waiting=False,
                          orders=[moved])
    assert r.steps == {} and r.noted == (2,)
    r = rules.route_reply(keypress=False, parsed=parse_reply("1"), pointed_order=2, pointed_callout=False,
                          callout_waiting=False, orders=[moved])
    assert r.steps == {} and r.noted == (2,)
