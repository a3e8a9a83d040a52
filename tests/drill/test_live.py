"""``jiaoying demo --live``: the API answers while the accelerated drill runs (a real process, bounded in time)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: object, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()  # type: ignore[operator]
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _console_shows_the_drill(base: str, username: str, password: str, run_number: str) -> None:
    """The printed console URL: log in through its form (with its CSRF token) and read the drill on the board."""
    with httpx.Client(base_url=base, timeout=10) as browser:
        form = browser.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token, form
        r = browser.post("/login", data={"username": username, "password": password, "csrf_token": token[1]})
        assert r.status_code == 303 and r.headers["location"] == "/", r.text
        board = browser.get("/").text
        assert 'data-level="red"' in board, "the drill's red warning is on the board"
        assert run_number in board, "the drill's run is on the board"


def test_live_demo_serves_the_api_while_the_clock_runs(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "stdout.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jiaoying", "demo", "--live", "--out", str(tmp_path / "live"), "--port", str(port)],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            _wait("the API", lambda: http.get("/healthz").status_code == 200, 60)
            m = re.search(r"login: (\S+) (\S+)", out.read_text(encoding="utf-8"))
            assert m, out.read_text(encoding="utf-8")
            token = http.post("/auth/token", data={"username": m[1], "password": m[2]}).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}
            ticks = [http.get("/readyz").json()["checks"]["scheduler"]["last_tick"]]
            runs = _wait("the run", lambda: http.get("/responses/runs", headers=h).json(), 30)
            assert isinstance(runs, list) and runs[0]["level"] == "red"
            board = http.get(f"/audit/runs/{runs[0]['id']}/report", headers=h)
            assert board.status_code == 200 and board.json()["drill"] is True
            assert board.json()["kpis"]["callouts"] > 0
            console = re.search(r"duty console: (\S+)", out.read_text(encoding="utf-8"))
            assert console and console[1] == f"{base}/", out.read_text(encoding="utf-8")
            _console_shows_the_drill(base, m[1], m[2], runs[0]["number"])
            time.sleep(2)
            ticks.append(http.get("/readyz").json()["checks"]["scheduler"]["last_tick"])
            assert ticks[0] and ticks[1] and ticks[1] > ticks[0], ticks  # the accelerated clock moves
        assert proc.poll() is None, out.read_text(encoding="utf-8")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
