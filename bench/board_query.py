"""The board's per-township call-and-answer counts at fan-out size, and the whole board around them.

    python bench/board_query.py [--callouts 20000] [--runs 2] [--repeat 30] [--pg URL | --sqlite]

A fresh database (a new PostgreSQL database created and dropped at the end, or a SQLite file in a
temporary directory) is migrated and seeded as ``jiaoying serve`` does, then filled with open runs whose
callouts look like a district-wide red warning's: village heads and grid workers, one village each, spread
over the district's villages; township chiefs escalated to, each answering for a few villages of their
township; some people answering for villages of two townships, for a site, for the whole district; states
mixed (answered on time and late, calling before and after the deadline, escalated, unanswered, cancelled).

Figures (milliseconds, after one warm-up): median and p95 of ``township_progress_of_runs`` for all the open
runs, and of the whole board ``console.board.build`` (what ``GET /`` renders), each ``--repeat`` times.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from config.database import make_engine, make_session_factory, session_scope  # noqa: E402
from config.settings import Settings  # noqa: E402
from console import board as board_mod  # noqa: E402
from jiaoying.cli_common import upgrade_and_seed  # noqa: E402
from responses.callouts import board as callout_board  # noqa: E402
from responses.callouts.models import Callout  # noqa: E402
from responses.runs.models import ResponseRun  # noqa: E402

VILLAGES_CSV = ROOT / "config" / "defaults" / "region" / "chengqu_140502_villages.csv"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TZ = ZoneInfo("Asia/Shanghai")


@contextmanager
def fresh_database(pg: str | None) -> Iterator[str]:
    if pg is None:
        with tempfile.TemporaryDirectory(prefix="jy-board-") as tmp:
            yield f"sqlite:///{tmp}/board.db"
        return
    name = f"jy_board_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def callout_rows(run_id: int, n: int, now: dt.datetime, rng: random.Random) -> list[dict[str, Any]]:
    with VILLAGES_CSV.open(encoding="utf-8") as f:
        villages = [r["code12"] for r in csv.DictReader(f)]
    towns: dict[str, list[str]] = {}
    for v in villages:
        towns.setdefault(v[:9] + "000", []).append(v)
    town_list = sorted(towns)
    rows = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.90:
            areas: list[Any] = [villages[i % len(villages)]]
            tier, rank = "village", 0
        elif kind < 0.96:  # a township chief escalated to, about some or all of their silent villages
            t = town_list[i % len(town_list)]
            areas = sorted(rng.sample(towns[t], rng.randint(1, len(towns[t]))))
            tier, rank = "township", 1
        elif kind < 0.98:  # about villages of two townships
            a, b = rng.sample(town_list, 2)
            areas = [rng.choice(towns[a]), rng.choice(towns[b])]
            tier, rank = "township", 1
        elif kind < 0.99:
            areas, tier, rank = [f"site:{i % 40}"], "site", 0
        elif kind < 0.995:
            areas, tier, rank = ["140502000000"], "district", 2
        else:  # the leader on duty, about every silent village of the district
            areas, tier, rank = sorted(rng.sample(villages, rng.randint(20, len(villages)))), "leader_on_duty", 3
        state = rng.choices(("calling", "answered", "escalated", "unanswered", "cancelled"),
                            weights=(45, 35, 12, 6, 2))[0]
        started = now - dt.timedelta(minutes=rng.uniform(0, 40))
        deadline = started + dt.timedelta(minutes=15)
        answered = started + dt.timedelta(minutes=rng.uniform(1, 25)) if state == "answered" else None
        rows.append({
            "key": f"bench:{run_id}:{i}", "run_id": run_id, "contact_id": None, "name": f"人员{i}",
            "role": "grid_worker", "tier": tier, "rank": rank, "areas": areas, "area_names": [], "reason": "plan",
            "level": "red", "state": state, "channels": ["sms"], "numbers": [f"+86139{i:08d}"],
            "two_way_sms": False, "dead_routes": [], "answer_minutes": 15, "retries_total": 0,
            "retry_interval_minutes": 2, "retries_done": 0, "attempts_made": 1, "ladder": [],
            "started_at": started, "deadline_at": deadline, "next_action_at": None, "answered_at": answered,
            "answer_late": (answered > deadline) if answered else None, "escalated_at": None, "closed_at": None,
            "context": {}, "drill": False, "created_at": started, "updated_at": started,
        })
    return rows


def fill(url: str, callouts: int, runs: int, now: dt.datetime) -> None:
    upgrade_and_seed(Settings(env="test", database={"url": url}, scheduler={"enabled": False},
                              security={"secret_key": "board-bench-" + "k" * 40}))
    engine = make_engine(url)
    rng = random.Random(7)
    try:
        with session_scope(make_session_factory(engine)) as s:
            for r in range(runs):
                run = ResponseRun(number=f"B-{r:04d}", thread_id=9000 + r, open_thread_id=9000 + r,
                                  warning_id=9000 + r, hazard="weather", level="red", response_level="I",
                                  trigger="automatic", plan_version="bench", plan_snapshot={}, entry_snapshot={},
                                  state="active", drill=False, started_at=now, started_by="bench", updated_at=now)
                s.add(run)
                s.flush()
                rows = callout_rows(run.id, callouts if r == 0 else max(1, callouts // 10), now, rng)
                for i in range(0, len(rows), 2000):
                    s.execute(insert(Callout), rows[i:i + 2000])
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    fn()  # warm-up: the first read fills caches of both sides
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return times, result


def summary(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{label:<28} median {statistics.median(ordered):8.1f} ms   p95 {p95:8.1f} ms   (n={len(ordered)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--callouts", type=int, default=20000, help="callouts of the biggest run (default 20000)")
    ap.add_argument("--runs", type=int, default=2, help="open runs; the others have a tenth as many (default 2)")
    ap.add_argument("--repeat", type=int, default=30, help="timed reads of each (default 30)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--pg", default=PG_DEFAULT, help="a PostgreSQL server where this may CREATE DATABASE")
    where.add_argument("--sqlite", action="store_true", help="a SQLite file instead")
    args = ap.parse_args()
    if args.callouts < 1 or args.runs < 1 or args.repeat < 1:
        ap.error("--callouts, --runs and --repeat must be at least 1")
    now = dt.datetime.now(dt.UTC)
    with fresh_database(None if args.sqlite else args.pg) as url:
        t = time.perf_counter()
        fill(url, args.callouts, args.runs, now)
        print(f"{'SQLite' if args.sqlite else 'PostgreSQL'}: {args.runs} open runs, {args.callouts} callouts in the "
              f"biggest, filled in {time.perf_counter() - t:.1f} s")
        engine = make_engine(url)
        factory = make_session_factory(engine)
        try:
            with factory() as s:
                run_ids = [r.id for r in s.query(ResponseRun).all()]

            def progress() -> Any:
                with factory() as s:
                    return callout_board.township_progress_of_runs(s, run_ids, now=now)

            def build() -> Any:
                with factory() as s:
                    return board_mod.build(s, now=now, tz=TZ, lang="zh")

            times, result = timed(progress, args.repeat)
            townships = sum(len(per) for per in result.values())
            print(summary("township_progress_of_runs", times) + f"   {townships} township rows")
            times, board = timed(build, args.repeat)
            print(summary("console.board.build", times) + f"   {len(board.runs)} runs on the board")
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
