"""The issue's fault acceptance: 30% of provider requests fail (5xx, 429, timeouts), every message
is eventually accepted, and the fake provider's own count shows the rate limit was never exceeded."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from responses.messaging import outbox
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.models import OutboxMessage
from responses.messaging.notifiers.twilio import TwilioNotifier
from responses.messaging.sender import Sender, SenderConfig

LIMIT = 20.0


def test_faults_are_retried_until_accepted_within_the_rate_limit(engine: Engine, clock: VirtualClock,
                                                                 fake_server: FakeTwilioServer, tw: type) -> None:
    fake = fake_server.fake
    fake.set_faults(server_error=0.1, rate_limited=0.1, timeout=0.1, timeout_seconds=1.0, seed=7)
    f = make_session_factory(engine)
    n = 60
    with session_scope(f) as s:
        for i in range(n):
            outbox.enqueue(s, now=clock.now(), channel="voice" if i % 5 == 0 else "sms", to=f"+86139{i:08d}",
                           body=f"【叫应】测试{i}", idempotency_key=f"m{i}", max_attempts=50)
    notifier = TwilioNotifier(tw.sid, tw.token, tw.from_number, api_base_url=fake_server.url, timeout=0.4)
    sender = Sender(f, {"twilio": notifier}, clock=clock, seed=3,
                    config=SenderConfig(concurrency=6, rate_per_second=LIMIT, backoff_base=0.5, backoff_cap=5.0,
                                        public_base_url=None))
    rounds = 0
    try:
        while rounds < 40:
            rounds += 1
            sender.run_once()
            with session_scope(f) as s:
                if outbox.counts(s).get("sent", 0) == n:
                    break
            clock.advance(dt.timedelta(seconds=10))
    finally:
        sender.close()
        notifier.close()
    stats = fake.stats()
    with session_scope(f) as s:
        assert outbox.counts(s) == {"sent": n}, outbox.counts(s)
        pids = set(s.execute(select(OutboxMessage.provider_id)).scalars())
        retried = s.execute(select(OutboxMessage.id).where(OutboxMessage.attempts > 1)).all()
    assert pids <= set(fake.messages) | set(fake.calls)
    # faults really happened, of every kind, and were retried
    assert set(stats["faults"]) == {"server_error", "rate_limited", "timeout"}, stats
    failed_share = sum(stats["faults"].values()) / stats["requests"]
    assert 0.15 <= failed_share <= 0.45, stats
    assert len(retried) >= 5
    # the provider's own count: never more than LIMIT requests in any one-second window
    assert stats["max_per_second"][tw.sid] <= LIMIT, stats
    assert stats["max_per_second"][tw.sid] >= LIMIT * 0.5  # and the limit was actually approached
