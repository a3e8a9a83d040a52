"""``/metrics``: who may scrape it, and that what it says is what the database holds — the outbox depth rising
with a fan-out and falling once the fake gateway has taken the messages, the callouts by state, the answer
rate, feed lag and errors, quarantine, escalation lag, overdue measures and reports — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.database import session_scope
from config.runtime import Runtime
from config.settings import Settings
from jiaoying.app import create_app
from jiaoying.gateway import with_local_gateway
from jiaoying.scheduler import JobSpec, run_job
from responses.callouts import service as callout_service
from responses.callouts.models import Callout
from responses.contacts.models import Contact, Duty
from responses.measures.models import MeasureOrder
from responses.messaging.models import OutboxMessage
from responses.messaging.sender import send_due
from responses.reports.models import InfoReport
from responses.runs.models import ResponseRun
from responses.runs.service import default_plans
from tests.live import free_port, wait_for
from warning.draft import Hazard
from warning.models import Feed, FeedItem

LOCAL = ("127.0.0.1", 40000)
CALLS = {"answer_minutes": 5, "retries": {"count": 1, "interval_minutes": 2}, "channels": ["sms", "voice"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township", "leader_on_duty"]}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def settings(**over: Any) -> Settings:
    base: dict[str, Any] = {"env": "test", "database": {"url": "sqlite://", "auto_upgrade": False},
                            "scheduler": {"enabled": False}, "security": {"secret_key": "test-secret-" + "x" * 40}}
    return Settings(**{**base, **over})


@pytest.fixture
def gateway_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """The test runtime, sending through a fresh local fake gateway (the one ``jiaoying serve`` starts)."""
    s, gateway = with_local_gateway(settings())
    assert gateway is not None
    callout_service.install(runtime.state)
    try:
        yield Runtime(s, runtime.engine, runtime.session_factory, runtime.clock, state=runtime.state)
    finally:
        sender = runtime.state.get("messaging_sender")
        if sender is not None:
            sender.close()
        gateway.stop()


def fan_out(factory: sessionmaker[Session], now: dt.datetime, villages: int, *, drill: bool = False) -> int:
    """A run over ``villages`` villages with a head each; its first messages queued, as the run hook does."""
    plan = default_plans()[Hazard.GEOHAZARD]
    snap = plan.model_dump(mode="json")
    entry = {**snap["levels"]["red"], "calls": {**snap["levels"]["red"]["calls"], **CALLS}}
    snap["levels"]["red"] = entry
    codes = [f"1405{v:08d}" for v in range(villages)]  # 12 digits, as a village code
    with session_scope(factory) as s:
        for i, code in enumerate(codes):
            c = Contact(name=f"村长{i:03d}", phone=f"+86138{i:08d}", active=True, created_at=now, updated_at=now,
                        duties=[])
            c.duties.append(Duty(role="village_head", area_code=code, place=code, created_at=now))
            s.add(c)
        run = ResponseRun(number=f"M-{now.timestamp():.0f}", thread_id=1, open_thread_id=1, warning_id=1,
                          hazard="geohazard", level="red", response_level=entry["response_level"],
                          areas={"villages": codes, "townships": [], "sites": []}, measures=[], trigger="automatic",
                          plan_version=plan.version, plan_snapshot=snap, entry_snapshot=entry, state="active",
                          drill=drill, started_at=now, started_by="test", updated_at=now)
        s.add(run)
        s.flush()
        assert len(callout_service.create_run_callouts(s, run, now=now)) == villages
        return run.id


def local_client(rt: Runtime, **over: Any) -> TestClient:
    return TestClient(create_app(rt.settings.model_copy(update=over) if over else rt.settings, runtime=rt,
                                 scheduler=False), client=LOCAL)


# ------------------------------------------------------------------------------------------------ access


def test_without_a_token_only_a_local_direct_client_may_scrape(sqlite_runtime: Runtime) -> None:
    app = create_app(sqlite_runtime.settings, runtime=sqlite_runtime, scheduler=False)
    with TestClient(app, client=LOCAL) as local:
        assert value(scrape(local), "jiaoying_metrics_database_up") == 1
        proxied = local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 403
        assert proxied.json()["error"]["code"] == "metrics_loopback_only"
        assert "JIAOYING_METRICS__TOKEN" in proxied.json()["error"]["message"]
        assert "/metrics" not in local.get("/openapi.json").json()["paths"]
    with TestClient(app, client=("192.0.2.7", 40000)) as remote:
        r = remote.get("/metrics")
        assert r.status_code == 403 and r.json()["error"]["code"] == "metrics_loopback_only"
    with TestClient(app, client=("::1", 40000)) as local6:
        assert local6.get("/metrics").status_code == 200


def test_a_token_is_required_once_set_from_anywhere(sqlite_runtime: Runtime) -> None:
    token = "scrape-" + "t" * 30
    s = sqlite_runtime.settings.model_copy(update={"metrics": settings(metrics={"token": token}).metrics})
    app = create_app(s, runtime=sqlite_runtime, scheduler=False)
    with TestClient(app, client=LOCAL) as local, TestClient(app, client=("192.0.2.7", 40000)) as remote:
        for c in (local, remote):
            r = c.get("/metrics")
            assert r.status_code == 401 and r.json()["error"]["code"] == "metrics_token_required"
            assert r.headers["www-authenticate"] == "Bearer"
            assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert c.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 401
        assert value(scrape(remote, Authorization=f"Bearer {token}"), "jiaoying_metrics_database_up") == 1


def test_the_token_setting_reads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIAOYING_METRICS__TOKEN", "from-env-token")
    s = Settings()
    assert s.metrics.token is not None and s.metrics.token.get_secret_value() == "from-env-token"
    monkeypatch.setenv("JIAOYING_METRICS__TOKEN", "  ")
    assert Settings().metrics.token is None  # blank: none set, loopback only


# ------------------------------------------------------------------------------------------------ values


def test_outbox_depth_rises_with_a_fan_out_and_falls_once_sent(gateway_runtime: Runtime) -> None:
    rt = gateway_runtime
    clock: Any = rt.clock
    with local_client(rt) as client:
        before = scrape(client)
        assert value(before, "jiaoying_outbox_depth", channel="sms") == 0
        assert value(before, "jiaoying_callouts", state="calling", drill="false") == 0

        run_id = fan_out(rt.session_factory, clock.now(), 6)
        clock.advance(dt.timedelta(seconds=30))
        queued = scrape(client)
        with session_scope(rt.session_factory) as s:
            waiting = s.execute(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.state == "queued")).scalar()
            number = s.get(ResponseRun, run_id).number  # type: ignore[union-attr]
        assert waiting == 6
        assert value(queued, "jiaoying_outbox_depth", channel="sms") == 6
        assert value(queued, "jiaoying_outbox_messages", channel="sms", state="queued") == 6
        assert value(queued, "jiaoying_outbox_oldest_age_seconds") == 30
        assert value(queued, "jiaoying_callouts", state="calling", drill="false") == 6
        assert value(queued, "jiaoying_run_answer_ratio", run=number, drill="false") == 0
        assert value(queued, "jiaoying_open_runs", drill="false") == 1
        assert value(queued, "jiaoying_messages_sent_total", channel="sms") == 0

        run_job(rt, JobSpec("outbox_send", send_due, 1.0))  # the fake gateway accepts every message
        sent = scrape(client)
        assert value(sent, "jiaoying_outbox_depth", channel="sms") == 0
        assert value(sent, "jiaoying_outbox_oldest_age_seconds") == 0
        assert value(sent, "jiaoying_messages_sent_total", channel="sms") == 6
        assert value(sent, "jiaoying_outbox_messages", channel="sms", state="sent") == 6
        assert value(sent, "jiaoying_callouts", state="calling", drill="false") == 6
        assert value(sent, "jiaoying_job_duration_seconds_count", job="outbox_send") >= 1
        assert value(sent, "jiaoying_job_failures_total", job="outbox_send") >= 0

        with session_scope(rt.session_factory) as s:  # one callee answers
            c = s.execute(select(Callout).order_by(Callout.id).limit(1)).scalar_one()
            c.state, c.answered_at = "answered", clock.now()
        answered = scrape(client)
        assert value(answered, "jiaoying_callouts", state="answered", drill="false") == 1
        assert value(answered, "jiaoying_callouts", state="calling", drill="false") == 5
        assert value(answered, "jiaoying_run_answer_ratio", run=number, drill="false") == pytest.approx(1 / 6)
        assert value(answered, "jiaoying_provider_reports", state="waiting") == 0

        # a status callback stored and not yet applied, and one kept because it could not be
        from responses.messaging import status_reports
        from responses.messaging.models import ProviderReport

        with session_scope(rt.session_factory) as s:
            status_reports.store(s, now=clock.now(), provider="twilio", status="delivered", message_id=None,
                                 provider_id="SM-waiting", error_code=None, raw={})
            s.add(ProviderReport(provider="twilio", status="failed", raw={}, received_at=clock.now(),
                                 failed_at=clock.now(), error="ValueError: no callout"))
        reports = scrape(client)
        assert value(reports, "jiaoying_provider_reports", state="waiting") == 1
        assert value(reports, "jiaoying_provider_reports", state="failed") == 1


def test_feeds_escalations_and_overdue_work_match_the_database(runtime: Runtime) -> None:
    clock: Any = runtime.clock
    now = clock.now()
    run_id = fan_out(runtime.session_factory, now, 3, drill=True)
    with session_scope(runtime.session_factory) as s:
        for name, ok_ago, failures in (("met", 120, 0), ("quake", 900, 3)):
            s.add(Feed(name=name, adapter="cap", url="file:///dev/null", poll_seconds=60, enabled=True,
                       last_success_at=now - dt.timedelta(seconds=ok_ago), consecutive_failures=failures,
                       created_at=now - dt.timedelta(days=1), updated_at=now))
        s.add(Feed(name="push-only", adapter="cap", url=None, poll_seconds=0, enabled=True, created_at=now,
                   updated_at=now))
        s.flush()
        quake = s.execute(select(Feed.id).where(Feed.name == "quake")).scalar_one()
        for i, state in enumerate(("quarantined", "quarantined", "processed")):
            s.add(FeedItem(feed_id=quake, received_at=now, sha256=f"{i:064d}", body=b"<bad", state=state))
        first, second, third = s.execute(select(Callout).order_by(Callout.id)).scalars().all()
        # escalated 7 s after its last retry was due (deadline + 1 retry x 2 min); another one on time
        first.state, first.escalated_at = "escalated", first.deadline_at + dt.timedelta(minutes=2, seconds=7)
        second.state, second.escalated_at = "escalated", second.deadline_at + dt.timedelta(minutes=2)
        third.next_action_at = now - dt.timedelta(seconds=40)  # a due retry the sweep has not reached
        for key, deadline, state in (("a", -60, "ordered"), ("b", 3000, "ordered"), ("c", -60, "carried_out")):
            s.add(MeasureOrder(run_id=run_id, key=key, kind="evacuate", label="转移", level="red",
                               responsible_unit="某镇", unit_kind="township", state=state,
                               deadline=now + dt.timedelta(seconds=deadline), ordered_at=now, ordered_by="test",
                               created_at=now, updated_at=now))
        for key, due, state in (("r1", -30, "draft"), ("r2", 3000, "draft"), ("r3", -30, "sent")):
            s.add(InfoReport(run_id=run_id, key=key, kind="followup", level="red", state=state, title=key,
                             due_at=now + dt.timedelta(seconds=due), drafted_at=now, created_at=now, updated_at=now))
    clock.advance(dt.timedelta(minutes=7, seconds=10))  # after the escalations, within the 15-minute window
    with local_client(runtime) as client:
        m = scrape(client)
    assert value(m, "jiaoying_feed_lag_seconds", feed="met") == 120 + 430
    assert value(m, "jiaoying_feed_lag_seconds", feed="quake") == 900 + 430
    assert ("jiaoying_feed_lag_seconds", (("feed", "push-only"),)) not in m  # never polled: no lag to speak of
    assert value(m, "jiaoying_feed_consecutive_errors", feed="quake") == 3
    assert value(m, "jiaoying_feed_quarantined", feed="quake") == 2
    assert value(m, "jiaoying_feed_quarantined", feed="met") == 0
    assert value(m, "jiaoying_quarantine_total") == 2
    assert value(m, "jiaoying_callouts", state="escalated", drill="true") == 2
    assert value(m, "jiaoying_callouts", state="calling", drill="true") == 1
    assert value(m, "jiaoying_escalations_recent") == 2
    assert value(m, "jiaoying_escalation_lag_seconds_max") == 7
    assert value(m, "jiaoying_callouts_sweep_behind_seconds") == 40 + 430
    assert value(m, "jiaoying_measures_overdue", kind="order") == 1
    assert value(m, "jiaoying_measures_overdue", kind="lift") == 0
    assert value(m, "jiaoying_reports_overdue") == 1
    assert value(m, "jiaoying_scheduler_leader", status="unknown") == 0  # no scheduler here
    assert value(m, "jiaoying_metrics_scrape_seconds") < 2.0


def test_leader_status_is_read_from_the_scheduler_state(sqlite_runtime: Runtime) -> None:
    class Leadership:
        is_leader = True

    with local_client(sqlite_runtime) as client:
        sqlite_runtime.state["leadership"] = Leadership()
        assert value(scrape(client), "jiaoying_scheduler_leader", status="leader") == 1
        Leadership.is_leader = False
        assert value(scrape(client), "jiaoying_scheduler_leader", status="follower") == 0


def test_a_failing_job_is_counted(sqlite_runtime: Runtime) -> None:
    def broken(_rt: Runtime) -> None:
        raise RuntimeError("boom")

    with local_client(sqlite_runtime) as client:
        before = scrape(client).get(("jiaoying_job_failures_total", (("job", "metrics_test_broken"),)), 0.0)
        run_job(sqlite_runtime, JobSpec("metrics_test_broken", broken, 1.0))
        run_job(sqlite_runtime, JobSpec("metrics_test_broken", broken, 1.0))
        after = scrape(client)
    assert value(after, "jiaoying_job_failures_total", job="metrics_test_broken") == before + 2
    assert value(after, "jiaoying_job_duration_seconds_count", job="metrics_test_broken") >= 2


def test_a_database_that_does_not_answer_is_reported_not_raised(sqlite_runtime: Runtime) -> None:
    class Down:
        def __call__(self) -> Session:
            raise OSError("database gone")

    broken = Runtime(sqlite_runtime.settings, sqlite_runtime.engine, sqlite_runtime.session_factory,
                     sqlite_runtime.clock, read_session_factory=Down())  # type: ignore[arg-type]
    with local_client(broken) as client:
        m = scrape(client)
    assert value(m, "jiaoying_metrics_database_up") == 0
    assert ("jiaoying_outbox_depth", (("channel", "sms"),)) not in m


def test_a_fresh_database_scrapes_with_zeros(sqlite_runtime: Runtime) -> None:
    with local_client(sqlite_runtime) as client:
        m = scrape(client)
    assert value(m, "jiaoying_outbox_depth", channel="voice") == 0
    assert value(m, "jiaoying_reports_overdue") == 0
    assert value(m, "jiaoying_provider_errors_total", kind="request") == 0


def test_a_worker_serves_its_own_job_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    env.update({"JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": f"sqlite:///{tmp_path / 'worker.db'}",
                "JIAOYING_SCHEDULER__TICK_SECONDS": "1", "JIAOYING_SECURITY__SECRET_KEY": "worker-" + "k" * 40})
    with (tmp_path / "worker.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jiaoying", "worker", "--metrics-port", str(port)],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            def ticked() -> Samples | None:
                if proc.poll() is not None:
                    pytest.fail(f"the worker exited: {(tmp_path / 'worker.log').read_text()[-2000:]}")
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                except httpx.HTTPError:
                    return None
                got = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for fam in text_string_to_metric_families(r.text) for s in fam.samples}
                return got if got.get(("jiaoying_job_duration_seconds_count", (("job", "outbox_send"),))) else None

            m = wait_for("the worker's job metrics", ticked, timeout=90)
            assert value(m, "jiaoying_job_failures_total", job="outbox_send") == 0
            assert value(m, "jiaoying_metrics_database_up") == 1
            assert value(m, "jiaoying_outbox_depth", channel="sms") == 0
            assert value(m, "jiaoying_scheduler_leader", status="leader") == 1  # SQLite: one process, its own leader
            refused = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"X-Forwarded-For": "192.0.2.1"})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "metrics_loopback_only"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_scraped_during_the_bundled_drill(tmp_path: Path) -> None:
    """The acceptance check: the red-rainstorm drill played through the system's own jobs, /metrics scraped
    before every round of them — the outbox depth rises as calls are queued and falls as they go out, and the
    callouts move from calling to answered and escalated."""
    from jiaoying.drill_setup import drill_jobs, drill_runtime
    from responses.drill.runner import run_drill
    from responses.drill.scenario import load_scenario

    drills = Path(__file__).resolve().parents[2] / "config" / "defaults" / "drills"
    loaded = load_scenario(drills / "red-rainstorm.yaml")
    rt = drill_runtime(tmp_path / "drill.db", loaded.scenario.start, settings())
    seen: list[Samples] = []
    try:
        with local_client(rt) as client:
            def scrape_job(_rt: Runtime) -> None:
                seen.append(scrape(client))

            result = run_drill(loaded, rt, [scrape_job, *drill_jobs(rt)])
    finally:
        rt.close()
    assert result.messages_sent > 0
    depth = [value(m, "jiaoying_outbox_depth", channel="sms") + value(m, "jiaoying_outbox_depth", channel="voice")
             for m in seen]
    rose = next(i for i, d in enumerate(depth) if d > 0)
    assert any(d == 0 for d in depth[rose:]), f"the outbox never drained: {depth}"
    assert max(depth) >= 2
    calling = [value(m, "jiaoying_callouts", state="calling", drill="true") for m in seen]
    answered = [value(m, "jiaoying_callouts", state="answered", drill="true") for m in seen]
    assert max(calling) > 0 and max(answered) > 0
    sent = [value(m, "jiaoying_messages_sent_total", channel="sms") + value(m, "jiaoying_messages_sent_total",
                                                                          channel="voice") for m in seen]
    assert sent == sorted(sent) and sent[-1] > 0  # a counter: never goes down
