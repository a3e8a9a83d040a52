"""Login rate limiting holds across instances: two apps, each with its own engine, on one database
(SQLite file and PostgreSQL schema). Failures through one count on the other, for the API and the console
login alike, and failures that left the window are pruned."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, select, text

from config.auth import LoginFailure, LoginLimiter
from config.clock import VirtualClock
from config.database import make_engine, make_session_factory, session_scope
from config.runtime import Runtime
from jiaoying.app import create_app
from tests.conftest import make_user
from tests.conftest import test_settings as settings_for_test

PASSWORD = "correct-horse-9"


def _twin(engine: Engine) -> Engine:
    """A second engine on the same database, as another instance would open it."""
    if engine.dialect.name == "sqlite":
        return make_engine(str(engine.url))
    with engine.connect() as c:
        schema = c.execute(text("SELECT current_schema()")).scalar_one()
    return create_engine(engine.url, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture
def two_apps(engine: Engine, clock: VirtualClock) -> Iterator[tuple[TestClient, TestClient, Engine]]:
    other = _twin(engine)
    apps = [create_app(settings_for_test(), runtime=Runtime(settings_for_test(), e, make_session_factory(e), clock),
                       scheduler=False) for e in (engine, other)]
    try:
        with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
            yield a, b, engine
    finally:
        other.dispose()


def _token(client: TestClient, username: str, password: str) -> int:
    return client.post("/auth/token", data={"username": username, "password": password}).status_code


def test_failures_through_one_instance_count_on_the_other(two_apps: tuple[TestClient, TestClient, Engine]) -> None:
    a, b, engine = two_apps
    make_user(make_session_factory(engine), "duty1", "duty_officer", password=PASSWORD)
    assert [_token(a, "duty1", "wrong") for _ in range(3)] == [401] * 3
    assert [_token(b, "duty1", "wrong") for _ in range(2)] == [401] * 2
    # five failures in the window, spread over both: each instance now refuses even the right password
    assert _token(a, "duty1", PASSWORD) == 429
    assert _token(b, "duty1", PASSWORD) == 429
    # the console's login form goes through the same limit
    page = b.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    r = b.post("/login", data={"username": "duty1", "password": PASSWORD, "csrf_token": csrf.group(1)},
               follow_redirects=False)
    assert r.status_code == 429


def test_a_success_clears_the_users_failures_for_every_instance(
        two_apps: tuple[TestClient, TestClient, Engine]) -> None:
    a, b, engine = two_apps
    make_user(make_session_factory(engine), "duty2", "duty_officer", password=PASSWORD)
    assert [_token(a, "duty2", "wrong") for _ in range(3)] == [401] * 3
    assert _token(b, "duty2", PASSWORD) == 200
    with session_scope(make_session_factory(engine)) as s:
        keys = set(s.execute(select(LoginFailure.key)).scalars())
    assert "user:duty2" not in keys and "ip:testclient" in keys  # the address's failures still count


def test_old_failures_leave_the_window_and_the_table(engine: Engine) -> None:
    f = make_session_factory(engine)
    limiter = LoginLimiter(attempts=2, window_seconds=60)
    t0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.UTC)
    long_name = "user:" + "x" * 500  # a typed user name of any length fits the column
    with session_scope(f) as s:
        limiter.fail(s, [long_name, "ip:1.2.3.4"], t0)
        limiter.fail(s, [long_name], t0 + dt.timedelta(seconds=30))
    with session_scope(f) as s:
        assert limiter.blocked(s, [long_name], t0 + dt.timedelta(seconds=40))
        assert not limiter.blocked(s, ["ip:1.2.3.4"], t0 + dt.timedelta(seconds=40))
        assert not limiter.blocked(s, [long_name], t0 + dt.timedelta(seconds=95))  # the first one aged out
    with session_scope(f) as s:
        limiter.fail(s, ["ip:5.6.7.8"], t0 + dt.timedelta(seconds=200))  # prunes everything older
    with session_scope(f) as s:
        assert s.execute(select(func.count()).select_from(LoginFailure)).scalar_one() == 1
