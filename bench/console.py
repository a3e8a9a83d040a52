"""The duty board's server time on a quiet server and while the same server calls a whole district.

    python bench/console.py [--requests 50] [--runs 20] [--callees 250] [--warnings 50]

A scratch SQLite database (temporary directory) is seeded in this process: the default region and
demo contacts (``jiaoying db upgrade``), WARNINGS active blue/yellow warnings entered as the duty desk
enters them, RUNS runs of CALLEES callouts each (about 5,000 in all; their messages marked delivered,
so the quiet server has nothing to send). Then the real ``jiaoying serve`` starts as a subprocess on
loopback (the local fake gateway, since no Twilio credentials are set; every other setting its
default), a duty officer logs in through the console's form, and REQUESTS sequential ``GET /`` with
the session cookie are timed on the client (loopback: the server's time plus a few hundred µs):

1. quiet: nothing due;
2. busy: a red rainstorm warning for the whole district (``POST /warnings/manual``, area 140502) starts a
   run at once and the server calls every responsible person; the board is read while it does. The
   figures say how many of the reads overlapped the fan-out and how long the fan-out took.

In each phase, after the reads, the live stream is timed: one ``GET /console/events`` (server-sent
events, the session cookie) stays open while this process appends CHANGES rows to the event log, each in
its own committed transaction (``config.eventlog.record``, as every domain records its changes), spaced
0.1–0.3 s apart at random so that they fall anywhere in the server's polling cycle. The delay of each is
the time from its commit returning to its ``event: change`` message, matched by the event log id, arriving
on the stream. A change that never arrives (within 10 s of the last) is counted as lost. In the busy phase
the figures also say how many changes arrived before the fan-out ended.

``--in-process`` keeps the sending work in the server's process, as it was before it had its own, for
comparison; ``--readers N`` reads with N clients at once; ``--py-spy FILE`` records the server's stacks
(and its children's) for 20 s of the fan-out, if py-spy is installed.

Targets (issue 14): median ≤ 300 ms quiet, p95 ≤ 1 s during the fan-out; change → open page ≤ 2 s p95 in
both cases.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fanout  # noqa: E402  (its region and bulk callout helpers)
from sqlalchemy import func, select, update  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from config.database import make_engine, make_session_factory, session_scope  # noqa: E402
from config.eventlog import record  # noqa: E402
from config.settings import Settings  # noqa: E402
from config.users import User, hash_password  # noqa: E402
from jiaoying.cli_common import upgrade_and_seed  # noqa: E402
from responses.callouts.models import Attempt, Callout  # noqa: E402
from responses.messaging.models import OutboxMessage  # noqa: E402
from responses.runs.models import ResponseRun  # noqa: E402
from warning import service as warning_service  # noqa: E402
from warning.schemas import ManualWarningIn  # noqa: E402

USER, PASSWORD = "bench-duty", "bench-pass-123"
HAZARDS = ["weather", "flood", "geohazard", "forest_fire"]
TOWNSHIPS = ["140502001", "140502002", "140502003", "140502004", "140502100", "140502101", "140502102",
             "140502103"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


def seed(settings: Settings, *, warnings: int, runs: int, callees: int) -> None:
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    factory = make_session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    t = time.perf_counter()
    with session_scope(factory) as s:
        s.add(User(username=USER, display_name="值班员", password_hash=hash_password(PASSWORD),
                   role="duty_officer", created_at=now))
    for i in range(warnings):
        data = ManualWarningIn(
            channel="phone", source="晋城市气象台", received_from="bench", hazard=HAZARDS[i % len(HAZARDS)],
            event="暴雨", level="yellow" if i % 2 else "blue", headline=f"城区{i:02d}号预警（基准）",
            area_codes=[TOWNSHIPS[i % len(TOWNSHIPS)]], expires=now + dt.timedelta(days=2))
        with session_scope(factory) as s:
            warning_service.enter_manual(s, data, username=USER, now=now)
    codes = fanout.build_region(factory, callees)
    for r in range(runs):
        run_id = fanout.make_run(factory, codes, {}, f"B-{r:03d}", 10_000 + r)
        with contextlib.redirect_stdout(io.StringIO()):  # its per-run timing lines are not this bench's
            fanout.start_callouts(factory, run_id, now, sample=5)
    with session_scope(factory) as s:  # the seeded calls went out long ago: nothing for the sender
        s.execute(update(OutboxMessage).values(state="delivered", attempts=1, provider_id="SMbench", sent_at=now,
                                               delivered_at=now, finished_at=now))
        s.execute(update(Attempt).values(status="delivered"))
        s.execute(update(ResponseRun).values(started_at=now, updated_at=now))
        total = s.execute(select(func.count(Callout.id))).scalar()
    engine.dispose()
    print(f"seeded {warnings} warnings, {runs} runs, {total} callouts in {time.perf_counter() - t:.1f} s")


def login(c: httpx.Client) -> None:
    page = c.get("/login")
    token = re.search(r'name="([^"]+)" value="([^"]+)"', page.text)
    assert token, "no CSRF field on the login page"
    r = c.post("/login", data={"username": USER, "password": PASSWORD, token.group(1): token.group(2)})
    assert r.status_code == 303, (r.status_code, r.text[:300])


def board_times(c: httpx.Client, n: int, *, deadline: float, readers: int = 1) -> list[tuple[float, float]]:
    """(start, seconds) of each ``GET /``: ``readers`` clients with the same session, ``n`` reads in all."""

    def one_reader(k: int) -> list[tuple[float, float]]:
        got: list[tuple[float, float]] = []
        with httpx.Client(base_url=str(c.base_url), cookies=c.cookies, timeout=60) as rc:
            for _ in range(k):
                if time.monotonic() > deadline:
                    break
                t0 = time.monotonic()
                r = rc.get("/")
                took = time.monotonic() - t0
                assert r.status_code == 200 and "<html" in r.text.lower(), (r.status_code, r.text[:300])
                got.append((t0, took))
        return got

    shares = [n // readers + (1 if i < n % readers else 0) for i in range(readers)]
    with ThreadPoolExecutor(max_workers=readers) as pool:
        return [x for part in pool.map(one_reader, shares) for x in part]


@dataclass
class SseMessage:
    """One dispatched server-sent event: its type (``message`` unless named), last id and data lines."""

    event: str = "message"
    id: str = ""
    data: str = ""


@dataclass
class SseParser:
    """Server-sent events line by line, by the rules a browser's EventSource applies.

    Fields ``event``, ``data`` (lines joined by ``\\n``), ``id`` (kept across messages, as the
    Last-Event-ID), ``retry`` (ignored here); a line starting with ``:`` is a comment; one space after the
    colon is dropped; a blank line dispatches the message, unless it has no data (then only the id sticks).
    """

    last_id: str = ""
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseMessage | None:
        if line == "":
            data, event = self._data, self._event
            self._data, self._event = [], ""
            if not data:
                return None
            return SseMessage(event=event or "message", id=self.last_id, data="\n".join(data))
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None


class ChangeStream:
    """An open ``GET /console/events``, read in a thread: when each message arrived, by the newest event log id
    it names."""

    def __init__(self, base: str, cookies: httpx.Cookies) -> None:
        self._client = httpx.Client(base_url=base, cookies=cookies, timeout=httpx.Timeout(10, read=60))
        self.arrived: dict[int, float] = {}
        self.opened = threading.Event()
        self.status: int | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True, name="bench-sse")

    def __enter__(self) -> ChangeStream:
        self._thread.start()
        self.opened.wait(15)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._client.close()  # ends the blocked read
        self._thread.join(5)

    def _read(self) -> None:
        parser = SseParser()
        try:
            with self._client.stream("GET", "/console/events", headers={"Accept": "text/event-stream"}) as r:
                self.status = r.status_code
                if r.status_code != 200:
                    self.opened.set()
                    return
                for line in r.iter_lines():
                    now = time.monotonic()
                    self.opened.set()  # the first line (retry, or the resume id) says the stream is live
                    msg = parser.feed(line)
                    if msg is not None and msg.event == "change":
                        self.arrived.setdefault(int(json.loads(msg.data)["id"]), now)
                    if self._stop.is_set():
                        return
        except (httpx.HTTPError, RuntimeError) as exc:
            if not self._stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.opened.set()


def sse_delays(base: str, cookies: httpx.Cookies, factory: sessionmaker[Session], n: int, *,
               label: str) -> tuple[list[tuple[float, float]], int] | None:
    """``n`` changes committed to the event log, each timed to its arrival on an open stream.

    Returns ((commit time, delay) of each change that arrived, how many never did), or None when the
    server has no stream to open.
    """
    with ChangeStream(base, cookies) as stream:
        if stream.status != 200:
            print(f"SSE {label}: not measured — GET /console/events answered {stream.status or stream.error}")
            return None
        committed: list[tuple[int, float]] = []
        for i in range(n):
            with session_scope(factory) as s:
                ev = record(s, now=dt.datetime.now(dt.UTC), action="bench.sse_probe", entity_type="bench_probe",
                            entity_id=i, actor="bench", payload={"phase": label})
            committed.append((ev.id, time.monotonic()))
            time.sleep(random.uniform(0.1, 0.3))
        def arrival(eid: int) -> float | None:
            # a message names the newest row of its batch: it brings every row up to that id
            return min((t for mid, t in list(stream.arrived.items()) if mid >= eid), default=None)

        end = time.monotonic() + 10
        while time.monotonic() < end and any(arrival(eid) is None for eid, _t in committed):
            time.sleep(0.05)
        got = [(t, at - t) for eid, t in committed if (at := arrival(eid)) is not None]
        if stream.error:
            print(f"SSE {label}: the stream ended with {stream.error}")
    return got, len(committed) - len(got)


def sse_summary(label: str, got: list[tuple[float, float]], lost: int) -> str:
    if not got:
        return f"{label}: no change arrived ({lost} lost)"
    return summary(label, [d for _t, d in got]) + f", {lost} lost"


def summary(label: str, times: list[float]) -> str:
    return (f"{label}: n={len(times)} median {statistics.median(times) * 1000:.0f} ms, "
            f"p95 {pct(times, 95) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--warnings", type=int, default=50)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--callees", type=int, default=250, help="callouts per seeded run")
    ap.add_argument("--readers", type=int, default=1, help="clients reading the board at once")
    ap.add_argument("--changes", type=int, default=100, help="changes timed on the live stream per phase (0: none)")
    ap.add_argument("--py-spy", metavar="FILE", help="record the server's stacks during the fan-out (py-spy, raw)")
    ap.add_argument("--in-process", action="store_true",
                    help="keep the sending work in the server's process (JIAOYING_SCHEDULER__SENDER_PROCESS=false)")
    ap.add_argument("--timeout", type=float, default=300.0, help="bound on the whole fan-out phase (s)")
    ap.add_argument("--keep-log", action="store_true", help="print the server's log at the end")
    args = ap.parse_args()
    print("command: python bench/console.py " + " ".join(sys.argv[1:]))
    print(f"{args.readers} reader(s), {args.requests} reads per phase; sending work "
          + ("in the server's process" if args.in_process else "in its own process (the default)"))

    with tempfile.TemporaryDirectory(prefix="jiaoying-console-bench-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
        env.update({"JIAOYING_DATABASE__URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
                    "JIAOYING_PUBLIC_BASE_URL": base, "JIAOYING_SECURITY__SECRET_KEY": "bench-" + "s" * 40,
                    "JIAOYING_SCHEDULER__SENDER_PROCESS": "false" if args.in_process else "true"})
        settings = Settings(env="dev", public_base_url=base, database={"url": env["JIAOYING_DATABASE__URL"]},
                            security={"secret_key": env["JIAOYING_SECURITY__SECRET_KEY"]})
        seed(settings, warnings=args.warnings, runs=args.runs, callees=args.callees)
        exe = Path(sys.executable).with_name("jiaoying")
        cmd = [str(exe), "serve", "--port", str(port)] if exe.exists() else \
            [sys.executable, "-m", "jiaoying", "serve", "--port", str(port)]
        log_path = Path(tmp) / "serve.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            args.server_pid = proc.pid
            try:
                run_bench(base, args, settings)
            finally:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
                    print("serve did not stop on Ctrl-C within 20 s: killed")
        text = log_path.read_text(errors="replace")
        if args.keep_log:
            print(text)
        errors = [line for line in text.splitlines() if "Traceback" in line or "database is locked" in line]
        print(f"server log: {len(errors)} tracebacks / 'database is locked'")


def run_bench(base: str, args: argparse.Namespace, settings: Settings) -> None:
    end = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > end:
            raise SystemExit("服务未启动 / the server did not start")
        time.sleep(0.2)
    with httpx.Client(base_url=base, timeout=60) as c:
        login(c)
        board_times(c, 3, deadline=time.monotonic() + 60)  # warm-up: templates, caches, pools
        quiet = [t for _s, t in board_times(c, args.requests, deadline=time.monotonic() + 120, readers=args.readers)]
        print(summary("quiet  GET /", quiet))
        engine = make_engine(settings.database.url)
        factory = make_session_factory(engine)
        sse_quiet = sse_delays(base, c.cookies, factory, args.changes, label="quiet") if args.changes else None
        if sse_quiet:
            print(sse_summary("quiet  SSE change → stream", *sse_quiet))

        token = httpx.post(f"{base}/auth/token", data={"username": USER, "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        with session_scope(factory) as s:
            before = int(s.execute(select(func.max(OutboxMessage.id))).scalar() or 0)
        t_push = time.monotonic()
        r = c.post("/warnings/manual", headers=h, json={
            "channel": "phone", "source": "晋城市气象台", "received_from": "bench", "hazard": "weather",
            "event": "暴雨", "level": "red", "headline": "城区暴雨红色预警（全区，基准）", "area_codes": ["140502"],
            "expires": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)).isoformat()})
        assert r.status_code == 201, r.text

        def outstanding() -> tuple[int, int]:
            with session_scope(factory) as s:
                rows = dict(s.execute(select(OutboxMessage.state, func.count()).where(OutboxMessage.id > before)
                                      .group_by(OutboxMessage.state)).all())
            return sum(rows.values()), rows.get("queued", 0) + rows.get("sending", 0)

        deadline = t_push + args.timeout
        while outstanding()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        spy = None
        if args.py_spy:
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses",
                                    "--pid", str(args.server_pid), "--duration", "20", "--format", "raw",
                                    "--rate", "50", "-o", args.py_spy], stdout=subprocess.DEVNULL)
        busy_all = board_times(c, args.requests, deadline=deadline, readers=args.readers)
        sse_busy = sse_delays(base, c.cookies, factory, args.changes, label="busy") if args.changes else None
        total, left = outstanding()
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            total, left = outstanding()
        fan_end = time.monotonic()
        if spy is not None:
            spy.wait(timeout=60)
        engine.dispose()
        during = [t for s0, t in busy_all if s0 + t <= fan_end]
        busy = [t for _s, t in busy_all]
        print(summary("busy   GET /", busy))
        print(f"        {len(during)} of {len(busy)} reads ended before the fan-out did; "
              f"fan-out: {total} messages, {left} still queued, done {fan_end - t_push:.1f} s after the push")
        if during:
            print(summary("busy (overlapping reads only)", during))
        if sse_busy:
            print(sse_summary("busy   SSE change → stream", *sse_busy))
            overlapping = [(t, d) for t, d in sse_busy[0] if t + d <= fan_end]
            print(f"        {len(overlapping)} of {len(sse_busy[0])} changes arrived before the fan-out ended")
            if overlapping:
                print(sse_summary("busy SSE (overlapping changes only)", overlapping, 0))
        ok_q = statistics.median(quiet) <= 0.3
        ok_b = pct(busy, 95) <= 1.0
        print(f"targets: quiet median ≤ 300 ms: {'met' if ok_q else 'NOT met'}; "
              f"busy p95 ≤ 1 s: {'met' if ok_b else 'NOT met'}")
        if sse_quiet and sse_busy:
            ok = [bool(x[0]) and not x[1] and pct([d for _t, d in x[0]], 95) <= 2.0 for x in (sse_quiet, sse_busy)]
            print(f"targets: change → open stream p95 ≤ 2 s: quiet {'met' if ok[0] else 'NOT met'}, "
                  f"busy {'met' if ok[1] else 'NOT met'}")
        else:
            print("SSE change → open page delay: not measured (see above)")


if __name__ == "__main__":
    main()
