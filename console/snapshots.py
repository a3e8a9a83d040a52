"""The board's data shared by everyone reading it on one instance, rebuilt at most about once a second.

During a district-wide fan-out every duty officer's board refreshes on every change, and each refresh asked the
database the same dozen questions (open runs, their progress by township, measures, reports, feeds…) at the very
moment the server was busiest calling people: under load the reads of a hundred pages piled up in the thread pool
and each waited seconds. The board's data is the same for every reader of a language (who reads it changes only
the header, rendered per request), so one build serves them all:

- a snapshot is reused while it is younger than ``MAX_AGE_SECONDS`` and covers the change the page asks for: a
  refresh from ``static/live.js`` says which event-log id it was told about (header ``X-Live-Since``), and a
  snapshot built before that row was visible is not used for it, so a change reaches every open page as before;
- a page shown right after the reader's own action (a ``done`` confirmation in the address) is always built
  fresh, so nobody sees the board from before what they just did;
- when a snapshot is too old, one request rebuilds it and the others arriving meanwhile wait for that build
  instead of starting their own (one build at a time per language), then take it if it covers what they need;
  while many read at once, the build runs in the background instead and readers take the snapshot they have
  (at most ``STALE_SECONDS`` old) meanwhile, so under load no plain read waits for the database;
- builds are spaced by their own cost (``BUILD_SPACING``): a build begins no sooner than twice the last one's
  time after it ended, so while open pages keep asking for newer boards the builds take at most about a third
  of a thread, and each is shared by every reader who arrived while it waited.

The key of a snapshot is the newest event-log id visible when its build began (read in the build's own
transaction, before anything else): every change committed up to that row is in it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

MAX_AGE_SECONDS = 1.0
SHARE_FROM = 3  # reads of one language within MAX_AGE_SECONDS from which they share a snapshot
STALE_SECONDS = 15.0  # the oldest snapshot a busy reader takes while the next one is built in the background
# After a build that took d seconds the next one begins no sooner than BUILD_SPACING × d after it ended (at most
# MAX_SPACING_SECONDS): open pages refresh on every change they are told of, each asking for a board that covers
# it, and during a fan-out the changes never stop — without a pause the builds ran back to back and took a core.
BUILD_SPACING = 2.0
MAX_SPACING_SECONDS = 1.5
SINCE_HEADER = "x-live-since"

T = TypeVar("T")
log = logging.getLogger("jiaoying.console")


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    value: T
    key: int  # the newest event-log id visible when the build began
    built_at: float  # on the holder's monotonic clock
    as_of: float = 0.0  # the application clock's time of the build (seconds), which the board's deadlines use
    number: int = 0  # builds begun before this one, plus one


class Snapshots(Generic[T]):
    """Snapshots by a small key (the page's language), each rebuilt by one caller at a time."""

    def __init__(self, *, max_age: float = MAX_AGE_SECONDS, share_from: int = SHARE_FROM,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.max_age, self.share_from = max_age, share_from
        self._mono, self._sleep = monotonic, sleep
        self._next_build: dict[Any, float] = {}  # the earliest moment of each key's next build
        self._held: dict[Any, Snapshot[T]] = {}
        self._reads: dict[Any, deque[float]] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._guard = threading.Lock()
        self.builds = 0
        self._begun = 0
        self._refreshing: set[Any] = set()

    def _young(self, snap: Snapshot[T] | None, since: int, now: float | None) -> bool:
        """Young enough on both clocks (the application's clock can jump: a deadline passed is a change even when
        nothing was written) and covering the event-log row ``since``."""
        if snap is None or snap.key < since or self._mono() - snap.built_at > self.max_age:
            return False
        return now is None or abs(now - snap.as_of) <= self.max_age

    def _busy(self, which: Any) -> bool:
        """Count this read; True when at least ``share_from`` reads came within ``max_age`` (this one included)."""
        t = self._mono()
        with self._guard:
            reads = self._reads.setdefault(which, deque())
            reads.append(t)
            while reads and reads[0] < t - self.max_age:
                reads.popleft()
            return len(reads) >= self.share_from

    def get(self, which: Any, build: Callable[[], tuple[int, T]], *, latest: Callable[[], int],
            since: int = 0, fresh: bool = False, now: float | None = None,
            apart: Callable[[], tuple[int, T]] | None = None) -> Snapshot[T]:
        """The snapshot for ``which``. ``build`` returns a new one's key and value; ``latest`` reads the newest
        event-log id now (one indexed read). ``fresh``: always a build that began after this call. ``apart``
        builds like ``build`` but on a connection of its own, so it can run in another thread: busy readers
        whose snapshot has just gone past its age take it as it is (up to ``STALE_SECONDS`` old) while ``apart``
        builds the next one, instead of waiting for that build (seconds, on a loaded server)."""
        busy = self._busy(which)
        need: int | None = None

        def covers(snap: Snapshot[T] | None) -> bool:
            nonlocal need
            if not self._young(snap, since, now):
                return False
            if busy:
                return True
            if need is None:
                need = latest()
            return snap is not None and snap.key >= need

        begun = self._begun
        if not fresh and covers(self._held.get(which)):
            return self._held[which]
        with self._guard:
            lock = self._locks.setdefault(which, threading.Lock())
        held = self._held.get(which)
        if busy and not fresh and apart is not None and held is not None and held.key >= since \
                and self._mono() - held.built_at <= STALE_SECONDS \
                and (now is None or abs(now - held.as_of) <= STALE_SECONDS):
            self._refresh_apart(which, lock, apart, now)
            return held
        with lock:
            snap = self._held.get(which)
            # a build that began after this call covers everything this reader could ask for
            if snap is not None and (snap.number > begun or (not fresh and covers(snap))):
                return snap
            return self._build_and_keep(which, build, now)

    def _build_and_keep(self, which: Any, build: Callable[[], tuple[int, T]], now: float | None) -> Snapshot[T]:
        """Build (the caller holds ``which``'s lock) and keep the result as ``which``'s snapshot. A build that
        comes too soon after the last one waits first (``BUILD_SPACING``); it counts as begun after that wait, so
        the readers arriving meanwhile take it instead of building again."""
        pause = self._next_build.get(which, 0.0) - self._mono()
        if pause > 0:
            self._sleep(pause)
        with self._guard:
            self._begun += 1
            number = self._begun
        t = self._mono()
        key, value = build()
        ended = self._mono()
        self._next_build[which] = ended + min(MAX_SPACING_SECONDS, BUILD_SPACING * (ended - t))
        self.builds += 1
        snap = self._held[which] = Snapshot(value, key, t, now if now is not None else 0.0, number)
        return snap

    def _refresh_apart(self, which: Any, lock: threading.Lock, apart: Callable[[], tuple[int, T]],
                       now: float | None) -> None:
        """One thread at a time per ``which`` builds the next snapshot in the background."""
        with self._guard:
            if which in self._refreshing:
                return
            self._refreshing.add(which)

        def run() -> None:
            try:
                with lock:
                    if self._young(self._held.get(which), 0, now):
                        return  # a reader's own build got there first
                    self._build_and_keep(which, apart, now)
            except Exception:  # the next reader builds in its own request and sees the error there
                log.warning("building the board in the background failed", exc_info=True)
            finally:
                with self._guard:
                    self._refreshing.discard(which)

        threading.Thread(target=run, daemon=True, name="board-snapshot").start()

    def clear(self) -> None:
        with self._guard:
            self._held.clear()
            self._reads.clear()
