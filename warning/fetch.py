"""Polling: getting a feed's bytes over HTTP (or from a local file) and handing them to the intake.

The network is never touched inside a database transaction (on SQLite a write transaction locks
the whole database): a poll reads the feed's settings, fetches, then stores in a fresh transaction.
The size limit is enforced while the body streams in — a declared ``Content-Length`` over the
limit is refused before any byte is read, an undeclared one as soon as the running total passes
it — so a hostile or broken source cannot make us hold a huge body in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.database import session_scope
from config.eventlog import record
from config.runtime import Runtime
from warning import service
from warning.changes import Listener
from warning.models import Feed, FeedItem
from warning.policy import IntakePolicy, MissingSecret, expand_env, load_policy

log = logging.getLogger("jiaoying.warning.fetch")

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class FetchResult:
    status: str  # ok | not_modified | oversize | error
    url: str
    body: bytes = b""  # the whole body (ok) or the prefix read before refusing (oversize)
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    size: int | None = None  # declared or counted size of an oversize body
    attempts: int = 0
    waits: list[float] = field(default_factory=list)


def _read_limited(chunks: Iterable[bytes], limit: int) -> tuple[bytes, bool, int]:
    """Collect chunks up to ``limit`` bytes; ``(prefix, oversize, bytes_seen)``: stops at the first excess."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            return bytes(buf[:limit]), True, len(buf)
    return bytes(buf), False, len(buf)


def fetch_file(url: str, *, max_bytes: int) -> FetchResult:
    """A ``file://`` URL or a plain path: a local drop folder some agencies write their files to."""
    path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)) if url.startswith("file:") else Path(url)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size > max_bytes:
                return FetchResult("oversize", url, fh.read(min(max_bytes, 65536)), size=size, attempts=1,
                                   error=f"{size} bytes > limit {max_bytes}")
            body, over, seen = _read_limited(iter(lambda: fh.read(65536), b""), max_bytes)
    except OSError as exc:
        return FetchResult("error", url, error=f"{type(exc).__name__}: {exc}", attempts=1)
    if over:
        return FetchResult("oversize", url, body, size=seen, attempts=1, error=f"more than {max_bytes} bytes")
    ctype = "application/xml" if path.suffix.lower() in (".xml", ".cap", ".atom", ".rss") else None
    return FetchResult("ok", url, body, content_type=ctype, attempts=1)


def fetch_url(
    client: httpx.Client, url: str, *, headers: dict[str, str] | None = None, etag: str | None = None,
    last_modified: str | None = None, max_bytes: int, policy: IntakePolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """One conditional GET with retries: timeouts, connection errors and 5xx/429 back off and retry."""
    if not url.startswith(("http://", "https://")):
        return fetch_file(url, max_bytes=max_bytes)
    req_headers = dict(headers or {})
    if etag:
        req_headers["If-None-Match"] = etag
    if last_modified:
        req_headers["If-Modified-Since"] = last_modified
    waits: list[float] = []
    last_error = ""
    for attempt in range(1, policy.retries + 2):
        if attempt > 1:
            wait = policy.backoff(attempt - 1)
            waits.append(wait)
            sleep(wait)
        try:
            with client.stream("GET", url, headers=req_headers, timeout=policy.timeout_seconds) as resp:
                if resp.status_code == 304:
                    return FetchResult("not_modified", url, attempts=attempt, waits=waits,
                                       etag=resp.headers.get("ETag") or etag,
                                       last_modified=resp.headers.get("Last-Modified") or last_modified)
                if resp.status_code in RETRYABLE_STATUS:
                    last_error = f"HTTP {resp.status_code}"
                    continue
                if resp.status_code >= 400:
                    return FetchResult("error", url, error=f"HTTP {resp.status_code}", attempts=attempt, waits=waits)
                ctype = resp.headers.get("Content-Type")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    return FetchResult("oversize", url, b"", content_type=ctype, size=int(declared),
                                       attempts=attempt, waits=waits,
                                       error=f"Content-Length {declared} > limit {max_bytes}")
                body, over, seen = _read_limited(resp.iter_bytes(), max_bytes)
                if over:
                    return FetchResult("oversize", url, body, content_type=ctype, size=seen, attempts=attempt,
                                       waits=waits, error=f"more than {max_bytes} bytes (stopped reading)")
                return FetchResult("ok", url, body, content_type=ctype, etag=resp.headers.get("ETag"),
                                   last_modified=resp.headers.get("Last-Modified"), attempts=attempt, waits=waits)
        except httpx.TimeoutException as exc:
            last_error = f"timeout: {type(exc).__name__}"
        except httpx.TransportError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
    return FetchResult("error", url, error=last_error, attempts=policy.retries + 1, waits=waits)


# --------------------------------------------------------------------------- polling a feed


@dataclass
class PollReport:
    feed: str
    status: str
    item_ids: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    error: str | None = None
    links_fetched: int = 0


def _resolve(feed: Feed) -> tuple[str, dict[str, str]]:
    url = expand_env(feed.url or "")
    headers = {str(k): expand_env(str(v)) for k, v in (feed.headers or {}).items()}
    return url, headers


def _mark_success(session: Session, feed: Feed, now: dt.datetime) -> None:
    recovering = feed.consecutive_failures > 0
    feed.last_success_at = now
    feed.consecutive_failures = 0
    feed.next_poll_at = now + dt.timedelta(seconds=max(feed.poll_seconds, 1))
    if recovering:
        record(session, now=now, action="feed.recovered", entity_type="feed", entity_id=feed.id,
               actor=f"feed:{feed.name}", payload={"after_error": feed.last_error})


def _mark_failure(session: Session, feed: Feed, now: dt.datetime, error: str, policy: IntakePolicy) -> None:
    feed.last_error_at = now
    feed.last_error = error[:2000]
    feed.consecutive_failures = (feed.consecutive_failures or 0) + 1
    delay = policy.failure_delay(feed.consecutive_failures, feed.poll_seconds)
    feed.next_poll_at = now + dt.timedelta(seconds=delay)
    if feed.consecutive_failures == 1:  # log the transition, not every failed poll
        record(session, now=now, action="feed.poll_failing", entity_type="feed", entity_id=feed.id,
               actor=f"feed:{feed.name}", payload={"error": feed.last_error})


def poll_feed(
    rt: Runtime, feed_id: int, *, listeners: Iterable[Listener] = (), policy: IntakePolicy | None = None,
    sleep: Callable[[float], None] = time.sleep, client: httpx.Client | None = None,
) -> PollReport:
    policy = policy or load_policy()
    listeners = tuple(listeners)
    client = client or http_client(rt, policy)
    with session_scope(rt.session_factory) as s:
        feed = s.get(Feed, feed_id)
        if feed is None:
            return PollReport(str(feed_id), "missing")
        name, limit, etag, last_modified = feed.name, service.feed_limit(feed, policy), feed.etag, feed.last_modified
        feed.last_polled_at = rt.now()
        try:
            url, headers = _resolve(feed)
        except MissingSecret as exc:
            msg = f"缺少环境变量 / missing environment variable {exc.args[0]}"
            _mark_failure(s, feed, rt.now(), msg, policy)
            return PollReport(name, "error", error=msg)
    result = fetch_url(client, url, headers=headers, etag=etag, last_modified=last_modified, max_bytes=limit,
                       policy=policy, sleep=sleep)
    report = PollReport(name, result.status, error=result.error)
    links: list[str] = []
    parent_id = 0
    with session_scope(rt.session_factory) as s:
        feed = s.get(Feed, feed_id)
        assert feed is not None
        now = rt.now()
        if result.status == "error":
            _mark_failure(s, feed, now, result.error or "error", policy)
            return report
        if result.status == "oversize":
            item = service.store_refused(s, feed=feed, prefix=result.body, content_type=result.content_type, now=now,
                                         reason="oversize", detail=result.error or "", source_url=url,
                                         size=result.size)
            report.item_ids.append(item.id)
            _mark_failure(s, feed, now, f"oversize: {result.error}", policy)
            return report
        if result.status == "ok":
            feed.etag, feed.last_modified = result.etag, result.last_modified
            outcome = service.ingest_payload(s, feed=feed, body=result.body, content_type=result.content_type,
                                             now=now, source_url=url, listeners=listeners, policy=policy)
            report.item_ids.append(outcome.item_id)
            report.created += outcome.created
            links = [urllib.parse.urljoin(url, link) for link in outcome.links]
            parent_id = outcome.item_id
        _mark_success(s, feed, now)
    if links:
        report.links_fetched = _follow_links(rt, feed_id, links, parent_id, client=client, headers=headers,
                                             limit=limit, policy=policy, listeners=listeners, sleep=sleep,
                                             report=report)
    return report


def _follow_links(
    rt: Runtime, feed_id: int, links: list[str], parent_id: int, *, client: httpx.Client, headers: dict[str, str],
    limit: int, policy: IntakePolicy, listeners: tuple[Listener, ...], sleep: Callable[[float], None],
    report: PollReport,
) -> int:
    """Fetch the CAP documents an index names (bounded), skipping those already stored: a CAP URL
    names one message, so fetching it again every poll would only re-download the same bytes."""
    with session_scope(rt.session_factory) as s:
        seen = set(s.execute(select(FeedItem.source_url).where(FeedItem.feed_id == feed_id,
                                                               FeedItem.source_url.in_(links))).scalars())
    todo = [u for u in dict.fromkeys(links) if u not in seen and u.startswith(("http://", "https://"))]
    todo = todo[: policy.index_links_max]
    for url in todo:
        result = fetch_url(client, url, headers=headers, max_bytes=limit, policy=policy, sleep=sleep)
        with session_scope(rt.session_factory) as s:
            feed = s.get(Feed, feed_id)
            assert feed is not None
            now = rt.now()
            if result.status == "ok":
                outcome = service.ingest_payload(s, feed=feed, body=result.body, content_type=result.content_type,
                                                 now=now, source_url=url, listeners=listeners, parent_id=parent_id,
                                                 policy=policy)
                report.item_ids.append(outcome.item_id)
                report.created += outcome.created
            elif result.status == "oversize":
                item = service.store_refused(s, feed=feed, prefix=result.body, content_type=result.content_type,
                                             now=now, reason="oversize", detail=result.error or "", source_url=url,
                                             size=result.size)
                report.item_ids.append(item.id)
            else:
                feed.last_error_at, feed.last_error = now, f"{url}: {result.error}"[:2000]
    return len(todo)


def http_client(rt: Runtime, policy: IntakePolicy) -> httpx.Client:
    if rt.http is None:
        rt.http = httpx.Client(timeout=httpx.Timeout(policy.timeout_seconds, connect=5.0), follow_redirects=True,
                               headers={"User-Agent": "Jiaoying/0.1 (+early-warning)"})
    return rt.http


def due_feeds(session: Session, now: dt.datetime) -> list[int]:
    stmt = select(Feed.id).where(
        Feed.enabled.is_(True), Feed.poll_seconds > 0, Feed.url.is_not(None),
        (Feed.next_poll_at.is_(None)) | (Feed.next_poll_at <= now),
    ).order_by(Feed.next_poll_at, Feed.id)
    return list(session.execute(stmt).scalars())


def poll_due(rt: Runtime, *, listeners: Iterable[Listener] = (), sleep: Callable[[float], None] = time.sleep,
             policy: IntakePolicy | None = None) -> list[PollReport]:
    """Poll every enabled feed whose ``next_poll_at`` has come; one failing feed never stops the others."""
    with session_scope(rt.session_factory) as s:
        ids = due_feeds(s, rt.now())
    reports: list[PollReport] = []
    for feed_id in ids:
        try:
            reports.append(poll_feed(rt, feed_id, listeners=listeners, sleep=sleep, policy=policy))
        except Exception as exc:  # a bug while polling one feed: recorded on the feed, the rest go on
            log.exception("polling feed %s failed", feed_id)
            with session_scope(rt.session_factory) as s:
                feed = s.get(Feed, feed_id)
                if feed is not None:
                    _mark_failure(s, feed, rt.now(), f"{type(exc).__name__}: {exc}", policy or load_policy())
            reports.append(PollReport(str(feed_id), "error", error=str(exc)))
    return reports


__all__: list[Any] = ["FetchResult", "PollReport", "fetch_url", "fetch_file", "poll_feed", "poll_due", "due_feeds"]
