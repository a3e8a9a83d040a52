"""Several ``jiaoying serve`` processes on one PostgreSQL database, all sending through one fake Twilio
server held by the test, for the fault tests: start them, find the leader, kill one as a machine death
would (the server and its sending child), and read what the fake and the database saw.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from config.database import make_engine, make_session_factory, session_scope
from config.settings import Settings
from config.users import User, hash_password
from jiaoying.cli_common import upgrade_and_seed
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.fake_twilio.state import FakeConfig
from tests.live import children_of, free_port, red_cap_now, wait_for

ROOT = Path(__file__).resolve().parents[2]
SID = "AC" + "5" * 32
TOKEN = "faults-fake-token"
FROM = "+8612300000000"
SECRET = "faults-" + "k" * 40
PASSWORD = "duty-pass-123"
PG_VERSION_DIR = Path("/etc/postgresql")


def prepare(url: str) -> None:
    """Migrate, seed (the demo contacts: the whole district) and add a duty officer, before any instance starts."""
    settings = Settings(env="test", database={"url": url}, security={"secret_key": SECRET})
    upgrade_and_seed(settings)
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            if s.execute(select(User).where(User.username == "duty")).scalar_one_or_none() is None:
                s.add(User(username="duty", display_name="值班员", password_hash=hash_password(PASSWORD),
                           role="duty_officer", created_at=dt.datetime.now(dt.UTC)))
    finally:
        engine.dispose()


def fake_gateway() -> FakeTwilioServer:
    """The provider every instance talks to; no callbacks, so the test measures sending, not webhooks."""
    server = FakeTwilioServer(FakeConfig(accounts={SID: TOKEN}, phone_number=FROM, callbacks=False))
    server.start()
    return server


class Node:
    """One ``jiaoying serve`` with its scheduler; its sending child runs in a session of its own."""

    def __init__(self, tmp: Path, name: str, url: str, gateway: str, **extra: str) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
        env.update({
            "JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": url, "JIAOYING_SCHEDULER__TICK_SECONDS": "1",
            "JIAOYING_SECURITY__SECRET_KEY": SECRET, "JIAOYING_PUBLIC_BASE_URL": self.base, "PYTHONPATH": str(ROOT),
            "JIAOYING_TWILIO__ACCOUNT_SID": SID, "JIAOYING_TWILIO__AUTH_TOKEN": TOKEN,
            "JIAOYING_TWILIO__FROM_NUMBER": FROM, "JIAOYING_TWILIO__API_BASE_URL": gateway, **extra})
        self.log_path = tmp / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "jiaoying", "serve", "--port", str(self.port)],
                                     cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.killed = False

    def readyz(self, timeout: float = 2.0) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{self.base}/readyz", timeout=timeout)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    def leader(self) -> bool:
        got = self.readyz()
        return bool(got and got["checks"]["scheduler"]["leader"])

    def last_tick(self) -> dt.datetime | None:
        got = self.readyz()
        tick = got and got["checks"]["scheduler"]["last_tick"]
        return dt.datetime.fromisoformat(tick) if tick else None

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL to the server and its sending child at once, as a machine death: nobody cleans up."""
        if self.proc.poll() is None:
            groups = [self.proc.pid, *children_of(self.proc.pid)]
            for pid in groups:  # each child leads a session (and process group) of its own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        self.killed = True
        try:
            self.proc.wait(timeout=10)
        finally:
            self.log.close()

    def stop(self) -> None:
        if not self.log.closed:
            self.kill()


def start_nodes(tmp: Path, url: str, gateway: str, n: int, **extra: str) -> list[Node]:
    nodes = [Node(tmp, f"serve{i}", url, gateway, **extra) for i in range(n)]

    def ready() -> bool:
        for node in nodes:
            if node.proc.poll() is not None:
                pytest.fail(f"{node.name} exited with {node.proc.returncode}:\n{node.output()}")
        return all(node.readyz() for node in nodes)

    try:
        wait_for("every instance ready", ready, timeout=120)
        wait_for("every sending child running", lambda: all(children_of(x.proc.pid) for x in nodes), timeout=30)
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes: list[Node]) -> None:
    for node in nodes:
        node.stop()


def the_leader(nodes: list[Node], timeout: float = 20.0) -> Node:
    def one() -> Node | None:
        leading = [x for x in nodes if not x.killed and x.leader()]
        return leading[0] if len(leading) == 1 else None

    return wait_for("exactly one leader", one, timeout=timeout)  # type: ignore[no-any-return]


def district_red_cap(prefix: str) -> bytes:
    """The drill's red rainstorm CAP, sent now, for the whole district: its polygon (three streets) dropped,
    so the district's admin code alone says where, and every responsible person of the district is called."""
    text = red_cap_now(prefix).decode()
    text = re.sub(r"\s*<polygon>[^<]*</polygon>", "", text)
    text = re.sub(r"<areaDesc>[^<]*</areaDesc>", "<areaDesc>晋城市城区全区</areaDesc>", text)
    return text.encode()


def push_red(node: Node, prefix: str) -> None:
    """A red warning for the whole district, pushed through the API as a feed would push it."""
    with httpx.Client(base_url=node.base, timeout=60) as c:
        token = c.post("/auth/token", data={"username": "duty", "password": PASSWORD}).json()
        r = c.post("/feeds/national-cap/items", content=district_red_cap(prefix),
                   headers={"Authorization": f"Bearer {token['access_token']}",
                            "Content-Type": "application/cap+xml"})
        assert r.status_code == 202, r.text


def accepted_by_message(server: FakeTwilioServer) -> Counter[int]:
    """Requests the fake accepted, per outbox message id (the ``m=`` of the status callback URL)."""
    seen: Counter[int] = Counter()
    with server.fake.lock:
        rows = [r for r in server.fake.requests if r.status in (200, 201)]
    for r in rows:
        query = parse_qs(urlsplit(r.params.get("StatusCallback", "")).query)
        if "m" in query:
            seen[int(query["m"][0])] += 1
    return seen


def requests_per_second(server: FakeTwilioServer) -> int:
    """The highest number of API requests the provider saw in any one-second window, for our account."""
    return int(server.fake.stats()["max_per_second"].get(SID, 0))


def pg_cluster() -> tuple[str, str] | None:
    """(version, name) of the local PostgreSQL cluster that ``pg_ctlcluster`` can restart, if any."""
    if not PG_VERSION_DIR.is_dir():
        return None
    for version in sorted(PG_VERSION_DIR.iterdir()):
        if (version / "main").is_dir():
            return version.name, "main"
    return None


def monotonic_since(t0: float) -> float:
    return time.monotonic() - t0
