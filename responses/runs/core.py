"""The response run (响应) lifecycle as a pure state machine, and the rules that move it.

A run is ``active`` while the response is on; a Cancel or expiry of its warning (or a leader's
order) moves it to ``closing`` — the measures are being lifted — and then to ``closed``. A warning
that comes back while a run is closing reactivates it. Raising follows the run's own frozen plan:
a higher warning level switches the run to that level's entry; a lower one never lowers it by
itself (only a leader's revised decision does).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config.transitions import IllegalTransition, Machine
from warning.consultation.core import AREA_KEYS, normalize_areas, union_areas
from warning.draft import Level

__all__ = ["union_areas"]


class RunState(enum.StrEnum):
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"


class Trigger(enum.StrEnum):
    AUTOMATIC = "automatic"  # the plan starts it at once (red, or mode skip)
    DECISION = "decision"  # the leader's decision in a consultation


STATE_ZH = {RunState.ACTIVE: "响应中", RunState.CLOSING: "收尾中", RunState.CLOSED: "已结束"}


class RunTransition(enum.StrEnum):
    RAISE = "raise"  # a higher level from a warning update
    REVISE = "revise"  # a leader's (revised) decision changes level, areas or measures
    EXTEND_AREAS = "extend_areas"  # a warning update adds areas
    BEGIN_CLOSING = "begin_closing"  # warning cancelled / expired, or ordered
    REACTIVATE = "reactivate"  # a warning update while closing
    CLOSE = "close"  # measures lifted, final report due


R = RunState
RT = RunTransition

TRANSITIONS: dict[tuple[RunTransition, RunState], RunState] = {
    (RT.RAISE, R.ACTIVE): R.ACTIVE,
    (RT.REVISE, R.ACTIVE): R.ACTIVE,
    (RT.EXTEND_AREAS, R.ACTIVE): R.ACTIVE,
    (RT.BEGIN_CLOSING, R.ACTIVE): R.CLOSING,
    (RT.REACTIVATE, R.CLOSING): R.ACTIVE,
    (RT.CLOSE, R.CLOSING): R.CLOSED,
}

TRANSITION_ZH = {
    RT.RAISE: "提升响应等级",
    RT.REVISE: "按决策调整",
    RT.EXTEND_AREAS: "扩大响应范围",
    RT.BEGIN_CLOSING: "进入收尾",
    RT.REACTIVATE: "恢复响应",
    RT.CLOSE: "结束响应",
}


class IllegalRunTransition(IllegalTransition):
    """A move a response run does not allow from its state."""


MACHINE = Machine("响应", "run", RunState, RunTransition, TRANSITIONS, STATE_ZH, TRANSITION_ZH, IllegalRunTransition)


def apply(state: RunState | str, transition: RunTransition | str) -> RunState:
    return MACHINE.apply(state, transition)


def raise_to(state: RunState | str, current: Level | str, new: Level | str) -> RunState:
    """Raise only upward; asking to 'raise' to the same or a lower level is refused."""
    st = RunState(state)
    if Level(new).rank <= Level(current).rank:
        raise IllegalRunTransition(RT.RAISE, st, f"{Level(new).zh}不高于当前的{Level(current).zh}，不能提升",
                                   f"{Level(new).value} is not above {Level(current).value}")
    return apply(st, RT.RAISE)


def is_open(state: RunState | str) -> bool:
    return RunState(state) is not R.CLOSED


def areas_added(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, list[str]]:
    o, n = normalize_areas(old), normalize_areas(new)
    return {k: sorted(set(n[k]) - set(o[k])) for k in AREA_KEYS if set(n[k]) - set(o[k])}


def overlaps(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    na, nb = normalize_areas(a), normalize_areas(b)
    return any(set(na[k]) & set(nb[k]) for k in AREA_KEYS)


@dataclass(frozen=True)
class StartRule:
    """What a warning's plan entry asks for when it arrives: a run at once, a consultation, or both."""

    start_run: bool
    open_consultation: bool


def start_rule(mode: str, level: Level | str) -> StartRule:
    """Red always starts a run at once whatever the file says (the 2022 rule); otherwise the plan's mode."""
    lv = Level(level)
    if mode == "skip":
        return StartRule(True, False)
    if mode == "parallel" or lv is Level.RED:
        return StartRule(True, True)
    return StartRule(False, True)
