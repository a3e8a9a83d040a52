"""Audit API (/audit): the timeliness audit report of one response run, as JSON, HTML or a workbook.

The same dict ``jiaoying report RUN_ID`` writes as ``report.json`` is built on every request from the
records and the event log (nothing is cached, so the report of a run still open shows the deadlines
missed so far, judged at the request's time). Auditors read it: admin, leader, duty officer and viewer;
a department analyst records judgements and is refused. Paths live under ``/audit`` so they never
meet the information reports (信息报送) served under ``/reports``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from config.errors import ApiError, errors
from config.fields import RowId
from config.users import Role
from config.web import DB, ClockDep, SettingsDep, require
from responses.audit.builder import ReportScopeError, build_report
from responses.audit.render import render_html, to_json, xlsx_bytes

router = APIRouter(prefix="/audit", tags=["audit"])

AUDITORS = (Role.ADMIN, Role.LEADER, Role.DUTY_OFFICER, Role.VIEWER)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _report(db: DB, clock: ClockDep, settings: SettingsDep, run_id: int) -> dict[str, Any]:
    try:
        return build_report(db, now=clock.now(), tz=settings.tz, run_ids=[run_id])
    except ReportScopeError as exc:
        raise ApiError(404, "not_found", exc.zh, exc.en, {"run_id": run_id}) from None


@router.get("/runs/{run_id}/report", dependencies=[require(*AUDITORS)], responses=errors(404))
def audit_run_report(run_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> dict[str, Any]:
    """时效审计报告（JSON，同 report.json）/ The run's timeliness audit report (the content of report.json)."""
    return _report(db, clock, settings, run_id)


@router.get("/runs/{run_id}/report.json", dependencies=[require(*AUDITORS)], response_class=Response,
            responses={200: {"description": "report.json（下载）/ report.json as a download",
                             "content": {"application/json": {"schema": {"type": "object"}}}}, **errors(404)})
def audit_run_report_json(run_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> Response:
    """下载 report.json / report.json as a download, byte for byte what the CLI writes."""
    body = to_json(_report(db, clock, settings, run_id))
    return Response(body.encode("utf-8"), media_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="audit-run-{run_id}.json"'})


@router.get("/runs/{run_id}/report.html", response_class=HTMLResponse, dependencies=[require(*AUDITORS)],
            responses=errors(404))
def audit_run_report_html(run_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> HTMLResponse:
    """时效审计报告网页（含时间线与应答时长分布图）/ The report as a self-contained Chinese page with charts."""
    return HTMLResponse(render_html(_report(db, clock, settings, run_id)))


@router.get("/runs/{run_id}/report.xlsx", response_class=Response, dependencies=[require(*AUDITORS)],
            responses={200: {"description": "report.xlsx（下载）/ the workbook as a download",
                             "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}},
                       **errors(404)})
def audit_run_report_xlsx(run_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> Response:
    """时效审计报告工作簿（每表一页，中文表头）/ The report as a workbook, one sheet per table."""
    return Response(xlsx_bytes(_report(db, clock, settings, run_id)), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="audit-run-{run_id}.xlsx"'})
