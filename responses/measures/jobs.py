"""Scheduled work for measures; every step is idempotent (orders are keyed, flags record that they were
raised), so a late or doubled tick catches up and no more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.database import session_scope
from config.runtime import Runtime
from responses.measures import service as measure_service
from responses.measures.models import MeasureOrder
from responses.runs.core import RunState
from responses.runs.models import ResponseRun

# The catch-up re-syncs an unchanged run at least this often, for what no run or order records (a hazard
# site imported into the run's villages, a township chief appointed meanwhile).
FULL_SYNC_EVERY = dt.timedelta(hours=1)
SYNCED = "measures_synced"  # runtime state: {run id: (signature, synced at)}

Signature = tuple[Any, ...]


def _signatures(s: Session, runs: list[ResponseRun]) -> dict[int, Signature]:
    """What a sync depends on, per run: the run's own stamp and state, and its orders' latest change."""
    ids = [r.id for r in runs]
    orders: dict[int, tuple[Any, int]] = {}
    for i in range(0, len(ids), 500):
        rows = s.execute(select(MeasureOrder.run_id, func.max(MeasureOrder.updated_at), func.count(MeasureOrder.id))
                         .where(MeasureOrder.run_id.in_(ids[i:i + 500])).group_by(MeasureOrder.run_id)).tuples()
        orders.update({run_id: (last, n) for run_id, last, n in rows})
    return {r.id: (r.updated_at, r.state, r.level, *orders.get(r.id, (None, 0))) for r in runs}


def measures_sweep(rt: Runtime) -> None:
    """Catch up the orders and lift orders of the open runs that changed, then flag the overdue ones.

    The run service already syncs a run's measures in the transaction of each run event; this sweep
    only catches what was missed (a hook that failed, a restart), so it re-syncs a run when the run or
    one of its orders changed since this process last synced it, and every run once an hour (and
    all of them after a restart). Syncing is idempotent: skipping an unchanged run changes nothing.
    """
    now = rt.now()
    seen: dict[int, tuple[Signature, dt.datetime]] = rt.state.setdefault(SYNCED, {})
    with session_scope(rt.session_factory) as s:
        runs = list(s.execute(select(ResponseRun).where(ResponseRun.state != RunState.CLOSED.value)
                              .order_by(ResponseRun.id)).scalars())
        before = _signatures(s, runs)
        due = [r for r in runs if r.id not in seen or seen[r.id][0] != before[r.id]
               or now - seen[r.id][1] >= FULL_SYNC_EVERY or now < seen[r.id][1]]
        for run in due:
            measure_service.sync_run(s, run, actor="rule:measure_sync", now=now, tz=rt.settings.tz)
        measure_service.sweep_overdue(s, now)
        s.flush()
        after = _signatures(s, due)
    # Remembered only once the transaction committed: a failed sweep is retried in full next tick. A run
    # not synced keeps its signature from before the overdue sweep, so a flag raised now re-syncs it once.
    open_ids = {r.id for r in runs}
    for run_id in [k for k in seen if k not in open_ids]:
        del seen[run_id]
    for run in due:
        seen[run.id] = (after[run.id], now)
