"""State machines as tables of named transitions: ``(transition, from-state) → to-state``.

Every domain machine (consultation, run, callout, measure) is one table plus the Chinese names of its
states and transitions; this module holds what they share — looking a move up, listing what is allowed,
and refusing an illegal move with a message in Chinese and English that says what *is* allowed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

S = TypeVar("S", bound=enum.Enum)
T = TypeVar("T", bound=enum.Enum)


class IllegalTransition(Exception):
    """A move the machine does not allow from the current state.

    Each machine has its own subclass (so callers can catch one domain's refusals); ``machine`` is set on
    that subclass and gives the default message.
    """

    machine: ClassVar[Machine[Any, Any] | None] = None

    def __init__(self, transition: enum.Enum, state: enum.Enum, reason_zh: str = "", reason_en: str = "") -> None:
        self.transition, self.state = transition, state
        m = type(self).machine
        if m is not None and not (reason_zh and reason_en):
            allowed = m.allowed(state)
            reason_zh = reason_zh or (
                f"{m.subject_zh}处于“{m.state_zh.get(state, state.value)}”状态，不能{m.name_zh(transition)}；"
                f"可执行：{'、'.join(m.name_zh(t) for t in allowed) or '无'}"
            )
            reason_en = reason_en or (
                f"cannot {transition.value} a {m.subject_en} that is {state.value}; "
                f"allowed: {', '.join(t.value for t in allowed) or 'none'}"
            )
        self.zh = reason_zh or f"不允许的操作：{transition.value}（{state.value}）"
        self.en = reason_en or f"cannot {transition.value} from {state.value}"
        super().__init__(self.en)


@dataclass(frozen=True)
class Machine(Generic[S, T]):
    subject_zh: str  # 会商, 响应, 叫应, 措施
    subject_en: str
    states: type[S]
    transitions: type[T]
    table: Mapping[tuple[T, S], S]
    state_zh: Mapping[S, str]
    transition_zh: Mapping[T, str]
    error: type[IllegalTransition] = IllegalTransition

    def __post_init__(self) -> None:
        if self.error is not IllegalTransition:
            self.error.machine = self  # the domain's error class words its refusals after this machine

    def name_zh(self, transition: T) -> str:
        return self.transition_zh.get(transition, transition.value)

    def allowed(self, state: S | str) -> list[T]:
        st = self.states(state)
        return [t for t in self.transitions if (t, st) in self.table]

    def can(self, state: S | str, transition: T | str) -> bool:
        return (self.transitions(transition), self.states(state)) in self.table

    def apply(self, state: S | str, transition: T | str) -> S:
        st, tr = self.states(state), self.transitions(transition)
        nxt = self.table.get((tr, st))
        if nxt is None:
            raise self.error(tr, st)
        return nxt
