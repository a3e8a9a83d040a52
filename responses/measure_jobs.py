"""Scheduled work for measures and information reports; every step is idempotent (orders and reports
are keyed, flags record that they were raised), so a late or doubled tick catches up and no more."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from config.database import session_scope
from config.runtime import Runtime
from responses import info_report_service, measure_service
from responses.models import ResponseRun
from responses.runs import RunState

# A closed run still owes its final report; look back this far for runs closed while the scheduler was down.
FINAL_LOOKBACK = dt.timedelta(days=7)


def measures_sweep(rt: Runtime) -> None:
    """Catch up the orders and lift orders of every open run, then flag the overdue ones."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        runs = s.execute(select(ResponseRun).where(ResponseRun.state != RunState.CLOSED.value)
                         .order_by(ResponseRun.id)).scalars().all()
        for run in runs:
            measure_service.sync_run(s, run, actor="rule:measure_sync", now=now, tz=rt.settings.tz)
        measure_service.sweep_overdue(s, now)


def reports_sweep(rt: Runtime) -> None:
    """Create the follow-up (and final) reports now due, then flag the overdue ones to the leader on duty."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        for run in info_report_service.open_runs_for_reports(s, now, closed_within=FINAL_LOOKBACK):
            info_report_service.sync_reports(s, run, now=now, tz=rt.settings.tz)
        info_report_service.sweep_overdue(s, now, rt.settings.tz)
