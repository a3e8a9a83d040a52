"""The board's data: call-and-answer counts done by the database equal a plain count, the board costs a fixed
number of queries however many runs are open, and the page links every item to where it is handled."""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from config.database import make_session_factory, session_scope
from config.runtime import Runtime
from console import board as board_mod
from responses.callouts import board as callout_board
from responses.callouts.models import Callout
from responses.measures.models import MeasureOrder
from responses.reports.models import InfoReport
from responses.runs.models import ResponseRun
from tests.conftest import T0, make_user
from tests.console.test_pages import console_login
from warning.consultation import service as consultation_service
from warning.consultation.models import Judgement
from warning.models import Feed, FeedItem

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
KEYS = ("answered", "waiting", "overdue", "escalated", "unanswered", "late")
_numbers = itertools.count(1)


def at(minutes: float) -> dt.datetime:
    return (T0 + dt.timedelta(minutes=minutes)).astimezone(dt.UTC)


def add_run(s: Session, *, level: str = "red", state: str = "active") -> ResponseRun:
    n = next(_numbers)
    run = ResponseRun(number=f"T-{n:04d}", thread_id=1000 + n, open_thread_id=1000 + n, warning_id=1000 + n,
                      hazard="weather", level=level, response_level="I", trigger="automatic", plan_version="t",
                      plan_snapshot={}, entry_snapshot={}, state=state, drill=False, started_at=at(0),
                      started_by="rule:test", updated_at=at(0))
    s.add(run)
    s.flush()
    return run


def add_callout(s: Session, run: ResponseRun, areas: Any, state: str, *, deadline: float = 10,
                late: bool | None = None) -> Callout:
    n = next(_numbers)
    c = Callout(key=f"{run.id}:{n}", run_id=run.id, name=f"人员{n}", role="grid_worker", tier="village", rank=0,
                areas=areas, area_names=[], reason="plan", level=run.level, state=state,
                numbers=[f"+86139{n:08d}"], answer_minutes=10, retries_total=1, retry_interval_minutes=2,
                started_at=at(0), deadline_at=at(deadline), answered_at=at(5) if state == "answered" else None,
                answer_late=late, created_at=at(0), updated_at=at(0))
    s.add(c)
    s.flush()
    return c


def plain_township(code: Any) -> str:
    """The rule, spelled out: a string of digits, 9 or more, digits 7–9 not 000 → its township's 12 digits."""
    if not isinstance(code, str) or not code.isdigit() or len(code) < 9 or code[6:9] == "000":
        return ""
    return code[:9] + "000"


def plain_progress(callouts: list[Callout], now: dt.datetime) -> dict[int, dict[str, dict[str, int]]]:
    """What the board must show, counted the obvious way, one callout at a time."""
    out: dict[int, dict[str, dict[str, int]]] = {}
    for c in callouts:
        if c.state == "cancelled":
            continue
        townships = sorted({plain_township(a) for a in c.areas} - {""}) or [""]
        key = ("overdue" if now > c.deadline_at else "waiting") if c.state == "calling" else c.state
        for t in townships:
            counts = out.setdefault(c.run_id, {}).setdefault(t, dict.fromkeys(KEYS, 0))
            counts[key] += 1
            counts["late"] += int(bool(c.answer_late))
    return out


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def test_township_counts_by_the_database_equal_a_plain_count(factory: sessionmaker[Session]) -> None:
    now = at(20)
    with session_scope(factory) as s:
        one, two, other, empty = add_run(s), add_run(s, level="orange"), add_run(s), add_run(s)
        made = [
            add_callout(s, one, ["140502001001"], "answered", late=False),
            add_callout(s, one, ["140502001002"], "answered", late=True),
            add_callout(s, one, ["140502001003"], "calling", deadline=30),  # waiting
            add_callout(s, one, ["140502001004"], "calling", deadline=10),  # past its deadline
            add_callout(s, one, ["140502001005"], "calling", deadline=20),  # deadline is now: not yet past
            add_callout(s, one, ["140502001001", "140502001002"], "escalated", late=True),  # one township, once
            add_callout(s, one, ["140502001001", "140502002001"], "unanswered"),  # two townships: in each
            add_callout(s, one, ["site:12"], "calling", deadline=5),  # a site: under ""
            add_callout(s, one, ["140502000000"], "answered", late=None),  # the district: under ""
            add_callout(s, one, ["site:7", "140502002009"], "answered"),  # a site and a village: the township
            add_callout(s, one, [], "escalated"),  # nothing: under ""
            add_callout(s, one, [140502003001, "14050200300A", "1405020", "140502000123"], "answered",
                        late=True),  # no valid code at all: under ""
            add_callout(s, one, ["140502001009"], "cancelled"),  # not counted anywhere
            add_callout(s, two, ["140502003001"], "calling", deadline=1),
            add_callout(s, two, ["140502003002", "140502004001", "site:3"], "answered", late=True),
            add_callout(s, other, ["140502001001"], "answered"),  # a run not asked about
        ]
        ids = [one.id, two.id, empty.id]
    with factory() as s:
        got = callout_board.township_progress_of_runs(s, ids, now=now)
        single = callout_board.township_progress(s, one.id, now=now)
        totals = callout_board.progress_totals_of_runs(s, ids, now=now)
        assert callout_board.township_progress_of_runs(s, [], now=now) == {}
    expected = {k: v for k, v in plain_progress(made, now).items() if k in ids}
    assert got == expected
    assert single == expected[one.id]
    assert empty.id not in got and other.id not in got
    # and the plain count is the one the board means, written out for the first township
    assert got[one.id]["140502001000"] == {"answered": 2, "waiting": 2, "overdue": 1, "escalated": 1,
                                           "unanswered": 1, "late": 2}
    assert got[one.id]["140502002000"] == {"answered": 1, "waiting": 0, "overdue": 0, "escalated": 0,
                                           "unanswered": 1, "late": 0}
    assert got[one.id][""] == {"answered": 2, "waiting": 0, "overdue": 1, "escalated": 1, "unanswered": 0,
                               "late": 1}
    # the run's headline figures count people: the one called about two townships is one unanswered person
    assert totals[one.id] == {"answered": 5, "waiting": 2, "overdue": 2, "escalated": 2, "unanswered": 1,
                              "late": 3}
    assert totals[two.id] == {"answered": 1, "waiting": 0, "overdue": 1, "escalated": 0, "unanswered": 0,
                              "late": 1}
    assert empty.id not in totals


def test_many_callouts_sharing_few_area_lists_count_as_a_plain_count(factory: sessionmaker[Session]) -> None:
    """A fan-out's shape: hundreds of people per village, chiefs about several villages of their township,
    people about villages of two townships, the same list written in another order or with repeats, and
    lists that are not lists at all. The database groups equal lists; each person still counts once in
    each township they answer for."""
    now = at(20)
    lists: list[Any] = [["140502001001"], ["140502001002"], ["140502002001"],
                        ["140502001001", "140502001002"],  # one township, named twice: counted once
                        ["140502001002", "140502001001"],  # the same, in another order
                        ["140502001001", "140502002001"],  # two townships: in each
                        ["140502002001", "140502001003", "140502002001"],  # two, with a repeat
                        ["site:4", "140502003001", "140502001001"], ["site:4"], ["140502000000"], [],
                        {"codes": ["140502001001"]}, "140502001001", [None, 140502001001]]
    states = [("answered", 30, False), ("answered", 5, True), ("calling", 30, None), ("calling", 10, None),
              ("escalated", 10, True), ("unanswered", 10, None), ("cancelled", 10, None)]
    with session_scope(factory) as s:
        run, other = add_run(s), add_run(s)
        made = [add_callout(s, run if i % 5 else other, lists[i % len(lists)], state, deadline=deadline, late=late)
                for i in range(700) for state, deadline, late in [states[(i * 3 + i // 7) % len(states)]]]
    with factory() as s:
        got = callout_board.township_progress_of_runs(s, [run.id, other.id], now=now)
    expected = plain_progress(made, now)
    assert got == expected
    two = got[run.id]
    assert set(two) == {"140502001000", "140502002000", "140502003000", ""}
    assert sum(two["140502002000"].values()) > 0 and sum(two["140502001000"].values()) > 100


def _populate_run(s: Session, run: ResponseRun) -> None:
    for village in ("140502001001", "140502002001"):
        add_callout(s, run, [village], "calling", deadline=5)
    for i, state in enumerate(("ordered", "lifted")):
        s.add(MeasureOrder(run_id=run.id, key=f"{run.id}:m{i}", kind="closure", label="封闭道路", level=run.level,
                           area_codes=["140502001001"], area_names=["东街社区"], responsible_unit="交通局",
                           unit_kind="department", person_name="王责任", state=state, deadline=at(10),
                           ordered_at=at(0), ordered_by="rule:test", created_at=at(0), updated_at=at(0)))
    for i, state in enumerate(("draft", "sent")):
        s.add(InfoReport(run_id=run.id, key=f"{run.id}:r{i}", kind="initial_phone", level=run.level,
                         due_at=at(30 + i), state=state, title="电话初报要点", drafted_at=at(0), created_at=at(0),
                         updated_at=at(0)))


def _count_queries(engine: Engine, factory: sessionmaker[Session], now: dt.datetime) -> tuple[int, Any]:
    seen: list[str] = []

    def count(*_args: Any) -> None:
        seen.append("q")

    event.listen(engine, "before_cursor_execute", count)
    try:
        with factory() as s:
            board = board_mod.build(s, now=now, tz=TZ, lang="zh")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen), board


def test_the_board_costs_the_same_queries_for_one_run_or_many(
        sqlite_runtime: Runtime, make_warning: Callable[..., Any]) -> None:
    engine, factory = sqlite_runtime.engine, sqlite_runtime.session_factory
    now = at(20)

    def add_a_run_and_a_consultation() -> None:
        with session_scope(factory) as s:
            _populate_run(s, add_run(s))
            w = make_warning(s, now=now, level="orange")
            c = consultation_service.open_consultation(s, warning=w, invited=["meteorology", "water"],
                                                       deadline_minutes=30, reminder_minutes=None,
                                                       mode="parallel", actor="test", now=now)
            s.add(Judgement(consultation_id=c.id, department="meteorology", author="user:a", assessed_level="orange",
                            trend="rising", confidence="high", recorded_at=now))

    add_a_run_and_a_consultation()
    with factory() as s:
        board_mod.build(s, now=now, tz=TZ, lang="zh")  # warm: the first build may read the schema
    few, small = _count_queries(engine, factory, now)
    for _ in range(4):
        add_a_run_and_a_consultation()
    many, large = _count_queries(engine, factory, now)
    assert (len(small.runs), len(large.runs)) == (1, 5)
    assert (len(small.measures), len(large.measures)) == (1, 5), "lifted measures are left out"
    assert (len(small.reports), len(large.reports)) == (1, 5), "sent reports are left out"
    assert len(large.consultations) == 5 and all(k["missing"] == ["水利局"] for k in large.consultations)
    assert many == few, f"{few} queries for one run, {many} for five: something is asked once per item"
    run = large.runs[0]
    assert run["totals"]["overdue"] == 2 and run["trouble"] == 2
    assert large.counts["overdue"] == 5 * 2 + 5 + 0, "callouts past deadline and overdue measures"


@pytest.fixture
def duty(client: TestClient, sqlite_runtime: Runtime) -> TestClient:
    make_user(sqlite_runtime.session_factory, "duty-board", "duty_officer")
    assert console_login(client, "duty-board").status_code == 303
    return client


def _seed_board(runtime: Runtime, make_warning: Callable[..., Any]) -> dict[str, int]:
    now = runtime.clock.now()
    with session_scope(runtime.session_factory) as s:
        red = make_warning(s, now=now, level="red", event="暴雨")
        blue = make_warning(s, now=now, level="blue", event="大风")
        run = add_run(s)
        add_callout(s, run, ["140502001001"], "calling", deadline=-60)  # long past its deadline
        add_callout(s, run, ["140502001002"], "answered", late=False)
        measure = MeasureOrder(run_id=run.id, key=f"{run.id}:m", kind="closure", label="封闭危险路段",
                               level="red", area_codes=["140502001001"], area_names=["东街社区"],
                               responsible_unit="交通局", unit_kind="department", person_name=None, state="ordered",
                               deadline=now - dt.timedelta(minutes=5), ordered_at=now - dt.timedelta(hours=1),
                               ordered_by="rule:test", created_at=now, updated_at=now)
        report = InfoReport(run_id=run.id, key=f"{run.id}:r", kind="initial_phone", level="red",
                            due_at=now + dt.timedelta(minutes=10), state="draft", title="电话初报要点",
                            drafted_at=now, created_at=now, updated_at=now)
        feed = Feed(name="test-cap", title="测试信息源", adapter="cap", created_at=now, updated_at=now)
        s.add_all([measure, report, feed])
        s.flush()
        item = FeedItem(feed_id=feed.id, received_at=now, sha256="0" * 64, body=b"<x/>", state="quarantined",
                        reason="xml_hostile", detail="bad")
        s.add(item)
        cons = consultation_service.open_consultation(s, warning=red, invited=["meteorology"], deadline_minutes=30,
                                                      reminder_minutes=None, mode="parallel", actor="test", now=now)
        s.flush()
        return {"red": red.id, "blue": blue.id, "run": run.id, "measure": measure.id, "report": report.id,
                "consultation": cons.id}


def test_every_item_links_to_where_it_is_handled(duty: TestClient, sqlite_runtime: Runtime,
                                                make_warning: Callable[..., Any]) -> None:
    ids = _seed_board(sqlite_runtime, make_warning)
    html = duty.get("/").text
    assert f'href="/console/warnings/{ids["red"]}"' in html and f'href="/console/warnings/{ids["blue"]}"' in html
    assert f'href="/console/runs/{ids["run"]}"' in html
    assert f'href="/console/consultations/{ids["consultation"]}"' in html
    assert f'href="/console/runs/{ids["run"]}#measure-{ids["measure"]}"' in html
    assert f'href="/console/runs/{ids["run"]}#report-{ids["report"]}"' in html
    quarantined = re.search(r'data-testid="quarantined">(.*?)</li>', html, re.S)
    assert quarantined and 'href="/console/feeds"' in quarantined.group(1) and "测试信息源" in quarantined.group(1)
    assert "<script>" not in html and "style=" not in html, "no inline script or style"


def test_first_screen_red_first_two_columns_and_overdue_in_words(duty: TestClient, sqlite_runtime: Runtime,
                                                                 make_warning: Callable[..., Any]) -> None:
    _seed_board(sqlite_runtime, make_warning)
    html = duty.get("/").text
    # the summary starts with the red count and then what is overdue
    summary = re.search(r'<nav class="summary".*?</nav>', html, re.S)
    assert summary
    chips = re.findall(r'class="chip[^"]*">(.*?)</a>', summary.group(0), re.S)
    assert chips[0].startswith("红色预警") and "<b>1</b>" in chips[0]
    assert chips[1].startswith("⚠ 已超时"), chips[1]
    # warnings and runs on the left, what waits on someone on the right
    order = [html.index(mark) for mark in ('class="board-main"', 'id="warnings"', 'id="runs"', 'class="board-side"',
                                           'id="consultations"', 'id="measures"', 'id="reports"', 'id="feeds"')]
    assert order == sorted(order)
    assert html.index("城区暴雨预警") < html.index("城区大风预警"), "red first"
    # level in words as well as colour, on the full red card and on the short blue one
    blue = re.search(r'<li class="card card-blue card-compact"[^>]*data-level="blue">(.*?)</li>', html, re.S)
    assert blue and "蓝色预警" in blue.group(1)
    red = re.search(r'<li class="card card-red"[^>]*data-level="red">(.*?)</li>', html, re.S)
    assert red and "红色预警" in red.group(1) and "发布单位" in red.group(1)
    # overdue things say so: the run with someone past the deadline, the measure past its own
    run = re.search(r'<article class="run card-red run-trouble" data-testid="run".*?</article>', html, re.S)
    assert run and "⚠ 超时未应答 1" in run.group(0)
    measure = re.search(r'<li class="row row-overdue" data-testid="measure">(.*?)</li>', html, re.S)
    assert measure and "⚠ 已超时" in measure.group(1) and "⚠ 无人负责，请指派" in measure.group(1)
    report = re.search(r'data-testid="report">(.*?)</li>', html, re.S)
    assert report and "即将到期" in report.group(1) and "已超时" not in report.group(1)


def test_the_board_in_english(duty: TestClient, sqlite_runtime: Runtime,
                              make_warning: Callable[..., Any]) -> None:
    _seed_board(sqlite_runtime, make_warning)
    duty.cookies.set("jiaoying_lang", "en")
    html = duty.get("/").text
    assert '<html lang="en">' in html
    assert "Red warning" in html and "Blue warning" in html
    assert "⚠ Past deadline 1" in html and "⚠ Overdue" in html and "Nobody assigned" in html
    assert "红色预警" not in html


def test_a_viewer_reads_the_board_and_nothing_more(client: TestClient, sqlite_runtime: Runtime,
                                                   make_warning: Callable[..., Any]) -> None:
    _seed_board(sqlite_runtime, make_warning)
    make_user(sqlite_runtime.session_factory, "viewer-board", "viewer")
    assert console_login(client, "viewer-board").status_code == 303
    html = client.get("/").text
    assert 'data-level="red"' in html and 'data-testid="run"' in html
    main = html[html.index('<main'):]
    assert "<form" not in main and "<button" not in main, "the board itself offers no action"


# --- the benchmark's reader of the live stream -------------------------------------------------------------


@pytest.fixture(scope="module")
def bench() -> Iterator[Any]:
    spec = importlib.util.spec_from_file_location("bench_console", ROOT / "bench" / "console.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_the_benchmark_reads_server_sent_events_as_a_browser_does(bench: Any) -> None:
    parser = bench.SseParser()
    stream = ("retry: 2000\n\nid: 41\n\n"  # the resume point: an id, no event
              "id: 42\nevent: change\ndata: {\"id\":42,\"action\":\"run.started\",\"entity_type\":\"response_run\","
              "\"entity_id\":\"7\"}\n\n"
              ": heartbeat\nevent: ping\ndata: {}\n\n"
              "data:no space\ndata:  two spaces\n\n"
              "event: change\nid: 43\ndata: {\"id\":43}\n\n")
    got = [m for line in stream.split("\n") if (m := parser.feed(line)) is not None]
    assert [(m.event, m.id) for m in got] == [("change", "42"), ("ping", "42"), ("message", "42"), ("change", "43")]
    assert bench.json.loads(got[0].data)["entity_id"] == "7"
    assert got[2].data == "no space\n two spaces", "one space after the colon is dropped, not more"
    assert parser.last_id == "43"


def test_the_duty_line_costs_the_same_queries_for_one_gap_or_many(sqlite_runtime: Runtime) -> None:
    """Roster gaps and late handovers are read in a fixed number of queries, not once per shift or handover."""
    from responses.contacts import roster_service
    from responses.contacts.roster import Person, ShiftSpec
    from responses.duty import handovers

    engine, factory = sqlite_runtime.engine, sqlite_runtime.session_factory
    now = T0

    def add_shifts(first: int, n: int) -> None:
        # two-hour shifts with an hour's hole after each and no leader: each is two gaps; the ended ones
        # get a handover nobody acknowledges
        with session_scope(factory) as s:
            for i in range(first, first + n):
                start = now + dt.timedelta(hours=3 * i - 6)
                shift = roster_service.upsert_shift(s, ShiftSpec(start, start + dt.timedelta(hours=2), None,
                                                                 [Person(f"值班{i}")]),
                                                    roster_id=None, actor="test", now=now)
                if start + dt.timedelta(hours=2) <= now:
                    handovers.draft(s, shift, actor="test", now=start + dt.timedelta(hours=1), tz=TZ)

    add_shifts(0, 3)  # two ended, one on duty now
    with factory() as s:
        board_mod.build(s, now=now, tz=TZ, lang="zh")
    few, small = _count_queries(engine, factory, now)
    add_shifts(3, 6)
    with session_scope(factory) as s:  # two more ended shifts, their handovers drafted late
        for i in (-1, -2):
            start = now + dt.timedelta(hours=3 * i - 6)
            shift = roster_service.upsert_shift(s, ShiftSpec(start, start + dt.timedelta(hours=2), None,
                                                             [Person(f"前值班{i}")]),
                                                roster_id=None, actor="test", now=now)
            handovers.draft(s, shift, actor="test", now=start + dt.timedelta(hours=1), tz=TZ)
    many, large = _count_queries(engine, factory, now)
    assert len(large.gaps) > len(small.gaps) and len(large.handovers) > len(small.handovers) >= 1
    assert all(h["overdue"] for h in large.handovers)
    assert many == few, f"{few} queries for a short duty line, {many} for a long one"
