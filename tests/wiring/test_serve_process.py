"""``jiaoying serve`` as the duty room starts it: the sending work in a child process of its own.

A red CAP pushed in reaches every responsible person through the child's sender and the fake gateway
the child hosts, a keypress comes back as an answer, a child that dies is started again, and stopping
serve (Ctrl-C, or a kill it cannot handle) leaves no child process behind."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from config.database import make_engine, make_session_factory, session_scope
from config.settings import Settings
from config.users import User, hash_password
from jiaoying.cli_common import upgrade_and_seed
from tests.live import alive, children_of, free_port, push_red_until_delivered, wait_for

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")

ROOT = Path(__file__).resolve().parents[2]


class Serve:
    def __init__(self, tmp: Path, **extra_env: str) -> None:
        self.port, self.gateway_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
        self.env.update({"JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": f"sqlite:///{tmp / 'serve.db'}",
                         "JIAOYING_PUBLIC_BASE_URL": self.base, "JIAOYING_SCHEDULER__TICK_SECONDS": "1",
                         "JIAOYING_SECURITY__SECRET_KEY": "serve-" + "k" * 40, **extra_env})
        settings = Settings(env="test", database={"url": self.env["JIAOYING_DATABASE__URL"]},
                            security={"secret_key": self.env["JIAOYING_SECURITY__SECRET_KEY"]})
        upgrade_and_seed(settings)
        engine = make_engine(settings.database.url)
        with session_scope(make_session_factory(engine)) as s:
            s.add(User(username="duty", display_name="值班员", password_hash=hash_password("duty-pass-123"),
                       role="duty_officer", created_at=dt.datetime.now(dt.UTC)))
        engine.dispose()
        self.log = (tmp / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jiaoying", "serve", "--port", str(self.port), "--gateway-port",
             str(self.gateway_port)], cwd=tmp, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.log_path = tmp / "serve.log"

    def ready(self) -> bool:
        try:
            up = httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200
            return up and httpx.get(f"{self.gateway}/_fake/stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                pytest.fail("serve did not stop on SIGINT within 30 s")
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path)
    leftovers: list[int] = []
    try:
        wait_for("serve and its sending process", server.ready, timeout=40)
        yield server
    finally:
        leftovers = children_of(server.proc.pid) if server.proc.poll() is None else []
        server.stop()
        for pid in leftovers:  # a failed test must not leave a process running either
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_fan_out_from_the_sending_process_answers_and_a_clean_stop(serve: Serve) -> None:
    children = children_of(serve.proc.pid)
    assert len(children) == 1, children
    child = children[0]
    assert b"worker" in Path(f"/proc/{child}/cmdline").read_bytes()
    with httpx.Client(base_url=serve.base, timeout=30) as c:
        token = c.post("/auth/token", data={"username": "duty", "password": "duty-pass-123"}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        _run_id, rows, board = push_red_until_delivered(c, h, prefix="serve", timeout=40)
        assert len(rows) > 50
        sent = httpx.get(f"{serve.gateway}/_fake/stats", timeout=10).json()
        assert sent, "the child's gateway saw the requests"
        first = rows[0]["attempts"][0]["number"]
        press = httpx.post(f"{serve.gateway}/_fake/keypress", json={"number": first, "digits": "1"}, timeout=30)
        assert press.status_code == 200 and "已确认收到" in press.json()["response"]
        answered = wait_for("the keypress answered",
                            lambda: [row for row in board()["callouts"] if row["answers"]], timeout=20)
        assert answered[0]["answers"][0]["channel"] == "keypress"
    assert serve.stop() == 0
    assert not alive(child), "the sending process outlived serve"
    log = serve.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "database is locked" not in log, log[-3000:]


def test_an_idle_keep_alive_connection_outlives_uvicorns_five_seconds(serve: Serve) -> None:
    """A proxy or the provider reusing a connection idle for a while gets an answer, not a closed socket (at
    uvicorn's default 5 s, one reused just as the server closed it broke under load)."""
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{serve.port}\r\n\r\n".encode()

    def exchange(sock: socket.socket) -> bytes:
        sock.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(4096)
            if not chunk:
                return got  # closed by the server
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += sock.recv(4096)
        return head

    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
        assert exchange(sock).startswith(b"HTTP/1.1 200")
        time.sleep(6.5)
        assert exchange(sock).startswith(b"HTTP/1.1 200"), "the server closed the idle connection"


def test_a_dead_sending_process_is_restarted_and_a_killed_serve_leaves_no_orphan(serve: Serve) -> None:
    first = children_of(serve.proc.pid)
    assert len(first) == 1
    os.kill(first[0], signal.SIGKILL)
    again = wait_for("a new sending process",
                     lambda: [p for p in children_of(serve.proc.pid) if p not in first], timeout=20)
    wait_for("the restarted gateway", serve.ready, timeout=20)
    serve.proc.kill()  # no clean-up possible: the child must notice on its own
    serve.proc.wait(timeout=10)
    wait_for("the orphaned sending process to stop", lambda: not alive(again[0]), timeout=20)


def test_the_setting_keeps_the_sending_work_in_the_server(tmp_path: Path) -> None:
    server = Serve(tmp_path, JIAOYING_SCHEDULER__SENDER_PROCESS="false")
    try:
        wait_for("serve", server.ready, timeout=40)
        assert children_of(server.proc.pid) == []
    finally:
        assert server.stop() == 0


def test_the_server_and_its_sending_process_split_the_jobs(tmp_path: Path) -> None:
    from config.clock import SystemClock
    from config.runtime import Runtime
    from jiaoying.scheduler import SENDING_JOBS, scheduled_specs

    def names(jobs: str) -> set[str]:
        settings = Settings(env="test", scheduler={"jobs": jobs}, security={"secret_key": "k" * 40})
        engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
        try:
            return {s.name for s in scheduled_specs(Runtime(settings, engine, make_session_factory(engine),
                                                            SystemClock()))}
        finally:
            engine.dispose()

    every = names("all")
    assert every > SENDING_JOBS
    assert names("web") == every - SENDING_JOBS
    assert names("sending") == SENDING_JOBS | {"heartbeat"}
