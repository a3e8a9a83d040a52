from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, update

from config.database import make_session_factory, session_scope
from config.eventlog import Event, record, verify

T = dt.datetime(2026, 7, 20, tzinfo=dt.UTC)


def _fill(engine: Engine, n: int = 5) -> None:
    with session_scope(make_session_factory(engine)) as s:
        for i in range(n):
            record(s, now=T + dt.timedelta(seconds=i), action="thing.changed", entity_type="thing", entity_id=i,
                   actor="rule:test", payload={"i": i, "名称": "暴雨", "when": T})


def test_chain_verifies_and_catches_an_altered_row(engine: Engine) -> None:
    _fill(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        assert verify(s).ok and verify(s).checked == 5
        target = s.query(Event).filter(Event.seq == 3).one()
        s.execute(update(Event).where(Event.id == target.id).values(payload={"i": 99}))
    with session_scope(factory) as s:
        result = verify(s)
    assert not result.ok
    assert result.bad_seq == 3 and result.bad_id == target.id


def test_deleted_row_is_caught(sqlite_engine: Engine) -> None:
    _fill(sqlite_engine)
    factory = make_session_factory(sqlite_engine)
    with session_scope(factory) as s:
        s.query(Event).filter(Event.seq == 2).delete()
    with session_scope(factory) as s:
        result = verify(s)
    assert not result.ok and result.bad_seq == 3


def test_chain_survives_savepoint_rollbacks_and_many_transactions(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        record(s, now=T, action="a", entity_type="t", entity_id=1, actor="test")
        try:
            with s.begin_nested():
                record(s, now=T, action="lost", entity_type="t", entity_id=2, actor="test")
                s.flush()
                raise RuntimeError("roll this savepoint back")
        except RuntimeError:
            pass
        record(s, now=T, action="b", entity_type="t", entity_id=3, actor="test")
        with s.begin_nested():
            record(s, now=T, action="c", entity_type="t", entity_id=4, actor="test")
        record(s, now=T, action="d", entity_type="t", entity_id=5, actor="test")
    with session_scope(factory) as s:
        record(s, now=T, action="e", entity_type="t", entity_id=6, actor="test")
    with session_scope(factory) as s:
        result = verify(s)
        actions = [e.action for e in s.query(Event).order_by(Event.seq)]
    assert result.ok, result
    assert actions == ["a", "b", "c", "d", "e"]


def test_concurrent_appenders_keep_one_chain(engine: Engine) -> None:
    import threading

    factory = make_session_factory(engine)

    def work(k: int) -> None:
        for i in range(10):
            with session_scope(factory) as s:
                record(s, now=T, action="x", entity_type="t", entity_id=f"{k}-{i}", actor="test")
                record(s, now=T, action="y", entity_type="t", entity_id=f"{k}-{i}", actor="test")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope(factory) as s:
        result = verify(s)
    assert result.ok and result.checked == 80, result


def test_the_append_lock_is_held_from_joining_the_chain_to_the_commit_only(pg_engine: Engine) -> None:
    """A transaction that records early and works on (a status callback, a sweep of escalations) no longer keeps
    every other appender waiting while it works: the lock is taken when its events join the chain."""
    from sqlalchemy import text

    factory = make_session_factory(pg_engine)
    held = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
    with session_scope(factory) as s:
        record(s, now=T, action="thing.changed", entity_type="thing", entity_id=1, actor="rule:test")
        assert s.execute(held).scalar() == 0, "recorded, not yet in the chain: no lock"
        with session_scope(factory) as other:  # another appender is not kept waiting meanwhile
            record(other, now=T, action="other.changed", entity_type="thing", entity_id=2, actor="rule:test")
        assert [e.action for e in s.query(Event).order_by(Event.seq)] == ["other.changed", "thing.changed"], \
            "a read of the log in the transaction sees its own event, after what was committed before it"
        assert s.execute(held).scalar() >= 1, "in the chain now: the lock is held until the commit"
    with session_scope(factory) as s:
        assert verify(s).ok and verify(s).checked == 2


def test_an_event_joined_inside_a_savepoint_rolled_back_is_kept(engine: Engine) -> None:
    """Recorded before a savepoint, put into the chain by a read inside it: the savepoint's rollback takes the row
    with it, but the event happened and is committed; what was recorded inside the savepoint is not."""
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        first = record(s, now=T, action="before.savepoint", entity_type="thing", entity_id=1, actor="rule:test")
        try:
            with s.begin_nested():
                record(s, now=T, action="inside.savepoint", entity_type="thing", entity_id=2, actor="rule:test")
                assert s.query(Event).count() == 2  # both joined the chain here
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        record(s, now=T, action="after.savepoint", entity_type="thing", entity_id=3, actor="rule:test")
    assert first.action == "before.savepoint"
    with session_scope(factory) as s:
        assert [e.action for e in s.query(Event).order_by(Event.seq)] == ["before.savepoint", "after.savepoint"]
        assert verify(s).ok
