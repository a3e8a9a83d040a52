"""A measure ordered to a department unit reaches the department's duty person by itself; an order
with nobody to reach is flagged to the duty officer at once, and the flag clears when someone is
assigned."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import events_for
from responses.contacts.models import Contact, Duty
from responses.measures import service as measure_service
from responses.measures.models import MeasureOrder
from responses.messaging.models import OutboxMessage
from responses.runs import service
from responses.runs.core import Trigger
from responses.runs.models import Notice, SupervisionFlag
from warning.models import Warning

from .conftest import make_region  # noqa: TID252

TEACHER = "+8613900000002"


def _department_duty(s: Session, now: dt.datetime, name: str, phone: str, department: str) -> None:
    c = Contact(name=name, phone=phone, created_at=now, updated_at=now, duties=[])
    c.duties.append(Duty(role="department_duty", department=department, place=f"dept:{department}", created_at=now))
    s.add(c)
    s.flush()


def _start(s: Session, now: dt.datetime, measures: list[dict[str, object]]) -> int:
    region = make_region(s, now)
    w = s.get(Warning, region.warning_id)
    assert w is not None
    run, _ = service.start_run(s, warning=w, level="orange", areas=w.affected, trigger=Trigger.DECISION,
                               actor="user:leader", now=now, measures=measures)
    assert run is not None
    return run.id


def _school(s: Session, run_id: int) -> MeasureOrder:
    return next(o for o in measure_service.for_run(s, run_id) if o.kind == "stop_school")


def _unassigned(s: Session, order_id: int) -> list[SupervisionFlag]:
    return list(s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "measure_unassigned",
                                                        SupervisionFlag.subject_id == str(order_id))
                          .order_by(SupervisionFlag.id)).scalars())


def test_department_order_reaches_its_duty_person(session_factory: sessionmaker[Session], clock: VirtualClock,
                                                  orange_measures: list[dict[str, object]]) -> None:
    t0 = clock.now()
    with session_scope(session_factory) as s:
        _department_duty(s, t0, "李老师", TEACHER, "education")
        _department_duty(s, t0, "赵警官", "+8613900000003", "public_security")
        run_id = _start(s, t0, orange_measures)
    with session_scope(session_factory) as s:
        school = _school(s, run_id)
        assert school.responsible_unit == "区教育局" and school.unit_kind == "department"
        assert (school.person_name, school.person_phone) == ("李老师", TEACHER)
        msgs = s.execute(select(OutboxMessage).where(OutboxMessage.subject_type == "measure_order",
                                                     OutboxMessage.subject_id == str(school.id))).scalars().all()
        assert {m.channel for m in msgs} == {"voice", "sms"} and {m.to_number for m in msgs} == {TEACHER}
        assert _unassigned(s, school.id) == []
        assert not s.execute(select(Notice).where(Notice.kind == "measure_unassigned")).scalars().all()


def test_order_with_nobody_to_reach_is_flagged_then_cleared(session_factory: sessionmaker[Session],
                                                            clock: VirtualClock,
                                                            orange_measures: list[dict[str, object]]) -> None:
    t0 = clock.now()
    with session_scope(session_factory) as s:
        run_id = _start(s, t0, orange_measures)  # nobody holds 教育局's duty
    with session_scope(session_factory) as s:
        school = _school(s, run_id)
        assert school.person_phone is None
        [flag] = _unassigned(s, school.id)
        assert flag.raised_at == t0 and flag.cleared_at is None and flag.detail["unit"] == "区教育局"
        [notice] = s.execute(select(Notice).where(Notice.kind == "measure_unassigned")).scalars().all()
        assert notice.recipient_role == "duty_officer" and notice.entity_id == str(school.id)
        assert "无人可通知" in notice.subject and "停学" in notice.subject and "区教育局" in notice.subject
        assert notice.id == flag.detail["notice_id"]
        flagged = events_for(s, "supervision_flag", flag.id)
        assert [e.action for e in flagged] == ["supervision.measure_unassigned_flagged"]
        # the evacuation went to the township chief: nothing to flag there
        evac = next(o for o in measure_service.for_run(s, run_id) if o.kind == "evacuation")
        assert evac.person_phone and _unassigned(s, evac.id) == []
        # the run followed again (a sweep, an update): still one flag, one notice
        run = service.get_run(s, run_id)
        assert run is not None
        measure_service.sync_run(s, run, actor="system", now=clock.now())
        assert len(_unassigned(s, school.id)) == 1
        school_id = school.id

    clock.advance(dt.timedelta(minutes=3))
    with session_scope(session_factory) as s:
        school = measure_service.get(s, school_id)
        assert school is not None
        measure_service.assign(s, school, name="李科长", phone="13900000009", actor="user:duty", now=clock.now())
        [flag] = _unassigned(s, school_id)
        assert flag.cleared_at == clock.now() and flag.cleared_reason == "assigned"

    # the unit refuses; reassigned to a bureau nobody answers for → a new flag; to one with a duty person → sent
    with session_scope(session_factory) as s:
        school = measure_service.get(s, school_id)
        assert school is not None
        measure_service.transition(s, school, "reject", actor="user:duty", now=clock.now(), reason="不归我局管")
        measure_service.transition(s, school, "reassign", actor="user:leader", now=clock.now(), reason="改派",
                                   unit="区文旅局")
        flags = _unassigned(s, school_id)
        assert len(flags) == 2 and flags[1].cleared_at is None and school.person_phone is None
        _department_duty(s, clock.now(), "钱科长", "+8613900000004", "transport")
        measure_service.transition(s, school, "reject", actor="user:duty", now=clock.now(), reason="文旅局不管")
        measure_service.transition(s, school, "reassign", actor="user:leader", now=clock.now(), reason="改派",
                                   unit="区交通运输局")
        assert (school.person_name, school.person_phone, school.state) == ("钱科长", "+8613900000004", "ordered")
        assert all(f.cleared_at is not None for f in _unassigned(s, school_id))
        sent = s.execute(select(OutboxMessage).where(OutboxMessage.subject_id == str(school_id),
                                                     OutboxMessage.to_number == "+8613900000004")).scalars().all()
        assert {m.channel for m in sent} == {"voice", "sms"}
