"""How a new CAP message joins the versions already known: pure rules, no database.

CAP identity is (sender, identifier); an Update or Cancel names what it replaces in
``references``. Messages can arrive in any order (a feed poll may see the Cancel before the
Alert), so the rules are about *sent* times, not arrival: the latest-sent version of a thread is
its head. An older message arriving late is stored (as evidence) but does not change the head.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    """The facts about a stored version that versioning needs."""

    id: int
    sender: str
    identifier: str
    msg_type: str
    sent: dt.datetime
    state: str
    thread_id: int
    version: int
    superseded_by_id: int | None


class Action(enum.StrEnum):
    NEW_THREAD = "new_thread"  # an Alert nobody references yet
    SUPERSEDE = "supersede"  # an Update newer than the thread's head
    CANCEL = "cancel"  # a Cancel newer than the thread's head
    STALE = "stale"  # older than the head: stored as replaced, the head stays
    HOLD = "hold"  # an Update/Cancel whose referenced messages are all unknown


@dataclass(frozen=True)
class Decision:
    action: Action
    head: Known | None = None  # the version replaced (SUPERSEDE/CANCEL) or still current (STALE)


def reference_keys(references: Iterable[dict[str, object]]) -> list[tuple[str, str]]:
    return [(str(r.get("sender", "")), str(r.get("identifier", ""))) for r in references]


def head_of(versions: Sequence[Known]) -> Known | None:
    """The thread's current head: the latest-sent version not yet replaced (held ones never count)."""
    live = [v for v in versions if v.state != "held" and v.superseded_by_id is None]
    if not live:
        return None
    return max(live, key=lambda v: (v.sent, v.version, v.id))


def decide(msg_type: str, sent: dt.datetime, referenced: Sequence[Known], thread: Sequence[Known],
           referenced_by_later: Sequence[Known] = ()) -> Decision:
    """Where a new message goes.

    ``referenced``: the known versions it references; ``thread``: every version of their thread;
    ``referenced_by_later``: known versions that reference *this* message (it arrives late).
    """
    if referenced_by_later:
        later = [v for v in referenced_by_later if v.state != "held"]
        if later:
            return Decision(Action.STALE, head_of(thread) or later[0])
    if msg_type == "alert" and not referenced:
        return Decision(Action.NEW_THREAD)
    if not referenced:
        return Decision(Action.HOLD)
    head = head_of(thread)
    if head is None:  # only held versions: cannot happen for a referenced known version, kept safe
        return Decision(Action.HOLD)
    if sent < head.sent:
        return Decision(Action.STALE, head)
    if msg_type == "cancel":
        return Decision(Action.CANCEL, head)
    return Decision(Action.SUPERSEDE, head)  # an Update, or an Alert that references (treated as Update)


def hold_deadline(now: dt.datetime, timeout: dt.timedelta) -> dt.datetime:
    return now + timeout


def is_expired(expires: dt.datetime | None, now: dt.datetime) -> bool:
    return expires is not None and expires <= now
