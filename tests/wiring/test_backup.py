"""``jiaoying backup --out FILE``: a SQLite copy taken while the event log is being written verifies when it is
opened as the database; PostgreSQL is pointed to pg_dump; bad targets are refused with a clear message."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from config.database import make_engine, make_session_factory, session_scope
from config.eventlog import Event, record, verify
from config.settings import Settings
from jiaoying import backup as backup_mod
from jiaoying.cli import app
from jiaoying.cli_common import upgrade_and_seed

T0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.UTC)


def env_for(db: Path) -> dict[str, str]:
    return {"JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": f"sqlite:///{db}",
            "JIAOYING_SECURITY__SECRET_KEY": "backup-" + "k" * 40}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A server's database (migrated and seeded as ``serve`` leaves it) with a few thousand events logged."""
    db = tmp_path / "jiaoying.db"
    upgrade_and_seed(Settings(**{"env": "test", "database": {"url": f"sqlite:///{db}"}}))  # type: ignore[arg-type]
    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_scope(make_session_factory(engine)) as s:
            for i in range(2000):
                record(s, now=T0 + dt.timedelta(seconds=i), action="test.filled", entity_type="test", entity_id=i,
                       actor="test", payload={"n": i, "note": "叫应" * 50})
    finally:
        engine.dispose()
    return db


def append_one(db: Path, n: int) -> None:
    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_scope(make_session_factory(engine)) as s:
            record(s, now=T0 + dt.timedelta(hours=1, seconds=n), action="test.during", entity_type="test",
                   entity_id=n, actor="writer", payload={"n": n})
    finally:
        engine.dispose()


def events(db: Path) -> tuple[int, bool]:
    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_scope(make_session_factory(engine)) as s:
            result = verify(s)
            return int(s.execute(select(func.count(Event.id))).scalar() or 0), result.ok
    finally:
        engine.dispose()


def test_a_copy_taken_between_writes_is_one_moment_and_verifies(database: Path, tmp_path: Path) -> None:
    before, ok = events(database)
    assert ok and before > 2000
    steps: list[tuple[int, int]] = []

    def write_between_steps(done: int, total: int) -> None:  # an event committed while the copy is half made
        steps.append((done, total))
        append_one(database, len(steps))

    out = tmp_path / "copy.db"
    result = backup_mod.backup_sqlite(database, out, progress=write_between_steps, pages_per_step=16)
    assert len(steps) > 5 and steps[-1][0] == steps[-1][1] == result.pages
    with sqlite3.connect(out) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert events(database) == (before + len(steps), True)
    assert events(out) == (before, True)  # the moment the copy began: no half-written later state
    assert not list(tmp_path.glob(".copy.db.partial-*"))


def test_cli_backup_while_a_writer_writes_then_restore_verifies(database: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_mod, "PAGES_PER_STEP", 8)
    stop = threading.Event()
    written = {"n": 0}

    def writer() -> None:
        while not stop.is_set():
            written["n"] += 1
            append_one(database, 10_000 + written["n"])

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        out = tmp_path / "backups" / "jiaoying-2026-07-20.db"
        out.parent.mkdir()
        runner = CliRunner()
        r = runner.invoke(app, ["backup", "--out", str(out)], env=env_for(database))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert r.exit_code == 0, r.output
    assert "备份完成" in r.output and "backup written" in r.output and "jiaoying audit verify" in r.output
    assert written["n"] > 0
    copied, ok = events(out)
    assert ok and copied >= 2001

    # restore: the copy opened as the database; the event log verifies through the command a duty room would use
    restored = runner.invoke(app, ["audit", "verify"], env=env_for(out))
    assert restored.exit_code == 0, restored.output
    assert f"共 {copied} 条" in restored.output

    # and verification would have noticed a damaged copy: the restore test can fail
    engine = make_engine(f"sqlite:///{out}")
    with engine.begin() as c:
        c.execute(update(Event).where(Event.seq == 1000).values(actor="someone else"))
    engine.dispose()
    tampered = runner.invoke(app, ["audit", "verify"], env=env_for(out))
    assert tampered.exit_code == 1 and "seq=1000" in tampered.output


def test_postgresql_is_pointed_to_pg_dump() -> None:
    r = CliRunner().invoke(app, ["backup", "--out", "x.dump"], env={
        "JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test"})
    assert r.exit_code == 2
    assert "pg_dump" in r.output and "pg_restore" in r.output and "README" in r.output


@pytest.mark.parametrize(("target", "words"), [
    ("missing-folder/x.db", "目录不存在"),
    (".", "是目录"),
    ("SELF", "数据库本身"),
])
def test_bad_targets_are_refused_clearly(database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         target: str, words: str) -> None:
    monkeypatch.chdir(tmp_path)
    out = str(database) if target == "SELF" else target
    r = CliRunner().invoke(app, ["backup", "--out", out], env=env_for(database))
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output
    assert events(database)[1]


def test_no_database_file_is_a_clear_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["backup", "--out", str(tmp_path / "x.db")], env=env_for(tmp_path / "none.db"))
    assert r.exit_code == 2 and "找不到数据库文件" in r.output
    assert not (tmp_path / "none.db").exists()  # asking for a backup created no empty database
