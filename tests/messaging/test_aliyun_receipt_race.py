"""A delivery receipt pushed before the sender has written down the provider's answer (the fake, like the
provider, pushes as soon as it accepts): the row must still end up naming the provider that carried it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from responses.messaging import outbox
from responses.messaging.models import OutboxMessage


def test_a_receipt_overtaking_the_sender_keeps_the_carrying_provider(engine: Engine, clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    with session_scope(f) as s:  # enqueued as for the default provider; the settings route SMS to Alibaba Cloud
        mid = outbox.enqueue(s, now=clock.now(), channel="sms", to="+8613800000001", body="正文",
                             template="callout_sms", params={"kind": "callout"}, idempotency_key="race").id
    with session_scope(f) as s:
        [claimed] = outbox.claim(s, now=clock.now(), worker="w1", limit=5, lease=dt.timedelta(seconds=30))
        assert claimed.provider == "twilio"
    with session_scope(f) as s:  # the receipt arrives first, naming the message by its OutId
        msg, changed = outbox.apply_provider_status(s, now=clock.now(), status="delivered", message_id=mid,
                                                    provider_id="000001^880000000001")
        assert changed and msg is not None and msg.state == "delivered"
    with session_scope(f) as s:
        outbox.apply_results(s, [outbox.SendResult(mid, "w1", "sent", provider_id="000001^880000000001",
                                                   provider="aliyun")], now=clock.now())
    with session_scope(f) as s:
        m = s.get(OutboxMessage, mid)
        assert m is not None
        assert (m.state, m.provider, m.provider_id) == ("delivered", "aliyun", "000001^880000000001")
