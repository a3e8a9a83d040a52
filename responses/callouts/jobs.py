"""Scheduled call-and-answer work: sweep due callouts (retries, escalations, failovers).

Idempotent and safe on several instances: each batch claims its rows (``SKIP LOCKED`` on
PostgreSQL) and moves their ``next_action_at`` on, so a second sweep finds nothing; a tick that
comes late does what the current moment calls for.
"""

from __future__ import annotations

from config.runtime import Runtime
from responses.callouts.service import SweepStats, sweep

# The callout sweep ticks at least this often, whatever the general tick: the lag from a deadline
# to its escalation is bounded by the tick plus the sweep's own time, and an idle tick costs two indexed
# queries (``next_action_at``, the failed-message index). Half a second keeps a district-wide fan-out's
# escalations, which fall due at the rate the first messages went out, within two seconds of their deadline
# (``bench/load.py``'s target) on a loaded machine, where a sweep itself takes a good part of a second.
TICK_SECONDS = 0.5


def sweep_callouts(rt: Runtime) -> SweepStats:
    stats = sweep(rt.session_factory, now=rt.now())
    rt.state["callouts_last_sweep"] = {"at": rt.now().isoformat(), **stats.__dict__}
    return stats
