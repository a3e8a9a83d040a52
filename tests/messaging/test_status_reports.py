"""Provider status callbacks stored as they come and applied many at a time: a lone callback is applied
before its answer, one that arrives while another applier works is applied by that one, a report the
handler cannot take is kept with its error while the rest go on, and one left behind is picked up."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.eventlog import Event, verify
from config.runtime import Runtime
from jiaoying.app import create_app
from responses.messaging import outbox, status_reports
from responses.messaging.models import MessageStatus, OutboxMessage, ProviderReport
from responses.messaging.webhooks import set_status_handler


@pytest.fixture
def wh(twilio_app: Any) -> tuple[TestClient, Runtime, list[int]]:
    c, rt, app = twilio_app
    ended: list[int] = []
    set_status_handler(app, lambda _s, m: ended.append(m.id))
    return c, rt, ended


def _messages(rt: Runtime, n: int) -> list[int]:
    with session_scope(rt.session_factory) as s:
        ids = []
        for i in range(n):
            m = outbox.enqueue(s, now=rt.now(), channel="sms", to=f"+86138000{i:05d}", idempotency_key=f"sr-{i}",
                               subject_type="test", subject_id=i, body="【叫应】测试")
            s.flush()
            m.state, m.provider_id = "sent", f"SM{m.id}"
            ids.append(m.id)
        return ids


def _callback(c: TestClient, tw: Any, mid: int, status: str) -> int:
    path = f"/twilio/status?m={mid}"
    params = {"MessageSid": f"SM{mid}", "MessageStatus": status, "AccountSid": tw.sid}
    return c.post(path, data=params, headers=tw.sign(tw.public + path, params)).status_code


def _states(rt: Runtime, ids: list[int]) -> list[str]:
    with session_scope(rt.session_factory) as s:
        return [s.get(OutboxMessage, i).state for i in ids]  # type: ignore[union-attr]


def _waiting(rt: Runtime) -> int:
    with session_scope(rt.session_factory) as s:
        return status_reports.waiting(s)


def _store(rt: Runtime, mid: int | None, status: str, provider_id: str | None = None) -> None:
    with session_scope(rt.session_factory) as s:
        status_reports.store(s, now=rt.now(), provider="twilio", status=status, message_id=mid,
                             provider_id=provider_id, error_code=None, raw={"MessageStatus": status})


def test_a_lone_callback_is_applied_before_its_answer(wh: Any, tw: Any) -> None:
    c, rt, ended = wh
    [mid] = _messages(rt, 1)
    assert _callback(c, tw, mid, "delivered") == 204
    assert _states(rt, [mid]) == ["delivered"] and ended == [mid]
    assert _waiting(rt) == 0
    with session_scope(rt.session_factory) as s:
        assert s.scalar(select(func.count()).select_from(ProviderReport)) == 0, "applied reports are removed"
        assert s.scalar(select(MessageStatus.detail).where(MessageStatus.source == "callback"))["MessageStatus"] \
            == "delivered", "the history keeps what the provider said"


@pytest.mark.postgres
def test_a_callback_while_another_applies_is_left_to_that_one(pg_engine: Engine, clock: VirtualClock,
                                                              tw: Any) -> None:
    """The applier at work is held inside its first report; a callback then is stored, answered at once and
    not applied by its own request; the applier looks again after its commit and applies it too. (On SQLite
    the callback's own write waits for the applier's commit: one writer at a time.)"""
    rt = Runtime(tw.settings(), pg_engine, make_session_factory(pg_engine), clock)
    app = create_app(rt.settings, runtime=rt, scheduler=False)
    ended: list[int] = []
    with TestClient(app) as c:
        set_status_handler(app, lambda _s, m: ended.append(m.id))
        _held_applier_leaves_the_callback(c, rt, tw, ended)


def _held_applier_leaves_the_callback(c: TestClient, rt: Runtime, tw: Any, ended: list[int]) -> None:
    first, second = _messages(rt, 2)
    _store(rt, first, "delivered")
    inside, go_on = threading.Event(), threading.Event()

    def slow_handler(_s: Session, m: OutboxMessage) -> None:
        ended.append(m.id)
        if m.id == first:
            inside.set()
            assert go_on.wait(20)

    applier = threading.Thread(target=lambda: status_reports.apply_pending(
        rt.session_factory, now=rt.now(), handler=slow_handler))
    applier.start()
    try:
        assert inside.wait(20)
        assert _callback(c, tw, second, "failed") == 204  # answered while the other applier holds the turn
        assert _states(rt, [second]) == ["sent"] and _waiting(rt) == 2
    finally:
        go_on.set()
        applier.join(20)
    assert _states(rt, [first, second]) == ["delivered", "failed"]
    assert _waiting(rt) == 0 and ended == [first, second]


def test_a_report_the_handler_cannot_take_is_kept_and_the_rest_go_on(engine: Engine, clock: VirtualClock,
                                                                      tw: Any) -> None:
    rt = Runtime(tw.settings(), engine, make_session_factory(engine), clock)
    ids = _messages(rt, 3)
    for mid in ids:
        _store(rt, mid, "delivered")
    _store(rt, None, "delivered", provider_id="SM-nobody-knows")

    def handler(_s: Session, m: OutboxMessage) -> None:
        if m.id == ids[1]:
            raise ValueError("no callout for this message")

    assert status_reports.apply_pending(rt.session_factory, now=rt.now(), handler=handler) == 4
    assert _states(rt, ids) == ["delivered", "sent", "delivered"], "the failed one's effects are rolled back"
    with session_scope(rt.session_factory) as s:
        [kept] = s.execute(select(ProviderReport)).scalars().all()
        assert kept.message_id == ids[1] and kept.failed_at is not None and "no callout" in (kept.error or "")
        actions = [e.action for e in s.execute(select(Event).order_by(Event.id)).scalars()]
        assert actions.count("webhook.report_failed") == 1 and actions.count("webhook.unknown_message") == 1
        assert actions.count("message.delivered") == 2
        assert verify(s).ok
    assert _waiting(rt) == 0, "a failed report is not tried again and again"
    assert status_reports.apply_pending(rt.session_factory, now=rt.now(), handler=handler) == 0


def test_many_reports_are_applied_in_batches_in_order(engine: Engine, clock: VirtualClock, tw: Any) -> None:
    rt = Runtime(tw.settings(), engine, make_session_factory(engine), clock)
    ids = _messages(rt, 12)
    for mid in ids:
        _store(rt, mid, "sent")
        _store(rt, mid, "delivered")
    _store(rt, ids[0], "queued")  # late: moves nothing back
    assert status_reports.apply_pending(rt.session_factory, now=rt.now(), handler=None, limit=5) == 25
    assert _states(rt, ids) == ["delivered"] * 12
    with session_scope(rt.session_factory) as s:
        hist = s.execute(select(MessageStatus.provider_status, MessageStatus.applied)
                         .where(MessageStatus.message_id == ids[0], MessageStatus.source == "callback")
                         .order_by(MessageStatus.id)).all()
        assert [tuple(h) for h in hist] == [("sent", False), ("delivered", True), ("queued", False)]


@pytest.mark.postgres
def test_on_postgresql_a_held_turn_leaves_the_report_to_the_tick(pg_engine: Engine, clock: VirtualClock,
                                                                tw: Any) -> None:
    """Another instance holds the appliers' lock (and then dies without looking again): the report waits,
    and the scheduler's tick applies it."""
    from jiaoying.scheduler import job_specs, run_job

    rt = Runtime(tw.settings(), pg_engine, make_session_factory(pg_engine), clock)
    [mid] = _messages(rt, 1)
    other = pg_engine.connect()
    try:
        other.execute(text(f"SELECT pg_advisory_lock({status_reports.LOCK_KEY_SQL})"))
        _store(rt, mid, "delivered")
        assert status_reports.apply_pending(rt.session_factory, now=rt.now(), handler=None) == 0
        assert _states(rt, [mid]) == ["sent"]
    finally:
        other.invalidate()  # the other instance is gone: its session ends, its lock with it
        other.close()
    [spec] = [s for s in job_specs(rt) if s.name == "provider_reports"]
    for _ in range(50):  # the server ends the dead session a moment after its connection closed
        run_job(rt, spec)
        if _states(rt, [mid]) == ["delivered"]:
            break
        time.sleep(0.1)
    assert _states(rt, [mid]) == ["delivered"] and _waiting(rt) == 0
