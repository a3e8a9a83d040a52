"""Message states and the forward-only rule (pure).

Providers report statuses out of order (a ``sent`` callback can overtake ``delivered``, and a
callback can arrive before the sender has recorded the request's answer). Ranking the states and
only ever moving up means the last word is always the furthest one, whatever the arrival order.
"""

from __future__ import annotations

import datetime as dt
import random
from enum import StrEnum


class State(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"


TERMINAL = frozenset({State.DELIVERED, State.FAILED, State.EXPIRED})

_RANK = {
    State.QUEUED: 0,
    State.CLAIMED: 1,
    State.SENT: 2,
    State.DELIVERED: 3,
    State.FAILED: 3,
    State.EXPIRED: 3,
}

# Twilio's message and call statuses, mapped onto ours. A call that was answered ("completed",
# "in-progress", "answered") reached the person; busy / no-answer / canceled did not.
PROVIDER_STATUS = {
    "accepted": State.SENT,
    "scheduled": State.SENT,
    "queued": State.SENT,
    "sending": State.SENT,
    "sent": State.SENT,
    "initiated": State.SENT,
    "ringing": State.SENT,
    "delivered": State.DELIVERED,
    "read": State.DELIVERED,
    "received": State.DELIVERED,
    "in-progress": State.DELIVERED,
    "answered": State.DELIVERED,
    "completed": State.DELIVERED,
    "undelivered": State.FAILED,
    "failed": State.FAILED,
    "canceled": State.FAILED,
    "busy": State.FAILED,
    "no-answer": State.FAILED,
}


def rank(state: str) -> int:
    return _RANK[State(state)]


def moves_forward(current: str, new: str) -> bool:
    """True when ``new`` is further along than ``current``; terminal states never change."""
    cur = State(current)
    if cur in TERMINAL:
        return False
    return _RANK[State(new)] > _RANK[cur]


def from_provider(status: str) -> State | None:
    return PROVIDER_STATUS.get(status.strip().lower())


def backoff(attempt: int, *, base: float = 2.0, cap: float = 300.0, jitter: float = 0.2,
            rng: random.Random | None = None) -> dt.timedelta:
    """Delay before try ``attempt + 1``: exponential, capped, with jitter so retries of a burst
    that failed together do not come back together."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    if jitter and rng is not None:
        delay *= 1 + rng.uniform(-jitter, jitter)
    return dt.timedelta(seconds=max(0.0, delay))


def is_stale(validity_until: dt.datetime | None, now: dt.datetime) -> bool:
    return validity_until is not None and now >= validity_until
