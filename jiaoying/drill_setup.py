"""A drill's own world: a fresh database on a virtual clock, and the system's jobs less the real feeds.

Shared by the drill commands (``jiaoying/drill_cli.py``) and the live drill server (``jiaoying/drill_live.py``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import event

from config.clock import Clock, VirtualClock
from config.database import make_engine, make_session_factory, session_scope
from config.runtime import Runtime
from config.settings import Settings, load_settings
from config.users import seed_departments
from geo.region import seed_default_region
from jiaoying import migrate
from jiaoying.scheduler import job_specs

SKIP_JOBS = frozenset({"heartbeat", "feeds_poll"})  # a drill feeds its own inputs and polls nothing outside


def drill_jobs(rt: Runtime) -> list[Any]:
    """Every scheduled job of the system except polling real feeds, in the scheduler's order."""
    return [spec.func for spec in job_specs(rt) if spec.name not in SKIP_JOBS]


def drill_runtime(db_path: Path, start: dt.datetime, settings: Settings | None = None,
                  clock: Clock | None = None) -> Runtime:
    """A fresh, migrated and seeded SQLite database for one drill, on a virtual clock at ``start``."""
    settings = settings or load_settings()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    settings = settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _throwaway(dbapi_conn: Any, _record: Any) -> None:  # a drill database is rebuilt on every run
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        seed_departments(s)
        seed_default_region(s, start)
    return Runtime(settings, engine, factory, clock or VirtualClock(start))
