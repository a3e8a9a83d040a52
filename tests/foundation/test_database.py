from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError

from config.counters import Counter, current_value, next_value
from config.database import Base, make_session_factory, session_scope
from jiaoying import migrate


def test_migrations_reach_head_and_match_models(engine: Engine) -> None:
    assert migrate.is_current(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    tables = set(inspect(engine).get_table_names())
    assert {"event_log", "app_user", "department", "counter"} <= tables


def test_upgrade_is_idempotent(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert migrate.is_current(engine)


def test_threads_never_lose_an_increment(engine: Engine) -> None:
    """8 threads × 50 read-modify-write increments through the service layer give exactly 400."""
    factory = make_session_factory(engine)
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(50):
            try:
                with session_scope(factory) as s:
                    next_value(s, "bench")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

    with session_scope(factory) as s:
        s.add(Counter(name="bench", value=0))  # the row exists, as after a deployment's first request
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if isinstance(e, OperationalError)], errors[:3]
    assert errors == []
    with session_scope(factory) as s:
        assert current_value(s, "bench") == 400


def test_naive_datetimes_are_refused(sqlite_engine: Engine) -> None:
    import datetime as dt

    from config.eventlog import record

    factory = make_session_factory(sqlite_engine)
    with pytest.raises(Exception, match="naive"), session_scope(factory) as s:
        record(s, now=dt.datetime(2026, 1, 1), action="x", entity_type="t", entity_id=1, actor="test")


def test_first_use_of_a_counter_from_many_threads(engine: Engine) -> None:
    """Nobody created the row yet: concurrent first callers still hand out 1..N exactly once."""
    factory = make_session_factory(engine)
    got: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        with session_scope(factory) as s:
            v = next_value(s, "fresh")
        with lock:
            got.append(v)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9))


def test_a_reader_never_holds_the_write_lock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """GET requests read through ``read_only``: an open read transaction must not stall a writer."""
    import time

    from sqlalchemy import select

    from config.database import make_engine, read_only

    eng = make_engine(f"sqlite:///{tmp_path / 'ro.db'}", busy_timeout_ms=500)
    migrate.upgrade(eng)
    reader = make_session_factory(read_only(eng))()
    try:
        reader.execute(select(Counter)).all()  # a read transaction is now open
        start = time.monotonic()
        with session_scope(make_session_factory(eng)) as w:
            assert next_value(w, "after-read") == 1
        assert time.monotonic() - start < 0.4
        # and a writer's transaction still excludes another writer (BEGIN IMMEDIATE)
        writer = make_session_factory(eng)()
        writer.execute(select(Counter)).all()
        with pytest.raises(OperationalError, match="locked"), session_scope(make_session_factory(eng)) as w2:
            next_value(w2, "blocked")
        writer.rollback()
        writer.close()
    finally:
        reader.close()
        eng.dispose()
