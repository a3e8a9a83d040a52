"""Helpers for the tests that run a real server on a loopback port (tests/wiring, tests/console)."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

DEMO_CAP = Path(__file__).resolve().parents[1] / "config" / "defaults" / "drills" / "red-rainstorm.xml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_state(entry: Path) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process from its ``/proc`` entry, or None once it is gone."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def children_of(pid: int) -> list[int]:
    """The live (not zombie) children of ``pid``, read from ``/proc`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_state(entry)
            if st is not None and st[1] == pid and st[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    st = _proc_state(Path(f"/proc/{pid}"))
    return st is not None and st[0] != "Z"


def red_cap_now(prefix: str = "live") -> bytes:
    """The bundled drill's red rainstorm CAP, sent now, as a real (not exercise) warning with a fresh identifier."""
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)
    text = DEMO_CAP.read_text(encoding="utf-8")
    for old, new in (("2026-07-20T01:58:00+08:00", now), ("2026-07-20T02:00:00+08:00", now),
                     ("2026-07-20T08:00:00+08:00", now + dt.timedelta(hours=6))):
        text = text.replace(old, new.isoformat())
    text = text.replace("<status>Exercise</status>", "<status>Actual</status>")
    return text.replace("14050241600000_20260720015800", f"{prefix}-{now.timestamp():.0f}").encode()


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    """``check()``'s first truthy answer, polled four times a second; the test fails after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def push_red_until_delivered(client: Any, headers: dict[str, str], *, prefix: str,
                             timeout: float) -> tuple[int, list[dict[str, Any]], Any]:
    """Push a red CAP to the live server and wait until every first call is delivered.

    Returns the run id, the board's callout rows, and a function reading the board again.
    """
    r = client.post("/feeds/national-cap/items", content=red_cap_now(prefix),
                    headers={**headers, "Content-Type": "application/cap+xml"})
    assert r.status_code == 202, r.text
    assert r.json()["changes"][0]["level"] == "red"
    run_id = wait_for("a run", lambda: client.get("/responses/runs", headers=headers).json(), timeout)[0]["id"]

    def board() -> dict[str, Any]:
        resp = client.get(f"/callouts/runs/{run_id}/board", headers=headers, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def all_delivered() -> list[dict[str, Any]] | None:
        rows = board()["callouts"]
        done = rows and all(a["status"] == "delivered" for row in rows for a in row["attempts"])
        return rows if done else None

    return run_id, wait_for("every first call delivered", all_delivered, timeout=timeout), board


@contextmanager
def console_server(db: Path, users: Iterable[tuple[str, str, str, str]], *, secret: str) -> Iterator[str]:
    """A whole server (uvicorn, no scheduler) on a fresh SQLite file, with these users
    (username, display name, role, password); yields its base URL and stops it afterwards.

    Open console event streams never end by themselves, so the shutdown is bounded to a second.
    """
    from config.database import make_engine, make_session_factory, session_scope
    from config.settings import Settings
    from config.users import User, hash_password
    from jiaoying.app import create_app
    from jiaoying.cli_common import upgrade_and_seed
    from responses.messaging.fake_twilio.server import ThreadedServer

    port = free_port()
    settings = Settings(
        env="test", public_base_url=f"http://127.0.0.1:{port}", database={"url": f"sqlite:///{db}"},
        scheduler={"enabled": False}, security={"secret_key": secret + "-" + "k" * 40},
    )
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    with session_scope(make_session_factory(engine)) as s:
        for username, name, role, password in users:
            s.add(User(username=username, display_name=name, password_hash=hash_password(password),
                       role=role, created_at=dt.datetime.now(dt.UTC)))
    engine.dispose()
    server = ThreadedServer(create_app(settings), port=port).start()
    server.server.config.timeout_graceful_shutdown = 1
    try:
        yield server.url
    finally:
        server.stop()
