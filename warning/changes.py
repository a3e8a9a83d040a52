"""What the intake tells the layers above when a warning changes, and how they subscribe.

``warning`` must not import ``responses``; the response engine subscribes instead. The wiring in
``jiaoying`` puts the listeners into ``Runtime.state[LISTENERS_KEY]`` (a list of callables); jobs
and API handlers read them from there with ``listeners_of`` and pass them to the service. A
listener runs inside the same transaction as the change it is told about, under a savepoint: if it
fails, its own writes are undone, the failure is logged in the event log, and the warning change
still commits (a response bug must not lose a warning).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

LISTENERS_KEY = "warning_listeners"


class ChangeKind(enum.StrEnum):
    NEW = "new"  # a new thread is active (an Alert, or an orphan Update promoted after the hold timeout)
    UPDATED = "updated"  # a later version replaced the thread's head
    CANCELLED = "cancelled"  # the thread was cancelled
    EXPIRED = "expired"  # the thread's head passed its expiry time


@dataclass(frozen=True)
class WarningChange:
    """One change of a thread. ``warning_id`` is the version now at the head of the thread (for a
    cancel, the Cancel message); ``previous_id`` the version it replaced. Listeners decide for
    themselves whether ``status`` (test, system, draft) or ``drill`` warrants any response."""

    kind: ChangeKind
    warning_id: int
    thread_id: int
    previous_id: int | None
    hazard: str
    level: str | None
    previous_level: str | None
    status: str
    drill: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "warning_id": self.warning_id, "thread_id": self.thread_id,
            "previous_id": self.previous_id, "hazard": self.hazard, "level": self.level,
            "previous_level": self.previous_level, "status": self.status, "drill": self.drill,
        }


Listener = Callable[[Session, WarningChange, dt.datetime], None]


def listeners_of(state: dict[str, Any] | Any) -> tuple[Listener, ...]:
    """The listeners registered on a runtime's (or app's) state; empty when none are wired."""
    found: Iterable[Listener] | None
    found = state.get(LISTENERS_KEY) if isinstance(state, dict) else getattr(state, LISTENERS_KEY, None)
    return tuple(found or ())
