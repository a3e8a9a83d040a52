"""The drill's only provider: in-process, records every message, fails a share of requests on purpose.

A drill must never reach a real phone, so the runner installs this under every provider name and
clears the Twilio settings of the runtime it drives. Failures are chosen by a hash of the message
(not by a random generator), so the same scenario fails the same requests on every run.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable

from responses.messaging.notifiers.base import NotifierError, TransientError
from responses.messaging.notifiers.fake import FakeNotifier


def fault_rule(rate: float, salt: str) -> Callable[[str, str], NotifierError | None]:
    """A deterministic share ``rate`` of requests fail as a provider 503 (the sender backs off and retries)."""
    seen: Counter[tuple[str, str]] = Counter()

    def fail(kind: str, to: str) -> NotifierError | None:
        seen[(kind, to)] += 1
        digest = hashlib.sha256(f"{salt}|{kind}|{to}|{seen[(kind, to)]}".encode()).digest()
        if int.from_bytes(digest[:4], "big") / 2**32 < rate:
            return TransientError("演练模拟的服务商故障 / simulated provider fault", code="drill_fault", status=503)
        return None

    return fail


def drill_notifier(rate: float = 0.0, salt: str = "drill") -> FakeNotifier:
    return FakeNotifier(name="drill", fail=fault_rule(rate, salt) if rate > 0 else None)
