"""Information reports API (/reports): read by every role; edited, redrafted and marked sent by the duty desk."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from config.errors import ApiError, errors, not_found
from config.fields import RowId
from config.users import User
from config.web import ALL_ROLES, DB, STAFF, ClockDep, SettingsDep, actor_of, require
from responses.reports import service as info_report_service
from responses.reports.models import InfoReport
from responses.reports.schemas import ReportOut, ReportSentIn, ReportTextIn

router = APIRouter(prefix="/reports", tags=["reports"])



def _report(db: DB, report_id: int, *, lock: bool = False) -> InfoReport:
    rep = info_report_service.get(db, report_id, lock=lock)
    if rep is None:
        raise not_found("信息报告", "report", report_id)
    return rep


def _report_error(exc: info_report_service.ReportActionError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.zh, exc.en)


@router.get("", response_model=list[ReportOut], dependencies=[require(*ALL_ROLES)])
def reports_list(db: DB, clock: ClockDep, settings: SettingsDep, run_id: RowId | None = None,
                 state: str | None = None, limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, object]]:
    stmt = select(InfoReport).order_by(InfoReport.due_at.desc(), InfoReport.id.desc()).limit(limit)
    if run_id is not None:
        stmt = stmt.where(InfoReport.run_id == run_id)
    if state:
        stmt = stmt.where(InfoReport.state == state)
    now = clock.now()
    return [info_report_service.view(r, now, settings.tz) for r in db.execute(stmt).scalars()]


@router.get("/{report_id}", response_model=ReportOut, dependencies=[require(*ALL_ROLES)],
                    responses=errors(404))
def reports_get(report_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> dict[str, object]:
    return info_report_service.view(_report(db, report_id), clock.now(), settings.tz)


@router.put("/{report_id}/text", response_model=ReportOut, responses=errors(404, 409))
def reports_edit(report_id: RowId, body: ReportTextIn, db: DB, clock: ClockDep, settings: SettingsDep,
                 user: User = require(*STAFF)) -> dict[str, object]:
    rep = _report(db, report_id, lock=True)
    try:
        info_report_service.edit(db, rep, text=body.text, actor=actor_of(user), now=clock.now())
    except info_report_service.ReportActionError as exc:
        raise _report_error(exc) from None
    db.commit()
    return info_report_service.view(rep, clock.now(), settings.tz)


@router.post("/{report_id}/redraft", response_model=ReportOut, responses=errors(404, 409))
def reports_redraft(report_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep,
                    user: User = require(*STAFF)) -> dict[str, object]:
    rep = _report(db, report_id, lock=True)
    try:
        info_report_service.redraft(db, rep, actor=actor_of(user), now=clock.now(), tz=settings.tz)
    except info_report_service.ReportActionError as exc:
        raise _report_error(exc) from None
    db.commit()
    return info_report_service.view(rep, clock.now(), settings.tz)


@router.post("/{report_id}/sent", response_model=ReportOut, responses=errors(404, 409))
def reports_mark_sent(report_id: RowId, body: ReportSentIn, db: DB, clock: ClockDep, settings: SettingsDep,
                      user: User = require(*STAFF)) -> dict[str, object]:
    rep = _report(db, report_id, lock=True)
    try:
        info_report_service.mark_sent(db, rep, via=body.via, actor=actor_of(user), now=clock.now(),
                                      recipient=body.recipient, text=body.text)
    except info_report_service.ReportActionError as exc:
        raise _report_error(exc) from None
    db.commit()
    return info_report_service.view(rep, clock.now(), settings.tz)
