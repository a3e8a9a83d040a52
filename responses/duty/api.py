"""Duty API (/duty): the duty log (值班日志), handovers (交接班) and roster gaps.

Everyone logged in reads; the duty desk (admin, leader on duty, duty officer) writes. Signing is for the
outgoing shift's members and acknowledging for the incoming shift's (see ``responses.duty.handovers``).
``POST /duty/handovers`` is idempotent: it drafts the handover of the current shift (201), or returns the
one that shift already has (200) — the scheduler drafts it on its own 30 minutes before the shift ends.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BeforeValidator

from config.errors import ApiError, errors, not_found
from config.fields import AwareDateTimeIn, RowId
from config.users import User
from config.web import ALL_ROLES, DB, STAFF, ClockDep, SettingsDep, actor_of, require
from responses.contacts import roster_service
from responses.duty import core, export, gaps, handovers
from responses.duty import service as duty_service
from responses.duty.models import Handover
from responses.duty.schemas import (
    GapOut,
    HandoverAckIn,
    HandoverDraftIn,
    HandoverMarkIn,
    HandoverOut,
    HandoverSignIn,
    LogEntryIn,
    LogEntryOut,
    LogOut,
)

router = APIRouter(prefix="/duty", tags=["duty"])



def _iso_day(value: Any) -> Any:
    # Lax parsing would read "0" as 1970-01-01 (seconds since the epoch); the document says a date text.
    if isinstance(value, str) and not _DAY.match(value):
        raise ValueError("日期须写成 YYYY-MM-DD / a day is written YYYY-MM-DD")
    return value


def _time_text(value: Any) -> Any:
    # As for a day: a bare number is not an RFC 3339 time, though lax parsing would take it as epoch seconds.
    if isinstance(value, str) and _NUMBER.match(value):
        raise ValueError("时间须写成 RFC 3339 文本，如 2026-07-20T08:00:00+08:00 / an RFC 3339 time")
    return value


_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NUMBER = re.compile(r"^\s*[-+]?[0-9.eE+-]*\s*$")
DayIn = Annotated[dt.date, BeforeValidator(_iso_day)]
TimeIn = Annotated[AwareDateTimeIn, BeforeValidator(_time_text)]
ShiftQ = Annotated[RowId | None, Query(description="班次编号 / a shift's id")]
DayQ = Annotated[DayIn | None, Query(description="北京时间的某一天（YYYY-MM-DD）/ a day in Asia/Shanghai")]
FromQ = Annotated[TimeIn | None, Query(alias="from", description="起（含），须与 to 同时给出 / from, with to")]
ToQ = Annotated[TimeIn | None, Query(description="止（不含），最多 31 天 / to (exclusive), 31 days at most")]


def _error(exc: duty_service.DutyError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.zh, exc.en, exc.details)


def _names(user: User) -> list[str]:
    return [user.display_name, user.username]


def _name(user: User) -> str:
    return user.display_name or user.username


def _view(db: DB, clock: ClockDep, settings: SettingsDep, shift: int | None, day: dt.date | None,
          start: dt.datetime | None, end: dt.datetime | None) -> dict[str, Any]:
    try:
        return duty_service.log_view(db, now=clock.now(), tz=settings.tz, shift_id=shift, day=day, start=start,
                                     end=end)
    except duty_service.DutyError as exc:
        raise _error(exc) from None


# ---------------------------------------------------------------------------------------------- the log


@router.get("/log", response_model=LogOut, response_model_by_alias=True, dependencies=[require(*ALL_ROLES)],
            responses=errors(404))
def duty_log(db: DB, clock: ClockDep, settings: SettingsDep, shift: ShiftQ = None, day: DayQ = None,
             from_: FromQ = None, to: ToQ = None) -> Any:
    """值班日志：一个班次、一天（北京时间）或一段时间；默认当前班次（无班次时为今天）。含系统记录（system=true）。
    / The duty log of a shift, a day or a window (default: the current shift, or today with none on duty),
    the system's events included and marked."""
    return _view(db, clock, settings, shift, day, from_, to)


@router.get("/log.xlsx", response_class=Response, dependencies=[require(*ALL_ROLES)],
            responses={200: {"description": "值班日志工作簿 / the log as a workbook",
                             "content": {export.XLSX: {"schema": {"type": "string", "format": "binary"}}}},
                       **errors(404)})
def duty_log_xlsx(db: DB, clock: ClockDep, settings: SettingsDep, shift: ShiftQ = None, day: DayQ = None,
                  from_: FromQ = None, to: ToQ = None) -> Response:
    """值班日志导出（Excel，中文表头）/ The log as a workbook with Chinese headers."""
    view = _view(db, clock, settings, shift, day, from_, to)
    name = f"duty-log-{view['from'].astimezone(settings.tz):%Y%m%d-%H%M}.xlsx"
    return Response(export.xlsx_bytes(view), media_type=export.XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/log.html", response_class=HTMLResponse, dependencies=[require(*ALL_ROLES)], responses=errors(404))
def duty_log_html(db: DB, clock: ClockDep, settings: SettingsDep, shift: ShiftQ = None, day: DayQ = None,
                  from_: FromQ = None, to: ToQ = None) -> HTMLResponse:
    """值班日志打印页（中文表头：时间、类型、内容、来源/记录人、交接）/ The log as a printable page."""
    return HTMLResponse(export.render_html(_view(db, clock, settings, shift, day, from_, to)))


@router.post("/log", response_model=LogEntryOut, status_code=201, responses=errors(404))
def duty_log_write(body: LogEntryIn, db: DB, clock: ClockDep, settings: SettingsDep,
                   user: User = require(*STAFF)) -> Any:
    """记一条值班日志（本班次）：来电、领导批示、处置或记事；可补记本班内更早的时间。
    / Write an entry in the current shift's log; it may be back-dated within the shift."""
    try:
        entry = duty_service.write_entry(
            db, kind=body.kind, text=body.text, at=body.at, from_name=body.from_name, from_unit=body.from_unit,
            from_phone=body.from_phone, warning_id=body.warning_id, run_id=body.run_id,
            for_handover=body.for_handover, actor=actor_of(user), author_name=_name(user), now=clock.now())
    except duty_service.DutyError as exc:
        raise _error(exc) from None
    db.commit()
    return {**duty_service.entry_view(entry), "at_local": core.local_text(entry.at, settings.tz)}


@router.post("/log/{entry_id}/handover", response_model=LogEntryOut, responses=errors(404))
def duty_log_mark(entry_id: RowId, body: HandoverMarkIn, db: DB, clock: ClockDep, settings: SettingsDep,
                  user: User = require(*STAFF)) -> Any:
    """标记（或取消）交接事项 / Mark an entry for the handover, or unmark it."""
    entry = duty_service.get_entry(db, entry_id, lock=True)
    if entry is None:
        raise not_found("值班日志记录", "log entry", entry_id)
    duty_service.mark_for_handover(db, entry, body.for_handover, actor=actor_of(user), now=clock.now())
    db.commit()
    return {**duty_service.entry_view(entry), "at_local": core.local_text(entry.at, settings.tz)}


# ---------------------------------------------------------------------------------------------- handovers


def _handover(db: DB, handover_id: int, *, lock: bool = False) -> Handover:
    h = handovers.get(db, handover_id, lock=lock)
    if h is None:
        raise not_found("交接班记录", "handover", handover_id)
    return h


@router.get("/handovers", response_model=list[HandoverOut], dependencies=[require(*ALL_ROLES)])
def duty_handovers_list(db: DB, clock: ClockDep, settings: SettingsDep, shift: ShiftQ = None,
                        state: Literal["draft", "signed", "acknowledged"] | None = None,
                        limit: int = Query(50, ge=1, le=500)) -> Any:
    """交接班记录（新的在前；给出班次时为其交出和接收的）/ Handovers, newest first (a shift's out and in)."""
    now = clock.now()
    return [handovers.view(db, h, now=now, tz=settings.tz)
            for h in handovers.listing(db, shift_id=shift, state=state, limit=limit)]


@router.post("/handovers", response_model=HandoverOut, status_code=201,
             responses={200: {"model": HandoverOut, "description": "该班次已有交接班记录 / the shift's existing one"},
                        **errors(404, 409)})
def duty_handovers_draft(db: DB, clock: ClockDep, settings: SettingsDep, response: Response,
                         body: HandoverDraftIn | None = None, user: User = require(*STAFF)) -> Any:
    """起草当前班次的交接班记录（已有则返回已有的，200；redraft=true 时按当前数据重新起草草稿）。
    / Draft the current shift's handover (201), or return the one it has (200); ``redraft`` refreshes a draft."""
    now = clock.now()
    body = body or HandoverDraftIn()
    if body.shift is not None:
        shift = duty_service.get_shift(db, body.shift)
        if shift is None:
            raise not_found("班次", "shift", body.shift)
    else:
        shift = roster_service.shift_at(db, now)
        if shift is None:
            raise ApiError(409, "no_current_shift", "当前没有在班的班次（值班表未排），无法起草交接班记录",
                           "no shift is on duty now (nothing on the roster); there is nothing to hand over")
    try:
        h, created = handovers.draft(db, shift, actor=actor_of(user), now=now, tz=settings.tz)
        if not created and body.redraft:
            h = handovers.redraft(db, h, actor=actor_of(user), now=now, tz=settings.tz)
    except duty_service.DutyError as exc:
        raise _error(exc) from None
    db.commit()
    if not created:
        response.status_code = 200
    return handovers.view(db, h, now=now, tz=settings.tz)


@router.get("/handovers/{handover_id}", response_model=HandoverOut, dependencies=[require(*ALL_ROLES)],
            responses=errors(404))
def duty_handovers_get(handover_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> Any:
    return handovers.view(db, _handover(db, handover_id), now=clock.now(), tz=settings.tz)


def _member_check(db: DB, shift_id: int | None, user: User, *, zh: str, en: str) -> None:
    ok, allowed = handovers.may_act(db, shift_id, user_id=user.id, names=_names(user))
    if not ok:
        raise ApiError(403, "not_shift_member", zh, en, {"allowed": allowed})


@router.post("/handovers/{handover_id}/sign", response_model=HandoverOut, responses=errors(404, 409))
def duty_handovers_sign(handover_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep,
                        body: HandoverSignIn | None = None, user: User = require(*STAFF)) -> Any:
    """交班签字（可带修改后的内容）；须为交班班次的值班人员（班次未列人员时任一值班台用户）。
    / The outgoing officer signs, optionally with the edited text."""
    h = _handover(db, handover_id, lock=True)
    _member_check(db, h.shift_id, user, zh="只有交班班次的值班人员可以签字",
                  en="only the outgoing shift's members sign")
    now = clock.now()
    try:
        handovers.sign(db, h, actor=actor_of(user), name=_name(user), now=now, text=body.text if body else None)
    except duty_service.DutyError as exc:
        raise _error(exc) from None
    db.commit()
    return handovers.view(db, h, now=now, tz=settings.tz)


@router.post("/handovers/{handover_id}/ack", response_model=HandoverOut, responses=errors(404, 409))
def duty_handovers_ack(handover_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep,
                       body: HandoverAckIn | None = None, user: User = require(*STAFF)) -> Any:
    """接班确认；须为接班班次的值班人员（接班班次未排或未列人员时任一值班台用户）。
    / The incoming officer acknowledges the signed handover."""
    h = _handover(db, handover_id, lock=True)
    _member_check(db, h.next_shift_id, user, zh="只有接班班次的值班人员可以确认",
                  en="only the incoming shift's members acknowledge")
    now = clock.now()
    handovers.acknowledge(db, h, actor=actor_of(user), name=_name(user), now=now, note=body.note if body else None)
    db.commit()
    return handovers.view(db, h, now=now, tz=settings.tz)


# ---------------------------------------------------------------------------------------------- gaps


@router.get("/gaps", response_model=list[GapOut], dependencies=[require(*ALL_ROLES)])
def duty_gaps(db: DB, clock: ClockDep, settings: SettingsDep,
              hours: int = Query(24, ge=1, le=24 * 14, description="向后看多少小时 / hours ahead")) -> Any:
    """排班缺口：缺值班员、缺带班领导的班次与无人值班的时段 / Shifts lacking an officer or a leader, and hours
    with no shift, from now to ``hours`` ahead."""
    return gaps.gaps(db, clock.now(), dt.timedelta(hours=hours), tz=settings.tz)
