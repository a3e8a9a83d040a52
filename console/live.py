"""The console's live side: the change stream (server-sent events), the alarm banners and their acknowledgement.

Where changes come from: the hash-chained event log. Every domain records its state changes there in the same
transaction as the change, so the log sees what any process committed — the sending work in its child process,
a worker, another instance on the same PostgreSQL — without a message bus. One poller per app (a thread, so its
database reads never wait on the event loop or on the page handlers' thread pool) reads the rows above the last
id it saw a few times a second, a range read on the primary key, and hands each batch to the open streams'
queues — summed up once per read (which kinds of thing changed, whether an alarm may have), not row by row. It
starts with the first stream and stops when nobody has listened for a while, or when the app shuts down.

A fan-out writes tens of thousands of rows in minutes, and every open page needs to know only that something
changed, of which kind, and whether to look at the alarms: so each connection gets at most one message per
``COALESCE_SECONDS``, naming the newest row (the browser's Last-Event-ID) and the distinct kinds of change since
the previous message. A change after a quiet spell goes out at once; only the messages of a burst wait.

The stream's contract (a benchmark and the browser script rely on it)::

    retry: 2000                      once, first
    id: <latest event_log id>        once, when the client brings no Last-Event-ID: where it resumes from
    id: <newest event_log id>        at most one message per COALESCE_SECONDS, for every row since the last …
    event: change
    data: {"id": <that id>, "rows": <how many>, "kinds": [entity types], "actions": [actions], "alarm": bool}
    : heartbeat                      … and after 15 s without one, a heartbeat: a comment for proxies, plus an
    event: ping                      event the page can see, so a stalled connection is noticed
    data: {}

A first connection may say where its page was drawn (``/console/events?after=<event_log id>``: the board is drawn
from a snapshot as of a row, ``console.snapshots``), which counts as its Last-Event-ID until the browser sends one,
so a change committed between the drawing and the connection is announced like one missed while away.

``kinds`` and ``actions`` are sorted and distinct; ``alarm`` is true when a row of the batch can raise or clear an
alarm banner (``ALARM_ACTIONS``; an escalation only when it is to the leader on duty), so a page fetches the
banners only then. No entity id, actor or payload leaves
the server (they can name people). A reconnecting client's ``Last-Event-ID`` gets one message summing up what it
missed (the newest ``BACKLOG`` rows; when there were more, ``alarm`` is true, since what was left out is
unknown). A stream lives at most ``MAX_STREAM_SECONDS`` (or until its client falls ``QUEUE_BATCHES`` reads
behind): its last message is ``retry: 100``, so the browser reconnects at once with its Last-Event-ID, and the
session is checked again.

Alarms are derived from the same log (``console.alarms``); ``GET /console/alarms`` answers the banners as an
HTML fragment that ``static/live.js`` puts into the ``#alarms`` container of every page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from config.eventlog import Change, changes_after, latest_id
from config.fields import MAX_ROW_ID, RowId
from config.users import User
from config.web import DB, ClockDep, SettingsDep, actor_of
from console import alarms as alarm_rules
from console.rendering import PageUser, attempt, redirect, render, safe_next, user_can
from console.security import check_csrf, secure, session_user

log = logging.getLogger("jiaoying.console.live")

POLL_SECONDS = 0.4  # change committed → on the stream: half this on average, plus the read
COALESCE_SECONDS = 0.5  # at most one message per connection this often; the first after a quiet spell at once
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 2000
QUICK_RETRY_MS = 100  # told just before the server ends a stream itself, so the browser is back at once
BATCH = 500  # rows per read; a full batch is followed by the next read at once
BACKLOG = 200  # rows sent to a reconnecting client, the newest ones
QUEUE_BATCHES = 256  # reads a stream may fall behind before it is ended (its client reconnects)
MAX_STREAM_SECONDS = 30 * 60.0
IDLE_SECONDS = 60.0  # the poller stops after this long without a stream
# rows that can raise an alarm banner or take one away (an acknowledgement; a red warning found outside the
# district); the page fetches the banners when a message names one
ALARM_ACTIONS = frozenset({*alarm_rules.TRIGGER_ACTIONS, alarm_rules.ACK_ACTION, "run.not_started"})
HEARTBEAT = ": heartbeat\nevent: ping\ndata: {}\n\n"
FEED_ATTR = "console_live_feed"


@dataclass(frozen=True)
class Batch:
    """What a page may learn about some rows of the event log: the newest id, how many, which kinds of thing
    and which actions, and whether the alarms may have changed. Never who did it, which one or the payload
    (an actor, an id or a payload can name a person; a page needs none of them to know it must refresh)."""

    last_id: int
    rows: int
    kinds: frozenset[str]
    actions: frozenset[str]
    alarm: bool

    @classmethod
    def of(cls, changes: list[Change], *, to_leader: bool | None = None) -> Batch:
        """``to_leader``: whether the rows' escalations include one to the leader on duty (``None``: not known,
        so any escalation counts) — only those raise a banner."""
        actions = frozenset(c.action for c in changes)
        alarming = actions & ALARM_ACTIONS
        if to_leader is False:
            alarming -= {alarm_rules.ESCALATED}
        return cls(last_id=max(c.id for c in changes), rows=len(changes),
                   kinds=frozenset(c.entity_type for c in changes), actions=actions, alarm=bool(alarming))

    def merge(self, other: Batch) -> Batch:
        return Batch(last_id=max(self.last_id, other.last_id), rows=self.rows + other.rows,
                     kinds=self.kinds | other.kinds, actions=self.actions | other.actions,
                     alarm=self.alarm or other.alarm)


def format_batch(batch: Batch) -> str:
    """One message for a batch of rows; the JSON is one line (newlines in values are escaped)."""
    data = json.dumps({"id": batch.last_id, "rows": batch.rows, "kinds": sorted(batch.kinds),
                       "actions": sorted(batch.actions), "alarm": batch.alarm},
                      ensure_ascii=False, separators=(",", ":"))
    return f"id: {batch.last_id}\nevent: change\ndata: {data}\n\n"


def format_cursor(event_id: int) -> str:
    """An id without data: the browser keeps it as its Last-Event-ID and fires no event."""
    return f"id: {event_id}\n\n"


class Listener:
    """One open stream's inbox on its event loop; the poller thread hands batches over thread-safely."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cursor: int) -> None:
        self.loop = loop
        self.cursor = cursor  # the stream receives every row above this id
        self.queue: asyncio.Queue[Batch] = asyncio.Queue()
        self.overflowed = False

    def deliver(self, batch: Batch) -> bool:
        try:
            self.loop.call_soon_threadsafe(self._put, batch)
        except RuntimeError:  # its loop is closed: the stream is gone
            return False
        return True

    def _put(self, batch: Batch) -> None:
        if self.queue.qsize() >= QUEUE_BATCHES:
            self.overflowed = True  # a client this far behind reconnects and gets the newest rows
            return
        self.queue.put_nowait(batch)


class ChangeFeed:
    """The app's one poller of the event log, shared by all its open streams."""

    def __init__(self, session_factory: Callable[[], Session], *, poll_seconds: float | None = None) -> None:
        self._factory = session_factory
        self._poll = POLL_SECONDS if poll_seconds is None else poll_seconds
        self._lock = threading.Lock()
        self._listeners: set[Listener] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cursor = 0
        self._closed = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def listen(self, loop: asyncio.AbstractEventLoop) -> Listener:
        """A new stream's inbox; starts the poller if it is not running. Reads the database: call it off the
        event loop. The listener's cursor and the batches it will receive fit together exactly (both change
        under one lock), so nothing falls between what the stream is told at the start and what follows."""
        with self._lock:
            if not self.running and not self._closed:
                self._cursor = self._read(latest_id)
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True,
                                                name="console-live-feed")
                self._thread.start()
            listener = Listener(loop, self._cursor)
            self._listeners.add(listener)
            return listener

    def forget(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def backlog(self, after_id: int) -> list[Change]:
        """The newest rows above ``after_id``, for a client that reconnects after missing them."""
        return self._read(lambda s: changes_after(s, after_id, limit=BACKLOG, newest=True))

    def close(self) -> None:
        """Stop the poller and wait for it (the app is shutting down)."""
        with self._lock:
            self._closed = True
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _read(self, query: Callable[[Session], Any]) -> Any:
        session = self._factory()
        try:
            return query(session)
        finally:
            session.rollback()
            session.close()

    def _changes(self, session: Session) -> tuple[list[Change], bool | None]:
        """The next rows, and for a batch with escalations whether one is to the leader on duty (one more read,
        on the same range of ids), so a fan-out's village escalations do not send every page for its banners."""
        rows = changes_after(session, self._cursor, limit=BATCH)
        if not any(c.action == alarm_rules.ESCALATED for c in rows):
            return rows, None
        return rows, alarm_rules.leader_escalated_between(session, rows[0].id, rows[-1].id)

    def _run(self, stop: threading.Event) -> None:
        delay = self._poll
        idle_since: float | None = None
        failures = 0
        while not stop.wait(delay):
            try:
                rows, to_leader = self._read(self._changes)
                failures = 0
            except Exception:  # the database is away for a moment: the streams wait, the poller retries
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("live feed: reading the event log failed (%d in a row)", failures, exc_info=True)
                delay = min(5.0, self._poll * 2 ** min(failures, 4))
                continue
            with self._lock:
                if stop.is_set():
                    return
                if rows:
                    self._cursor = rows[-1].id
                    batch = Batch.of(rows, to_leader=to_leader)  # summed up once, whatever the number of streams
                    gone = [lst for lst in self._listeners if not lst.deliver(batch)]
                    self._listeners.difference_update(gone)
                if self._listeners:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_SECONDS:
                    self._thread = None  # the next stream starts a fresh poller from the newest id
                    return
            delay = 0.0 if len(rows) >= BATCH else self._poll


_feeds_lock = threading.Lock()


def feed_of(app: Any) -> ChangeFeed:
    """The app's feed, made on first use; it reads through the read-only sessions when the app has them."""
    with _feeds_lock:
        feed: ChangeFeed | None = getattr(app.state, FEED_ATTR, None)
        if feed is None:
            state = app.state

            def factory() -> Session:
                readers = getattr(state, "read_session_factory", None)
                return (readers or state.session_factory)()  # type: ignore[no-any-return]

            feed = ChangeFeed(factory)
            setattr(app.state, FEED_ATTR, feed)
        return feed


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Joined to the app's own lifespan when the router is included: the poller ends with the app."""
    try:
        yield
    finally:
        feed: ChangeFeed | None = getattr(app.state, FEED_ATTR, None)
        if feed is not None:
            await anyio.to_thread.run_sync(feed.close)


router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)],
                   lifespan=lifespan)


def last_event_id(request: Request) -> int | None:
    """Where the client resumes: the browser's ``Last-Event-ID`` on a reconnection, else the ``after`` of the
    first connection (the event-log row the page was drawn at); None when neither is there or sensible."""
    for raw in (request.headers.get("last-event-id", ""), request.query_params.get("after", "")):
        raw = raw.strip()
        if raw.isdigit() and len(raw) <= 16 and int(raw) <= MAX_ROW_ID:
            return int(raw)
    return None


async def stream(feed: ChangeFeed, listener: Listener, resume_after: int | None) -> AsyncIterator[str]:
    """The messages of one connection, until the client leaves, falls too far behind or the stream's time is up.

    What arrives within ``COALESCE_SECONDS`` of the previous message waits and goes out with everything else
    that arrived meanwhile, as one message; a change after a quiet spell goes out at once."""
    started = time.monotonic()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        last = listener.cursor
        missed: list[Change] = []
        if resume_after is not None and resume_after < listener.cursor:
            missed = await anyio.to_thread.run_sync(feed.backlog, resume_after)
        if missed:
            summary = Batch.of(missed)
            if len(missed) >= BACKLOG:  # older rows were left out: whether one was an alarm is unknown
                summary = Batch(summary.last_id, summary.rows, summary.kinds, summary.actions, True)
            yield format_batch(summary)
            last = max(last, summary.last_id)
        else:
            yield format_cursor(last)
        sent_at = -COALESCE_SECONDS  # the first change goes out at once
        while time.monotonic() - started < MAX_STREAM_SECONDS:
            try:
                batch = await asyncio.wait_for(listener.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield HEARTBEAT
                continue
            while (wait := sent_at + COALESCE_SECONDS - time.monotonic()) > 0:
                try:
                    batch = batch.merge(await asyncio.wait_for(listener.queue.get(), wait))
                except TimeoutError:
                    break
            while not listener.queue.empty():
                batch = batch.merge(listener.queue.get_nowait())
            if listener.overflowed:
                break
            if batch.last_id > last:  # rows the resume message already covered are not announced again
                yield format_batch(batch)
                last = batch.last_id
                sent_at = time.monotonic()
        yield f"retry: {QUICK_RETRY_MS}\n\n"  # ended here, not lost: come back now, with the Last-Event-ID
    finally:
        feed.forget(listener)


def _session_user(request: Request) -> User | None:
    state = request.app.state
    factory = getattr(state, "read_session_factory", None) or state.session_factory
    session = factory()
    try:
        return session_user(request, session, state.settings)
    finally:
        session.rollback()
        session.close()


@router.get("/events")
async def events(request: Request) -> Response:
    """The change stream. Without a session: a bare 401, which makes the browser's EventSource stop instead of
    following a redirect to the login page and retrying forever."""
    user = await anyio.to_thread.run_sync(_session_user, request)
    if user is None:
        return secure(Response("401 login required", status_code=401, media_type="text/plain"))
    feed = feed_of(request.app)
    listener = await anyio.to_thread.run_sync(feed.listen, asyncio.get_running_loop())
    response = StreamingResponse(stream(feed, listener, last_event_id(request)), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})
    return secure(response)


@router.get("/alarms", response_class=HTMLResponse)
def alarms_fragment(request: Request, session: DB, settings: SettingsDep, clock: ClockDep,
                    next: str = "/") -> Response:  # noqa: A002
    """The banners of the alarms not yet acknowledged, as a fragment for ``#alarms`` (fetched by live.js on
    every page load and every change); a bare 401 without a session, since a script asks."""
    user = session_user(request, session, settings)
    if user is None:
        return secure(Response(status_code=401))
    pending = alarm_rules.pending(session, now=clock.now())
    return render(request, "live_alarms.html", {
        "user": user, "alarms": pending, "tz": settings.tz, "back": safe_next(next),
        "ack_roles": alarm_rules.ACK_ROLES,
    })


@router.post("/alarms/{event_id}/ack")
def acknowledge_alarm(request: Request, event_id: RowId, user: PageUser, session: DB, clock: ClockDep,
                      next: Annotated[str, Form()] = "/") -> Response:  # noqa: A002
    """Record who acknowledged the alarm and when; every open console drops the banner on the next change."""
    if not user_can(user, alarm_rules.ACK_ROLES):
        # the 403 page is rendered here, while the request's session still holds the user: ``require_role``'s
        # handler runs after the session is closed and cannot read the user's role for the page's header
        return render(request, "forbidden.html", {"user": user}, status=403)
    back = safe_next(next)

    def act() -> Response:
        alarm_rules.acknowledge(session, event_id, actor=actor_of(user), now=clock.now())
        session.commit()
        return redirect(back, done="live.acknowledged")

    return attempt(request, act, back=back)
