"""Responses API: plans (everyone reads, admins edit with validation), runs, supervision, the roster."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Response, UploadFile
from sqlalchemy import select

from config.errors import ApiError, errors, not_found
from config.eventlog import events_for
from config.fields import RowId
from config.users import Role, User
from config.web import ALL_ROLES, DB, STAFF, ClockDep, SettingsDep, actor_of, require
from responses.contacts import roster_service
from responses.contacts.models import Roster, Shift
from responses.contacts.roster import Person, RosterFileError, ShiftSpec
from responses.runs import service, supervision
from responses.runs.core import IllegalRunTransition, RunState, RunTransition
from responses.runs.models import Notice, ResponseRun, SupervisionFlag
from responses.runs.schemas import (
    FlagOut,
    MemberOut,
    NoticeOut,
    OnDutyOut,
    PlanCheckOut,
    PlanEditIn,
    PlanOut,
    PlanSummary,
    RosterOut,
    RunCloseIn,
    RunClosingIn,
    RunDetail,
    RunOut,
    ShiftIn,
    ShiftOut,
    ShiftsIn,
)
from warning.draft import Hazard

router = APIRouter(prefix="/responses", tags=["responses"])
roster_router = APIRouter(prefix="/responses/roster", tags=["roster"])

LEADERS = (Role.ADMIN, Role.LEADER)
ROSTER_EDITORS = (Role.ADMIN, Role.DUTY_OFFICER)
MAX_UPLOAD = 5 * 1024 * 1024


def _plan_out(db: DB, hz: Hazard) -> PlanOut:
    plan, version = service.current_plan(db, hz.value)
    if plan is None:
        raise not_found("灾种预案", "plan for hazard", hz.value)
    doc = service.latest_document(db, hz.value)
    return PlanOut(hazard=hz.value, title=plan.title, version=version, source="edited" if doc else "default",
                   revision=doc.revision if doc else None, plan=plan.model_dump(mode="json"))


@router.get("/plans", response_model=list[PlanSummary], dependencies=[require(*ALL_ROLES)])
def responses_plans_list(db: DB) -> Any:
    out = []
    for hz in Hazard:
        try:
            p = _plan_out(db, hz)
        except ApiError:
            continue
        out.append(PlanSummary(**p.model_dump(exclude={"plan"})))
    return out


@router.get("/plans/{hazard}", response_model=PlanOut, dependencies=[require(*ALL_ROLES)], responses=errors(404))
def responses_plans_get(hazard: Hazard, db: DB) -> Any:
    return _plan_out(db, hazard)


@router.put("/plans/{hazard}", response_model=PlanOut, responses=errors(404))
def responses_plans_edit(hazard: Hazard, body: PlanEditIn, db: DB, clock: ClockDep,
                         user: User = require(Role.ADMIN)) -> Any:
    hz = hazard
    doc, errors = service.save_plan_document(db, hazard=hz.value, source=body.source, fmt=body.format,
                                             note=body.note, actor=actor_of(user), now=clock.now())
    if doc is None:
        raise ApiError(422, "invalid_plan", f"预案有 {len(errors)} 处错误，未保存",
                       f"{len(errors)} error(s); not saved", errors)
    db.commit()
    return _plan_out(db, hz)


@router.post("/plans/check", response_model=PlanCheckOut, dependencies=[require(Role.ADMIN, Role.LEADER)])
def responses_plans_check(body: PlanEditIn) -> Any:
    from responses.runs.plans import parse_text

    res = parse_text(body.source, f"plan.{body.format}", body.format)
    return PlanCheckOut(ok=not res.errors, errors=[e.as_dict() for e in res.errors])


@router.get("/runs", response_model=list[RunOut], dependencies=[require(*ALL_ROLES)])
def responses_runs_list(db: DB, state: str | None = None, limit: int = 100) -> Any:
    stmt = select(ResponseRun).order_by(ResponseRun.id.desc()).limit(min(max(limit, 1), 500))
    if state:
        stmt = stmt.where(ResponseRun.state == state)
    return list(db.execute(stmt).scalars())


def _run(db: DB, run_id: int, lock: bool = False) -> ResponseRun:
    run = service.get_run(db, run_id, lock=lock)
    if run is None:
        raise not_found("响应", "response run", run_id)
    return run


@router.get("/runs/{run_id}", response_model=RunDetail, dependencies=[require(*ALL_ROLES)], responses=errors(404))
def responses_runs_get(run_id: RowId, db: DB) -> Any:
    run = _run(db, run_id)
    out = RunDetail.model_validate(run, from_attributes=True)
    out.events = [{"seq": e.seq, "at": e.at, "action": e.action, "actor": e.actor, "payload": e.payload}
                  for e in events_for(db, "response_run", run.id)]
    return out


@router.post("/runs/{run_id}/closing", response_model=RunOut, responses=errors(404, 409))
def responses_runs_begin_closing(run_id: RowId, body: RunClosingIn, db: DB, clock: ClockDep,
                                 user: User = require(*LEADERS)) -> Any:
    run = _run(db, run_id, lock=True)
    if RunState(run.state) is not RunState.ACTIVE:
        raise IllegalRunTransition(RunTransition.BEGIN_CLOSING, RunState(run.state))
    service.begin_closing(db, run, reason=body.reason, actor=actor_of(user), now=clock.now())
    db.commit()
    return run


@router.post("/runs/{run_id}/close", response_model=RunOut, responses=errors(404, 409))
def responses_runs_close(run_id: RowId, body: RunCloseIn, db: DB, clock: ClockDep,
                         user: User = require(*LEADERS)) -> Any:
    run = _run(db, run_id, lock=True)
    service.close_run(db, run, actor=actor_of(user), now=clock.now(), note=body.note)
    db.commit()
    return run


@router.get("/flags", response_model=list[FlagOut], dependencies=[require(*STAFF, Role.VIEWER)])
def responses_flags_list(db: DB, include_cleared: bool = False, limit: int = 200) -> Any:
    if not include_cleared:
        return supervision.open_flags(db)[:limit]
    return list(db.execute(select(SupervisionFlag).order_by(SupervisionFlag.id.desc())
                           .limit(min(max(limit, 1), 1000))).scalars())


@router.get("/notices", response_model=list[NoticeOut], dependencies=[require(*STAFF)])
def responses_notices_list(db: DB, limit: int = 100) -> Any:
    return list(db.execute(select(Notice).order_by(Notice.id.desc()).limit(min(max(limit, 1), 500))).scalars())


# ---------------------------------------------------------------------------------------------- roster


def _shift_out(db: DB, s: Shift) -> ShiftOut:
    ms = roster_service.members(db, s.id)
    leader = next((m for m in ms if m.role == "leader"), None)
    return ShiftOut(id=s.id, starts_at=s.starts_at, ends_at=s.ends_at, label=s.label, note=s.note,
                    leader=MemberOut.model_validate(leader) if leader else None,
                    officers=[MemberOut.model_validate(m) for m in ms if m.role == "officer"])


@roster_router.get("/on-duty", response_model=OnDutyOut, dependencies=[require(*ALL_ROLES)])
def roster_on_duty(db: DB, clock: ClockDep) -> Any:
    now = clock.now()
    duty = roster_service.on_duty(db, now)
    return OnDutyOut(at=now, shift=_shift_out(db, duty.shift) if duty.shift else None,
                     leader=MemberOut.model_validate(duty.leader) if duty.leader else None,
                     officers=[MemberOut.model_validate(m) for m in duty.officers])


@roster_router.get("/shifts", response_model=list[ShiftOut], dependencies=[require(*ALL_ROLES)])
def roster_shifts(db: DB, clock: ClockDep, days: int = 7) -> Any:
    import datetime as dt

    now = clock.now()
    days = min(max(days, 1), 92)
    return [_shift_out(db, s) for s in roster_service.shifts_between(db, now - dt.timedelta(days=1),
                                                                      now + dt.timedelta(days=days))]


@roster_router.post("/shifts", response_model=RosterOut, status_code=201)
def roster_shifts_save(body: ShiftsIn, db: DB, clock: ClockDep, user: User = require(*ROSTER_EDITORS)) -> Any:
    specs = [spec_of(s) for s in body.shifts]
    roster = roster_service.save_api_batch(db, specs, actor=actor_of(user), now=clock.now(), name=body.name)
    db.commit()
    return roster


def spec_of(s: ShiftIn) -> ShiftSpec:
    return ShiftSpec(starts_at=s.starts_at, ends_at=s.ends_at,
                     leader=Person(s.leader.name, s.leader.phone) if s.leader else None,
                     officers=[Person(p.name, p.phone) for p in s.officers], label=s.label, note=s.note)


def _shift_or_404(db: DB, shift_id: int) -> Shift:
    shift = roster_service.get_shift(db, shift_id, lock=True)
    if shift is None:
        raise not_found("班次", "shift", shift_id)
    return shift


def _refused(exc: roster_service.RosterError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.zh, exc.en, exc.details)


@roster_router.put("/shifts/{shift_id}", response_model=ShiftOut, responses=errors(404, 409, 422))
def roster_shift_update(shift_id: RowId, body: ShiftIn, db: DB, clock: ClockDep, settings: SettingsDep,
                        user: User = require(*ROSTER_EDITORS)) -> Any:
    """Change a shift that has not ended (a shift on duty keeps its start); no overlap with another shift."""
    shift = _shift_or_404(db, shift_id)
    try:
        roster_service.update_shift(db, shift, spec_of(body), actor=actor_of(user), now=clock.now(), tz=settings.tz)
    except roster_service.RosterError as exc:
        raise _refused(exc) from None
    db.commit()
    return _shift_out(db, shift)


@roster_router.delete("/shifts/{shift_id}", status_code=204, response_class=Response, responses=errors(404, 409))
def roster_shift_remove(shift_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep,
                        user: User = require(*ROSTER_EDITORS)) -> Response:
    """Remove a shift that has not begun (a begun shift's log and handover stay with it)."""
    shift = _shift_or_404(db, shift_id)
    try:
        roster_service.remove_shift(db, shift, actor=actor_of(user), now=clock.now(), tz=settings.tz)
    except roster_service.RosterError as exc:
        raise _refused(exc) from None
    db.commit()
    return Response(status_code=204)


@roster_router.post("/import", response_model=RosterOut, status_code=201, responses=errors(413))
def roster_import(db: DB, clock: ClockDep, settings: SettingsDep, file: UploadFile = File(...),
                  user: User = require(*ROSTER_EDITORS)) -> Any:
    data = file.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ApiError(413, "too_large", "文件过大（上限 5 MiB）", "file too large (5 MiB limit)")
    try:
        roster = roster_service.import_file(db, data=data, filename=file.filename or "roster.csv", tz=settings.tz,
                                            actor=actor_of(user), now=clock.now())
    except RosterFileError as exc:
        raise ApiError(400, "bad_roster_file", exc.zh, exc.en) from None
    db.commit()
    return roster


@roster_router.get("/imports/{roster_id}", response_model=RosterOut, dependencies=[require(*STAFF)],
                   responses=errors(404))
def roster_import_get(roster_id: RowId, db: DB) -> Any:
    roster = db.get(Roster, roster_id)
    if roster is None:
        raise not_found("值班表导入", "roster import", roster_id)
    return roster
