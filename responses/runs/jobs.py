"""Scheduled sweeps of the consultation and supervision side; each is idempotent (flags are keyed,
deadline columns record what was done), so running twice or on two instances changes nothing more."""

from __future__ import annotations

from config.database import session_scope
from config.runtime import Runtime
from responses.runs import service, supervision
from warning.consultation import service as consultation_service
from warning.draft import Hazard

LEADERLESS_DAYS = 3  # a shift without a leader is flagged this many days ahead


def consultation_sweep(rt: Runtime) -> None:
    """Reminders before, and missing-judgement flags at, each consultation's deadline."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        result = consultation_service.sweep(s, now)
        for cid, missing in result.reminded:
            c = consultation_service.get(s, cid)
            supervision.remind_departments(s, cid, missing, c.deadline, now, rt.settings.tz)
        for cid, missing in result.flagged:
            supervision.notify_missing_judgements(s, cid, missing, now)


def supervision_sweep(rt: Runtime) -> None:
    """Orange/red warnings without a run in time, and shifts without a leader in the coming days."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        limits: dict[tuple[str, str], int] = {}
        for hz in Hazard:
            plan, _v = service.current_plan(s, hz.value)
            if plan is None:
                continue
            for lv, entry in plan.levels.items():
                limits[(hz.value, lv.value)] = entry.run_start_minutes
        supervision.sweep_run_overdue(s, now, limits)
        supervision.sweep_leaderless_shifts(s, now, LEADERLESS_DAYS)
