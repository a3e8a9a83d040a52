"""The console's live side through the app's own client: the change stream (server-sent events) and the
alarms (banners derived from the event log, acknowledged with who and when)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import Change, Event, record
from config.runtime import Runtime
from console import alarms as alarm_rules
from console import live
from console.i18n import MESSAGES
from geo.region import seed_default_region
from jiaoying.app import create_app
from responses.callouts import service as callout_service
from responses.contacts.models import Contact, Duty, Shift, ShiftMember
from responses.runs.models import ResponseRun
from responses.runs.plans import entry_from_snapshot
from responses.runs.service import default_plans
from tests.conftest import make_user
from warning.draft import Hazard

PASSWORD = "correct-horse-9"
MIN = dt.timedelta(minutes=1)


# ----------------------------------------------------------------------------------------------- helpers


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries the CSRF token"
    return found.group(1)


def console_login(client: TestClient, username: str) -> None:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text


def as_user(client: TestClient, rt: Runtime, username: str, role: str, department: str | None = None) -> TestClient:
    make_user(rt.session_factory, username, role, department)
    console_login(client, username)
    return client


class Sse:
    """Messages of an open event stream, parsed the way a browser parses them."""

    def __init__(self, response: Any) -> None:
        self.lines = response.iter_lines()

    def next(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                fields.setdefault("comment", line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise AssertionError(f"the stream ended (last fields: {fields})")

    def until(self, want: Callable[[dict[str, str]], bool], *, seconds: float = 10.0) -> dict[str, str]:
        end = time.monotonic() + seconds
        seen = []
        while time.monotonic() < end:
            msg = self.next()
            if want(msg):
                return msg
            seen.append(msg)
        raise AssertionError(f"not received in {seconds}s; got {seen[-5:]}")


def is_change(min_id: int = 0) -> Callable[[dict[str, str]], bool]:
    return lambda m: m.get("event") == "change" and int(m.get("id", 0)) > min_id


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A heartbeat in tenths of a second instead of every 15 s, so a quiet stream never blocks a test."""
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)


@pytest.fixture
def duty(client: TestClient, sqlite_runtime: Runtime) -> TestClient:
    return as_user(client, sqlite_runtime, "duty1", "duty_officer")


Post = Callable[..., Any]


@pytest.fixture
def api(client: TestClient, login: Callable[..., dict[str, str]]) -> Post:
    """``api(path, json)``: the JSON API as a duty officer's script calls it, from a client of its own (a token
    login sets a session cookie, which must not replace the console user's)."""
    other = TestClient(client.app)
    headers = login("duty_officer", c=other)
    return lambda path, json: other.post(path, json=json, headers=headers)


def record_change(rt: Runtime, clock: VirtualClock, **extra: Any) -> int:
    """A change as a domain records it, committed by another session (as the sending process would)."""
    with session_scope(rt.session_factory) as s:
        ev = record(s, now=clock.now(), action=extra.get("action", "measure.acknowledged"),
                    entity_type=extra.get("entity_type", "measure_order"), entity_id=extra.get("entity_id", 7),
                    actor="user:张值班", payload={"person": "王村长", "phone": "+8613800000001"})
        s.commit()  # the row joins the chain at the commit
        return ev.id


def feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "console-live-feed"]


# ----------------------------------------------------------------------------------------------- the stream


def test_message_formats() -> None:
    batch = live.Batch.of([Change(10, "callout.answered", "callout", "5"),
                           Change(11, "callout.answered", "callout", "6"),
                           Change(12, "warning.activated", "warning", "5")])
    msg = live.format_batch(batch)
    assert msg == ('id: 12\nevent: change\ndata: {"id":12,"rows":3,"kinds":["callout","warning"],'
                   '"actions":["callout.answered","warning.activated"],"alarm":true}\n\n'), \
        "the newest id, how many rows, the distinct kinds and actions, and whether to look at the alarms"
    quiet = live.format_batch(live.Batch.of([Change(3, "auth.login_failed", "user", "zhang\nsan")]))
    assert "zhang" not in quiet and '"alarm":false' in quiet, "a typed user name never leaves the server"
    odd = live.format_batch(live.Batch.of([Change(4, "webhook.rejected\nx", "webhook", "/a\nb")]))
    assert odd.count("\n") == 4 and "\\n" in odd, "one data line whatever the values hold"
    merged = batch.merge(live.Batch.of([Change(9, "console.alarm_acknowledged", "alarm", "3")]))
    assert (merged.last_id, merged.rows, merged.alarm) == (12, 4, True)
    assert merged.kinds == {"callout", "warning", "alarm"}
    for action in ("warning.activated", "warning.updated", "callout.escalated", "console.alarm_acknowledged",
                   "run.not_started"):
        assert live.Batch.of([Change(1, action, "x", "1")]).alarm, f"{action} can change the banners"
    assert not live.Batch.of([Change(1, "callout.answered", "callout", "1"),
                              Change(2, "outbox.sent", "outbox_message", "1")]).alarm
    assert live.HEARTBEAT.startswith(": ") and "\nevent: ping\ndata: {}\n\n" in live.HEARTBEAT
    assert "id:" not in live.HEARTBEAT, "a heartbeat does not move the client's Last-Event-ID"
    assert live.format_cursor(41) == "id: 41\n\n"


def test_no_session_gets_a_bare_401(client: TestClient) -> None:
    r = client.get("/console/events", follow_redirects=False)
    assert r.status_code == 401, "EventSource stops on a 401; a redirect to the login page would retry forever"
    assert not r.headers["content-type"].startswith("text/event-stream")
    client.cookies.set("jiaoying_session", "forged")
    assert client.get("/console/events", follow_redirects=False).status_code == 401
    assert client.get("/console/alarms").status_code == 401


def test_a_committed_change_arrives_without_personal_data(duty: TestClient, sqlite_runtime: Runtime,
                                                          clock: VirtualClock, quick: None) -> None:
    before = record_change(sqlite_runtime, clock)
    with duty.stream("GET", "/console/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-store"
        sse = Sse(r)
        assert sse.next() == {"retry": "2000"}
        assert sse.next() == {"id": str(before)}, "a new client is told where it resumes from"
        beat = sse.next()
        assert beat == {"comment": "heartbeat", "event": "ping", "data": "{}"}, "a quiet stream keeps talking"
        changed = record_change(sqlite_runtime, clock, entity_id=8)
        msg = sse.until(is_change(before))
        assert msg["id"] == str(changed)
        assert json.loads(msg["data"]) == {"id": changed, "rows": 1, "kinds": ["measure_order"],
                                           "actions": ["measure.acknowledged"], "alarm": False}
        assert "王村长" not in msg["data"] and "张值班" not in msg["data"] and "+86" not in msg["data"]


def test_a_change_through_the_api_arrives_in_order(duty: TestClient, sqlite_runtime: Runtime, clock: VirtualClock,
                                                   api: Post, quick: None) -> None:
    with duty.stream("GET", "/console/events") as r:
        sse = Sse(r)
        sse.next()
        cursor = int(sse.next()["id"])
        entry = {"channel": "phone", "source": "晋城市气象台", "hazard": "weather", "event": "大风", "level": "blue",
                 "headline": "城区大风蓝色预警"}
        assert api("/warnings/manual", entry).status_code == 201
        with session_scope(sqlite_runtime.session_factory) as s:
            written = [e.id for e in s.execute(select(Event).where(Event.id > cursor).order_by(Event.id)).scalars()]
        with session_scope(sqlite_runtime.session_factory) as s:
            actions = {e.action for e in s.execute(select(Event).where(Event.id > cursor)).scalars()}
        got: list[dict[str, Any]] = []
        while not got or got[-1]["id"] < written[-1]:
            got.append(json.loads(sse.until(is_change(got[-1]["id"] if got else cursor))["data"]))
        ids = [m["id"] for m in got]
        assert ids == sorted(set(ids)) and ids[-1] == written[-1], "newer ids only, up to the last row"
        assert sum(m["rows"] for m in got) == len(written), "every row counted, once"
        assert set().union(*(m["actions"] for m in got)) == actions
        assert len(got) <= len(written)


def test_last_event_id_gets_what_was_missed(duty: TestClient, sqlite_runtime: Runtime, clock: VirtualClock,
                                            quick: None) -> None:
    seen = record_change(sqlite_runtime, clock)
    missed = [record_change(sqlite_runtime, clock, entity_id=i) for i in range(3)]
    with duty.stream("GET", "/console/events", headers={"Last-Event-ID": str(seen)}) as r:
        sse = Sse(r)
        assert sse.next() == {"retry": "2000"}
        summary = sse.next()
        assert summary["event"] == "change" and summary["id"] == str(missed[-1]), "one message for what was missed"
        assert json.loads(summary["data"]) == {"id": missed[-1], "rows": 3, "kinds": ["measure_order"],
                                               "actions": ["measure.acknowledged"], "alarm": False}
        later = record_change(sqlite_runtime, clock)
        assert sse.until(is_change(missed[-1]))["id"] == str(later), "then the live rows, none twice"
    with duty.stream("GET", "/console/events", headers={"Last-Event-ID": "not-a-number"}) as r:
        sse = Sse(r)
        sse.next()
        assert sse.next() == {"id": str(later)}, "an unreadable id: start from now"


def test_a_page_drawn_before_a_change_hears_of_it_on_its_first_connection(
        duty: TestClient, sqlite_runtime: Runtime, clock: VirtualClock, quick: None) -> None:
    """The board is drawn from a snapshot as of an event-log row (``data-live-after``); its script opens the stream
    with ``?after=`` that row, so a change committed between the drawing and the connection is announced."""
    before = record_change(sqlite_runtime, clock)
    page = duty.get("/").text
    drawn_at = int(re.search(r'data-live-after="(\d+)"', page).group(1))  # type: ignore[union-attr]
    assert drawn_at == before
    between = record_change(sqlite_runtime, clock, entity_id=7)
    with duty.stream("GET", f"/console/events?after={drawn_at}") as r:
        sse = Sse(r)
        assert sse.next() == {"retry": "2000"}
        summary = sse.next()
        assert summary["event"] == "change" and json.loads(summary["data"])["id"] == between
    with duty.stream("GET", f"/console/events?after={between}", headers={"Last-Event-ID": str(before)}) as r:
        sse = Sse(r)
        sse.next()
        assert json.loads(sse.next()["data"])["id"] == between, "a reconnection's Last-Event-ID comes first"
    for bad in ("x", "-1", "9" * 40):
        with duty.stream("GET", f"/console/events?after={bad}") as r:
            sse = Sse(r)
            sse.next()
            assert sse.next() == {"id": str(between)}, f"after={bad!r}: start from now"


def test_a_long_absence_gets_only_the_newest_rows(duty: TestClient, sqlite_runtime: Runtime, clock: VirtualClock,
                                                  quick: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "BACKLOG", 3)
    seen = record_change(sqlite_runtime, clock)
    ids = [record_change(sqlite_runtime, clock, entity_id=i) for i in range(6)]
    with duty.stream("GET", "/console/events", headers={"Last-Event-ID": str(seen)}) as r:
        sse = Sse(r)
        sse.next()
        summary = sse.next()
        assert summary["id"] == str(ids[-1])
        data = json.loads(summary["data"])
        assert data["rows"] == 3, "the newest rows only"
        assert data["alarm"] is True, "what was left out may have been an alarm: the page looks"


BURST = 5000


def test_a_burst_of_rows_is_a_few_messages_per_second(duty: TestClient, sqlite_runtime: Runtime,
                                                       clock: VirtualClock, quick: None) -> None:
    """A fan-out writes thousands of rows: each stream carries at most one message per COALESCE_SECONDS (the
    first after a quiet spell at once), the last names the last row, and together they count every row."""
    with duty.stream("GET", "/console/events") as r:
        sse = Sse(r)
        sse.next()
        cursor = int(sse.next()["id"])
        written: list[int] = []

        def burst() -> None:
            with session_scope(sqlite_runtime.session_factory) as s:
                for i in range(BURST):
                    action = "callout.escalated" if i == BURST // 2 else ("callout.started", "outbox.sent")[i % 2]
                    record(s, now=clock.now(), action=action, entity_type=action.split(".")[0], entity_id=i,
                           actor="rule:test", payload={"step": "leader_on_duty"} if action == "callout.escalated"
                           else None)
                    if i % 50 == 49:  # the sweep and the sender commit in small transactions, for seconds
                        s.flush()
                        s.commit()
                        time.sleep(0.03)
                written.append(int(s.execute(select(func.max(Event.id))).scalar_one()))

        writer = threading.Thread(target=burst)
        started = time.monotonic()
        writer.start()
        got: list[tuple[float, dict[str, Any], int]] = []
        try:
            while not got or got[-1][1]["id"] < cursor + BURST:
                msg = sse.until(is_change(got[-1][1]["id"] if got else cursor), seconds=60)
                size = sum(len(f"{k}: {v}\n".encode()) for k, v in msg.items()) + 1
                got.append((time.monotonic(), json.loads(msg["data"]), size))
        finally:
            writer.join(60)
        seconds = got[-1][0] - started
    data = [m for _t, m, _n in got]
    total_bytes = sum(n for _t, _m, n in got)
    print(f"{BURST} rows in {seconds:.1f} s → {len(got)} messages, {total_bytes} bytes on the stream "
          f"({total_bytes / BURST:.1f} bytes a row)")
    assert data[-1]["id"] == written[-1] and sum(m["rows"] for m in data) == BURST, "every row counted, once"
    assert sorted(set().union(*(m["actions"] for m in data))) == ["callout.escalated", "callout.started",
                                                                  "outbox.sent"]
    assert sum(m["alarm"] for m in data) == 1, "the one alarm-relevant row flags exactly one message"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
    assert len(got) <= seconds / live.COALESCE_SECONDS + 2, (len(got), seconds)
    assert min(gaps, default=live.COALESCE_SECONDS) >= live.COALESCE_SECONDS * 0.8, gaps
    assert total_bytes < BURST * 10, "a few bytes a row, not a message a row"


def test_a_stream_the_server_ends_asks_for_a_quick_return(duty: TestClient, quick: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream is ended after a while (the session is checked again on the reconnect); its last word is a short
    retry, so the browser is back before the page shows the server as lost."""
    monkeypatch.setattr(live, "MAX_STREAM_SECONDS", 0.5)
    with duty.stream("GET", "/console/events") as r:
        messages = []
        sse = Sse(r)
        while True:
            try:
                messages.append(sse.next())
            except AssertionError:
                break
    assert messages[0] == {"retry": "2000"} and messages[-1] == {"retry": "100"}
    assert all(m.get("event") == "ping" for m in messages[2:-1])


def test_one_poller_per_app_and_none_after_shutdown(sqlite_runtime: Runtime, clock: VirtualClock,
                                                    quick: None) -> None:
    make_user(sqlite_runtime.session_factory, "duty5", "duty_officer")
    app = create_app(sqlite_runtime.settings, runtime=sqlite_runtime, scheduler=False)
    with TestClient(app) as c:
        console_login(c, "duty5")
        with c.stream("GET", "/console/events") as a, c.stream("GET", "/console/events") as b:
            sa, sb = Sse(a), Sse(b)
            for s in (sa, sb):
                s.next()
                s.next()
            assert len(feed_threads()) == 1, "two streams, one poller"
            changed = record_change(sqlite_runtime, clock)
            assert sa.until(is_change())["id"] == sb.until(is_change())["id"] == str(changed)
        feed = getattr(app.state, live.FEED_ATTR)
        deadline = time.monotonic() + 5
        while feed._listeners and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not feed._listeners, "a closed stream stops listening"
        assert feed.running
    assert not feed.running and feed_threads() == [], "the app's shutdown stops the poller"


# ----------------------------------------------------------------------------------------------- alarms


def red_entry(**extra: Any) -> dict[str, Any]:
    return {"channel": "phone", "source": "晋城市气象台", "received_from": "王工 0356-1234567", "hazard": "weather",
            "event": "暴雨", "level": "red", "headline": "晋城市气象台发布暴雨红色预警",
            "expires": "2026-07-20T20:00:00+08:00", "area_codes": ["140502"], "area_description": "城区", **extra}


@pytest.fixture
def region(sqlite_runtime: Runtime, clock: VirtualClock) -> None:
    with session_scope(sqlite_runtime.session_factory) as s:
        seed_default_region(s, clock.now())


def alarm_items(html: str) -> list[dict[str, str]]:
    return [{"id": m.group(1), "kind": m.group(2), "body": m.group(3)} for m in re.finditer(
        r'<li class="alarm [^"]*" data-testid="alarm" data-alarm-id="(\d+)" data-kind="(\w+)">(.*?)</li>', html, re.S)]


def ack_events(rt: Runtime) -> list[Event]:
    with session_scope(rt.session_factory) as s:
        rows = list(s.execute(select(Event).where(Event.action == alarm_rules.ACK_ACTION)).scalars())
        s.expunge_all()
        return rows


def test_no_alarm_is_an_empty_fragment(duty: TestClient) -> None:
    r = duty.get("/console/alarms")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'data-count="0"' in r.text and alarm_items(r.text) == []
    assert 'data-refresh-text="有新变化，点此刷新"' in r.text, "the script's words come from the catalogue"
    assert "<script" not in r.text and "style=" not in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_a_red_warning_raises_an_alarm_until_it_is_acknowledged(
        duty: TestClient, sqlite_runtime: Runtime, clock: VirtualClock, region: None,
        api: Post) -> None:
    pushed = api("/warnings/manual", red_entry())
    assert pushed.status_code == 201, pushed.text
    warning_id = pushed.json()["id"]
    html = duty.get("/console/alarms", params={"next": "/console/runs"}).text
    [alarm] = alarm_items(html)
    assert alarm["kind"] == "red_new"
    body = alarm["body"]
    assert '<span class="badge level-red">红色预警</span>' in body, "level by colour and by text"
    assert "新红色预警" in body and "晋城市气象台发布暴雨红色预警" in body
    assert f'href="/console/warnings/{warning_id}"' in body
    assert "2026-07-20 02:00" in body, "time in Asia/Shanghai"
    assert "确认收到" in body and f'action="/console/alarms/{alarm["id"]}/ack"' in body
    assert 'name="next" value="/console/runs"' in body
    with session_scope(sqlite_runtime.session_factory) as s:
        trigger = s.get(Event, int(alarm["id"]))
        assert trigger is not None and trigger.action == "warning.activated", "the alarm is its triggering event"

    clock.advance(3 * MIN)
    r = duty.post(f"/console/alarms/{alarm['id']}/ack", data={"csrf_token": token_of(html), "next": "/console/runs"},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/runs?done=live.acknowledged"
    [ack] = ack_events(sqlite_runtime)
    assert ack.entity_type == "alarm" and ack.entity_id == alarm["id"]
    assert ack.actor == "user:duty1", "who acknowledged"
    assert ack.at == clock.now(), "and when"
    assert ack.payload["kind"] == "red_new" and ack.payload["events"] == [int(alarm["id"])]
    assert alarm_items(duty.get("/console/alarms").text) == [], "gone for everyone"
    assert "✓ 已确认收到警报" in duty.get("/console/runs?done=live.acknowledged").text

    again = duty.post(f"/console/alarms/{alarm['id']}/ack", headers={"X-CSRF-Token": token_of(html)},
                      follow_redirects=False)
    assert again.status_code == 303 and len(ack_events(sqlite_runtime)) == 1, "acknowledged once, recorded once"


def test_acknowledge_by_script_header_and_an_alarm_that_is_not_one(
        duty: TestClient, sqlite_runtime: Runtime, region: None, api: Post) -> None:
    api("/warnings/manual", red_entry())
    html = duty.get("/console/alarms").text
    [alarm] = alarm_items(html)
    r = duty.post(f"/console/alarms/{alarm['id']}/ack", headers={"X-CSRF-Token": token_of(html)},
                  follow_redirects=False)
    assert r.status_code == 303 and len(ack_events(sqlite_runtime)) == 1
    not_alarm = int(alarm["id"]) - 1  # the warning.received row before it
    r = duty.post(f"/console/alarms/{not_alarm}/ack", headers={"X-CSRF-Token": token_of(html)})
    assert r.status_code == 404 and "未找到警报" in r.text and r.headers["content-type"].startswith("text/html")
    assert len(ack_events(sqlite_runtime)) == 1, "no acknowledgement of nothing"


def test_acknowledging_needs_the_token_and_a_staff_role(client: TestClient, sqlite_runtime: Runtime, region: None,
                                                        api: Post) -> None:
    api("/warnings/manual", red_entry())
    as_user(client, sqlite_runtime, "viewer1", "viewer")
    html = client.get("/console/alarms").text
    [alarm] = alarm_items(html)
    assert "确认收到" not in alarm["body"] and "<form" not in alarm["body"], "a viewer sees no button"
    assert MESSAGES["live.alarm.ack.others"][0] in alarm["body"], "but who can acknowledge"
    html = client.get("/").text  # a page with the token, in its language form
    r = client.post(f"/console/alarms/{alarm['id']}/ack", data={"csrf_token": token_of(html)})
    assert r.status_code == 403 and "无权操作" in r.text
    as_user(client, sqlite_runtime, "analyst1", "analyst", "气象局")
    assert client.post(f"/console/alarms/{alarm['id']}/ack", data={"csrf_token": token_of(html)}).status_code == 403
    as_user(client, sqlite_runtime, "leader1", "leader")
    r = client.post(f"/console/alarms/{alarm['id']}/ack", data={"next": "/"}, follow_redirects=False)
    assert r.status_code == 403 and "请求已拒绝" in r.text, "no token, refused"
    r = client.post(f"/console/alarms/{alarm['id']}/ack", data={"next": "/", "csrf_token": "forged"})
    assert r.status_code == 403
    assert ack_events(sqlite_runtime) == []
    r = client.post(f"/console/alarms/{alarm['id']}/ack", data={"csrf_token": token_of(html)},
                    follow_redirects=False)
    assert r.status_code == 303
    assert [e.actor for e in ack_events(sqlite_runtime)] == ["user:leader1"]


def test_which_warnings_raise_an_alarm(duty: TestClient, sqlite_runtime: Runtime, clock: VirtualClock,
                                       region: None, api: Post) -> None:
    orange = api("/warnings/manual", red_entry(level="orange", headline="暴雨橙色预警"))
    api("/warnings/manual", red_entry(status="test", headline="测试红色预警"))
    api("/warnings/manual", red_entry(headline="邻县红色预警", area_codes=["140581"]))
    assert alarm_items(duty.get("/console/alarms").text) == [], "orange, a test message, another county: none"
    raised = api("/warnings/manual", red_entry(
        msg_type="update", replaces_warning_id=orange.json()["id"], headline="暴雨橙色预警升级为红色预警"))
    assert raised.status_code == 201, raised.text
    [alarm] = alarm_items(duty.get("/console/alarms").text)
    assert alarm["kind"] == "red_raised" and "预警升级为红色" in alarm["body"] and "升级为红色预警" in alarm["body"]
    still_red = api("/warnings/manual", red_entry(
        msg_type="update", replaces_warning_id=raised.json()["id"], headline="暴雨红色预警（更新）"))
    assert still_red.status_code == 201
    assert [a["id"] for a in alarm_items(duty.get("/console/alarms").text)] == [alarm["id"]], "red stays red: one"
    drill = api("/warnings/manual", red_entry(status="exercise", headline="演练红色预警"))
    assert drill.status_code == 201
    items = alarm_items(duty.get("/console/alarms").text)
    assert [a["kind"] for a in items] == ["red_new", "red_raised"], "newest first"
    assert "演练" in items[0]["body"], "a drill says so"
    clock.advance(dt.timedelta(hours=25))
    assert alarm_items(duty.get("/console/alarms").text) == [], "only the last day's alarms"


def test_english_alarm(duty: TestClient, region: None, api: Post) -> None:
    api("/warnings/manual", red_entry())
    duty.cookies.set("jiaoying_lang", "en")
    html = duty.get("/console/alarms").text
    [alarm] = alarm_items(html)
    assert "Red warning" in alarm["body"] and "New red warning" in alarm["body"] and "Acknowledge" in alarm["body"]
    assert "确认收到" not in alarm["body"] and 'data-refresh-text="New changes: click to refresh"' in html


# --- an escalation that reaches the leader on duty


LEADER_PHONE = "+8613999990000"
CALLS = {"answer_minutes": 5, "retries": {"count": 0, "interval_minutes": 2}, "channels": ["sms"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township", "leader_on_duty"]}


def person(s: Any, now: dt.datetime, name: str, phone: str, role: str, place: str) -> Contact:
    c = Contact(name=name, phone=phone, two_way_sms=False, active=True, created_at=now, updated_at=now, duties=[])
    c.duties.append(Duty(role=role, area_code=place, place=place, created_at=now))
    s.add(c)
    return c


def silent_village_run(rt: Runtime, now: dt.datetime, *, villages: int, chief: bool) -> int:
    """A red geohazard run over a few villages whose heads never answer, with (or without) a township chief
    between them and the leader on duty on tonight's roster."""
    plan = default_plans()[Hazard.GEOHAZARD]
    snap = plan.model_dump(mode="json")
    entry = {**snap["levels"]["red"], "calls": {**snap["levels"]["red"]["calls"], **CALLS}}
    snap["levels"]["red"] = entry
    entry_from_snapshot(snap, "red")
    codes = [f"140502101{200 + v:03d}" for v in range(villages)]
    with session_scope(rt.session_factory) as s:
        for v, code in enumerate(codes):
            person(s, now, f"村长{v}", f"+8613800000{v:03d}", "village_head", code)
        if chief:
            person(s, now, "镇长甲", "+8613900000001", "township_chief", "140502101000")
        shift = Shift(starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=11), label="夜班",
                      note="", created_at=now, updated_at=now)
        s.add(shift)
        s.flush()
        s.add(ShiftMember(shift_id=shift.id, role="leader", name="李带班", phone=LEADER_PHONE))
        run = ResponseRun(number="2026-0042", thread_id=1, open_thread_id=1, warning_id=1, hazard="geohazard",
                          level="red", response_level=entry["response_level"],
                          areas={"villages": codes, "townships": [], "sites": []}, measures=[], trigger="automatic",
                          plan_version=plan.version, plan_snapshot=snap, entry_snapshot=entry, state="active",
                          drill=False, started_at=now, started_by="test", updated_at=now)
        s.add(run)
        s.flush()
        assert len(callout_service.create_run_callouts(s, run, now=now)) == villages
        return run.id


def test_an_escalation_to_the_leader_on_duty_raises_one_alarm(duty: TestClient, sqlite_runtime: Runtime,
                                                              clock: VirtualClock) -> None:
    t0 = clock.now()
    run_id = silent_village_run(sqlite_runtime, t0, villages=2, chief=True)
    clock.set(t0 + 5 * MIN)  # the heads are silent: up to the township chief, which is no alarm
    assert callout_service.sweep(sqlite_runtime.session_factory, now=clock.now()).escalated == 2
    assert alarm_items(duty.get("/console/alarms").text) == []
    clock.set(t0 + 10 * MIN)  # the chief is silent too: the leader on duty is called
    assert callout_service.sweep(sqlite_runtime.session_factory, now=clock.now()).escalated == 1
    [alarm] = alarm_items(duty.get("/console/alarms").text)
    assert alarm["kind"] == "leader_escalation"
    body = alarm["body"]
    assert "叫应已升级至带班领导" in body and "李带班" in body and "镇长甲" in body
    assert f'href="/console/runs/{run_id}"' in body and "2026-0042" in body
    assert '<span class="badge level-red">红色预警</span>' in body and "2026-07-20 02:10" in body
    with session_scope(sqlite_runtime.session_factory) as s:
        trigger = s.get(Event, int(alarm["id"]))
        assert trigger is not None and trigger.action == "callout.escalated"
        assert trigger.payload["step"] == "leader_on_duty"


def test_one_sweep_sending_several_people_to_the_leader_is_one_alarm(duty: TestClient, sqlite_runtime: Runtime,
                                                                     clock: VirtualClock) -> None:
    t0 = clock.now()
    silent_village_run(sqlite_runtime, t0, villages=3, chief=False)
    clock.set(t0 + 5 * MIN)  # no chief: the three heads go straight to the leader, as one callout
    assert callout_service.sweep(sqlite_runtime.session_factory, now=clock.now()).escalated == 3
    html = duty.get("/console/alarms").text
    [alarm] = alarm_items(html)
    assert all(f"村长{v}" in alarm["body"] for v in range(3))
    r = duty.post(f"/console/alarms/{alarm['id']}/ack", data={"csrf_token": token_of(html)}, follow_redirects=False)
    assert r.status_code == 303
    [ack] = ack_events(sqlite_runtime)
    assert len(ack.payload["events"]) == 3 and ack.payload["kind"] == "leader_escalation"
    assert alarm_items(duty.get("/console/alarms").text) == []


def test_the_alarm_rule_on_plain_data() -> None:
    red = {"level": "red", "status": "actual", "previous_level": None}
    assert alarm_rules.trigger_of("warning.activated", red) == "red_new"
    assert alarm_rules.trigger_of("warning.activated", {**red, "status": "exercise"}) == "red_new"
    assert alarm_rules.trigger_of("warning.activated", {**red, "status": "test"}) is None
    assert alarm_rules.trigger_of("warning.activated", {**red, "level": "orange"}) is None
    assert alarm_rules.trigger_of("warning.updated", {**red, "previous_level": "orange"}) == "red_raised"
    assert alarm_rules.trigger_of("warning.updated", {**red, "previous_level": "red"}) is None
    assert alarm_rules.trigger_of("warning.cancelled", red) is None
    assert alarm_rules.trigger_of("callout.escalated", {"step": "leader_on_duty"}) == "leader_escalation"
    assert alarm_rules.trigger_of("callout.escalated", {"step": "township"}) is None
    assert alarm_rules.trigger_of("callout.escalated", None) is None


def test_an_alarm_reaches_an_open_stream(duty: TestClient, sqlite_runtime: Runtime, region: None, quick: None,
                                         api: Post) -> None:
    """The banner's whole path: the warning is committed, the stream says so, the fragment shows it; the
    acknowledgement is a change on the stream too, after which the fragment is empty."""
    with duty.stream("GET", "/console/events") as r:
        sse = Sse(r)
        sse.next()
        cursor = int(sse.next()["id"])
        api("/warnings/manual", red_entry())
        msg = sse.until(lambda m: is_change(cursor)(m) and "warning.activated" in json.loads(m["data"])["actions"])
        assert json.loads(msg["data"])["alarm"] is True, "the page is told to look at the banners"
        html = duty.get("/console/alarms").text
        [alarm] = alarm_items(html)
        assert int(alarm["id"]) <= int(msg["id"])
        duty.post(f"/console/alarms/{alarm['id']}/ack", data={"csrf_token": token_of(html)}, follow_redirects=False)
        msg = sse.until(lambda m: m.get("event") == "change" and "console.alarm_acknowledged" in m["data"])
        assert json.loads(msg["data"])["alarm"] is True and json.loads(msg["data"])["kinds"] == ["alarm"]
    assert alarm_items(duty.get("/console/alarms").text) == []


def test_a_fan_outs_escalations_neither_hide_a_red_warning_nor_send_pages_for_the_banners(
        duty: TestClient, sqlite_runtime: Runtime, clock: VirtualClock, region: None, quick: None, api: Post) -> None:
    """A district-wide fan-out escalates thousands of silent villagers to their township chiefs: none of those is
    an alarm, so the stream does not tell pages to fetch the banners for them, and a red warning not yet
    acknowledged keeps its banner however many of them come after it."""
    api("/warnings/manual", red_entry())
    with duty.stream("GET", "/console/events") as r:
        sse = Sse(r)
        sse.next()
        cursor = int(sse.next()["id"])
        with session_scope(sqlite_runtime.session_factory) as s:
            for i in range(2001):  # more than the trigger rows the banners read
                record(s, now=clock.now(), action="callout.escalated", entity_type="callout",
                       entity_id=str(10_000 + i), actor="rule:escalation",
                       payload={"step": "township", "to_callouts": [20_000 + i], "drill": False})
        seen = sse.until(lambda m: is_change(cursor)(m) and int(m["id"]) >= cursor + 2001)
        assert json.loads(seen["data"])["alarm"] is False, "no escalation to the leader: no banner to fetch"
    with session_scope(sqlite_runtime.session_factory) as s:
        assert not alarm_rules.leader_escalated_between(s, cursor + 1, cursor + 2001)
    [alarm] = alarm_items(duty.get("/console/alarms").text)
    assert alarm["kind"] == "red_new"
    rows = [Change(1, "callout.escalated", "callout", "1"), Change(2, "callout.answered", "callout", "2")]
    assert live.Batch.of(rows).alarm and live.Batch.of(rows, to_leader=True).alarm
    assert not live.Batch.of(rows, to_leader=False).alarm
    assert live.Batch.of([*rows, Change(3, "warning.activated", "warning", "1")], to_leader=False).alarm


@pytest.fixture(autouse=True)
def _no_feed_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    deadline = time.monotonic() + 5
    while feed_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed_threads() == [], "every poller ends with its app"


def test_stream_and_alarm_on_both_databases(any_client: TestClient, runtime: Runtime, clock: VirtualClock,
                                            quick: None) -> None:
    """What another process commits reaches the stream, and an escalation to the leader raises its banner, on
    SQLite and on PostgreSQL alike."""
    as_user(any_client, runtime, "duty7", "duty_officer")
    with any_client.stream("GET", "/console/events") as r:
        sse = Sse(r)
        sse.next()
        cursor = int(sse.next()["id"])
        t0 = clock.now()
        silent_village_run(runtime, t0, villages=1, chief=False)
        clock.set(t0 + 5 * MIN)
        assert callout_service.sweep(runtime.session_factory, now=clock.now()).escalated == 1
        msg = sse.until(lambda m: m.get("event") == "change" and '"callout.escalated"' in m["data"])
        assert int(msg["id"]) > cursor and json.loads(msg["data"])["alarm"] is True
    [alarm] = alarm_items(any_client.get("/console/alarms").text)
    assert cursor < int(alarm["id"]) <= int(msg["id"]) and "李带班" in alarm["body"]
