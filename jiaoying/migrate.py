"""Alembic, driven from code: the CLI, the server start and the tests all upgrade the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from jiaoying.leader import startup_lock

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    command.upgrade(alembic_config(engine), revision)


def heads() -> set[str]:
    return set(ScriptDirectory(str(MIGRATIONS)).get_heads())


def current(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def is_current(engine: Engine) -> bool:
    return current(engine) == heads()


def upgrade_locked(engine: Engine, *, then: Callable[[], object] | None = None,
                   wait_seconds: float = 600.0) -> bool:
    """Upgrade (and run ``then``, the seeding) under the start-up lock; returns whether this call migrated.

    Several instances started at once on an empty database would otherwise all try to create
    ``alembic_version`` and the tables, and all but one die. The first takes the lock and migrates; the
    others wait for it, find the schema current and go on.
    """
    with startup_lock(engine, wait_seconds=wait_seconds):
        migrated = not is_current(engine)
        if migrated:
            upgrade(engine)
        if then is not None:
            then()
    return migrated
