"""Polling through httpx with a mock transport: conditional requests, retries with backoff, size limit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import select

from config.database import session_scope
from config.eventlog import Event
from config.runtime import Runtime
from warning import fetch
from warning.models import Feed, FeedItem, Warning
from warning.policy import IntakePolicy

POLICY = IntakePolicy(retries=3, backoff_seconds=2.0, max_bytes=50_000, timeout_seconds=1.0)
URL = "https://feeds.example.cn/cap/latest.xml"


def _feed(rt: Runtime, wh, **kw) -> int:  # type: ignore[no-untyped-def]
    with session_scope(rt.session_factory) as s:
        return int(wh.make_feed(s, rt.now(), url=kw.pop("url", URL), **kw).id)


def _poll(rt: Runtime, feed_id: int, handler, waits: list[float]) -> fetch.PollReport:  # type: ignore[no-untyped-def]
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return fetch.poll_feed(rt, feed_id, policy=POLICY, sleep=waits.append, client=client)


def _get(rt: Runtime, feed_id: int) -> Feed:
    with session_scope(rt.session_factory) as s:
        feed = s.get(Feed, feed_id)
        assert feed is not None
        s.expunge(feed)
        return feed


def test_etag_then_304(runtime: Runtime, wh) -> None:  # type: ignore[no-untyped-def]
    feed_id = _feed(runtime, wh)
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304, headers={"ETag": '"v1"'})
        return httpx.Response(200, content=wh.cap_xml("E-1"), headers={"ETag": '"v1"', "Last-Modified":
                              "Mon, 20 Jul 2026 00:00:00 GMT", "Content-Type": "application/xml"})

    waits: list[float] = []
    first = _poll(runtime, feed_id, handler, waits)
    assert first.status == "ok" and first.created
    second = _poll(runtime, feed_id, handler, waits)
    assert second.status == "not_modified" and not second.item_ids
    assert seen[1].headers["If-None-Match"] == '"v1"'
    assert seen[1].headers["If-Modified-Since"] == "Mon, 20 Jul 2026 00:00:00 GMT"
    feed = _get(runtime, feed_id)
    assert feed.items_count == 1 and feed.last_success_at is not None and feed.consecutive_failures == 0
    assert feed.next_poll_at == runtime.now() + dt.timedelta(seconds=feed.poll_seconds)


def test_timeout_then_success(runtime: Runtime, wh) -> None:  # type: ignore[no-untyped-def]
    feed_id = _feed(runtime, wh)
    calls = {"n": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ReadTimeout("slow source", request=req)
        return httpx.Response(200, content=wh.cap_xml("T-1"))

    waits: list[float] = []
    report = _poll(runtime, feed_id, handler, waits)
    assert report.status == "ok" and report.created and calls["n"] == 2 and waits == [2.0]


def test_500s_back_off_then_fail_and_recover(runtime: Runtime, wh, clock) -> None:  # type: ignore[no-untyped-def]
    feed_id = _feed(runtime, wh, poll_seconds=60)
    waits: list[float] = []
    report = _poll(runtime, feed_id, lambda req: httpx.Response(500), waits)
    assert report.status == "error" and report.error == "HTTP 500"
    assert waits == [2.0, 4.0, 8.0]  # retries=3 after the first attempt, doubling
    feed = _get(runtime, feed_id)
    assert feed.consecutive_failures == 1 and feed.last_error == "HTTP 500" and feed.last_error_at is not None
    _poll(runtime, feed_id, lambda req: httpx.Response(503), [])
    feed = _get(runtime, feed_id)
    assert feed.consecutive_failures == 2
    assert feed.next_poll_at == runtime.now() + dt.timedelta(seconds=120)  # a failing feed is polled less often
    ok = _poll(runtime, feed_id, lambda req: httpx.Response(200, content=wh.cap_xml("S-1")), [])
    assert ok.status == "ok" and _get(runtime, feed_id).consecutive_failures == 0
    with session_scope(runtime.session_factory) as s:
        actions = [e.action for e in s.execute(select(Event).where(Event.entity_type == "feed")).scalars()]
    assert actions.count("feed.poll_failing") == 1 and actions.count("feed.recovered") == 1


def test_oversize_refused_before_reading_whole(runtime: Runtime, wh) -> None:  # type: ignore[no-untyped-def]
    feed_id = _feed(runtime, wh)
    consumed = {"chunks": 0}

    def endless() -> Iterator[bytes]:
        while True:  # a source that never stops sending
            consumed["chunks"] += 1
            yield b"x" * 4096

    report = _poll(runtime, feed_id, lambda req: httpx.Response(200, content=endless()), [])
    assert report.status == "oversize"
    assert consumed["chunks"] * 4096 <= POLICY.max_bytes + 4096  # stopped at the limit, not at the end
    declared = _poll(runtime, feed_id, lambda req: httpx.Response(
        200, headers={"Content-Length": str(10**9)}, content=b"<alert/>"), [])
    assert declared.status == "oversize"
    with session_scope(runtime.session_factory) as s:
        items = s.execute(select(FeedItem).where(FeedItem.feed_id == feed_id)).scalars().all()
        assert len(items) == 2 and all(i.state == "quarantined" and i.reason == "oversize" for i in items)
        assert {i.size for i in items} >= {10**9}
    assert _get(runtime, feed_id).last_error.startswith("oversize")  # type: ignore[union-attr]


def test_index_links_are_followed_once(runtime: Runtime, wh) -> None:  # type: ignore[no-untyped-def]
    feed_id = _feed(runtime, wh, url="https://feeds.example.cn/index.atom")
    index = b"""<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>t</title><id>urn:x</id><updated>2026-07-20T00:00:00Z</updated>
<entry><id>urn:a</id><title>a</title><updated>2026-07-20T00:00:00Z</updated>
<link rel="alternate" type="application/cap+xml" href="/cap/A-1.xml"/></entry>
<entry><id>urn:b</id><title>b</title><updated>2026-07-20T00:00:00Z</updated>
<link rel="alternate" type="application/cap+xml" href="https://feeds.example.cn/cap/A-2.xml"/></entry></feed>"""
    fetched: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        fetched.append(req.url.path)
        if req.url.path == "/index.atom":
            return httpx.Response(200, content=index, headers={"Content-Type": "application/atom+xml"})
        return httpx.Response(200, content=wh.cap_xml(req.url.path.rsplit("/", 1)[-1].removesuffix(".xml")))

    report = _poll(runtime, feed_id, handler, [])
    assert report.links_fetched == 2 and len(report.created) == 2
    _poll(runtime, feed_id, handler, [])
    assert fetched.count("/cap/A-1.xml") == 1 and fetched.count("/index.atom") == 2
    with session_scope(runtime.session_factory) as s:
        assert {w.identifier for w in s.execute(select(Warning)).scalars()} == {"A-1", "A-2"}


def test_file_feed_and_due_selection(runtime: Runtime, wh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    drop = tmp_path / "drop.xml"
    drop.write_bytes(wh.cap_xml("F-1"))
    feed_id = _feed(runtime, wh, url=drop.as_uri())
    with session_scope(runtime.session_factory) as s:
        assert fetch.due_feeds(s, runtime.now()) == [feed_id]
    reports = fetch.poll_due(runtime, policy=POLICY, sleep=lambda _s: None)
    assert [r.status for r in reports] == ["ok"] and reports[0].created
    with session_scope(runtime.session_factory) as s:
        assert fetch.due_feeds(s, runtime.now()) == []  # polled: not due until its interval has passed
