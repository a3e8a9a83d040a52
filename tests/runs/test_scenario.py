"""The whole path on SQLite and PostgreSQL: warning → consultation → decision → run → closing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import Event, verify
from config.runtime import Runtime
from responses.runs import engine as response_engine
from responses.runs import jobs
from responses.runs.models import Notice, ResponseRun, SupervisionFlag
from warning.consultation import service as cs
from warning.consultation.models import Consultation
from warning.models import Warning

LISTENERS = [response_engine.on_decision]


def _actions(s: Any, prefix: str) -> list[str]:
    return list(s.execute(select(Event.action).where(Event.action.like(f"{prefix}%")).order_by(Event.seq)).scalars())


def test_yellow_rainstorm_consultation_decision_run_and_cancel(
    runtime: Runtime, clock: VirtualClock, make_warning: Callable[..., Warning], change: Callable[..., Any]
) -> None:
    f = runtime.session_factory
    with session_scope(f) as s:
        w = make_warning(s, now=clock.now(), level="yellow")
        response_engine.on_warning_change(s, change("new", w), clock.now())
        thread_id = w.thread_id
    with session_scope(f) as s:
        c = s.execute(select(Consultation)).scalar_one()
        assert c.state == "open" and c.mode == "before"
        assert set(c.invited) == {"meteorology", "water", "natural_resources", "emergency"}
        assert s.execute(select(func.count(ResponseRun.id))).scalar_one() == 0  # yellow: consult first
        for dept, lvl in (("meteorology", "orange"), ("water", "orange"), ("natural_resources", "yellow")):
            cs.record_judgement(s, c.id, cs.JudgementInput(
                department=dept, assessed_level=lvl, trend="rising", confidence="high", text=f"{dept} 研判",
                areas_add={"villages": ["140502002003"]} if dept == "water" else None), actor=f"user:{dept}",
                now=clock.now())
        cid, deadline = c.id, c.deadline

    # the deadline passes with 应急管理局 silent: flagged once, however often the sweep runs
    clock.set(deadline + dt.timedelta(seconds=1))
    jobs.consultation_sweep(runtime)
    jobs.consultation_sweep(runtime)
    with session_scope(f) as s:
        c = s.get(Consultation, cid)
        assert c.state == "deadline_passed" and c.missing == ["emergency"]
        assert _actions(s, "consultation.judgement_missing") == ["consultation.judgement_missing"]
        flags = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "judgement_missing")).scalars().all()
        assert len(flags) == 1 and flags[0].detail["missing"] == ["emergency"]
        assert s.execute(select(func.count(Notice.id)).where(Notice.kind == "judgement_missing")).scalar_one() == 1

        d = cs.decide(s, cid, cs.DecisionInput(final_level="orange", reason="三部门研判趋势上升"),
                      actor="user:leader", now=clock.now(), listeners=LISTENERS)
        assert d.version == 1 and d.response_level == "II"
        assert "140502002003" in d.areas["villages"]  # the water bureau's addition

    with session_scope(f) as s:
        run = s.execute(select(ResponseRun)).scalar_one()
        assert run.trigger == "decision" and run.state == "active"
        assert run.level == "orange" and run.response_level == "II"
        assert run.consultation_id == cid and run.thread_id == thread_id
        assert run.plan_snapshot["hazard"] == "weather" and set(run.plan_snapshot["levels"]) == {
            "blue", "yellow", "orange", "red"}
        assert run.entry_snapshot["calls"]["answer_minutes"] == 15
        assert "140502002003" in run.areas["villages"]
        assert {m["kind"] for m in run.measures} >= {"evacuation", "closure"}
        assert s.get(SupervisionFlag, flags[0].id).cleared_at is not None  # decided: missing-flag cleared

    # a revision is a new version; the old one is kept and the run follows the new one
    with session_scope(f) as s:
        d2 = cs.decide(s, cid, cs.DecisionInput(final_level="red", reason="雨量超预期"), actor="user:leader",
                       now=clock.now(), listeners=LISTENERS)
        assert d2.version == 2 and d2.supersedes_id is not None
        assert len(cs.decisions(s, cid)) == 2
        run = s.execute(select(ResponseRun)).scalar_one()
        assert run.level == "red" and run.response_level == "I" and run.decision_id == d2.id

    # Cancel: the run moves to closing
    with session_scope(f) as s:
        head = s.get(Warning, run.warning_id)
        cancel = make_warning(s, now=clock.now(), level="yellow", thread=head, msg_type="cancel",
                              state="cancelled")
        response_engine.on_warning_change(s, change("cancelled", cancel, head), clock.now())
    with session_scope(f) as s:
        run = s.execute(select(ResponseRun)).scalar_one()
        assert run.state == "closing" and run.closing_reason == "warning cancelled"
        assert "run.closing" in _actions(s, "run.")
        assert verify(s).ok


def test_red_warning_starts_a_run_at_once_with_consultation_in_parallel(
    runtime: Runtime, clock: VirtualClock, make_warning: Callable[..., Warning], change: Callable[..., Any]
) -> None:
    f = runtime.session_factory
    with session_scope(f) as s:
        w = make_warning(s, now=clock.now(), level="red", hazard="flood", event="洪水")
        response_engine.on_warning_change(s, change("new", w), clock.now())
        # announced twice (a retry, a second instance): still one run, one consultation
        response_engine.on_warning_change(s, change("new", w), clock.now())
    with session_scope(f) as s:
        run = s.execute(select(ResponseRun)).scalar_one()
        c = s.execute(select(Consultation)).scalar_one()
        assert run.trigger == "automatic" and run.level == "red" and run.response_level == "I"
        assert run.started_at == clock.now()
        assert c.mode == "parallel" and c.state == "open" and run.consultation_id == c.id
        assert run.entry_snapshot["calls"]["answer_minutes"] == 5
        assert run.plan_snapshot["hazard"] == "flood"


def test_update_raises_the_run_and_extends_areas(
    runtime: Runtime, clock: VirtualClock, make_warning: Callable[..., Warning], change: Callable[..., Any]
) -> None:
    f = runtime.session_factory
    with session_scope(f) as s:
        w = make_warning(s, now=clock.now(), level="blue")  # weather blue: mode skip → automatic IV run
        response_engine.on_warning_change(s, change("new", w), clock.now())
        run = s.execute(select(ResponseRun)).scalar_one()
        assert run.level == "blue" and run.response_level == "IV" and run.trigger == "automatic"
        assert s.execute(select(func.count(Consultation.id))).scalar_one() == 0
    clock.advance(dt.timedelta(minutes=20))
    with session_scope(f) as s:
        head = s.get(Warning, w.id)
        up = make_warning(s, now=clock.now(), level="orange", thread=head, msg_type="update",
                          affected={"villages": ["140502003001"], "townships": [], "sites": []})
        response_engine.on_warning_change(s, change("updated", up, head), clock.now())
    with session_scope(f) as s:
        run = s.execute(select(ResponseRun)).scalar_one()
        assert run.level == "orange" and run.response_level == "II"
        assert run.entry_snapshot["calls"]["answer_minutes"] == 15
        assert set(run.areas["villages"]) == {"140502001001", "140502003001"}
        # lower again: the run is not lowered by itself
        head = s.get(Warning, up.id)
        down = make_warning(s, now=clock.now(), level="yellow", thread=head, msg_type="update")
        response_engine.on_warning_change(s, change("updated", down, head), clock.now())
        assert s.execute(select(ResponseRun)).scalar_one().level == "orange"
        # expiry closes
        response_engine.on_warning_change(s, change("expired", down, head), clock.now())
        assert s.execute(select(ResponseRun)).scalar_one().state == "closing"


def test_test_messages_start_nothing(
    runtime: Runtime, clock: VirtualClock, make_warning: Callable[..., Warning], change: Callable[..., Any]
) -> None:
    with session_scope(runtime.session_factory) as s:
        w = make_warning(s, now=clock.now(), level="red", status="test")
        response_engine.on_warning_change(s, change("new", w), clock.now())
        assert s.execute(select(func.count(ResponseRun.id))).scalar_one() == 0


def test_orange_without_run_is_flagged_overdue_then_cleared(
    runtime: Runtime, clock: VirtualClock, make_warning: Callable[..., Warning], change: Callable[..., Any]
) -> None:
    from responses.contacts import roster_service
    from responses.contacts.roster import Person, ShiftSpec

    f = runtime.session_factory
    now = clock.now()
    with session_scope(f) as s:
        roster_service.save_api_batch(s, [ShiftSpec(now - dt.timedelta(hours=1), now + dt.timedelta(hours=23),
                                                    Person("王带班", "13800000001"), [Person("李值班")])],
                                      actor="user:admin", now=now)
        w = make_warning(s, now=now, level="orange")
        response_engine.on_warning_change(s, change("new", w), now)  # orange weather: consultation first
    clock.advance(dt.timedelta(minutes=29))
    jobs.supervision_sweep(runtime)
    with session_scope(f) as s:
        assert s.execute(select(func.count(SupervisionFlag.id)).where(
            SupervisionFlag.kind == "run_overdue")).scalar_one() == 0
    clock.advance(dt.timedelta(minutes=2))  # the plan says 30 minutes at orange
    jobs.supervision_sweep(runtime)
    jobs.supervision_sweep(runtime)
    with session_scope(f) as s:
        flag = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "run_overdue")).scalar_one()
        assert flag.cleared_at is None and flag.subject_id == str(w.thread_id)
        notice = s.execute(select(Notice).where(Notice.kind == "run_overdue")).scalar_one()
        assert notice.recipient_name == "王带班" and notice.recipient_role == "leader_on_duty"
        c = s.execute(select(Consultation)).scalar_one()
        cs.decide(s, c.id, cs.DecisionInput(final_level="orange"), actor="user:leader", now=clock.now(),
                  listeners=LISTENERS)
    with session_scope(f) as s:
        flag = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "run_overdue")).scalar_one()
        assert flag.cleared_at is not None
        actions = _actions(s, "supervision.run_overdue")
        assert actions == ["supervision.run_overdue_flagged", "supervision.run_overdue_cleared"]


def test_reminder_before_the_deadline_goes_to_silent_departments_once(
    runtime: Runtime, clock: VirtualClock, make_warning: Callable[..., Warning], change: Callable[..., Any]
) -> None:
    f = runtime.session_factory
    with session_scope(f) as s:
        w = make_warning(s, now=clock.now(), level="yellow")
        response_engine.on_warning_change(s, change("new", w), clock.now())
        c = s.execute(select(Consultation)).scalar_one()
        cs.record_judgement(s, c.id, cs.JudgementInput(department="water", assessed_level="yellow", trend="steady",
                                                       confidence="medium"), actor="user:w", now=clock.now())
        deadline, reminder = c.deadline, c.reminder_minutes
    clock.set(deadline - dt.timedelta(minutes=reminder or 0))
    jobs.consultation_sweep(runtime)
    jobs.consultation_sweep(runtime)
    with session_scope(f) as s:
        depts = s.execute(select(Notice.department).where(Notice.kind == "judgement_reminder")).scalars().all()
        assert sorted(depts) == ["emergency", "meteorology", "natural_resources"]
        assert s.execute(select(Consultation)).scalar_one().state == "open"
