"""Several instances started at the same moment on one empty database, as an orchestrator starts them.

Every instance must come up (one migrates and seeds under the start-up lock, the others wait for it),
exactly one leads, and a SIGKILLed leader is replaced within 10 s. Then the leadership class alone,
against PostgreSQL: taking the lock, losing it with the connection, taking it again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from config.database import make_engine
from jiaoying.leader import LEADER, Leadership, StartupLockTimeout, lock_key, pg_lock_ids, startup_lock
from tests.live import free_port, wait_for

PG_URL = os.environ.get("JIAOYING_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_LIMIT = 10.0


def _pg_problem() -> str | None:
    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # shown in the skip message
        return f"{type(exc).__name__}: {exc}"


def _need_pg() -> None:
    problem = _pg_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI=true: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A freshly created, empty database on the PostgreSQL server; dropped afterwards."""
    _need_pg()
    name = f"jy_faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def leader_holders(url: str, schema: str = "public") -> list[int]:
    """The backends holding the leader lock of this database and schema, read from ``pg_locks``."""
    classid, objid = pg_lock_ids(lock_key(LEADER, schema))
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return list(c.execute(text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND classid = :c AND objid = :o AND objsubid = 1"), {"c": classid, "o": objid}).scalars())
    finally:
        eng.dispose()


def base_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    env.update({"JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": url, "JIAOYING_SCHEDULER__TICK_SECONDS": "1",
                "JIAOYING_SECURITY__SECRET_KEY": "faults-" + "k" * 40, "PYTHONPATH": str(ROOT), **extra})
    return env


class Proc:
    """One ``jiaoying serve`` or ``jiaoying worker`` with its output in a file (shown when a test fails)."""

    def __init__(self, tmp: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = tmp / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.port = free_port() if args[0] == "serve" else None
        argv = [sys.executable, "-m", "jiaoying", *args]
        if self.port is not None:
            argv += ["--port", str(self.port), "--gateway-port", str(free_port())]
            env = {**env, "JIAOYING_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}"}
        else:
            argv += ["--gateway-port", str(free_port())]
        self.proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def readyz(self) -> dict[str, Any] | None:
        if self.port is None:
            return None
        try:
            r = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    def leader(self) -> bool:
        got = self.readyz()
        return bool(got and got["checks"]["scheduler"]["leader"])

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL to the whole process group: the server and its sending child alike."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        finally:
            self.log.close()


def _all_ready(procs: list[Proc]) -> bool:
    for p in procs:
        if p.proc.poll() is not None:
            pytest.fail(f"{p.name} exited with {p.proc.returncode} at start-up:\n{p.output()}")
    return all(p.readyz() for p in procs if p.port is not None)


def _start_together(tmp: Path, specs: list[tuple[str, list[str]]], env: dict[str, str]) -> list[Proc]:
    procs: list[Proc] = []
    gate = threading.Barrier(len(specs))

    def launch(name: str, args: list[str]) -> None:
        gate.wait(timeout=10)
        procs.append(Proc(tmp, name, args, env))

    threads = [threading.Thread(target=launch, args=spec) for spec in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return procs


def _stop(procs: list[Proc]) -> None:
    for p in procs:
        p.kill()


@pytest.mark.postgres
def test_three_serves_on_an_empty_database_come_up_with_one_leader_and_a_killed_leader_is_replaced(
        empty_pg: str, tmp_path: Path) -> None:
    procs = _start_together(tmp_path, [(f"serve{i}", ["serve"]) for i in range(3)], base_env(empty_pg))
    try:
        assert len(procs) == 3
        wait_for("three serves ready", lambda: _all_ready(procs), timeout=180)
        leaders = wait_for("exactly one leader", lambda: [p for p in procs if p.leader()]
                           if sum(p.leader() for p in procs) == 1 else None, timeout=20)
        assert len(leader_holders(empty_pg)) == 1  # the database agrees: one session holds the leader lock
        for p in procs:
            sched = p.readyz()["checks"]["scheduler"]  # type: ignore[index]
            assert set(sched) >= {"enabled", "running", "last_tick", "leader"}
            assert sched["enabled"] and sched["running"]

        old = leaders[0]
        rest = [p for p in procs if p is not old]
        killed_at = time.monotonic()
        old.kill()
        new = None
        while time.monotonic() - killed_at < TAKEOVER_LIMIT + 5 and new is None:
            new = next((p for p in rest if p.leader()), None)
            if new is None:
                time.sleep(0.1)
        took = time.monotonic() - killed_at
        print(f"leader takeover after SIGKILL: {took:.2f} s")
        assert new is not None, "no instance took over leadership"
        assert took <= TAKEOVER_LIMIT
        assert sum(p.leader() for p in rest) == 1
        assert len(leader_holders(empty_pg)) == 1
    finally:
        _stop(procs)


@pytest.mark.postgres
def test_two_workers_and_a_serve_started_together_all_come_up(empty_pg: str, tmp_path: Path) -> None:
    specs = [("worker0", ["worker"]), ("worker1", ["worker"]), ("serve0", ["serve"])]
    procs = _start_together(tmp_path, specs, base_env(empty_pg))
    try:
        wait_for("serve ready", lambda: _all_ready(procs), timeout=180)
        workers = [p for p in procs if p.port is None]
        wait_for("both workers running", lambda: _all_ready(procs) and all(
            "running" in p.output() for p in workers), timeout=120)
        assert all(p.proc.poll() is None for p in procs)
        wait_for("one leader lock holder", lambda: len(leader_holders(empty_pg)) == 1, timeout=20)
        time.sleep(3)  # a few leader checks later, still exactly one
        assert len(leader_holders(empty_pg)) == 1
        with make_engine(empty_pg).connect() as c:
            assert c.execute(text("SELECT count(*) FROM department")).scalar_one() > 0  # seeded once, in full
            names = c.execute(text("SELECT name FROM feed")).scalars().all()
            assert len(names) == len(set(names)) > 0
    finally:
        _stop(procs)


def test_two_serves_on_one_fresh_sqlite_file_both_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = _start_together(tmp_path, [("serve0", ["serve"]), ("serve1", ["serve"])], base_env(url))
    try:
        wait_for("both serves ready", lambda: _all_ready(procs), timeout=180)
        assert all(p.leader() for p in procs)  # SQLite: every instance leads its own jobs
    finally:
        _stop(procs)


# ------------------------------------------------------------------------------------- the leadership class


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """An engine URL's schema of its own, so these locks meet no other test's."""
    _need_pg()
    schema = f"jy_leader_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _engine(schema: str) -> Engine:
    return create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})


def _terminate_holder(schema: str) -> None:
    classid, objid = pg_lock_ids(lock_key(LEADER, schema))
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            killed = c.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :c AND objid = :o AND objsubid = 1"), {"c": classid, "o": objid}).scalars().all()
        assert killed == [True]
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_leadership_is_taken_by_one_lost_with_its_connection_and_taken_again(pg_schema: str) -> None:
    ea, eb = _engine(pg_schema), _engine(pg_schema)
    a, b = Leadership(ea, every=0.2), Leadership(eb, every=0.2)
    try:
        assert a.check() and a.is_leader
        assert not b.check() and not b.is_leader
        assert a.check()  # still held: checking again does not lose it (nor stack it)

        _terminate_holder(pg_schema)  # the leader's backend is killed: PostgreSQL releases the lock
        assert not a.check() and not a.is_leader
        assert b.check() and b.is_leader
        assert not a.check()  # a new connection, but the lock is b's now

        b.stop()  # a stopping leader releases at once
        assert not b.is_leader
        assert a.check() and a.is_leader
        assert a.changes == 3
    finally:
        a.stop()
        b.stop()
        ea.dispose()
        eb.dispose()


@pytest.mark.postgres
def test_a_standby_takes_over_by_itself_when_the_leaders_connection_dies(pg_schema: str) -> None:
    ea, eb = _engine(pg_schema), _engine(pg_schema)
    a, b = Leadership(ea, every=0.3).start(), None
    try:
        assert a.is_leader
        b = Leadership(eb, every=0.3).start()
        assert not b.is_leader
        _terminate_holder(pg_schema)
        t0 = time.monotonic()
        wait_for("the standby leads", lambda: b.is_leader, timeout=5)
        assert time.monotonic() - t0 < 2
        wait_for("the old leader knows", lambda: not a.is_leader, timeout=3)
    finally:
        a.stop()
        if b is not None:
            b.stop()
        ea.dispose()
        eb.dispose()


@pytest.mark.postgres
def test_leadership_lapses_when_its_checks_stop(pg_schema: str) -> None:
    engine = _engine(pg_schema)
    a = Leadership(engine, every=0.1, lease=0.3)
    try:
        assert a.check() and a.is_leader
        time.sleep(0.4)  # no thread checking (as if hung on a dead network): the flag lapses by itself
        assert not a.is_leader
    finally:
        a.stop()
        engine.dispose()


def test_on_sqlite_the_instance_always_leads(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        lead = Leadership(engine).start()
        assert lead.is_leader and lead.check()
        lead.stop()
        assert lead.is_leader
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_startup_lock_makes_the_second_wait_and_gives_up_when_bounded(pg_schema: str) -> None:
    ea, eb = _engine(pg_schema), _engine(pg_schema)
    order: list[str] = []
    try:
        with startup_lock(ea):
            done = threading.Event()

            def second() -> None:
                with startup_lock(eb, wait_seconds=20):
                    order.append("second")
                done.set()

            t = threading.Thread(target=second)
            t.start()
            time.sleep(0.6)
            assert not done.is_set()  # waiting for the first
            with pytest.raises(StartupLockTimeout), startup_lock(eb, wait_seconds=0.3):
                pass
            order.append("first")
        assert done.wait(5)
        t.join(5)
        assert order == ["first", "second"]
    finally:
        ea.dispose()
        eb.dispose()


def test_leader_only_jobs_skip_their_tick_off_the_leader_and_the_sending_process_needs_no_leadership(
        tmp_path: Path) -> None:
    from config.database import make_session_factory
    from config.runtime import Runtime
    from config.settings import Settings
    from jiaoying.scheduler import EVERY_INSTANCE_JOBS, JobSpec, build_scheduler, leader_only, run_if_leader

    ran: list[str] = []
    spec = JobSpec("feeds_poll", lambda rt: ran.append("feeds_poll"), 1.0)
    assert leader_only(spec) and not leader_only(JobSpec("outbox_send", spec.func, 1.0))
    assert {"heartbeat", "outbox_send", "callouts_sweep", "provider_reports"} == EVERY_INSTANCE_JOBS

    class Standby:
        is_leader = False

    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        def runtime(jobs: str) -> Runtime:
            settings = Settings(env="test", database={"url": str(engine.url)}, scheduler={"jobs": jobs})
            return Runtime(settings, engine, make_session_factory(engine))

        rt = runtime("all")
        rt.state["leadership"] = Standby()
        run_if_leader(rt, spec)
        assert ran == []  # a standby does nothing on its tick
        Standby.is_leader = True
        run_if_leader(rt, spec)
        assert ran == ["feeds_poll"]

        sending = runtime("sending")
        build_scheduler(sending)
        assert "leadership" not in sending.state  # sending jobs only: safe by claims everywhere
        every = runtime("all")
        build_scheduler(every)
        assert every.state["leadership"].is_leader  # SQLite: always the leader
    finally:
        engine.dispose()
