"""Every transition of the consultation machine, and the refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from warning.consultation import core as m
from warning.consultation.core import ConsultationState as S
from warning.consultation.core import IllegalTransition
from warning.consultation.core import Transition as T

NOW = dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.UTC)
DEADLINE = NOW + dt.timedelta(minutes=60)
INVITED = ["meteorology", "water", "natural_resources", "emergency"]


@pytest.mark.parametrize(("transition", "state"), list(m.TRANSITIONS))
def test_every_listed_transition_goes_where_the_table_says(transition: T, state: S) -> None:
    assert m.apply(state, transition) is m.TRANSITIONS[(transition, state)]


@pytest.mark.parametrize(("transition", "state"),
                         [(t, s) for t in T for s in S if (t, s) not in m.TRANSITIONS])
def test_every_other_move_is_refused_with_a_clear_message(transition: T, state: S) -> None:
    with pytest.raises(IllegalTransition) as info:
        m.apply(state, transition)
    assert state.value in info.value.en and transition.value in info.value.en
    assert m.STATE_ZH[state] in info.value.zh


def test_final_states_allow_nothing_but_revision() -> None:
    assert m.allowed_from(S.DECIDED) == [T.REVISE]
    assert m.allowed_from(S.DISMISSED) == [] and m.allowed_from(S.CLOSED) == []


def test_judging_before_and_after_the_deadline() -> None:
    assert m.judge(S.OPEN, department="water", invited=INVITED, deadline=DEADLINE, now=NOW) == m.Step(S.OPEN)
    late = m.judge(S.DEADLINE_PASSED, department="water", invited=INVITED, deadline=DEADLINE,
                   now=DEADLINE + dt.timedelta(minutes=1))
    assert late.late and late.state is S.DEADLINE_PASSED
    with pytest.raises(IllegalTransition, match="not invited"):
        m.judge(S.OPEN, department="forestry", invited=INVITED, deadline=DEADLINE, now=NOW)
    with pytest.raises(IllegalTransition):
        m.judge(S.DECIDED, department="water", invited=INVITED, deadline=DEADLINE, now=NOW)


def test_deadline_names_the_missing_and_cannot_come_early() -> None:
    with pytest.raises(IllegalTransition, match="not come yet"):
        m.reach_deadline(S.OPEN, deadline=DEADLINE, now=NOW, invited=INVITED, judged=[])
    step = m.reach_deadline(S.OPEN, deadline=DEADLINE, now=DEADLINE, invited=INVITED,
                            judged=["water", "meteorology", "natural_resources"])
    assert step.state is S.DEADLINE_PASSED and step.missing == ("emergency",)


def test_extend_reopens_and_must_move_forward() -> None:
    assert m.extend(S.DEADLINE_PASSED, deadline=DEADLINE, new_deadline=DEADLINE + dt.timedelta(minutes=30),
                    now=DEADLINE + dt.timedelta(minutes=1)).state is S.OPEN
    with pytest.raises(IllegalTransition, match="later"):
        m.extend(S.OPEN, deadline=DEADLINE, new_deadline=DEADLINE - dt.timedelta(minutes=1), now=NOW)


def test_decide_revise_dismiss_close() -> None:
    assert m.decide(S.OPEN).state is S.DECIDED
    assert m.decide(S.DEADLINE_PASSED).state is S.DECIDED
    assert m.revise(S.DECIDED, reason="雨势加强").state is S.DECIDED
    with pytest.raises(IllegalTransition, match="reason"):
        m.revise(S.DECIDED, reason="  ")
    with pytest.raises(IllegalTransition):
        m.decide(S.DECIDED)  # a second decision is a revision, with a reason
    assert m.dismiss(S.OPEN, reason="未达启动条件").state is S.DISMISSED
    with pytest.raises(IllegalTransition, match="reason"):
        m.dismiss(S.OPEN, reason="")
    assert m.close(S.DEADLINE_PASSED).state is S.CLOSED
    with pytest.raises(IllegalTransition):
        m.close(S.DECIDED)


def test_reminder_once_in_its_window() -> None:
    before = DEADLINE - dt.timedelta(minutes=10)
    assert not m.reminder_due(S.OPEN, deadline=DEADLINE, reminder_minutes=10, reminded=False,
                              now=before - dt.timedelta(seconds=1))
    assert m.reminder_due(S.OPEN, deadline=DEADLINE, reminder_minutes=10, reminded=False, now=before)
    assert not m.reminder_due(S.OPEN, deadline=DEADLINE, reminder_minutes=10, reminded=True, now=before)
    assert not m.reminder_due(S.OPEN, deadline=DEADLINE, reminder_minutes=None, reminded=False, now=before)


def test_judged_areas_add_and_remove() -> None:
    base = {"villages": ["1", "2"], "townships": ["t"]}
    out = m.apply_judged_areas(base, [{"villages": ["3"]}], [{"villages": ["1"]}])
    assert out == {"villages": ["2", "3"], "townships": ["t"], "sites": []}
