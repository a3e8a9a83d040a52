"""Scheduled intake work: poll the feeds that are due, and sweep warning deadlines (expiry, holds).

Each job is idempotent: it acts only on rows whose deadline has passed and moves them out of the
due set, so running it twice, late, or on two instances does no harm.
"""

from __future__ import annotations

from config.database import session_scope
from config.runtime import Runtime
from warning import fetch, threads
from warning.changes import listeners_of


def poll_feeds(rt: Runtime) -> int:
    return len(fetch.poll_due(rt, listeners=listeners_of(rt.state)))


def sweep_warnings(rt: Runtime) -> int:
    """Expire what has passed its ``expires``; flag (and for Updates, promote) holds past their timeout."""
    listeners = listeners_of(rt.state)
    with session_scope(rt.session_factory) as s:
        now = rt.now()
        expired = threads.expire_due(s, now=now, listeners=listeners)
        flagged = threads.flag_overdue_holds(s, now=now, listeners=listeners)
    return len(expired) + len(flagged)
