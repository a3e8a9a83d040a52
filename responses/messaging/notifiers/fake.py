"""An in-process notifier for pure unit tests: records what it was asked to send, fails on
command. Everything that talks HTTP is tested against the fake Twilio server instead."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from responses.messaging.notifiers.base import NotifierError


@dataclass
class SentItem:
    kind: str  # sms | call
    to: str
    body: str | None
    callback: str | None
    provider_id: str


@dataclass
class FakeNotifier:
    name: str = "fake"
    # called before each send; may raise a TransientError / PermanentError to simulate a failure
    fail: Callable[[str, str], NotifierError | None] | None = None
    sent: list[SentItem] = field(default_factory=list)
    per_number: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _record(self, kind: str, to: str, body: str | None, callback: str | None) -> str:
        if self.fail is not None:
            err = self.fail(kind, to)
            if err is not None:
                raise err
        with self._lock:
            pid = f"{'SM' if kind == 'sms' else 'CA'}{next(self._ids):032x}"
            self.sent.append(SentItem(kind, to, body, callback, pid))
            self.per_number[to] += 1
        return pid

    def send_sms(self, to: str, body: str, status_callback_url: str | None, *,
                 from_number: str | None = None, validity_seconds: int | None = None) -> str:
        return self._record("sms", to, body, status_callback_url)

    def place_call(self, to: str, *, twiml_url: str | None = None, twiml: str | None = None,
                   status_callback_url: str | None = None, from_number: str | None = None) -> str:
        return self._record("call", to, twiml or twiml_url, status_callback_url)
