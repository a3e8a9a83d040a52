from __future__ import annotations

import datetime as dt
import random

import pytest

from responses.messaging.core import State, backoff, from_provider, moves_forward
from responses.messaging.sender import SenderConfig, TokenBucket, claim_size


def test_forward_only() -> None:
    assert moves_forward("queued", "sent") and moves_forward("claimed", "delivered")
    assert not moves_forward("delivered", "sent")
    assert not moves_forward("sent", "sent")
    assert not moves_forward("sent", "queued")
    for terminal in ("delivered", "failed", "expired"):
        for new in State:
            assert not moves_forward(terminal, new)


def test_provider_statuses() -> None:
    assert from_provider("delivered") is State.DELIVERED
    assert from_provider("undelivered") is State.FAILED
    assert from_provider("no-answer") is State.FAILED
    assert from_provider("in-progress") is State.DELIVERED
    assert from_provider("ringing") is State.SENT
    assert from_provider("made-up") is None


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(n, base=2, cap=60).total_seconds() for n in range(1, 9)]
    assert delays == [2, 4, 8, 16, 32, 60, 60, 60]
    rng = random.Random(1)
    jittered = backoff(3, base=2, cap=60, jitter=0.2, rng=rng)
    assert dt.timedelta(seconds=6.4) <= jittered <= dt.timedelta(seconds=9.6)


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def test_token_bucket_paces_to_the_rate() -> None:
    ft = FakeTime()
    bucket = TokenBucket(10.0, 1.0, clock=ft.now, sleep=ft.sleep)
    starts = []
    for _ in range(50):
        bucket.acquire()
        starts.append(ft.t)
    # no 1-second window [t, t+1) holds more than 10 starts
    for s in starts:
        assert sum(1 for x in starts if s <= x < s + 1.0) <= 10
    assert starts[-1] - starts[0] == pytest.approx(4.9)


def test_token_bucket_refills_after_idle() -> None:
    ft = FakeTime()
    bucket = TokenBucket(5.0, 1.0, clock=ft.now, sleep=ft.sleep)
    bucket.acquire()
    ft.t += 10
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.2)


def test_a_claim_is_never_more_than_a_third_of_the_lease_at_the_paced_rate() -> None:
    """A slow account's rows must go out long before their claim runs out, or a second sender takes them too."""
    assert claim_size(SenderConfig(rate_per_second=None)) == 64  # no limit: the batch
    assert claim_size(SenderConfig(rate_per_second=1.0)) == 8  # 0.8/s × 30 s ÷ 3
    assert claim_size(SenderConfig(rate_per_second=100.0)) == 64  # the batch caps a fast account
    assert claim_size(SenderConfig(rate_per_second=0.05)) == 1  # never nothing
    slow = SenderConfig(rate_per_second=1.0, lease=dt.timedelta(seconds=120))
    assert claim_size(slow) == 32
