"""What the fake Twilio remembers and decides: accounts, recorded requests, the rate it sees,
messages and calls, and which requests get a fault. No I/O here; ``app.py`` does the HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Faults:
    """Fault rates (0..1) applied to API requests, drawn from a seeded generator."""

    server_error: float = 0.0  # 500 / 503
    rate_limited: float = 0.0  # 429, Twilio code 20429
    timeout: float = 0.0  # hold the request ``timeout_seconds``, then 504
    invalid_number: float = 0.0  # share of numbers that are invalid (decided per number, so retries agree)
    timeout_seconds: float = 5.0
    seed: int = 0
    invalid_numbers: list[str] = field(default_factory=list)  # always 21211
    blocked_numbers: list[str] = field(default_factory=list)  # always 21610 (opted out)

    @property
    def total(self) -> float:
        return self.server_error + self.rate_limited + self.timeout


@dataclass
class FakeConfig:
    accounts: dict[str, str] = field(default_factory=lambda: {"AC" + "0" * 32: "fake-auth-token"})
    phone_number: str = "+15005550006"  # the number replies are addressed to
    sms_url: str | None = None  # where inbound SMS are posted (the number's webhook)
    callbacks: bool = True
    deliver: bool = True  # SMS end delivered (else undelivered, error 30003)
    auto_answer: bool = True  # calls are answered, their TwiML fetched
    unanswered_numbers: list[str] = field(default_factory=list)  # these calls end no-answer
    callback_delay: float = 0.0
    response_delay: float = 0.0  # seconds each accepted API request is held, like a provider's latency
    faults: Faults = field(default_factory=Faults)


@dataclass
class Recorded:
    seq: int
    at: str
    method: str
    path: str
    account: str | None
    params: dict[str, Any]
    status: int
    fault: str | None = None
    sid: str | None = None


class RateMeter:
    """Requests per account in any 1-second window, the way a provider would count them."""

    def __init__(self, monotonic: Any = time.monotonic) -> None:
        self._clock = monotonic
        self._windows: dict[str, deque[float]] = {}
        self.max_per_second: dict[str, int] = {}
        self.total: dict[str, int] = {}

    def hit(self, account: str) -> int:
        t = self._clock()
        dq = self._windows.setdefault(account, deque())
        dq.append(t)
        while dq and dq[0] <= t - 1.0:
            dq.popleft()
        n = len(dq)
        if n > self.max_per_second.get(account, 0):
            self.max_per_second[account] = n
        self.total[account] = self.total.get(account, 0) + 1
        return n


class FakeTwilio:
    def __init__(self, config: FakeConfig | None = None) -> None:
        self.config = config or FakeConfig()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.rng = random.Random(self.config.faults.seed)
            self.requests: list[Recorded] = []
            self.messages: dict[str, dict[str, Any]] = {}
            self.calls: dict[str, dict[str, Any]] = {}
            self.callbacks: list[dict[str, Any]] = []
            self.inbound: list[dict[str, Any]] = []
            self.meter = RateMeter()
            self.faults_seen: dict[str, int] = {}
            self._seq = itertools.count(1)
            self._sids = itertools.count(1)

    def set_faults(self, **changes: Any) -> Faults:
        with self.lock:
            f = Faults(**{**asdict(self.config.faults), **changes})
            self.config.faults = f
            self.rng = random.Random(f.seed)
            return f

    # --- decisions ---------------------------------------------------------------------------
    def new_sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._sids):032x}"

    def number_fault(self, to: str) -> tuple[int, str] | None:
        f = self.config.faults
        if to in f.blocked_numbers:
            return 21610, "Attempt to send to unsubscribed recipient"
        if to in f.invalid_numbers:
            return 21211, f"The 'To' number {to} is not a valid phone number."
        if f.invalid_number > 0:
            h = int(hashlib.sha256(f"{f.seed}:{to}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            if h < f.invalid_number:
                return 21211, f"The 'To' number {to} is not a valid phone number."
        return None

    def draw_fault(self) -> str | None:
        """server_error | rate_limited | timeout | None, from the seeded generator."""
        f = self.config.faults
        with self.lock:
            x = self.rng.random()
        if x < f.server_error:
            return "server_error"
        if x < f.server_error + f.rate_limited:
            return "rate_limited"
        if x < f.total:
            return "timeout"
        return None

    def record(self, method: str, path: str, account: str | None, params: dict[str, Any], status: int,
               fault: str | None = None, sid: str | None = None) -> Recorded:
        with self.lock:
            rec = Recorded(next(self._seq), dt.datetime.now(dt.UTC).isoformat(), method, path, account, params,
                           status, fault, sid)
            self.requests.append(rec)
            if fault:
                self.faults_seen[fault] = self.faults_seen.get(fault, 0) + 1
            return rec

    def hit(self, account: str) -> None:
        with self.lock:
            self.meter.hit(account)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            accepted = sum(1 for r in self.requests if r.status in (200, 201))
            return {
                "requests": len(self.requests),
                "accepted": accepted,
                "messages": len(self.messages),
                "calls": len(self.calls),
                "faults": dict(self.faults_seen),
                "max_per_second": dict(self.meter.max_per_second),
                "total_per_account": dict(self.meter.total),
                "callbacks": len(self.callbacks),
                "callbacks_failed": sum(1 for c in self.callbacks if not (200 <= (c.get("status") or 0) < 300)),
                "inbound": len(self.inbound),
            }
