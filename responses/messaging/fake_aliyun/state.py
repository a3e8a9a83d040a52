"""What the fake Alibaba Cloud remembers and decides: access keys, recorded requests, the request rate per
access key, SMS and calls, and which requests get a fault. No I/O here; ``app.py`` does the HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from responses.messaging.fake_twilio.state import RateMeter

FAULT_KINDS = ("throttled", "rate_limited", "server_error", "timeout")


@dataclass
class Faults:
    """Fault rates (0..1) applied to API requests, drawn from a seeded generator.

    ``throttled``: HTTP 200 with ``isv.BUSINESS_LIMIT_CONTROL`` (the per-number limit, as SendSms answers it);
    ``rate_limited``: the gateway's ``Throttling.User`` (HTTP 429, ``x-acs-retry-after`` in ms);
    ``server_error``: alternately HTTP 503 ``ServiceUnavailable`` and HTTP 200 ``isp.SYSTEM_ERROR``;
    ``timeout``: the request is held ``timeout_seconds`` (the client gives up first), then 504.
    """

    throttled: float = 0.0
    rate_limited: float = 0.0
    server_error: float = 0.0
    timeout: float = 0.0
    invalid_number: float = 0.0  # share of numbers refused as invalid (decided per number, so retries agree)
    timeout_seconds: float = 5.0
    retry_after_ms: int = 200  # what a Throttling.User answer asks the client to wait
    seed: int = 0
    invalid_numbers: list[str] = field(default_factory=list)  # always isv.MOBILE_NUMBER_ILLEGAL (domestic form)

    @property
    def total(self) -> float:
        return self.throttled + self.rate_limited + self.server_error + self.timeout


@dataclass
class FakeConfig:
    accounts: dict[str, str] = field(default_factory=lambda: {"LTAIfake0000000000000000": "fake-access-secret"})
    # where pushes go: ``{push_base_url}/sms-report`` etc. (Jiaoying's ``/webhooks/aliyun/{token}``); None: none
    push_base_url: str | None = None
    auto_report: bool = True  # push a delivery receipt / call record for every accepted request
    deliver: bool = True  # SMS receipts say delivered (else failed, err_code UNDELIVERED)
    unanswered_numbers: list[str] = field(default_factory=list)  # their calls end 200003 (no answer)
    report_delay: float = 0.0
    response_delay: float = 0.0  # seconds each accepted API request is held, like a provider's latency
    dest_code: str = "1069000000"  # the number replies are addressed to
    max_skew_seconds: float = 900.0  # x-acs-date must be within this of the fake's clock
    faults: Faults = field(default_factory=Faults)


@dataclass
class Recorded:
    seq: int
    at: str
    action: str
    account: str | None
    params: dict[str, Any]
    status: int
    code: str
    fault: str | None = None
    provider_id: str | None = None


class FakeAliyun:
    def __init__(self, config: FakeConfig | None = None) -> None:
        self.config = config or FakeConfig()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.rng = random.Random(self.config.faults.seed)
            self.requests: list[Recorded] = []
            self.sms: dict[str, dict[str, Any]] = {}  # BizId -> what was sent
            self.calls: dict[str, dict[str, Any]] = {}  # CallId -> the call
            self.pushes: list[dict[str, Any]] = []
            self.meter = RateMeter()
            self.faults_seen: dict[str, int] = {}
            self.nonces: deque[str] = deque(maxlen=100_000)
            self._nonce_set: set[str] = set()
            self._seq = itertools.count(1)
            self._ids = itertools.count(1)
            self._sequence = itertools.count(1)
            self._server_errors = itertools.count()

    def set_faults(self, **changes: Any) -> Faults:
        unknown = set(changes) - set(asdict(self.config.faults))
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        with self.lock:
            f = Faults(**{**asdict(self.config.faults), **changes})
            for name in (*FAULT_KINDS, "invalid_number"):
                if not 0.0 <= getattr(f, name) <= 1.0:
                    raise ValueError(f"{name} must be between 0 and 1")
            if f.total > 1.0:
                raise ValueError("fault rates add up to more than 1")
            self.config.faults = f
            self.rng = random.Random(f.seed)
            return f

    # --- decisions ---------------------------------------------------------------------------
    def new_id(self, kind: str) -> str:
        n = next(self._ids)
        return f"{n:06d}^{880000000000 + n}" if kind == "sms" else f"{116000000 + n}^{1000000000 + n}"

    def next_sequence(self) -> int:
        return next(self._sequence)

    def nonce_used(self, nonce: str) -> bool:
        """True if ``nonce`` was seen before (a replayed request); remembers it otherwise."""
        with self.lock:
            if nonce in self._nonce_set:
                return True
            if len(self.nonces) == self.nonces.maxlen:
                self._nonce_set.discard(self.nonces[0])
            self.nonces.append(nonce)
            self._nonce_set.add(nonce)
            return False

    def invalid(self, number: str) -> bool:
        f = self.config.faults
        if number in f.invalid_numbers or f"+86{number}" in f.invalid_numbers:
            return True
        if f.invalid_number > 0:
            h = int(hashlib.sha256(f"{f.seed}:{number}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            return h < f.invalid_number
        return False

    def draw_fault(self) -> str | None:
        f = self.config.faults
        if f.total <= 0:
            return None
        with self.lock:
            x = self.rng.random()
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(f, kind)
            if x < edge:
                return kind
        return None

    def server_error_form(self) -> str:
        """Alternates the two ways the provider fails: an HTTP 503 and a 200 carrying isp.SYSTEM_ERROR."""
        with self.lock:
            return "http" if next(self._server_errors) % 2 == 0 else "body"

    def record(self, action: str, account: str | None, params: dict[str, Any], status: int, code: str,
               fault: str | None = None, provider_id: str | None = None) -> Recorded:
        with self.lock:
            rec = Recorded(next(self._seq), dt.datetime.now(dt.UTC).isoformat(), action, account, params, status,
                           code, fault, provider_id)
            self.requests.append(rec)
            if fault:
                self.faults_seen[fault] = self.faults_seen.get(fault, 0) + 1
            return rec

    def hit(self, account: str) -> None:
        with self.lock:
            self.meter.hit(account)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": len(self.requests),
                "accepted": sum(1 for r in self.requests if r.code == "OK"),
                "sms": len(self.sms),
                "calls": len(self.calls),
                "faults": dict(self.faults_seen),
                "max_per_second": dict(self.meter.max_per_second),
                "total_per_account": dict(self.meter.total),
                "pushes": len(self.pushes),
                "pushes_failed": sum(1 for p in self.pushes if not (200 <= (p.get("status") or 0) < 300)),
            }
