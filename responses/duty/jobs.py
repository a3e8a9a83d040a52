"""Scheduled work of the duty room; each job is idempotent (a handover per shift is unique, flags are keyed),
so a late, doubled or second instance's tick catches up and does no more."""

from __future__ import annotations

from config.database import session_scope
from config.runtime import Runtime
from responses.duty import gaps, handovers


def handover_sweep(rt: Runtime) -> None:
    """Draft the handovers of shifts ending within 30 minutes; flag those unacknowledged 30 minutes in."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        handovers.sweep(s, now, rt.settings.tz)


def roster_gap_sweep(rt: Runtime) -> None:
    """Flag the roster's gaps of the coming seven days to the admins; clear those filled or past."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        gaps.sweep(s, now, rt.settings.tz)
