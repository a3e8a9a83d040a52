"""Several instances on one database: who migrates at start-up, and who runs the once-per-tick jobs.

Both rest on PostgreSQL session advisory locks held on a connection of their own, taken out of the
engine's pool (detached: it is closed, never handed back, so a lock can never leak into a request's
connection). PostgreSQL releases such a lock by itself when the session ends — the process was killed,
its backend was terminated, the server restarted — which is what makes a dead holder harmless.

The lock keys are derived from the schema the connection works in, so two deployments in two schemas of
one database elect and migrate independently.

SQLite is one process by design: the start-up lock is a file lock beside the database file (two
processes started on one file still must not both create the tables), and the instance is always leader.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("jiaoying.leader")

STARTUP = "startup"
LEADER = "leader"

# Sent on the leader's connection so that the server, too, notices a leader that vanished from the
# network within seconds (the operating system's defaults are hours), and releases the lock.
_KEEPALIVE = ("SET tcp_keepalives_idle = 3", "SET tcp_keepalives_interval = 1", "SET tcp_keepalives_count = 3",
              "SET tcp_user_timeout = 6000")


class StartupLockTimeout(RuntimeError):
    """Another instance held the start-up lock longer than this one is willing to wait."""


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def lock_key(purpose: str, schema: str) -> int:
    """A signed 64-bit advisory lock key, the same in every process for one purpose and schema."""
    digest = hashlib.blake2b(f"jiaoying.{purpose}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def own_connection(engine: Engine) -> Any:
    """A DBAPI connection of the engine's kind (same URL and connect arguments), outside its pool."""
    fairy = engine.raw_connection()
    dbapi = fairy.driver_connection
    fairy.detach()  # the pool forgets it: closing it below closes it for real
    dbapi.autocommit = True
    return dbapi


def _scalar(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        row = cur.fetchone()
        return row[0] if row else None
    finally:
        cur.close()


def _schema(conn: Any) -> str:
    """The schema tables are created in; the search path itself when its schema does not exist yet."""
    return str(_scalar(conn, "SELECT coalesce(current_schema(), current_setting('search_path'))"))


def _execute(conn: Any, sql: str) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


def pg_lock_ids(key: int) -> tuple[int, int]:
    """The (classid, objid) under which ``pg_locks`` shows a bigint advisory key."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


@contextmanager
def startup_lock(engine: Engine, *, wait_seconds: float = 600.0, poll: float = 0.2) -> Iterator[None]:
    """Held around migrating and seeding: the first instance does it, the others wait and then find it done."""
    if is_postgres(engine):
        conn = own_connection(engine)
        try:
            key = lock_key(STARTUP, _schema(conn))
            deadline = time.monotonic() + wait_seconds
            waited = False
            while not _scalar(conn, "SELECT pg_try_advisory_lock(%s)", (key,)):
                if time.monotonic() > deadline:
                    raise StartupLockTimeout(
                        f"另一实例占用启动锁超过 {wait_seconds:.0f} 秒（正在升级数据库？）"
                        f" / another instance held the start-up lock for over {wait_seconds:.0f} s"
                        " (still migrating?)")
                if not waited:
                    log.info("另一实例正在升级数据库，等待 / another instance is migrating: waiting")
                    waited = True
                time.sleep(poll)
            try:
                yield
            finally:
                _scalar(conn, "SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            conn.close()  # ends the session, which would release the lock even if the unlock failed
        return
    path = _sqlite_path(engine)
    if path is None:
        yield
        return
    with _file_lock(Path(f"{path}.startup.lock"), wait_seconds):
        yield


def _sqlite_path(engine: Engine) -> str | None:
    database = engine.url.database
    return database if database and database != ":memory:" else None


@contextmanager
def _file_lock(path: Path, wait_seconds: float) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: SQLite's own write lock still serializes the migration
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StartupLockTimeout(f"数据库文件被另一进程锁定 / {path} stayed locked") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Leadership:
    """This instance's claim to run the once-per-tick jobs, kept by a thread of its own.

    ``is_leader`` is a cached flag, cheap enough for every tick. It is true only while the last check
    succeeded less than ``lease`` seconds ago: a check that hangs on a dead network lets the flag lapse
    by itself instead of leaving the instance believing it leads. Every ``every`` seconds the thread
    asks, on its own connection, whether it still holds the lock, and takes it when free; any error
    drops the connection (and with it the lock) and counts as not leading until a new connection gets
    the lock again.
    """

    def __init__(self, engine: Engine, *, every: float = 2.0, lease: float | None = None) -> None:
        self.engine = engine
        self.every = every
        self.lease = lease if lease is not None else max(3 * every, every + 2.0)
        self.always = not is_postgres(engine)  # SQLite: one process by design
        self._conn: Any = None
        self._key: int | None = None
        self._held_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.changes = 0  # how many times leadership was gained or lost, for logs and tests

    @property
    def is_leader(self) -> bool:
        return self.always or time.monotonic() < self._held_until

    def start(self) -> Leadership:
        if self.always or self._thread is not None:
            return self
        self.check()  # the first answer before the scheduler's first tick
        self._thread = threading.Thread(target=self._run, daemon=True, name="leader")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.check()

    def check(self) -> bool:
        """One round: still holding, or take the lock if free. Returns whether this instance leads."""
        if self.always:
            return True
        before = self.is_leader
        started = time.monotonic()
        try:
            if self._conn is None:
                self._conn = own_connection(self.engine)
                for statement in _KEEPALIVE:
                    _execute(self._conn, statement)
                self._key = lock_key(LEADER, _schema(self._conn))
            held = self._holds() or bool(_scalar(self._conn, "SELECT pg_try_advisory_lock(%s)", (self._key,)))
        except Exception as exc:  # any failure: the session (and the lock with it) is given up
            log.warning("领导权检查失败 / leadership check failed: %s: %s", type(exc).__name__, exc)
            self._drop()
            held = False
        self._held_until = started + self.lease if held else 0.0
        if held != before:
            self.changes += 1
            log.warning("本实例%s / this instance %s", "成为主实例" if held else "不再是主实例",
                        "is now the leader" if held else "is no longer the leader")
        return held

    def _holds(self) -> bool:
        assert self._key is not None
        classid, objid = pg_lock_ids(self._key)
        return bool(_scalar(
            self._conn,
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            " AND granted AND classid = %s AND objid = %s AND objsubid = 1)",
            (classid, objid)))

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken; closing is best effort
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every + 5)
        self._held_until = 0.0
        if self._conn is not None and self._key is not None:
            # Unlocked before closing: a closed session's locks go only when its backend gets round to
            # ending, a moment after close() returns, and the next leader should not find it still held.
            with contextlib.suppress(Exception):
                _scalar(self._conn, "SELECT pg_advisory_unlock_all()")
        self._drop()
