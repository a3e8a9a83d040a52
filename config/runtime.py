"""What a running instance holds: settings, engine, sessions, clock, the shared HTTP client.

Jobs and services receive this instead of reaching for globals, so a drill can hand them a
virtual clock and a test a fresh database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.clock import Clock, SystemClock
from config.database import make_engine, make_session_factory, read_only
from config.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    http: httpx.Client | None = None
    state: dict[str, Any] = field(default_factory=dict)
    read_session_factory: sessionmaker[Session] | None = None

    def __post_init__(self) -> None:
        if self.read_session_factory is None:
            self.read_session_factory = make_session_factory(read_only(self.engine))

    def now(self) -> dt.datetime:
        return self.clock.now()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        self.engine.dispose()


def build_runtime(settings: Settings, *, clock: Clock | None = None, engine: Engine | None = None) -> Runtime:
    engine = engine or make_engine(
        settings.database.url, echo=settings.database.echo, busy_timeout_ms=settings.database.busy_timeout_ms
    )
    http = httpx.Client(
        timeout=httpx.Timeout(15.0, connect=5.0),
        follow_redirects=True,
        headers={"User-Agent": "Jiaoying/0.1 (+early-warning)"},
    )
    return Runtime(settings, engine, make_session_factory(engine), clock or SystemClock(), http)
