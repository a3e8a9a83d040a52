"""The measures catch-up sweep re-syncs only runs that changed (or once an hour), and still catches up."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from config.database import session_scope
from config.runtime import Runtime
from responses.measures import jobs as measure_jobs
from responses.measures import service as measure_service
from responses.runs import service
from responses.runs.core import Trigger
from warning.models import Warning

from .conftest import VILLAGES, make_region  # noqa: TID252

STOP_SCHOOL = {"kind": "stop_school", "targets": {"area_levels": ["village"]}, "deadline_minutes": 600,
               "responsible_unit": "区教育局"}


def _start(s: Session, now: dt.datetime) -> int:
    region = make_region(s, now)
    w = s.get(Warning, region.warning_id)
    assert w is not None
    run, _ = service.start_run(s, warning=w, level="orange", areas={**w.affected, "villages": VILLAGES[:2]},
                               trigger=Trigger.DECISION, actor="user:leader", now=now, measures=[STOP_SCHOOL])
    assert run is not None
    return run.id


def test_sweep_skips_unchanged_runs_and_catches_up_changed_ones(runtime: Runtime,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(runtime.session_factory) as s:
        run_id = _start(s, runtime.now())
    synced: list[int] = []
    real = measure_service.sync_run

    def counting(session: Session, run: Any, **kw: Any) -> Any:
        synced.append(run.id)
        return real(session, run, **kw)

    monkeypatch.setattr(measure_service, "sync_run", counting)
    measure_jobs.measures_sweep(runtime)
    assert synced == [run_id]  # first sweep of this process: every open run
    measure_jobs.measures_sweep(runtime)
    measure_jobs.measures_sweep(runtime)
    assert synced == [run_id], "an unchanged run is not synced again"

    # The run changes without its hook (as if the hook had failed): the next sweep catches the order up.
    runtime.clock.advance(dt.timedelta(minutes=5))  # type: ignore[attr-defined]
    with session_scope(runtime.session_factory) as s:
        run = service.get_run(s, run_id)
        assert run is not None
        run.areas = {**run.areas, "villages": VILLAGES}
        run.updated_at = runtime.now()
    measure_jobs.measures_sweep(runtime)
    assert synced == [run_id, run_id]
    with session_scope(runtime.session_factory) as s:
        [order] = measure_service.for_run(s, run_id)
        assert order.area_codes == VILLAGES
    measure_jobs.measures_sweep(runtime)
    assert len(synced) == 2

    # An hour on, every open run is synced once more; and after a restart (fresh runtime state), too.
    runtime.clock.advance(measure_jobs.FULL_SYNC_EVERY)  # type: ignore[attr-defined]
    measure_jobs.measures_sweep(runtime)
    assert len(synced) == 3
    runtime.state.pop(measure_jobs.SYNCED)
    measure_jobs.measures_sweep(runtime)
    assert len(synced) == 4
