"""Pure core of call-and-answer: every named transition, routes, catch-up, idempotence."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from responses.callouts import escalation as core
from responses.callouts.escalation import CalloutState as S
from responses.callouts.escalation import Transition as T

T0 = dt.datetime(2026, 7, 19, 18, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def view(**kw: object) -> core.CalloutView:
    base = dict(state=S.CALLING, tier="village", started_at=T0, deadline_at=T0 + 5 * MIN,
                next_action_at=T0 + 5 * MIN, retries_total=2, retries_done=0, retry_interval=2 * MIN,
                channels=("sms", "voice"), numbers=("+8613900000001", "+8613900000002"),
                ladder=("site", "village", "township", "leader_on_duty"), dead_routes=(), last_route=None)
    base.update(kw)
    return core.CalloutView(**base)  # type: ignore[arg-type]


def test_table_has_every_transition_and_rejects_the_rest() -> None:
    covered = {t for t, _ in core.TRANSITIONS}
    assert covered == set(T)
    for tr in T:
        for st in S:
            if (tr, st) in core.TRANSITIONS:
                assert core.apply(st, tr) is core.TRANSITIONS[(tr, st)]
            else:
                with pytest.raises(core.IllegalTransition) as exc:
                    core.apply(st, tr)
                assert exc.value.zh and exc.value.en


def test_routes_primary_first_then_backup_in_channel_order() -> None:
    r = core.routes(("sms", "voice"), ("+861", "+862"))
    assert r == ["sms|+861", "voice|+861", "sms|+862", "voice|+862"]
    assert core.next_route(r, (), None) == "sms|+861"
    assert core.next_route(r, (), "voice|+862") == "sms|+861"  # cyclic
    assert core.next_route(r, ("voice|+861",), "sms|+861") == "sms|+862"
    assert core.next_route(r, tuple(r), "sms|+861") is None


def test_start_sends_first_route_and_waits_for_deadline() -> None:
    d = core.start(view(), T0)
    assert d.transition is T.START and d.state is S.CALLING
    assert d.send == "sms|+8613900000001" and d.send_reason == "first"
    assert d.next_action_at == T0 + 5 * MIN


def test_start_with_no_route_escalates() -> None:
    d = core.start(view(numbers=()), T0)
    assert d.transition is T.ESCALATE and d.escalate_to == ("township", "leader_on_duty")


def test_not_due_is_a_noop() -> None:
    d = core.on_due(view(), T0 + 4 * MIN)
    assert d.noop and d.state is S.CALLING and d.next_action_at == T0 + 5 * MIN


def test_retry_at_deadline_then_next_slot_then_escalate() -> None:
    v = view(last_route="sms|+8613900000001")
    d1 = core.on_due(v, T0 + 5 * MIN)
    assert d1.transition is T.RETRY and d1.send == "voice|+8613900000001" and d1.retries_done == 1
    assert d1.next_action_at == T0 + 7 * MIN
    # the same moment again: with the state the decision returned, nothing is due (idempotent)
    v1 = dataclasses.replace(v, retries_done=1, next_action_at=d1.next_action_at, last_route=d1.send)
    assert core.on_due(v1, T0 + 5 * MIN).noop
    d2 = core.on_due(v1, T0 + 7 * MIN)
    assert d2.transition is T.RETRY and d2.retries_done == 2 and d2.send == "sms|+8613900000002"
    assert d2.next_action_at == T0 + 9 * MIN
    v2 = dataclasses.replace(v1, retries_done=2, next_action_at=d2.next_action_at, last_route=d2.send)
    d3 = core.on_due(v2, T0 + 9 * MIN)
    assert d3.transition is T.ESCALATE and d3.state is S.ESCALATED and d3.next_action_at is None
    assert d3.escalate_to == ("township", "leader_on_duty")


def test_late_sweep_skips_missed_retries_instead_of_bursting() -> None:
    d = core.on_due(view(), T0 + 7 * MIN + 30 * dt.timedelta(seconds=1))
    assert d.transition is T.RETRY and d.retries_done == 2 and d.skipped_retries == 1
    assert d.next_action_at == T0 + 9 * MIN
    d = core.on_due(view(), T0 + 3 * dt.timedelta(hours=1))
    assert d.transition is T.ESCALATE and d.skipped_retries == 2


def test_no_retries_escalates_at_deadline() -> None:
    d = core.on_due(view(retries_total=0), T0 + 5 * MIN)
    assert d.transition is T.ESCALATE


def test_top_of_ladder_exhausts() -> None:
    d = core.on_due(view(retries_total=0, tier="leader_on_duty"), T0 + 5 * MIN)
    assert d.transition is T.EXHAUST and d.state is S.UNANSWERED and d.escalate_to == ()


def test_ladder_skips_steps_not_in_the_plan() -> None:
    assert core.next_steps(("site", "village", "township"), "township") == []
    assert core.next_steps(("village", "district", "leader_on_duty"), "village") == ["district", "leader_on_duty"]
    assert core.next_steps(("site", "village", "township", "leader_on_duty"), "district") == ["leader_on_duty"]


def test_permanent_failure_fails_over_at_once_and_keeps_deadline() -> None:
    v = view(last_route="sms|+8613900000001")
    d = core.on_send_failed(v, T0 + 10 * dt.timedelta(seconds=1), "sms|+8613900000001")
    assert d.transition is T.FAILOVER and d.send == "voice|+8613900000001"
    assert d.next_action_at == v.next_action_at and "sms|+8613900000001" in d.dead_routes


def test_failure_with_no_route_left_escalates_at_once() -> None:
    all_but = ("voice|+8613900000001", "sms|+8613900000002", "voice|+8613900000002")
    v = view(last_route="sms|+8613900000001", dead_routes=all_but)
    d = core.on_send_failed(v, T0 + MIN, "sms|+8613900000001")
    assert d.transition is T.ESCALATE and d.notes["reason"] == "unreachable"


def test_failure_of_an_older_try_changes_nothing_but_marks_the_route() -> None:
    v = view(last_route="voice|+8613900000001")
    d = core.on_send_failed(v, T0 + MIN, "sms|+8613900000001")
    assert d.noop and "sms|+8613900000001" in d.dead_routes


def test_failure_after_answer_is_noop() -> None:
    d = core.on_send_failed(view(state=S.ANSWERED, last_route="sms|+8613900000001"), T0, "sms|+8613900000001")
    assert d.noop and d.state is S.ANSWERED


def test_answer_in_time_late_and_after_escalation() -> None:
    d = core.on_answer(view(), T0 + 5 * MIN)
    assert d.transition is T.ANSWER and d.late is False and d.state is S.ANSWERED and d.next_action_at is None
    d = core.on_answer(view(), T0 + 5 * MIN + dt.timedelta(seconds=1))
    assert d.late is True
    d = core.on_answer(view(state=S.ESCALATED, next_action_at=None), T0 + 30 * MIN)
    assert d.transition is T.ANSWER and d.late is True and d.state is S.ANSWERED
    d = core.on_answer(view(state=S.UNANSWERED, next_action_at=None), T0 + 60 * MIN)
    assert d.state is S.ANSWERED and d.late is True
    d = core.on_answer(view(state=S.ANSWERED, next_action_at=None), T0 + MIN)
    assert d.transition is T.ANSWER_AGAIN


def test_cancel_and_cancel_again() -> None:
    d = core.on_cancel(view(), T0)
    assert d.transition is T.CANCEL and d.state is S.CANCELLED
    assert core.on_cancel(view(state=S.CANCELLED), T0).noop
    assert core.on_cancel(view(state=S.ANSWERED), T0).noop
    assert core.on_due(view(state=S.CANCELLED), T0 + 9 * MIN).noop
