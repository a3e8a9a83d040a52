"""The callout state machine (pure, explicit ``now``): a table of named transitions and the
decisions that say what each event does to one callout.

Timeline of one callout (answer within A minutes, R retries every I minutes)::

    start ──A──▶ deadline ──I──▶ ... R retries ... ──▶ escalate (deadline + R·I)
      │              │ retry (next channel / number)      │ next tier up, or nobody left
      first try      └──────────────────────────────────┘ → duty officer is told

An answer at any point stops the timeline; after the deadline it is recorded as late, even once
the callout has escalated. A permanent send failure (invalid or blocked number) moves to the next
channel / number at once; when no route is left the callout escalates at once. A sweep that runs
late (after downtime) does what the current moment calls for — the retries it missed are counted
as skipped, never sent in a burst.

Each decision is idempotent: asking again with the same state and ``now`` changes nothing,
because the state and ``next_action_at`` it returns no longer make the event due.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from config.transitions import IllegalTransition as BaseIllegalTransition
from config.transitions import Machine


class CalloutState(enum.StrEnum):
    CALLING = "calling"  # tries out, waiting for an answer
    ESCALATED = "escalated"  # nobody answered; the next tier up was called (a late answer is still taken)
    UNANSWERED = "unanswered"  # nobody answered and nobody is left above: the duty officer must act
    ANSWERED = "answered"
    CANCELLED = "cancelled"  # the run closed first


STATE_ZH = {
    CalloutState.CALLING: "叫应中",
    CalloutState.ESCALATED: "未应答，已升级",
    CalloutState.UNANSWERED: "未应答，无上级可升级",
    CalloutState.ANSWERED: "已应答",
    CalloutState.CANCELLED: "已取消",
}

OPEN_STATES = frozenset({CalloutState.CALLING})  # the sweep only looks at these
ANSWERABLE = frozenset({CalloutState.CALLING, CalloutState.ESCALATED, CalloutState.UNANSWERED,
                        CalloutState.ANSWERED})


class Transition(enum.StrEnum):
    START = "start"  # first try
    RETRY = "retry"  # deadline / retry slot passed without answer: try again
    FAILOVER = "failover"  # a try failed for good: next channel or number at once
    ESCALATE = "escalate"  # retries used up (or no route left): call the next tier up
    EXHAUST = "exhaust"  # as escalate, but nobody is above: duty officer alerted
    ANSWER = "answer"  # in time or late
    ANSWER_AGAIN = "answer_again"  # a further answer (e.g. a report) after the first
    CANCEL = "cancel"  # run closed


S = CalloutState
T = Transition

TRANSITIONS: dict[tuple[Transition, CalloutState], CalloutState] = {
    (T.START, S.CALLING): S.CALLING,
    (T.RETRY, S.CALLING): S.CALLING,
    (T.FAILOVER, S.CALLING): S.CALLING,
    (T.ESCALATE, S.CALLING): S.ESCALATED,
    (T.EXHAUST, S.CALLING): S.UNANSWERED,
    (T.ANSWER, S.CALLING): S.ANSWERED,
    (T.ANSWER, S.ESCALATED): S.ANSWERED,
    (T.ANSWER, S.UNANSWERED): S.ANSWERED,
    (T.ANSWER_AGAIN, S.ANSWERED): S.ANSWERED,
    (T.CANCEL, S.CALLING): S.CANCELLED,
    (T.CANCEL, S.ESCALATED): S.CANCELLED,
    (T.CANCEL, S.UNANSWERED): S.CANCELLED,
}

TRANSITION_ZH = {
    T.START: "首次呼叫", T.RETRY: "重试", T.FAILOVER: "改用其他渠道/号码", T.ESCALATE: "逐级升级",
    T.EXHAUST: "无上级可升级，通知值班员", T.ANSWER: "应答", T.ANSWER_AGAIN: "补充应答", T.CANCEL: "取消",
}


class IllegalTransition(BaseIllegalTransition):
    """A move a callout does not allow from its state."""


MACHINE = Machine("叫应", "callout", CalloutState, Transition, TRANSITIONS, STATE_ZH, TRANSITION_ZH, IllegalTransition)


def apply(state: CalloutState | str, transition: Transition | str) -> CalloutState:
    return MACHINE.apply(state, transition)


# ---------------------------------------------------------------------------------------------- routes


def route_key(channel: str, number: str) -> str:
    return f"{channel}|{number}"


def routes(channels: Sequence[str], numbers: Sequence[str]) -> list[str]:
    """Every (channel, number) in the order they are tried: the primary number on each channel in
    the plan's order, then the backup number the same way."""
    out: list[str] = []
    for n in numbers:
        for c in channels:
            k = route_key(c, n)
            if k not in out:
                out.append(k)
    return out


def next_route(all_routes: Sequence[str], dead: Sequence[str], last: str | None) -> str | None:
    """The first live route after ``last`` (cyclic); None when every route has failed for good."""
    if not all_routes:
        return None
    start = (all_routes.index(last) + 1) if last in all_routes else 0
    n = len(all_routes)
    for i in range(n):
        cand = all_routes[(start + i) % n]
        if cand not in dead:
            return cand
    return None


def split_route(key: str) -> tuple[str, str]:
    ch, num = key.split("|", 1)
    return ch, num


# ---------------------------------------------------------------------------------------------- ladder

LADDER_ORDER = ("site", "village", "township", "district", "leader_on_duty")
RANK_OF_TIER = {"site": 0, "village": 0, "township": 1, "district": 2, "leader_on_duty": 3}


def next_steps(ladder: Sequence[str], tier: str) -> list[str]:
    """The ladder's steps above ``tier``, nearest first (the service skips a step with nobody on it)."""
    here = LADDER_ORDER.index(tier) if tier in LADDER_ORDER else -1
    return [s for s in LADDER_ORDER if s in ladder and LADDER_ORDER.index(s) > here]


# ---------------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class CalloutView:
    """What the decisions need to know about one callout."""

    state: CalloutState
    tier: str
    started_at: dt.datetime
    deadline_at: dt.datetime
    next_action_at: dt.datetime | None
    retries_total: int
    retries_done: int
    retry_interval: dt.timedelta
    channels: tuple[str, ...]
    numbers: tuple[str, ...]
    ladder: tuple[str, ...]
    dead_routes: tuple[str, ...] = ()
    last_route: str | None = None

    @property
    def escalate_at(self) -> dt.datetime:
        return self.deadline_at + self.retries_total * self.retry_interval


@dataclass(frozen=True)
class Decision:
    transition: Transition | None  # None: nothing to do (not due, already done)
    state: CalloutState
    next_action_at: dt.datetime | None
    send: str | None = None  # route key of the try to make now
    send_reason: str | None = None  # first | retry | failover
    retries_done: int = 0
    skipped_retries: int = 0
    escalate_to: tuple[str, ...] = ()  # candidate steps, nearest first
    late: bool | None = None
    dead_routes: tuple[str, ...] = ()
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def noop(self) -> bool:
        return self.transition is None


def _noop(v: CalloutView, why: str) -> Decision:
    return Decision(None, v.state, v.next_action_at, retries_done=v.retries_done, dead_routes=v.dead_routes,
                    notes={"why": why})


def start(v: CalloutView, now: dt.datetime) -> Decision:
    """The first try on the first route; the deadline is the next thing that can happen."""
    first = next_route(routes(v.channels, v.numbers), v.dead_routes, None)
    if first is None:
        return _give_up(v, now, reason="no_route")
    return Decision(T.START, apply(v.state, T.START), v.deadline_at, send=first, send_reason="first",
                    retries_done=0, dead_routes=v.dead_routes)


def _give_up(v: CalloutView, now: dt.datetime, *, reason: str, skipped: int = 0) -> Decision:
    steps = tuple(next_steps(v.ladder, v.tier))
    tr = T.ESCALATE if steps else T.EXHAUST
    return Decision(tr, apply(v.state, tr), None, retries_done=v.retries_done, skipped_retries=skipped,
                    escalate_to=steps, dead_routes=v.dead_routes, notes={"reason": reason})


def on_due(v: CalloutView, now: dt.datetime) -> Decision:
    """The sweep found the callout due: retry in the current slot, or escalate when retries are
    over. Missed slots (a late sweep) are skipped, not sent together."""
    if v.state is not S.CALLING:
        return _noop(v, "not calling")
    if v.next_action_at is None or now < v.next_action_at:
        return _noop(v, "not due")
    if now >= v.escalate_at or v.retries_done >= v.retries_total:
        return _give_up(v, now, reason="no_answer", skipped=max(0, v.retries_total - v.retries_done))
    slot = int((now - v.deadline_at) / v.retry_interval) if v.retry_interval else 0
    slot = max(slot, v.retries_done)  # never go back to a slot already used
    route = next_route(routes(v.channels, v.numbers), v.dead_routes, v.last_route)
    if route is None:
        return _give_up(v, now, reason="no_route", skipped=v.retries_total - v.retries_done)
    done = slot + 1
    nxt = v.deadline_at + done * v.retry_interval
    return Decision(T.RETRY, apply(v.state, T.RETRY), nxt, send=route, send_reason="retry", retries_done=done,
                    skipped_retries=slot - v.retries_done, dead_routes=v.dead_routes)


def on_send_failed(v: CalloutView, now: dt.datetime, failed_route: str) -> Decision:
    """A try failed for good. The route is dead; if the callout still waits, the next live route
    is tried at once, and with none left it escalates at once (no point waiting for the deadline)."""
    dead = v.dead_routes if failed_route in v.dead_routes else (*v.dead_routes, failed_route)
    view = CalloutView(**{**v.__dict__, "dead_routes": dead})
    if v.state is not S.CALLING:
        return Decision(None, v.state, v.next_action_at, retries_done=v.retries_done, dead_routes=dead,
                        notes={"why": "not calling"})
    if v.last_route is not None and failed_route != v.last_route:
        # An older try failed after a newer one went out: the newer one still stands.
        return Decision(None, v.state, v.next_action_at, retries_done=v.retries_done, dead_routes=dead,
                        notes={"why": "older try"})
    route = next_route(routes(v.channels, v.numbers), dead, failed_route)
    if route is None:
        return _give_up(view, now, reason="unreachable")
    return Decision(T.FAILOVER, apply(v.state, T.FAILOVER), v.next_action_at, send=route, send_reason="failover",
                    retries_done=v.retries_done, dead_routes=dead)


def on_answer(v: CalloutView, now: dt.datetime) -> Decision:
    """An answer stops the timeline; after the deadline it is late. A later answer is kept too."""
    late = now > v.deadline_at
    if v.state is S.ANSWERED:
        return Decision(T.ANSWER_AGAIN, S.ANSWERED, None, retries_done=v.retries_done, late=late,
                        dead_routes=v.dead_routes)
    return Decision(T.ANSWER, apply(v.state, T.ANSWER), None, retries_done=v.retries_done, late=late,
                    dead_routes=v.dead_routes)


def on_cancel(v: CalloutView, now: dt.datetime) -> Decision:
    if (T.CANCEL, v.state) not in TRANSITIONS:
        return _noop(v, "closed already")
    return Decision(T.CANCEL, apply(v.state, T.CANCEL), None, retries_done=v.retries_done,
                    dead_routes=v.dead_routes)
