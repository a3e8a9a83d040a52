"""The provider account's request limit, shared by every sender on the database.

A provider counts requests per account, not per process: three ``jiaoying worker`` processes and the
sending child of each ``jiaoying serve`` together must stay under the account's limit. The account's
schedule is one row (``send_rate_slot``): the next free send slot, in microseconds on the database's
clock. A sender books ``n`` consecutive slots with one statement::

    UPDATE send_rate_slot SET next_slot_us = greatest(next_slot_us, <db now>) + n * interval
    WHERE account = :account RETURNING next_slot_us, <db now>

The row lock makes the booking atomic on PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` does the same), so no
two senders ever hold the same slot, and slots never come closer than ``interval`` whatever the number of
processes. Every time is the database's: the reply carries the database's "now", so a slot becomes a wait
on the sender's own monotonic clock (slot - now) and clocks that disagree between hosts do not matter.

Cost: one short transaction per booking, and a booking takes as many slots as the sender's threads are
waiting for, at most a quarter of a second's worth, so a busy sender makes a few round trips a second
whatever the rate; an idle one makes none.

Lateness: a request never leaves before its slot, and at most ``max_late`` seconds after it; a slot its
sender could not use by then (its threads were busy, a booking came back late, the thread woke from its wait
too late) is dropped rather than used later. Any one-second window then holds requests of slots from an open
span of 1 + ``max_late`` seconds only: at most ``rate × (1 + max_late)`` of them. The sender paces at
``headroom`` of the account's limit and allows half of the rest as lateness (``max_late = (1/headroom − 1)/2``,
0.125 s at 80 %), so a second holds at most 90 % of the limit and the last 10 % is left to the network's
jitter. A lateness of one slot interval instead (the first design) dropped most slots on a loaded machine,
whose threads routinely wake a few milliseconds late: a district's fan-out went out at a fifth of the rate.
Dropped slots only cost throughput, never the limit.

Alternatives weighed: per-second counters (a row per account and second) let the requests of one
second leave together at its start and land at the provider in one burst, whose edge a sliding-window
provider counts twice; splitting the rate between instances by the leader needs a membership protocol
and wastes the share of an idle instance.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import BigInteger, String, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from config.database import Base

log = logging.getLogger("jiaoying.sender")

LOOKAHEAD_SECONDS = 0.25  # the most a single booking reserves of the account's schedule


class SendSlot(Base):
    """One provider account's schedule: the next slot nobody has booked yet."""

    __tablename__ = "send_rate_slot"

    account: Mapped[str] = mapped_column(String(120), primary_key=True)
    next_slot_us: Mapped[int] = mapped_column(BigInteger, default=0)


_PG_BOOK = text(
    "WITH t AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us) "
    "UPDATE send_rate_slot SET next_slot_us = greatest(next_slot_us, (SELECT us FROM t)) + :span "
    "WHERE account = :account RETURNING next_slot_us, (SELECT us FROM t)"
)
_SQLITE_BOOK = text(
    "UPDATE send_rate_slot SET next_slot_us = max(next_slot_us, :now) + :span "
    "WHERE account = :account RETURNING next_slot_us, :now"
)


def book(session: Session, account: str, n: int, interval_us: int) -> tuple[list[int], int]:
    """Book ``n`` consecutive slots of ``account``; returns their times and the database's now (µs).

    The caller commits (the row stays locked until then, so keep the transaction this short).
    """
    if n < 1 or interval_us < 1:
        raise ValueError("book at least one slot, at a positive interval")
    dialect = session.get_bind().dialect.name
    span = n * interval_us
    for _ in range(2):
        if dialect == "postgresql":
            row = session.execute(_PG_BOOK, {"account": account, "span": span}).first()
        else:
            row = session.execute(_SQLITE_BOOK, {"account": account, "span": span,
                                                 "now": int(time.time() * 1_000_000)}).first()
        if row is not None:
            end, now = int(row[0]), int(row[1])
            start = end - span
            return [start + i * interval_us for i in range(n)], now
        # the account's first booking ever: create its row (another sender may do it at the same moment)
        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(SendSlot)
        session.execute(ins.values(account=account, next_slot_us=0).on_conflict_do_nothing())
    raise RuntimeError(f"no schedule row for {account!r}")  # pragma: no cover - the insert above makes one


class SharedRateLimiter:
    """At most ``rate`` requests per second for one account, across every process on the database.

    Same contract as the in-process ``TokenBucket``: ``acquire`` blocks the calling thread until its
    request may leave and returns how long it waited. Threads of one sender take the booked slots in
    order; the booking itself is serialized in the process (one round trip at a time).
    """

    def __init__(self, session_factory: sessionmaker[Session], account: str, rate: float, *,
                 lookahead: float = LOOKAHEAD_SECONDS, max_late: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if max_late is not None and max_late < 0:
            raise ValueError("max_late must not be negative")
        self.factory, self.account, self.rate = session_factory, account, rate
        self.interval_us = max(1, round(1_000_000 / rate))
        # how long after its slot a request may still leave (seconds); by default one slot interval
        self.max_late = self.interval_us / 1_000_000 if max_late is None else max_late
        self.max_batch = max(1, math.floor(rate * lookahead))
        self._mono, self._sleep = monotonic, sleep
        self._slots: deque[float] = deque()  # booked slots as times on our monotonic clock
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._waiting = 0
        self.bookings = 0
        self.dropped = 0

    def _book(self, n: int) -> None:
        session = self.factory()
        try:
            slots, db_now = book(session, self.account, n, self.interval_us)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        # The database's now was read during the statement, a little before this line: mapping from here
        # puts every slot slightly later than booked, which is the safe side.
        ref = self._mono()
        self._slots.extend(ref + (s - db_now) / 1_000_000 for s in slots)
        self.bookings += 1

    def _take(self) -> float:
        with self._lock:
            while True:
                late = self._mono() - self.max_late
                while self._slots and self._slots[0] < late:
                    self._slots.popleft()
                    self.dropped += 1
                if self._slots:
                    return self._slots.popleft()
                with self._count_lock:
                    n = min(self.max_batch, max(1, self._waiting))
                self._book(n)

    def acquire(self) -> float:
        """Wait for a slot. A thread that wakes up more than ``max_late`` after its slot (a busy machine: the
        process was not scheduled, the interpreter lock was held) gives the slot up and takes another, like a
        queued slot gone by: its request would land among the following slots' requests, and enough such in a
        second would exceed the provider's count (the module docstring has the bound)."""
        late_s = self.max_late
        waited = 0.0
        while True:
            with self._count_lock:
                self._waiting += 1
            try:
                at = self._take()
            finally:
                with self._count_lock:
                    self._waiting -= 1
            wait_s = at - self._mono()
            if wait_s > 0:
                self._sleep(wait_s)
                waited += wait_s
            if self._mono() - at <= late_s:
                return waited
            with self._lock:
                self.dropped += 1
