"""Job wiring. The scheduler only ticks: every job reads its due rows from the database, is
idempotent, and is safe to run twice or on several instances. Deadlines live in the database,
so a restart or a late tick loses nothing — the next tick catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler

from config.runtime import Runtime
from jiaoying import wiring
from responses.callouts import jobs as callout_jobs
from responses.callouts import service as callout_service
from responses.measures import jobs as measure_jobs
from responses.messaging.sender import send_due
from responses.reports import jobs as report_jobs
from responses.runs import engine as response_engine
from responses.runs import jobs as response_jobs
from warning import jobs as warning_jobs

log = logging.getLogger("jiaoying.scheduler")


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[[Runtime], object]
    seconds: float


def _heartbeat(rt: Runtime) -> None:
    rt.state["last_tick"] = rt.now()


def job_specs(rt: Runtime) -> list[JobSpec]:
    """Every scheduled job of the system, in one list."""
    tick = rt.settings.scheduler.tick_seconds
    wiring.install()  # run events reach callouts, measures and reports
    response_engine.install(rt.state)  # warning changes and decisions reach the response engine
    callout_service.install(rt.state)  # the sender's acceptances start each callee's answer window
    return [
        JobSpec("heartbeat", _heartbeat, tick),
        JobSpec("outbox_send", send_due, tick),
        JobSpec("callouts_sweep", callout_jobs.sweep_callouts, min(tick, callout_jobs.TICK_SECONDS)),
        JobSpec("feeds_poll", warning_jobs.poll_feeds, tick),
        JobSpec("warnings_sweep", warning_jobs.sweep_warnings, tick),
        JobSpec("consultation_sweep", response_jobs.consultation_sweep, tick),
        JobSpec("supervision_sweep", response_jobs.supervision_sweep, max(tick, 30.0)),
        JobSpec("measures_sweep", measure_jobs.measures_sweep, max(tick, 15.0)),
        JobSpec("reports_sweep", report_jobs.reports_sweep, max(tick, 30.0)),
    ]


def run_job(rt: Runtime, spec: JobSpec) -> None:
    try:
        spec.func(rt)
    except Exception:  # a failing job must not stop the others; it is retried on the next tick
        log.exception("job %s failed", spec.name)
        rt.state.setdefault("job_errors", {})[spec.name] = rt.now().isoformat()


def run_all_once(rt: Runtime) -> None:
    """One pass over every job, in order; drills and tests tick the system with this."""
    for spec in job_specs(rt):
        run_job(rt, spec)


def build_scheduler(rt: Runtime) -> BackgroundScheduler:
    sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for spec in job_specs(rt):
        sched.add_job(run_job, "interval", seconds=spec.seconds, args=[rt, spec], id=spec.name, name=spec.name)
    return sched
