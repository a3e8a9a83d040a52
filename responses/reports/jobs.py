"""Scheduled work for information reports; idempotent (reports are keyed, flags record that they were
raised), so a late or doubled tick catches up and no more."""

from __future__ import annotations

import datetime as dt

from config.database import session_scope
from config.runtime import Runtime
from responses.reports import service as info_report_service

# A closed run still owes its final report; look back this far for runs closed while the scheduler was down.
FINAL_LOOKBACK = dt.timedelta(days=7)


def reports_sweep(rt: Runtime) -> None:
    """Create the follow-up (and final) reports now due, then flag the overdue ones to the leader on duty."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        for run in info_report_service.open_runs_for_reports(s, now, closed_within=FINAL_LOOKBACK):
            info_report_service.sync_reports(s, run, now=now, tz=rt.settings.tz)
        info_report_service.sweep_overdue(s, now, rt.settings.tz)
