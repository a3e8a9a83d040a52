"""The consultation (会商研判) workflow as a pure state machine: named transitions, explicit ``now``.

A consultation is opened on a warning thread; invited departments record judgements until the
deadline; at the deadline the missing ones are flagged (judgements may still come in late and are
marked so); the leader then decides — or dismisses with a reason. A decision may be revised later
(a new version; the old one is kept). If the warning ends before anyone decides, the
consultation is closed. Every move goes through ``apply``, which refuses anything the table does
not list, with a message saying what is allowed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from config.transitions import IllegalTransition as BaseIllegalTransition
from config.transitions import Machine


class ConsultationState(enum.StrEnum):
    OPEN = "open"  # departments are judging
    DEADLINE_PASSED = "deadline_passed"  # the deadline passed; missing judgements flagged; awaiting the leader
    DECIDED = "decided"  # the leader decided (possibly revised since)
    DISMISSED = "dismissed"  # the leader decided no response is needed, with a reason
    CLOSED = "closed"  # the warning ended (cancel / expiry) before a decision


STATE_ZH = {
    ConsultationState.OPEN: "研判中",
    ConsultationState.DEADLINE_PASSED: "已过时限待决策",
    ConsultationState.DECIDED: "已决策",
    ConsultationState.DISMISSED: "已否决",
    ConsultationState.CLOSED: "已关闭",
}


class Transition(enum.StrEnum):
    JUDGE = "judge"
    REACH_DEADLINE = "reach_deadline"
    EXTEND = "extend"
    DECIDE = "decide"
    REVISE = "revise"
    DISMISS = "dismiss"
    CLOSE = "close"


S = ConsultationState
T = Transition

# (transition, from-state) → to-state. Anything not here is illegal.
TRANSITIONS: dict[tuple[Transition, ConsultationState], ConsultationState] = {
    (T.JUDGE, S.OPEN): S.OPEN,
    (T.JUDGE, S.DEADLINE_PASSED): S.DEADLINE_PASSED,  # late, marked late
    (T.REACH_DEADLINE, S.OPEN): S.DEADLINE_PASSED,
    (T.EXTEND, S.OPEN): S.OPEN,
    (T.EXTEND, S.DEADLINE_PASSED): S.OPEN,
    (T.DECIDE, S.OPEN): S.DECIDED,
    (T.DECIDE, S.DEADLINE_PASSED): S.DECIDED,
    (T.REVISE, S.DECIDED): S.DECIDED,
    (T.DISMISS, S.OPEN): S.DISMISSED,
    (T.DISMISS, S.DEADLINE_PASSED): S.DISMISSED,
    (T.CLOSE, S.OPEN): S.CLOSED,
    (T.CLOSE, S.DEADLINE_PASSED): S.CLOSED,
}

TRANSITION_ZH = {
    T.JUDGE: "录入研判意见",
    T.REACH_DEADLINE: "到达研判时限",
    T.EXTEND: "延长研判时限",
    T.DECIDE: "领导决策",
    T.REVISE: "修订决策",
    T.DISMISS: "否决（不启动响应）",
    T.CLOSE: "关闭会商",
}


class IllegalTransition(BaseIllegalTransition):
    """A move the consultation workflow does not allow from its state."""


MACHINE = Machine("会商", "consultation", ConsultationState, Transition, TRANSITIONS, STATE_ZH, TRANSITION_ZH,
                  IllegalTransition)


def allowed_from(state: ConsultationState) -> list[Transition]:
    return MACHINE.allowed(state)


def apply(state: ConsultationState | str, transition: Transition | str) -> ConsultationState:
    return MACHINE.apply(state, transition)


@dataclass(frozen=True)
class Step:
    """The outcome of a guarded move: the new state and facts the service records with it."""

    state: ConsultationState
    late: bool = False
    missing: tuple[str, ...] = ()


def judge(state: ConsultationState | str, *, department: str, invited: Iterable[str], deadline: dt.datetime,
          now: dt.datetime) -> Step:
    """A department records its judgement; only invited departments may, and late ones are marked late."""
    st = ConsultationState(state)
    if department not in set(invited):
        raise IllegalTransition(T.JUDGE, st, f"部门 {department} 未被邀请参加本次会商",
                                f"department {department} is not invited to this consultation")
    return Step(apply(st, T.JUDGE), late=now > deadline)


def missing_departments(invited: Iterable[str], judged: Iterable[str]) -> tuple[str, ...]:
    have = set(judged)
    return tuple(d for d in invited if d not in have)


def reach_deadline(state: ConsultationState | str, *, deadline: dt.datetime, now: dt.datetime,
                   invited: Iterable[str], judged: Iterable[str]) -> Step:
    st = ConsultationState(state)
    if now < deadline:
        raise IllegalTransition(T.REACH_DEADLINE, st, f"研判时限未到（{deadline.isoformat()}）",
                                f"the deadline has not come yet ({deadline.isoformat()})")
    return Step(apply(st, T.REACH_DEADLINE), missing=missing_departments(invited, judged))


def extend(state: ConsultationState | str, *, deadline: dt.datetime, new_deadline: dt.datetime,
           now: dt.datetime) -> Step:
    st = ConsultationState(state)
    if new_deadline <= now or new_deadline <= deadline:
        raise IllegalTransition(T.EXTEND, st, "新的时限必须晚于当前时间和原时限",
                                "the new deadline must be later than now and than the old deadline")
    return Step(apply(st, T.EXTEND))


def decide(state: ConsultationState | str) -> Step:
    return Step(apply(state, T.DECIDE))


def revise(state: ConsultationState | str, *, reason: str) -> Step:
    st = ConsultationState(state)
    if not reason.strip():
        raise IllegalTransition(T.REVISE, st, "修订决策必须说明理由", "a revision needs a reason")
    return Step(apply(st, T.REVISE))


def dismiss(state: ConsultationState | str, *, reason: str) -> Step:
    st = ConsultationState(state)
    if not reason.strip():
        raise IllegalTransition(T.DISMISS, st, "否决必须说明理由", "dismissing needs a reason")
    return Step(apply(st, T.DISMISS))


def close(state: ConsultationState | str) -> Step:
    return Step(apply(state, T.CLOSE))


def reminder_due(state: ConsultationState | str, *, deadline: dt.datetime, reminder_minutes: int | None,
                 reminded: bool, now: dt.datetime) -> bool:
    """A reminder goes out once, ``reminder_minutes`` before the deadline, while judging is open."""
    if reminded or not reminder_minutes or ConsultationState(state) is not S.OPEN:
        return False
    return deadline - dt.timedelta(minutes=reminder_minutes) <= now < deadline


def is_live(state: ConsultationState | str) -> bool:
    return ConsultationState(state) in (S.OPEN, S.DEADLINE_PASSED)


AREA_KEYS = ("villages", "townships", "sites")


def normalize_areas(areas: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``{"villages": [...], "townships": [...], "sites": [...]}`` with sorted, unique string codes."""
    areas = areas or {}
    return {k: sorted({_area_key(x) for x in (areas.get(k) or [])}) for k in AREA_KEYS}


def _area_key(x: Any) -> str:
    """A code or site id; a warning's ``affected`` lists sites as ``{id, name, kind}`` records."""
    if isinstance(x, Mapping):
        return str(x.get("id", x.get("code")))
    return str(x)


def union_areas(*many: Mapping[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {k: set() for k in AREA_KEYS}
    for a in many:
        for k, v in normalize_areas(a).items():
            out[k].update(v)
    return {k: sorted(v) for k, v in out.items()}


def apply_judged_areas(base: Mapping[str, Any] | None, add: Iterable[Mapping[str, Any]],
                       remove: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The warning's areas with what judgements proposed to add and remove (a decision's default)."""
    out = {k: set(v) for k, v in normalize_areas(base).items()}
    for a in add:
        for k, v in normalize_areas(a).items():
            out[k].update(v)
    for r in remove:
        for k, v in normalize_areas(r).items():
            out[k].difference_update(v)
    return {k: sorted(v) for k, v in out.items()}
