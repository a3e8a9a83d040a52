"""Load: console clients, a district-wide fan-out and feed polling at once, on several instances
sharing one PostgreSQL database.

    python bench/load.py [--clients 200] [--callees 20000] [--instances 2] [--pg URL] [--duration 900]
    python bench/load.py --quick        # small numbers: a smoke run of a minute or two
    python bench/load.py --live-refresh 50   # 50 of the clients also refresh as an open page's script does

What it does, in order (everything under a temporary directory and a freshly created database,
both removed at the end, every process it started stopped):

1. the Twilio-compatible fake in its own process (status callbacks on), and ``--instances``
   ``jiaoying serve`` processes started at the same moment on the empty database (one migrates and
   seeds under the start-up lock, the others wait), all pointed at the fake with the account's
   rate limit ``--rate`` messages per second (shared by the instances through the database);
2. ``--callees`` synthetic responsible people written to a CSV in the temporary directory (the
   format of ``config/defaults/contacts/demo_contacts.csv``: a village head and grid workers,
   spread evenly over the region's villages, plus a chief per township and a district leader) and
   imported with ``jiaoying contacts import``;
3. the weather plan's red level edited through the API so escalations happen while the bench runs:
   SMS only, no retries, answered within ``--answer-minutes`` — nobody answers, so every callout
   escalates (the heaviest case); ``--feeds`` extra feeds polled from local files every few seconds;
4. ``--clients`` console clients, each logged in through the login form (with its CSRF token),
   holding ``/console/events`` open and reading the board ``/`` every ``--poll`` seconds (every
   tenth client also reads an API list); clients are spread over the instances; with ``--live-refresh N``,
   N of them also do what ``console/static/live.js`` does on an open board (the board again on each change
   message, with ``X-Live-Since``, and the alarm banners when one says so, each at most every 2 s), timed
   apart from the rest;
5. a red rainstorm CAP covering the whole district pushed to ``/feeds/national-cap/items``; the
   load runs until every planned callout has escalated (or ``--duration`` seconds).

Figures: API latency over all client requests (median, p95, max), errors (any answer other than
2xx/3xx, any exception, any event stream refused or broken), the fan-out rate (first messages
accepted by the provider per second, from the database; the fake's own count and busiest second
beside it) and the escalation lag (a callout's answer deadline to the moment its escalation was
committed, seen by polling the database every 0.25 s; the sweep's own timestamp beside it).
Targets: p95 ≤ 500 ms, 0 errors, escalation lag p99 ≤ 2 s.

The bench needs a server where it may CREATE DATABASE. On a server other work restarts or loads at
the same time, point ``--pg`` at a private one, e.g. a throwaway cluster (``initdb`` in a temporary
directory, ``pg_ctl ... -o "-p 5499"``): a restart in the middle fails the push or the fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import math
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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = os.environ.get("JIAOYING_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VILLAGES_CSV = ROOT / "config" / "defaults" / "region" / "chengqu_140502_villages.csv"
TOWNS_CSV = ROOT / "config" / "defaults" / "region" / "chengqu_140502_towns.csv"
PLAN = ROOT / "config" / "defaults" / "plans" / "weather.yaml"
DRILL_CAP = ROOT / "config" / "defaults" / "drills" / "red-rainstorm.xml"
SID = "AC" + "7" * 32
TOKEN = "load-bench-token"
FROM = "+8612300000000"
ADMIN, DUTY, PASSWORD = "load-admin", "load-duty", "Load-bench-pass-2026"
API_READS = ("/responses/runs", "/feeds/health", "/warnings")
LIVE_GAP = 2.0  # live.js: REFRESH_GAP_MS and ALARM_GAP_MS
out = Console(highlight=False)


# ------------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """One child process in its own process group, its output in a file (the tail shown on failure)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], tmp: Path, port: int | None = None) -> None:
        self.name, self.port = name, port
        self.log_path = tmp / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, n: int = 2500) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        """SIGINT to the group (a server shuts down and stops its sending child), SIGKILL after 15 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything the group left behind
        self._log.close()


def jiaoying_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "jiaoying", *args]


@contextlib.contextmanager
def fresh_database(pg: str) -> Iterator[str]:
    """A new, empty database on the server of ``pg``; dropped afterwards (its connections ended first)."""
    name = f"jy_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT", pool_pre_ping=True, connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise SystemExit(f"PostgreSQL 不可用 / PostgreSQL not usable at {pg}: {type(exc).__name__}: {exc}") from exc
    try:
        yield pg.rsplit("/", 1)[0] + "/" + name
    finally:
        for attempt in range(5):  # the server may be restarting under other work: try again
            try:
                with admin.connect() as c:
                    c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                break
            except Exception as exc:
                if attempt == 4:
                    out.print(f"[red]could not drop the bench database {name}: {type(exc).__name__}: {exc}")
                time.sleep(3)
        admin.dispose()


def wait_until(what: str, check: Any, timeout: float, children: list[Child]) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ch in children:
            if ch.proc.poll() is not None:
                raise SystemExit(f"{ch.name} exited with {ch.proc.returncode} while waiting for {what}:\n{ch.tail()}")
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise SystemExit(f"timed out waiting for {what}")


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


# ------------------------------------------------------------------------------------------------ data


def write_contacts(path: Path, callees: int) -> tuple[int, int]:
    """``callees`` village-tier people spread evenly over the district's villages (a head each, the
    rest grid workers), a chief per township and a district leader, in the contacts import format.
    Returns (villages, townships)."""
    with VILLAGES_CSV.open(encoding="utf-8") as f:
        villages = [r["code12"] for r in csv.DictReader(f)]
    with TOWNS_CSV.open(encoding="utf-8") as f:
        towns = [r for r in csv.DictReader(f)]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "手机", "备用电话", "职务", "村/社区代码", "双向短信", "备注"])
        for i in range(callees):
            v = villages[i % len(villages)]
            role = "村长" if i < len(villages) else "网格员"
            w.writerow([f"压测{role}{i:05d}", f"+86 138 {i // 10000:04d} {i % 10000:04d}", "", role, v, "否",
                        "压测数据 / load bench data"])
        for k, t in enumerate(towns):
            w.writerow([f"压测镇长{k:02d}", f"+86 139 0000 {k:04d}", "", "镇（街道）负责人", t["code12"], "否", ""])
        w.writerow(["压测区领导", "+86 137 0000 0001", "", "区领导", "140502000000", "否", ""])
    return len(villages), len(towns)


def bench_plan(answer_minutes: int) -> str:
    """The weather plan with its red calls shortened so escalations fall inside the bench: SMS only
    (nobody answers a one-way SMS), no retries, answered within ``answer_minutes``."""
    src = PLAN.read_text(encoding="utf-8")
    head, sep, rest = src.partition("  red:\n")
    calls_old = ("      answer_minutes: 5\n      retries: {count: 3, interval_minutes: 2}\n"
                 "      channels: [voice, sms]\n")
    if not sep or calls_old not in rest:
        raise SystemExit(f"{PLAN} changed shape: the bench cannot set its red calls")
    calls_new = (f"      answer_minutes: {answer_minutes}\n      retries: {{count: 0, interval_minutes: 2}}\n"
                 "      channels: [sms]\n")
    return head + sep + rest.replace(calls_old, calls_new, 1)


def district_cap(prefix: str) -> bytes:
    """The drill's red rainstorm CAP, real and sent now, over the whole district (its geocode; the
    polygon, which covers part of it, removed)."""
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)
    xml = DRILL_CAP.read_text(encoding="utf-8")
    for old, new in (("2026-07-20T01:58:00+08:00", now), ("2026-07-20T02:00:00+08:00", now),
                     ("2026-07-20T08:00:00+08:00", now + dt.timedelta(hours=6))):
        xml = xml.replace(old, new.isoformat())
    xml = re.sub(r"\s*<polygon>[^<]*</polygon>", "", xml)
    xml = xml.replace("<status>Exercise</status>", "<status>Actual</status>")
    return xml.replace("14050241600000_20260720015800", f"{prefix}-{now.timestamp():.0f}").encode()


def elsewhere_cap(k: int) -> bytes:
    """A blue warning for a county outside the region: what a polled feed keeps returning."""
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)
    xml = district_cap(f"elsewhere-{k}").decode()
    xml = xml.replace("<value>140502</value>", "<value>110101</value>").replace("<value>红色</value>",
                                                                                "<value>蓝色</value>")
    return xml.replace(f"elsewhere-{k}-{now.timestamp():.0f}", f"load-feed-{k}").encode()


# --------------------------------------------------------------------------------------------- clients


@dataclass
class Tally:
    """Every client request's latency, and every error by kind (with a few examples)."""

    latencies: list[float] = field(default_factory=list)
    board: list[float] = field(default_factory=list)
    api: list[float] = field(default_factory=list)
    live: list[float] = field(default_factory=list)  # refreshes as the page's script makes them (--live-refresh)
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    sse_open: int = 0
    sse_events: int = 0
    sse_reconnects: int = 0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.examples) < 8:
            self.examples.append(f"{kind}: {detail[:200]}")


async def login(client: httpx.AsyncClient, username: str) -> None:
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if form.status_code != 200 or not token:
        raise RuntimeError(f"login form: HTTP {form.status_code}, CSRF field {'found' if token else 'missing'}")
    r = await client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token[1]})
    if r.status_code != 303:
        raise RuntimeError(f"login: HTTP {r.status_code} {r.text[:200]}")


@dataclass
class Page:
    """What an open page's script knows from its stream: the newest row announced, and whether a change (or an
    alarm) came since the page last refreshed."""

    last_id: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    alarm: bool = False


async def sse_reader(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event, page: Page | None = None) -> None:
    """Hold the console's event stream open, as a browser does: reconnect when it ends. With ``page``, tell it
    of every change message (the newest id, and whether one said ``"alarm": true``)."""
    last_id = ""
    while not stop.is_set():
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
        try:
            async with client.stream("GET", "/console/events", headers=headers,
                                     timeout=httpx.Timeout(10, read=None)) as r:
                if r.status_code != 200:
                    tally.error(f"sse HTTP {r.status_code}", (await r.aread()).decode(errors="replace"))
                    await asyncio.sleep(2)
                    continue
                tally.sse_open += 1
                tail = b""
                # bytes, not lines: at 20,000 callees each stream carries millions of rows, and parsing
                # them line by line made this process (which times every request) the bottleneck
                async for chunk in r.aiter_bytes():
                    tail = (tail + chunk)[-4096:]
                    tally.sse_events += chunk.count(b"data:")
                    at = tail.rfind(b"\nid: ")
                    end = tail.find(b"\n", at + 5) if at >= 0 else -1
                    if end > 0:
                        last_id = tail[at + 5:end].decode(errors="replace").strip()
                    if page is not None and b"event: change" in chunk:
                        page.last_id = last_id
                        page.alarm = page.alarm or b'"alarm":true' in chunk
                        page.changed.set()
                    if stop.is_set():
                        return
            if not stop.is_set():
                tally.sse_reconnects += 1
        except (httpx.HTTPError, OSError) as exc:
            if stop.is_set():
                return
            tally.error(f"sse {type(exc).__name__}", str(exc))
            await asyncio.sleep(1)


async def timed_get(client: httpx.AsyncClient, path: str, tally: Tally, bucket: list[float], **kw: Any) -> None:
    t0 = time.perf_counter()
    try:
        r = await client.get(path, **kw)
        await r.aread()
    except (httpx.HTTPError, OSError) as exc:
        tally.error(f"{path} {type(exc).__name__}", str(exc))
        return
    took = time.perf_counter() - t0
    if not 200 <= r.status_code < 400:
        tally.error(f"{path.split('?')[0]} HTTP {r.status_code}", r.text)
        return
    tally.latencies.append(took)
    bucket.append(took)


async def poller(k: int, client: httpx.AsyncClient, api: httpx.AsyncClient | None, tally: Tally,
                 stop: asyncio.Event, period: float, measuring: asyncio.Event) -> None:
    """Read the board every ``period`` s (a random phase, so clients do not tick together); with an
    API client, one API list each round too. Latencies count once ``measuring`` is set."""
    await asyncio.sleep(random.uniform(0, period))
    n = 0
    while not stop.is_set():
        started = time.monotonic()
        sink = Tally() if not measuring.is_set() else tally
        await timed_get(client, "/", sink, sink.board)
        if api is not None:
            await timed_get(api, API_READS[(k + n) % len(API_READS)], sink, sink.api)
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, period - (time.monotonic() - started)))


async def live_refresher(client: httpx.AsyncClient, page: Page, tally: Tally, stop: asyncio.Event,
                         measuring: asyncio.Event) -> None:
    """What ``console/static/live.js`` does on an open board: on a change message, the board again (at most
    every ``LIVE_GAP`` s, saying which row it was told about), and the alarm banners when the message said an
    alarm may have changed (at most as often)."""
    while not stop.is_set():  # the load phase cancels this task when it ends
        await page.changed.wait()
        started = time.monotonic()
        page.changed.clear()
        alarm, page.alarm = page.alarm, False
        sink = tally if measuring.is_set() else Tally()
        await timed_get(client, "/", sink, sink.live, headers={"X-Live-Since": page.last_id or "0"})
        if alarm:
            await timed_get(client, "/console/alarms?next=%2F", sink, sink.live)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, LIVE_GAP - (time.monotonic() - started)))


# --------------------------------------------------------------------------------------------- figures


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, -(-len(xs) * p // 100) - 1))] if xs else float("nan")


def ms(xs: list[float]) -> str:
    if not xs:
        return "n=0"
    return (f"n={len(xs)} median {statistics.median(xs) * 1000:.0f} ms, p95 {pct(xs, 95) * 1000:.0f} ms, "
            f"max {max(xs) * 1000:.0f} ms")


def utc(t: dt.datetime) -> dt.datetime:
    """Timestamps are stored as UTC without a zone."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class Watch:
    """Reads the database every 0.25 s: first messages accepted, callouts by state, and each
    escalation the moment its commit is visible (its lag = that moment − the callout's deadline)."""

    FIRST = text("SELECT count(m.sent_at), count(*), count(*) FILTER (WHERE m.state NOT IN ('queued', 'claimed')), "
                 "count(*) FILTER (WHERE m.state = 'expired'), min(m.sent_at), max(m.sent_at) FROM callout_attempt a "
                 "JOIN callout c ON c.id = a.callout_id JOIN outbox_message m ON m.id = a.message_id "
                 "WHERE a.seq = 1 AND c.reason = 'plan'")
    STATES = text("SELECT reason, state, count(*) FROM callout GROUP BY reason, state")
    ESCALATED = text("SELECT id, deadline_at, escalated_at FROM callout WHERE escalated_at IS NOT NULL "
                     "AND escalated_at > :since")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: dict[int, tuple[float, float]] = {}  # callout → (visible lag, sweep-stamped lag)
        # first messages: accepted, all, settled (accepted or given up), expired, first and last acceptance
        self.first: tuple[int, int, int, int, Any, Any] = (0, 0, 0, 0, None, None)
        self.states: dict[tuple[str, str], int] = {}
        self._since = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="load-watch")
        self.error: str | None = None

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                with self.engine.connect() as c:
                    rows = c.execute(self.ESCALATED, {"since": self._since}).all()
                    now = dt.datetime.now(dt.UTC)
                    for cid, deadline, escalated in rows:
                        deadline, escalated = utc(deadline), utc(escalated)
                        if cid not in self.seen:
                            self.seen[cid] = ((now - deadline).total_seconds(),
                                              (escalated - deadline).total_seconds())
                    if rows:  # commits land out of order by at most a batch's duration: keep a minute's overlap
                        self._since = max(self._since, max(utc(r[2]) for r in rows) - dt.timedelta(seconds=60))
                    if n % 4 == 0:
                        k, n_all, settled, expired, lo, hi = c.execute(self.FIRST).one()
                        self.first = (k, n_all, settled, expired, lo and utc(lo), hi and utc(hi))
                        self.states = {(r, s): k for r, s, k in c.execute(self.STATES).all()}
            except Exception as exc:  # shown at the end; the bench goes on
                self.error = f"{type(exc).__name__}: {exc}"
            n += 1
            self._stop.wait(0.25)

    def calling_plan(self) -> int:
        return self.states.get(("plan", "calling"), 0)

    def plan_total(self) -> int:
        return sum(k for (r, _s), k in self.states.items() if r == "plan")


# ------------------------------------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200, help="console clients (default 200)")
    ap.add_argument("--callees", type=int, default=20000, help="village-tier people called (default 20000)")
    ap.add_argument("--instances", type=int, default=2, help="jiaoying serve processes (default 2)")
    ap.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL; a new database is created on its server")
    ap.add_argument("--duration", type=float, default=1200.0,
                    help="bound on the load phase after the push, seconds (default 1200)")
    ap.add_argument("--rate", type=float, default=100.0, help="the provider account's messages per second")
    ap.add_argument("--answer-minutes", type=int, default=None,
                    help="the red plan's answer window in minutes (default: the fan-out's time at --rate, with "
                         "a margin, so first messages do not expire unsent: 1 for a few hundred callees, "
                         "7 for 20000 at 100/s)")
    ap.add_argument("--poll", type=float, default=10.0, help="seconds between a client's board reads")
    ap.add_argument("--feeds", type=int, default=3, help="extra feeds polled from local files")
    ap.add_argument("--live-refresh", type=int, default=0, metavar="N",
                    help="N of the clients also refresh as an open page's script does: the board on every change "
                         "message and the banners on an alarm, each at most every 2 s (default 0: the issue's "
                         "clients, which read the board every --poll seconds only)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 5 clients, 300 callees, 2 instances, bounded to about a minute of load")
    ap.add_argument("--keep-logs", action="store_true", help="print the servers' log tails at the end")
    args = ap.parse_args()
    if args.quick:
        given = set(sys.argv[1:])
        if "--clients" not in given:
            args.clients = 5
        if "--callees" not in given:
            args.callees = 300
        if "--duration" not in given:
            args.duration = 150.0
    if not 0 <= args.live_refresh <= args.clients:
        ap.error("--live-refresh must be between 0 and --clients")
    for name in ("clients", "callees", "instances"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if args.rate <= 0 or args.duration <= 0 or args.poll <= 0 or (args.answer_minutes or 1) < 1:
        ap.error("--rate, --duration and --poll must be positive, --answer-minutes at least 1")
    if args.answer_minutes is None:
        # the fan-out at about 60% of the limit, plus the run's creation (~5 ms a callout): a first
        # message still queued when its window ends expires unsent (by design), which would cut the fan-out
        args.answer_minutes = max(1, math.ceil((args.callees / args.rate * 1.6 + args.callees * 0.005) / 60))
    return args


def main() -> int:
    args = parse_args()
    out.print("command: python bench/load.py " + " ".join(sys.argv[1:]))
    out.print(f"{args.instances} instance(s), {args.clients} console client(s), {args.callees} callees, "
              f"provider limit {args.rate:g} msg/s, answer window {args.answer_minutes} min, {os.cpu_count()} cores, "
              f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at the start")
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="jiaoying-load-") as tmp_s, fresh_database(args.pg) as url:
        tmp = Path(tmp_s)
        try:
            return run(args, url, tmp, children)
        finally:
            for ch in reversed(children):
                ch.stop()
            if args.keep_logs:
                for ch in children:
                    out.print(f"--- {ch.name} ---\n{ch.tail(4000)}")


def run(args: argparse.Namespace, url: str, tmp: Path, children: list[Child]) -> int:
    t_setup = time.monotonic()
    fake_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    env.update({"PYTHONPATH": str(ROOT), "JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": url,
                "JIAOYING_SECURITY__SECRET_KEY": "load-bench-" + "k" * 40,
                "JIAOYING_TWILIO__ACCOUNT_SID": SID, "JIAOYING_TWILIO__AUTH_TOKEN": TOKEN,
                "JIAOYING_TWILIO__FROM_NUMBER": FROM, "JIAOYING_TWILIO__API_BASE_URL": f"http://127.0.0.1:{fake_port}",
                "JIAOYING_TWILIO__MESSAGES_PER_SECOND": str(args.rate)})
    fake = Child("fake-twilio", jiaoying_argv("fake-twilio", "--port", str(fake_port), "--account-sid", SID,
                                              "--auth-token", TOKEN), env, tmp, fake_port)
    children.append(fake)
    serves: list[Child] = []
    for i in range(args.instances):
        port = free_port()
        ch = Child(f"serve{i}", jiaoying_argv("serve", "--port", str(port)),
                   {**env, "JIAOYING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}, tmp, port)
        serves.append(ch)
        children.append(ch)
    wait_until("the fake gateway", lambda: _ok(f"{fake.base}/_fake/stats"), 60, children)
    wait_until(f"{args.instances} instance(s) ready", lambda: all(ready(s.base) for s in serves), 300, children)
    out.print(f"ready: fake gateway and {args.instances} instance(s) in {time.monotonic() - t_setup:.1f} s")

    for user, role in ((ADMIN, "admin"), (DUTY, "duty_officer")):
        subprocess.run(jiaoying_argv("users", "create", "--username", user, "--role", role, "--password", PASSWORD),
                       cwd=tmp, env=env, check=True, capture_output=True)
    csv_path = tmp / "contacts.csv"
    n_villages, n_towns = write_contacts(csv_path, args.callees)
    t0 = time.monotonic()
    with out.status(f"importing {args.callees + n_towns + 1} contacts ({n_villages} villages)…"):
        imp = subprocess.run(jiaoying_argv("contacts", "import", str(csv_path)), cwd=tmp, env=env,
                             capture_output=True, text=True)
    if imp.returncode != 0:
        raise SystemExit(f"contacts import failed ({imp.returncode}):\n{imp.stdout[-2000:]}\n{imp.stderr[-2000:]}")
    out.print(f"imported {args.callees + n_towns + 1} contacts over {n_villages} villages "
              f"in {time.monotonic() - t0:.1f} s")

    api = httpx.Client(base_url=serves[0].base, timeout=30)
    tok = api.post("/auth/token", data={"username": ADMIN, "password": PASSWORD})
    tok.raise_for_status()
    api.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"
    r = api.put("/responses/plans/weather", json={"source": bench_plan(args.answer_minutes), "format": "yaml",
                                                  "note": "load bench: short answer window, SMS, no retries"})
    if r.status_code != 200:
        raise SystemExit(f"plan edit refused: HTTP {r.status_code} {r.text[:500]}")
    for k in range(args.feeds):
        f = tmp / f"feed{k}.xml"
        f.write_bytes(elsewhere_cap(k))
        r = api.post("/feeds", json={"name": f"load-feed-{k}", "adapter": "cap", "url": f.as_uri(),
                                     "poll_seconds": 5, "enabled": True, "default_hazard": "weather"})
        if r.status_code != 201:
            raise SystemExit(f"feed creation refused: HTTP {r.status_code} {r.text[:500]}")

    with Watch(create_engine(url, pool_size=2)) as watch:
        tally, push = asyncio.run(load_phase(args, serves, api, watch))
        fake_stats = httpx.get(f"{fake.base}/_fake/stats", timeout=10).json()
        failed: dict[str, int] = {}
        for cb in httpx.get(f"{fake.base}/_fake/callbacks", timeout=60).json()["callbacks"]:
            if not 200 <= (cb.get("status") or 0) < 300:
                why = f"HTTP {cb['status']}" if cb.get("status") else str(cb.get("error", "?")).split(":")[0]
                failed[why] = failed.get(why, 0) + 1
        fake_stats["failed_by"] = failed
        first = watch.first
        states = dict(watch.states)
        seen = dict(watch.seen)
        watch_error = watch.error
    with create_engine(url).connect() as c:
        feeds = c.execute(text("SELECT name, last_polled_at IS NOT NULL FROM feed WHERE name LIKE 'load-feed-%' "
                               "ORDER BY name")).all() if args.feeds else []
        runs = c.execute(text("SELECT r.number, r.hazard, r.level, count(c.id) FROM response_run r "
                              "LEFT JOIN callout c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id")).all()
    out.print("runs: " + "; ".join(f"{n} {h}/{lv} {k} callouts" for n, h, lv, k in runs))
    api.close()
    return report(args, tally, push, first, states, seen, fake_stats, watch_error, feeds, serves)


def _ok(u: str) -> bool:
    try:
        return httpx.get(u, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def load_phase(args: argparse.Namespace, serves: list[Child], api_sync: httpx.Client,
                     watch: Watch) -> tuple[Tally, dict[str, float]]:
    tally = Tally()
    stop, measuring = asyncio.Event(), asyncio.Event()
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
    clients = [httpx.AsyncClient(base_url=serves[i % len(serves)].base, timeout=30, limits=limits)
               for i in range(args.clients)]
    apis = [httpx.AsyncClient(base_url=serves[i % len(serves)].base, timeout=30, headers=dict(api_sync.headers))
            if i % 10 == 0 else None for i in range(args.clients)]
    tasks: list[asyncio.Task[None]] = []
    push: dict[str, float] = {}
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=out) as prog:
            bar = prog.add_task("console logins", total=args.clients)
            gate = asyncio.Semaphore(8)

            async def one(c: httpx.AsyncClient) -> None:
                async with gate:
                    await login(c, DUTY)
                prog.advance(bar)

            await asyncio.gather(*(one(c) for c in clients))
        for k, c in enumerate(clients):
            page = Page() if k < args.live_refresh else None
            tasks.append(asyncio.create_task(sse_reader(c, tally, stop, page)))
            if page is not None:
                tasks.append(asyncio.create_task(live_refresher(c, page, tally, stop, measuring)))
            tasks.append(asyncio.create_task(poller(k, c, apis[k], tally, stop, args.poll, measuring)))
        await asyncio.sleep(min(args.poll, 10.0))  # every client has read the board once: templates, pools warm
        measuring.set()
        out.print(f"load on: {args.clients} clients, {tally.sse_open} event streams open")
        await asyncio.sleep(min(args.poll, 10.0))  # a quiet stretch measured before the push

        loop = asyncio.get_running_loop()
        push["t"] = time.time()
        r = await loop.run_in_executor(None, lambda: api_sync.post(
            "/feeds/national-cap/items", content=district_cap("load"),
            headers={"Content-Type": "application/cap+xml"}, timeout=600))
        push["took"] = time.time() - push["t"]
        if r.status_code != 202:
            raise SystemExit(f"push refused: HTTP {r.status_code} {r.text[:500]}\n{serves[0].tail()}")
        end = time.monotonic() + args.duration
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=out) as prog:
            sent = prog.add_task("first messages accepted", total=None)
            esc = prog.add_task("plan callouts escalated", total=None)
            while time.monotonic() < end:
                await asyncio.sleep(1)
                accepted, total, settled = watch.first[0], watch.first[1], watch.first[2]
                prog.update(sent, completed=accepted, total=total or None)
                plan = watch.plan_total()
                prog.update(esc, completed=len(watch.seen), total=plan or None,
                            description=f"plan callouts done (escalated {len(watch.seen)}, "
                                        f"calling {watch.calling_plan()})")
                if plan and settled >= total and watch.calling_plan() == 0:
                    break
        push["done"] = time.time()
        if time.monotonic() >= end:
            out.print(f"[yellow]the load phase hit --duration ({args.duration:g} s) before every callout escalated")
        await asyncio.sleep(2)  # the last escalations' commits reach the watcher
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in clients + [a for a in apis if a is not None]:
            await c.aclose()
    return tally, push


def report(args: argparse.Namespace, tally: Tally, push: dict[str, float], first: tuple[Any, ...],
           states: dict[tuple[str, str], int], seen: dict[int, tuple[float, float]], fake: dict[str, Any],
           watch_error: str | None, feeds: list[Any], serves: list[Child]) -> int:
    accepted, planned, _settled, expired, t_first, t_last = first
    out.rule("results")
    out.print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out.print(f"API latency (all client requests): {ms(tally.latencies)}")
    out.print(f"  board GET /: {ms(tally.board)}")
    out.print(f"  API reads ({', '.join(API_READS)}): {ms(tally.api)}")
    if args.live_refresh:
        out.print(f"  live refreshes of {args.live_refresh} page(s) (board with X-Live-Since, alarm banners): "
                  f"{ms(tally.live)}")
    n_err = sum(tally.errors.values())
    out.print(f"errors: {n_err}" + (f" {tally.errors}" if n_err else "")
              + f" (event streams opened {tally.sse_open}, reconnected {tally.sse_reconnects}, "
                f"events read {tally.sse_events})")
    for ex in tally.examples:
        out.print(f"  e.g. {ex}")
    rate = span_rate = float("nan")
    if accepted and t_last is not None:
        rate = accepted / max(1e-6, t_last.timestamp() - push["t"])
        span_rate = accepted / max(1e-6, (t_last - t_first).total_seconds())
        out.print(f"fan-out: {accepted}/{planned} first messages accepted ({expired} expired unsent); "
                  f"{rate:.1f} msg/s from the push "
                  f"to the last acceptance ({t_last.timestamp() - push['t']:.1f} s), {span_rate:.1f} msg/s "
                  f"first to last acceptance; provider limit {args.rate:g} msg/s")
    else:
        out.print(f"fan-out: {accepted}/{planned} first messages accepted ({expired} expired unsent)")
    out.print(f"  the push (POST /feeds/national-cap/items, the run and its callouts made in the request) took "
              f"{push.get('took', float('nan')):.1f} s")
    out.print(f"  fake gateway: {fake.get('accepted')} requests accepted, busiest second "
              f"{max((fake.get('max_per_second') or {'-': 0}).values())} requests, "
              f"{fake.get('callbacks')} status callbacks to the instances ({fake.get('callbacks_failed')} failed"
              + (f": {fake['failed_by']}" if fake.get("failed_by") else "") + ")")
    visible = [v for v, _s in seen.values()]
    stamped = [s for _v, s in seen.values()]
    if visible:
        out.print(f"escalation lag (deadline → escalation committed): n={len(visible)} "
                  f"median {statistics.median(visible):.2f} s, p99 {pct(visible, 99):.2f} s, max {max(visible):.2f} s")
        out.print(f"  by the sweep's own timestamp: p99 {pct(stamped, 99):.2f} s, max {max(stamped):.2f} s")
    else:
        out.print("escalation lag: no escalation seen")
    out.print("callouts by reason/state: " + ", ".join(f"{r}/{s} {k}" for (r, s), k in sorted(states.items())))
    if feeds:
        out.print(f"polled feeds: {sum(1 for _n, p in feeds if p)}/{len(feeds)} polled at least once")
    if watch_error:
        out.print(f"[yellow]database watcher error: {watch_error}")
    dead = [s.name for s in serves if s.proc.poll() is not None]
    if dead:
        out.print(f"[red]instances that died: {dead}")
    p95 = pct(tally.latencies, 95) if tally.latencies else float("inf")
    lag99 = pct(visible, 99) if visible else float("inf")
    ok = [p95 <= 0.5, n_err == 0, lag99 <= 2.0]
    out.print(f"targets: p95 API latency ≤ 500 ms: {'met' if ok[0] else 'NOT met'} ({p95 * 1000:.0f} ms); "
              f"errors 0: {'met' if ok[1] else 'NOT met'} ({n_err}); escalation lag p99 ≤ 2 s: "
              f"{'met' if ok[2] else 'NOT met'} ({lag99:.2f} s)")
    return 0 if not dead and accepted else 1


if __name__ == "__main__":
    sys.exit(main())
