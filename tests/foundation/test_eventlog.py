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
