"""The sender's job ticks every second whatever the general tick: a run is bounded to most of a tick,
so at the general tick a run that overran its budget made the scheduler skip a whole tick, and a
large fan-out paused for seconds at a time (seen by bench/load.py). The callout sweep ticks twice as often: its
tick bounds the lag from a deadline to the escalation."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from config.database import make_session_factory
from config.runtime import Runtime
from jiaoying.scheduler import SEND_TICK_SECONDS, job_specs
from tests.conftest import test_settings as base_settings


def _specs(sqlite_engine: Engine, clock, tick: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    base = base_settings()
    settings = base.model_copy(update={"scheduler": base.scheduler.model_copy(update={"tick_seconds": tick})})
    rt = Runtime(settings, sqlite_engine, make_session_factory(sqlite_engine), clock)
    return {s.name: s.seconds for s in job_specs(rt)}


def test_the_sender_ticks_every_second_at_the_default_tick(sqlite_engine: Engine, clock) -> None:  # type: ignore[no-untyped-def]
    specs = _specs(sqlite_engine, clock, 5.0)
    assert SEND_TICK_SECONDS == 1.0
    assert specs["outbox_send"] == 1.0
    assert specs["callouts_sweep"] == 0.5
    assert specs["feeds_poll"] == 5.0  # the general tick still paces the rest


def test_a_faster_general_tick_is_kept_for_the_sender(sqlite_engine: Engine, clock) -> None:  # type: ignore[no-untyped-def]
    assert _specs(sqlite_engine, clock, 0.5)["outbox_send"] == 0.5
