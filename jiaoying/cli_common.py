"""What every ``jiaoying`` subcommand module shares: the consoles, the way to fail, settings and seeding.

Kept apart from ``jiaoying/cli.py`` so that the subcommand modules it assembles import this, not it.
"""

from __future__ import annotations

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from config.clock import SystemClock
from config.database import make_engine, make_session_factory, session_scope
from config.settings import ConfigError, Settings, load_settings
from config.users import seed_departments
from geo.region import seed_default_region
from jiaoying import migrate
from responses.contacts.service import seed_demo_contacts
from warning.service import seed_feeds

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]错误 / Error:[/] {message}")
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
        settings.require_valid()
        return settings
    except (ConfigError, ValueError) as exc:
        raise fail(f"配置无效 / invalid configuration:\n{exc}") from None


def upgrade_and_seed(settings: Settings) -> None:
    """Migrate and seed, safe when several instances start at the same moment on one database.

    Both happen under the start-up lock (``jiaoying/leader.py``), so one instance does the work and the
    others find it done. The seeds only add what is missing; should a row still collide with one written
    by a process that took no lock (an older version), the whole seeding is rolled back and read again.
    """
    engine = make_engine(settings.database.url, busy_timeout_ms=settings.database.busy_timeout_ms)
    try:
        migrate.upgrade_locked(engine, then=lambda: seed(engine, settings),
                               wait_seconds=settings.cluster.startup_lock_seconds)
    finally:
        engine.dispose()


def seed(engine: Engine, settings: Settings, *, attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            with session_scope(make_session_factory(engine)) as s:
                now = SystemClock().now()
                seed_departments(s)
                seed_feeds(s, now)
                seed_default_region(s, now)
                seed_demo_contacts(s, now=now, tz=settings.tz)  # fake list; reaches nobody
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise
