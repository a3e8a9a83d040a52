"""The acceptance scenario: an orange flood run over three villages with a reservoir site."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import events_for, verify
from config.runtime import Runtime
from responses.measures import service as measure_service
from responses.measures.models import MeasureOrder
from responses.measures.service import MeasuresStillOpen
from responses.messaging.models import OutboxMessage
from responses.runs import engine, service
from responses.runs.core import RunState, Trigger
from responses.runs.models import Notice, SupervisionFlag
from warning.changes import ChangeKind, WarningChange
from warning.models import Warning

from .conftest import TOWN, VILLAGES, make_region  # noqa: TID252


def _start(s: Session, now: dt.datetime, measures: list[dict[str, object]]) -> int:
    region = make_region(s, now)
    w = s.get(Warning, region.warning_id)
    assert w is not None
    run, created = service.start_run(s, warning=w, level="orange", areas=w.affected, trigger=Trigger.DECISION,
                                      actor="user:leader", now=now, measures=measures)
    assert created and run is not None
    return run.id


def test_orange_flood_scenario(session_factory: sessionmaker[Session], clock: VirtualClock,
                               orange_measures: list[dict[str, object]]) -> None:
    t0 = clock.now()
    with session_scope(session_factory) as s:
        run_id = _start(s, t0, orange_measures)

    # 1. evacuation and 停学 orders for the right areas, sent to the responsible person
    with session_scope(session_factory) as s:
        orders = measure_service.for_run(s, run_id)
        by_kind = {o.kind: o for o in orders}
        assert sorted(by_kind) == ["evacuation", "stop_school"]
        evac, school = by_kind["evacuation"], by_kind["stop_school"]
        assert evac.area_codes == [VILLAGES[1]] and evac.site_names == ["东风水库下游"] and evac.expected == 130
        assert evac.responsible_unit == "北街街道" and evac.unit_area_code == TOWN and evac.person_name == "王镇长"
        assert school.area_codes == VILLAGES and school.area_names == ["上村", "中村", "下村"]
        assert school.responsible_unit == "区教育局" and school.person_phone is None
        msgs = s.execute(select(OutboxMessage).where(OutboxMessage.subject_type == "measure_order",
                                                     OutboxMessage.subject_id == str(evac.id))).scalars().all()
        assert {m.channel for m in msgs} == {"voice", "sms"}  # the plan's channels, as for callouts
        assert all(m.to_number == "+8613900000001" for m in msgs)
        assert any("转移疏散" in m.body and "中村" in m.body for m in msgs)
        # 停学 has no person yet: the duty officer assigns one, who is then messaged
        measure_service.assign(s, school, name="李科长", phone="13900000002", actor="user:duty", now=t0)
        assert measure_service.for_run(s, run_id)  # still there
        assert school.person_phone == "+8613900000002"
        evac_id, school_id = evac.id, school.id

    # 2. the evacuation is carried out: 120 of 130 → the gap of 10 shown
    clock.advance(dt.timedelta(minutes=50))
    with session_scope(session_factory) as s:
        evac = measure_service.get(s, evac_id)
        assert evac is not None
        measure_service.transition(s, evac, "acknowledge", actor="user:duty", now=clock.now(), via="phone")
        measure_service.transition(s, evac, "carry_out", actor="user:duty", now=clock.now(),
                                   report={"people_evacuated": 120})
        v = measure_service.view(evac, clock.now())
        assert v["state"] == "carried_out" and v["gap"]["gap"] == 10 and not v["gap"]["complete"]
        assert "尚有 10 人未转移" in v["gap"]["text"]

    # 3. 停学 passes its 60-minute deadline: overdue, flagged once, the leader on duty told
    clock.advance(dt.timedelta(minutes=10))
    with session_scope(session_factory) as s:
        flagged = measure_service.sweep_overdue(s, clock.now())
        assert [o.id for o in flagged] == [school_id]
    with session_scope(session_factory) as s:
        assert measure_service.sweep_overdue(s, clock.now()) == []  # idempotent
        school = measure_service.get(s, school_id)
        evac = measure_service.get(s, evac_id)
        assert school is not None and school.overdue and school.overdue_at == clock.now()
        assert evac is not None and not evac.overdue
        flags = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "measure_overdue")).scalars().all()
        assert [f.subject_id for f in flags] == [str(school_id)]
        notices = s.execute(select(Notice).where(Notice.kind == "measure_overdue")).scalars().all()
        assert len(notices) == 1 and "停学" in notices[0].subject

    # 4. the warning is cancelled → lift orders sent for both, and acknowledged
    clock.advance(dt.timedelta(hours=3))
    with session_scope(session_factory) as s:
        run = service.get_run(s, run_id)
        assert run is not None
        change = WarningChange(kind=ChangeKind.CANCELLED, warning_id=run.warning_id, thread_id=run.thread_id,
                               previous_id=None, hazard="flood", level="orange", previous_level="orange",
                               status="actual", drill=False)
        engine.on_warning_change(s, change, clock.now())
        assert run.state == RunState.CLOSING.value
        orders = measure_service.for_run(s, run_id)
        assert {o.state for o in orders} == {"lifting"}
        assert all(o.lift_ordered_at == clock.now() and "warning cancelled" in (o.lift_reason or "") for o in orders)
        lift_msgs = s.execute(select(OutboxMessage).where(
            OutboxMessage.subject_type == "measure_order", OutboxMessage.template == "measure_lift")).scalars().all()
        assert {m.subject_id for m in lift_msgs} == {str(evac_id), str(school_id)}

    # 5. the run cannot close while a measure is still out
    with session_scope(session_factory) as s:
        run = service.get_run(s, run_id)
        assert run is not None
        with pytest.raises(MeasuresStillOpen) as exc:
            service.close_run(s, run, actor="user:leader", now=clock.now())
        assert exc.value.status == 409 and len(exc.value.orders) == 2 and "不能结束响应" in exc.value.zh
        s.rollback()

    clock.advance(dt.timedelta(minutes=20))
    with session_scope(session_factory) as s:
        for oid in (evac_id, school_id):
            o = measure_service.get(s, oid)
            assert o is not None
            measure_service.transition(s, o, "acknowledge_lift", actor="user:duty", now=clock.now(), via="phone")
        evac = measure_service.get(s, evac_id)
        assert evac is not None
        measure_service.transition(s, evac, "confirm_lifted", actor="user:duty", now=clock.now())
        run = service.get_run(s, run_id)
        assert run is not None
        with pytest.raises(MeasuresStillOpen) as exc:  # 停学 acknowledged, not yet confirmed lifted
            service.close_run(s, run, actor="user:leader", now=clock.now())
        assert [o.id for o in exc.value.orders] == [school_id]

    with session_scope(session_factory) as s:
        school = measure_service.get(s, school_id)
        assert school is not None and school.lift_acknowledged_at is not None
        measure_service.transition(s, school, "waive", actor="user:leader", now=clock.now(),
                                   reason="学校暑假，无需恢复教学")
        run = service.get_run(s, run_id)
        assert run is not None
        service.close_run(s, run, actor="user:leader", now=clock.now())
        assert run.state == RunState.CLOSED.value

    with session_scope(session_factory) as s:
        actions = [e.action for e in events_for(s, "measure_order", evac_id)]
        assert actions[:2] == ["measure.ordered", "measure.order_sent"]
        assert "measure.carry_out" in actions and "measure.lift_ordered" in actions
        assert actions[-2:] == ["measure.acknowledge_lift", "measure.confirm_lifted"]
        assert verify(s).ok
        orders = s.execute(select(MeasureOrder).where(MeasureOrder.run_id == run_id)).scalars().all()
        assert {o.state for o in orders} == {"lifted", "waived"}


def test_leader_lifts_one_measure_alone_and_downgrade_lifts(session_factory: sessionmaker[Session],
                                                            clock: VirtualClock,
                                                            orange_measures: list[dict[str, object]]) -> None:
    t0 = clock.now()
    with session_scope(session_factory) as s:
        run_id = _start(s, t0, orange_measures)
    with session_scope(session_factory) as s:
        school = next(o for o in measure_service.for_run(s, run_id) if o.kind == "stop_school")
        with pytest.raises(Exception) as exc:
            measure_service.transition(s, school, "order_lift", actor="user:leader", now=t0, reason="")
        assert "理由" in getattr(exc.value, "zh", "")
    with session_scope(session_factory) as s:
        school = next(o for o in measure_service.for_run(s, run_id) if o.kind == "stop_school")
        measure_service.transition(s, school, "order_lift", actor="user:leader", now=t0, reason="雨势减弱，恢复上课")
        assert school.state == "lifting" and school.lift_reason == "雨势减弱，恢复上课"
        evac = next(o for o in measure_service.for_run(s, run_id) if o.kind == "evacuation")
        assert evac.state == "ordered"
        # a revision that keeps only the evacuation lifts nothing more; one that drops it lifts it
        run = service.get_run(s, run_id)
        assert run is not None
        run.measures = []
        measure_service.sync_run(s, run, actor="user:leader", now=t0)
        assert evac.state == "lifting" and "不再需要" in (evac.lift_reason or "")
        # sync again: nothing new, nothing twice
        before = len(s.execute(select(OutboxMessage)).scalars().all())
        measure_service.sync_run(s, run, actor="user:leader", now=t0)
        assert len(s.execute(select(OutboxMessage)).scalars().all()) == before


def test_extending_areas_widens_the_order_not_a_second_one(session_factory: sessionmaker[Session],
                                                           clock: VirtualClock) -> None:
    t0 = clock.now()
    with session_scope(session_factory) as s:
        run_id = _start(s, t0, [{"kind": "stop_school", "targets": {"area_levels": ["village"]},
                                 "deadline_minutes": 60, "responsible_unit": "区教育局"}])
        run = service.get_run(s, run_id)
        assert run is not None
        run.areas = {"villages": VILLAGES[:1], "townships": [], "sites": []}
    with session_scope(session_factory) as s:
        run = service.get_run(s, run_id)
        assert run is not None
        orders = measure_service.for_run(s, run_id)
        assert len(orders) == 1 and orders[0].area_codes == VILLAGES
        service.extend_areas(s, run, {"villages": ["140502001009"]}, warning_id=run.warning_id, actor="feed:x",
                             now=t0)
        orders = measure_service.for_run(s, run_id)
        assert len(orders) == 1 and "140502001009" in orders[0].area_codes


def test_sweep_job_flags_overdue_once(runtime: Runtime, orange_measures: list[dict[str, object]]) -> None:
    from jiaoying.scheduler import job_specs, run_job

    with session_scope(runtime.session_factory) as s:
        run_id = _start(s, runtime.now(), orange_measures)
    spec = next(j for j in job_specs(runtime) if j.name == "measures_sweep")
    run_job(runtime, spec)
    assert "measures_sweep" not in runtime.state.get("job_errors", {})
    runtime.clock.advance(dt.timedelta(minutes=121))  # type: ignore[attr-defined]
    run_job(runtime, spec)
    run_job(runtime, spec)
    with session_scope(runtime.session_factory) as s:
        assert all(o.overdue for o in measure_service.for_run(s, run_id))
        flags = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "measure_overdue")).scalars().all()
        assert len(flags) == 2
