"""Shared fixtures: real databases (SQLite file, PostgreSQL schema), an app on them, users.

PostgreSQL tests run against the server at 127.0.0.1:5432 (database ``test``) in a fresh schema
per test session. Outside CI they skip with a visible reason when no server answers; under
``CI=true`` a missing server is a failure.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import Base, make_engine, make_session_factory, session_scope
from config.runtime import Runtime
from config.settings import Settings
from config.users import Department, User, hash_password, seed_departments
from jiaoying import migrate, wiring
from jiaoying.app import create_app
from warning.changes import ChangeKind, WarningChange
from warning.models import Warning

PG_URL = os.environ.get("JIAOYING_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DATA = Path(__file__).resolve().parent / "data"  # real samples and geo files, copied with PROVENANCE
T0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture(scope="session", autouse=True)
def wired() -> None:
    """Run events reach callouts, measures and reports as they do in the server (``jiaoying/wiring.py``)."""
    wiring.install()


# Files that take a minute or more. A parallel run hands out files in order; started first, they run beside the
# many short ones instead of keeping one worker busy alone at the end.
SLOW_FIRST = (
    "tests/wiring/test_bench_load_smoke.py",
    "tests/foundation/test_openapi_fuzz.py",
    "tests/drill/test_library.py",
    "tests/drill/test_replay.py",
    "tests/callouts/test_aliyun_scenario.py",
    "tests/drill/test_library_water.py",
    "tests/console/test_duty_flag_browser.py",
    "tests/console/test_live_browser.py",
    "tests/messaging/test_aliyun_faults.py",
    "tests/console/test_browser.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept


def pytest_configure(config: pytest.Config) -> None:
    # A parallel run's workers inherit COLUMNS=80/LINES=24; a rich console created at import would keep
    # that width for good, while the CLI tests set the width they print at themselves.
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server")
    config.addinivalue_line("markers", "browser: needs headless Chromium")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as s:
        seed_departments(s)
    engine.dispose()
    return path


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # the reason is shown in the skip message
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_schema_engine() -> Iterator[Engine]:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI=true: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")
    schema = f"jy_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(PG_URL)
    engine.dispose()
    engine = create_engine(
        PG_URL, connect_args={"options": f"-csearch_path={schema}"}, pool_size=10, max_overflow=20
    )
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as s:
        seed_departments(s)
    yield engine
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate_pg(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name != "department")
    with engine.begin() as c:
        c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "jiaoying.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_schema_engine: Engine) -> Iterator[Engine]:
    _truncate_pg(pg_schema_engine)
    yield pg_schema_engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The real database, once on SQLite and once on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


def test_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "env": "test",
        "database": {"url": "sqlite://", "auto_upgrade": False},
        "scheduler": {"enabled": False},
        "security": {"secret_key": "test-secret-" + "x" * 40},
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def runtime(engine: Engine, clock: VirtualClock) -> Runtime:
    return Runtime(test_settings(), engine, make_session_factory(engine), clock)


@pytest.fixture
def sqlite_runtime(sqlite_engine: Engine, clock: VirtualClock) -> Runtime:
    return Runtime(test_settings(), sqlite_engine, make_session_factory(sqlite_engine), clock)


@pytest.fixture
def client(sqlite_runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(sqlite_runtime.settings, runtime=sqlite_runtime, scheduler=False)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def any_client(runtime: Runtime) -> Iterator[TestClient]:
    """A client on the parametrized engine (SQLite and PostgreSQL)."""
    app = create_app(runtime.settings, runtime=runtime, scheduler=False)
    with TestClient(app) as c:
        yield c


def make_user(factory: sessionmaker[Session], username: str, role: str, department: str | None = None,
              password: str = "correct-horse-9") -> User:
    with session_scope(factory) as s:
        dept_id = None
        if department:
            dept = s.query(Department).filter((Department.name == department) | (Department.code == department)).one()
            dept_id = dept.id
        user = User(username=username, display_name=username, password_hash=hash_password(password), role=role,
                    department_id=dept_id, created_at=dt.datetime.now(dt.UTC))
        s.add(user)
    return user


@pytest.fixture
def login(client: TestClient, sqlite_runtime: Runtime) -> Callable[..., dict[str, str]]:
    """``login(role, department=None)`` → Authorization headers for a fresh user of that role."""
    counter = {"n": 0}

    def _login(role: str, department: str | None = None, c: TestClient | None = None,
               rt: Runtime | None = None) -> dict[str, str]:
        counter["n"] += 1
        name = f"{role}{counter['n']}"
        make_user((rt or sqlite_runtime).session_factory, name, role, department)
        resp = (c or client).post("/auth/token", data={"username": name, "password": "correct-horse-9"})
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    return _login


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The test data kept in the repository: samples/, geo/ and tools/contracts.py (see its PROVENANCE.md)."""
    return DATA


# --- warning rows written directly, changes announced as the warning service would announce them ---

_ids = itertools.count(1)


def _make_warning(session: Session, *, now: dt.datetime, level: str | None, hazard: str = "weather",
                  event: str = "暴雨", thread: Warning | None = None, msg_type: str = "alert",
                  state: str = "active", affected: dict[str, Any] | None = None, status: str = "actual") -> Warning:
    n = next(_ids)
    w = Warning(
        sender="jc-met@cma.gov.cn", identifier=f"test-{n}", msg_type=msg_type, status=status,
        drill=status == "exercise", hazard=hazard, event=event, level=level, sent=now, headline=f"城区{event}预警",
        affected=affected or {"villages": ["140502001001"], "townships": ["140502001"], "sites": []},
        state=state, version=1, received_at=now, updated_at=now,
    )
    session.add(w)
    session.flush()
    if thread is None:
        w.thread_id = w.id
    else:
        w.thread_id = thread.thread_id
        w.supersedes_id = thread.id
        w.version = thread.version + 1
        thread.state = "superseded" if msg_type == "update" else "cancelled"
        thread.superseded_by_id = w.id
    session.flush()
    return w


@pytest.fixture
def make_warning() -> Callable[..., Warning]:
    return _make_warning


def change_of(kind: str, w: Warning, previous: Warning | None = None) -> WarningChange:
    return WarningChange(kind=ChangeKind(kind), warning_id=w.id, thread_id=w.thread_id or w.id,
                         previous_id=previous.id if previous else None, hazard=w.hazard, level=w.level,
                         previous_level=previous.level if previous else None, status=w.status, drill=w.drill)


@pytest.fixture
def change() -> Callable[..., WarningChange]:
    return change_of
