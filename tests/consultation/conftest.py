"""Helpers for response scenarios: warning rows written directly, changes announced as the warning
service would announce them."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from warning.changes import ChangeKind, WarningChange
from warning.models import Warning

_ids = itertools.count(1)


def _make_warning(session: Session, *, now: dt.datetime, level: str | None, hazard: str = "weather",
                  event: str = "暴雨", thread: Warning | None = None, msg_type: str = "alert",
                  state: str = "active", affected: dict[str, Any] | None = None, status: str = "actual") -> Warning:
    n = next(_ids)
    w = Warning(
        sender="jc-met@cma.gov.cn", identifier=f"test-{n}", msg_type=msg_type, status=status,
        drill=status == "exercise", hazard=hazard, event=event, level=level, sent=now, headline=f"城区{event}预警",
        affected=affected or {"villages": ["140502001001"], "townships": ["140502001"], "sites": []},
        state=state, version=1, received_at=now, updated_at=now,
    )
    session.add(w)
    session.flush()
    if thread is None:
        w.thread_id = w.id
    else:
        w.thread_id = thread.thread_id
        w.supersedes_id = thread.id
        w.version = thread.version + 1
        thread.state = "superseded" if msg_type == "update" else "cancelled"
        thread.superseded_by_id = w.id
    session.flush()
    return w


@pytest.fixture
def make_warning() -> Callable[..., Warning]:
    return _make_warning


def change_of(kind: str, w: Warning, previous: Warning | None = None) -> WarningChange:
    return WarningChange(kind=ChangeKind(kind), warning_id=w.id, thread_id=w.thread_id or w.id,
                         previous_id=previous.id if previous else None, hazard=w.hazard, level=w.level,
                         previous_level=previous.level if previous else None, status=w.status, drill=w.drill)


@pytest.fixture
def change() -> Callable[..., WarningChange]:
    return change_of
