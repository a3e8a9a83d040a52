"""Measures API (/measures).

Reading is open to every role. Recording what a unit reported (acknowledged, started, carried out,
lift acknowledged, lifted, rejected) and assigning people is the duty desk's; ordering, cancelling,
waiving and lifting a measure alone is the leader's. Every change is in the event log.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from config.errors import ApiError, errors, not_found
from config.eventlog import events_for
from config.fields import PHONE_RE, RowId
from config.users import Role, User
from config.web import ALL_ROLES, DB, STAFF, ClockDep, SettingsDep, actor_of, require
from responses.measures import core as rules
from responses.measures import service as measure_service
from responses.measures.core import MeasureAction, ReportError
from responses.measures.models import MeasureOrder
from responses.measures.schemas import (
    MeasureActionIn,
    MeasureAssignIn,
    MeasureCreateIn,
    MeasureDetail,
    MeasureOut,
    NoticeTextOut,
)

router = APIRouter(prefix="/measures", tags=["measures"])

LEADERS = (Role.ADMIN, Role.LEADER)
LEADER_ACTIONS = frozenset({MeasureAction.CANCEL, MeasureAction.WAIVE, MeasureAction.ORDER_LIFT,
                            MeasureAction.REASSIGN})


def _check_phone(raw: str | None) -> None:
    """The documented pattern (ASCII digits, as E.164 needs); the measure service reads the number itself."""
    if raw and raw.strip() and not PHONE_RE.match(raw):
        raise ApiError(400, "bad_phone", f"号码格式不对：{raw}", f"not a phone number: {raw}")


def _order(db: DB, measure_id: int, *, lock: bool = False) -> MeasureOrder:
    order = measure_service.get(db, measure_id, lock=lock)
    if order is None:
        raise not_found("措施", "measure", measure_id)
    return order


@router.get("", response_model=list[MeasureOut], dependencies=[require(*ALL_ROLES)])
def measures_list(db: DB, clock: ClockDep, run_id: RowId | None = None, state: str | None = None,
                  open_only: bool = False, overdue: bool | None = None,
                  limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, object]]:
    stmt = select(MeasureOrder).order_by(MeasureOrder.id.desc()).limit(limit)
    if run_id is not None:
        stmt = stmt.where(MeasureOrder.run_id == run_id)
    if state:
        stmt = stmt.where(MeasureOrder.state == state)
    if open_only:
        stmt = stmt.where(MeasureOrder.state.in_([s.value for s in rules.OPEN]))
    now = clock.now()
    out = [measure_service.view(o, now) for o in db.execute(stmt).scalars()]
    if overdue is not None:
        out = [v for v in out if bool(v["overdue"]) == overdue]
    return out


@router.get("/{measure_id}", response_model=MeasureDetail, dependencies=[require(*ALL_ROLES)], responses=errors(404))
def measures_get(measure_id: RowId, db: DB, clock: ClockDep) -> dict[str, object]:
    order = _order(db, measure_id)
    events = [{"seq": e.seq, "at": e.at, "action": e.action, "actor": e.actor, "payload": e.payload}
              for e in events_for(db, "measure_order", order.id)]
    return {**measure_service.view(order, clock.now()), "events": events}


@router.post("", response_model=MeasureOut, status_code=201, responses=errors(404, 409))
def measures_create(body: MeasureCreateIn, db: DB, clock: ClockDep, settings: SettingsDep,
                    user: User = require(*LEADERS)) -> dict[str, object]:
    from responses.runs import service

    _check_phone(body.person_phone)
    run = service.get_run(db, body.run_id, lock=True)
    if run is None:
        raise not_found("响应", "run", body.run_id)
    order = measure_service.create_manual(
        db, run, kind=body.kind, label=body.label, area_codes=body.area_codes, site_ids=body.site_ids,
        responsible_unit=body.responsible_unit, deadline_minutes=body.deadline_minutes, actor=actor_of(user),
        now=clock.now(), tz=settings.tz, sectors=body.sectors, expected=body.expected,
        person_name=body.person_name, person_phone=body.person_phone)
    db.commit()
    return measure_service.view(order, clock.now())


@router.post("/{measure_id}/actions/{action}", response_model=MeasureOut, responses=errors(404, 409))
def measures_act(measure_id: RowId, action: MeasureAction, body: MeasureActionIn, db: DB, clock: ClockDep,
                 settings: SettingsDep, user: User = require(*STAFF)) -> dict[str, object]:
    if action in LEADER_ACTIONS and Role(user.role) not in LEADERS:
        raise ApiError(403, "forbidden", f"只有带班领导可以{rules.ACTION_ZH[action]}措施",
                       f"only a leader may {action.value} a measure", details={"allowed": sorted(LEADERS)})
    order = _order(db, measure_id, lock=True)
    now = clock.now()
    try:
        measure_service.transition(db, order, action, actor=actor_of(user), now=now, reason=body.reason,
                                   report=body.report, via=body.via, note=body.note, unit=body.unit,
                                   tz=settings.tz)
    except ReportError as exc:
        raise ApiError(400, "bad_report", exc.zh, exc.en) from None
    db.commit()
    return measure_service.view(order, now)


@router.post("/{measure_id}/assign", response_model=MeasureOut, responses=errors(404, 409))
def measures_assign(measure_id: RowId, body: MeasureAssignIn, db: DB, clock: ClockDep, settings: SettingsDep,
                    user: User = require(*STAFF)) -> dict[str, object]:
    _check_phone(body.phone)
    order = _order(db, measure_id, lock=True)
    measure_service.assign(db, order, actor=actor_of(user), now=clock.now(), tz=settings.tz,
                           contact_id=body.contact_id, name=body.name, phone=body.phone)
    db.commit()
    return measure_service.view(order, clock.now())


@router.get("/{measure_id}/notice", response_model=NoticeTextOut, dependencies=[require(*STAFF)],
            responses=errors(404, 409))
def measures_notice(measure_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep,
                    which: Literal["order", "lift"] = "order") -> NoticeTextOut:
    order = _order(db, measure_id)
    text = measure_service.notice_text(db, order, which, now=clock.now(), tz=settings.tz)
    return NoticeTextOut(measure_id=order.id, which=which, text=text)
