"""The one clock. Domain code takes ``now`` from here (or as an argument), never from ``datetime.now``.

A drill swaps in a ``VirtualClock`` and the whole system runs on virtual time.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class VirtualClock:
    """A clock that only moves when told to; thread-safe so jobs and the API may share it."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware start time")
        self._now = start.astimezone(dt.UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            if when.tzinfo is None:
                raise ValueError("aware datetime required")
            when = when.astimezone(dt.UTC)
            if when < self._now:
                raise ValueError("a virtual clock never goes back")
            self._now = when

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        with self._lock:
            self._now += delta
            return self._now


def to_local(when: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """ISO 8601 in the display zone, for people; storage and APIs keep UTC offsets explicit."""
    if when is None:
        return None
    return when.astimezone(tz).isoformat(timespec="seconds")
