"""What every ``jiaoying`` subcommand module shares: the consoles, the way to fail, settings and seeding.

Kept apart from ``jiaoying/cli.py`` so that the subcommand modules it assembles import this, not it.
"""

from __future__ import annotations

import typer
from rich.console import Console

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
    engine = make_engine(settings.database.url)
    try:
        migrate.upgrade(engine)
        with session_scope(make_session_factory(engine)) as s:
            seed_departments(s)
            seed_feeds(s, SystemClock().now())
            seed_default_region(s, SystemClock().now())
            seed_demo_contacts(s, now=SystemClock().now(), tz=settings.tz)  # fake list; reaches nobody
    finally:
        engine.dispose()
