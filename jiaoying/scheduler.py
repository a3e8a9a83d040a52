"""Job wiring. The scheduler only ticks: every job reads its due rows from the database, is
idempotent, and is safe to run twice or on several instances. Deadlines live in the database,
so a restart or a late tick loses nothing — the next tick catches up.

Several instances on one PostgreSQL database (any number of ``serve`` and ``worker``) do not all run
every job. Work that must happen once per tick runs on the leader only, chosen by an advisory lock
(``jiaoying/leader.py``); work that is safe in parallel runs everywhere, shared out by row claims:

=====================  ===========  =====================================================================
job                    runs on      why
=====================  ===========  =====================================================================
heartbeat              every        each instance's own liveness (``/readyz`` ``last_tick``)
outbox_send            every        messages are claimed with a lease; N senders share the backlog
callouts_sweep         every        callees are claimed row by row (``FOR UPDATE SKIP LOCKED``)
provider_reports       every        status callbacks left waiting; one applier at a time (a lock), others skip
feeds_poll             leader       one fetch per feed and interval; N pollers would ask a source N times
warnings_sweep         leader       expiries and updates once, not once per instance
consultation_sweep     leader       consultation deadlines and reminders once per tick
supervision_sweep      leader       one supervision pass per run; no reminder sent twice
measures_sweep         leader       overdue orders flagged and escalated once
reports_sweep          leader       reports drafted and reminded once per schedule point
handover_sweep         leader       one handover draft per shift
roster_gap_sweep       leader       one gap flag per gap
=====================  ===========  =====================================================================

A leader-only job checks the leader's cached flag when its tick comes and does nothing elsewhere; when
the leader dies or loses the database, another instance holds the lock within ``cluster.
leader_check_seconds`` and its next tick does the work (deadlines are rows, so nothing is lost). On
SQLite — one process by design — the instance is always the leader. ``run_all_once`` (drills, tests)
runs every job regardless.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN, EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.schedulers.background import BackgroundScheduler

from config.runtime import Runtime
from jiaoying import wiring
from jiaoying.leader import Leadership
from jiaoying.metrics import observe_job
from responses.callouts import jobs as callout_jobs
from responses.callouts import service as callout_service
from responses.duty import jobs as duty_jobs
from responses.measures import jobs as measure_jobs
from responses.messaging import status_reports
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


SEND_TICK_SECONDS = 1.0  # an idle run costs two indexed queries (stale expiry, the claim)


def _heartbeat(rt: Runtime) -> None:
    rt.state["last_tick"] = rt.now()


def _apply_provider_reports(rt: Runtime) -> None:
    """Status callbacks are applied by the requests that bring them; this picks up any left waiting."""
    status_reports.apply_pending(rt.session_factory, now=rt.now(), handler=callout_service.on_message_final)


def job_specs(rt: Runtime) -> list[JobSpec]:
    """Every scheduled job of the system, in one list."""
    tick = rt.settings.scheduler.tick_seconds
    wiring.install()  # run events reach callouts, measures and reports
    response_engine.install(rt.state)  # warning changes and decisions reach the response engine
    callout_service.install(rt.state)  # the sender's acceptances start each callee's answer window
    callout_service.set_send_rate(callout_service.send_rate_of(rt.settings), rt.engine)  # a fan-out's tail waits
    return [
        JobSpec("heartbeat", _heartbeat, tick),
        # The sender's run is bounded to most of a tick; ticking it every second starts the next run as
        # soon as one ends. At the general tick a run that overran its budget (in-flight requests, the
        # last flush) made the scheduler skip a whole tick: a large fan-out paused ~5 s in every ~25 s.
        JobSpec("outbox_send", send_due, min(tick, SEND_TICK_SECONDS)),
        JobSpec("callouts_sweep", callout_jobs.sweep_callouts, min(tick, callout_jobs.TICK_SECONDS)),
        JobSpec("provider_reports", _apply_provider_reports, min(tick, 1.0)),
        JobSpec("feeds_poll", warning_jobs.poll_feeds, tick),
        JobSpec("warnings_sweep", warning_jobs.sweep_warnings, tick),
        JobSpec("consultation_sweep", response_jobs.consultation_sweep, tick),
        JobSpec("supervision_sweep", response_jobs.supervision_sweep, max(tick, 30.0)),
        JobSpec("measures_sweep", measure_jobs.measures_sweep, max(tick, 15.0)),
        JobSpec("reports_sweep", report_jobs.reports_sweep, max(tick, 30.0)),
        # Both duty jobs may run twice or on several instances (one handover per shift, flags keyed); neither
        # needs every tick: a draft 30 minutes before a shift ends and a flag 30 minutes into the next one
        # tolerate a minute's lag.
        JobSpec("handover_sweep", duty_jobs.handover_sweep, max(tick, 30.0)),
        JobSpec("roster_gap_sweep", duty_jobs.roster_gap_sweep, max(tick, 300.0)),
    ]


def run_job(rt: Runtime, spec: JobSpec) -> None:
    started, failed = time.perf_counter(), False
    try:
        spec.func(rt)
    except Exception:  # a failing job must not stop the others; it is retried on the next tick
        failed = True
        log.exception("job %s failed", spec.name)
        rt.state.setdefault("job_errors", {})[spec.name] = rt.now().isoformat()
    finally:  # jiaoying_job_duration_seconds / jiaoying_job_failures_total
        observe_job(spec.name, time.perf_counter() - started, failed=failed)


def run_all_once(rt: Runtime) -> None:
    """One pass over every job, in order; drills and tests tick the system with this."""
    for spec in job_specs(rt):
        run_job(rt, spec)


# The jobs that talk to the provider or queue messages in bulk. During a district-wide fan-out they are
# most of the process's work: in the server's own process their threads took the interpreter lock and,
# through the provider's status callbacks they cause, the request threads from the pages.
SENDING_JOBS = frozenset({"outbox_send", "callouts_sweep"})


def scheduled_specs(rt: Runtime) -> list[JobSpec]:
    """The jobs this process ticks, by ``scheduler.jobs``: every one, all but the sending ones, or only those."""
    which = rt.settings.scheduler.jobs
    specs = job_specs(rt)
    if which == "web":
        return [s for s in specs if s.name not in SENDING_JOBS]
    if which == "sending":
        return [s for s in specs if s.name in SENDING_JOBS or s.name == "heartbeat"]
    return specs


# Safe in parallel through claims, or each instance's own: these run on every instance; all others on the
# leader only (the table in the module docstring).
EVERY_INSTANCE_JOBS = SENDING_JOBS | {"heartbeat", "provider_reports"}


def leader_only(spec: JobSpec) -> bool:
    return spec.name not in EVERY_INSTANCE_JOBS


def run_if_leader(rt: Runtime, spec: JobSpec) -> None:
    leadership: Leadership | None = rt.state.get("leadership")
    if leadership is not None and not leadership.is_leader:
        return
    run_job(rt, spec)


def build_scheduler(rt: Runtime) -> BackgroundScheduler:
    """The process's scheduler; when it runs leader-only jobs, its leadership starts and stops with it."""
    sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    specs = scheduled_specs(rt)
    for spec in specs:
        func = run_if_leader if leader_only(spec) else run_job
        sched.add_job(func, "interval", seconds=spec.seconds, args=[rt, spec], id=spec.name, name=spec.name)
    if any(leader_only(s) for s in specs):
        leadership = Leadership(rt.engine, every=rt.settings.cluster.leader_check_seconds)
        rt.state["leadership"] = leadership

        def on_event(event: SchedulerEvent) -> None:
            if event.code == EVENT_SCHEDULER_STARTED:
                leadership.start()
            elif event.code == EVENT_SCHEDULER_SHUTDOWN:
                leadership.stop()

        sched.add_listener(on_event, EVENT_SCHEDULER_STARTED | EVENT_SCHEDULER_SHUTDOWN)
    return sched


def is_leader(rt: Runtime) -> bool:
    """Whether this process runs the leader-only jobs now (false when it schedules none)."""
    leadership: Leadership | None = rt.state.get("leadership")
    return leadership is not None and leadership.is_leader


class SendingProcess:
    """The server's sending work in a child process, kept alive for as long as the server runs.

    The child runs in a session of its own, so a Ctrl-C at the terminal reaches the server only and the
    server stops the child: no restart races a shutdown. A child that dies is started again after a pause
    that grows while it keeps dying (capped) and resets once it has stayed up a minute; what it was doing
    is safe to redo (outbox claims lease out, sweeps are idempotent). The child watches its parent too,
    so a server killed without a chance to clean up leaves no orphan behind for long.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, first_delay: float = 1.0,
                 max_delay: float = 30.0, stop_timeout: float = 15.0) -> None:
        self.argv, self.env = list(argv), dict(env)
        self.first_delay, self.max_delay, self.stop_timeout = first_delay, max_delay, stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="sending-supervisor")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> SendingProcess:
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self.proc = subprocess.Popen(self.argv, env=self.env, start_new_session=os.name == "posix")
            log.info("sending process started (pid %s)", self.proc.pid)

    def _watch(self) -> None:
        delay = self.first_delay
        while not self._stopping.is_set():
            proc = self.proc
            if proc is None:
                return
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                delay = self.first_delay
            log.error("发送进程退出（代码 %s），%.0f 秒后重启 / the sending process exited with %s; "
                      "restarting in %.0f s", code, delay, code, delay)
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            self._spawn()
            delay = min(self.max_delay, delay * 2)

    def stop(self) -> None:
        """Ask the child to finish its tick and exit; kill it if it will not."""
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.error("sending process did not stop in %.0f s: killed", self.stop_timeout)
                proc.kill()
                proc.wait(timeout=10)
        self._thread.join(timeout=5)


def watch_parent(parent_pid: int, stop: threading.Event, *, every: float = 1.0) -> threading.Thread:
    """Set ``stop`` when the process that started this one is gone (its children are re-parented)."""

    def run() -> None:
        while not stop.wait(every):
            if os.getppid() != parent_pid:
                log.warning("server process %s is gone: the sending process stops", parent_pid)
                stop.set()

    thread = threading.Thread(target=run, daemon=True, name="parent-watch")
    thread.start()
    return thread
