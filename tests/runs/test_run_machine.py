"""Every transition of the run machine, the refusals, and the start rule."""

from __future__ import annotations

import pytest

from responses.runs import core as m
from responses.runs.core import IllegalRunTransition, RunState, RunTransition
from warning.draft import Level


@pytest.mark.parametrize(("transition", "state"), list(m.TRANSITIONS))
def test_listed_transitions(transition: RunTransition, state: RunState) -> None:
    assert m.apply(state, transition) is m.TRANSITIONS[(transition, state)]


@pytest.mark.parametrize(("transition", "state"),
                         [(t, s) for t in RunTransition for s in RunState if (t, s) not in m.TRANSITIONS])
def test_other_moves_refused(transition: RunTransition, state: RunState) -> None:
    with pytest.raises(IllegalRunTransition) as info:
        m.apply(state, transition)
    assert m.STATE_ZH[state] in info.value.zh and state.value in info.value.en


def test_lifecycle_active_closing_closed() -> None:
    st = m.apply(RunState.ACTIVE, RunTransition.BEGIN_CLOSING)
    assert st is RunState.CLOSING
    assert m.apply(st, RunTransition.REACTIVATE) is RunState.ACTIVE
    assert m.apply(st, RunTransition.CLOSE) is RunState.CLOSED
    assert not m.is_open(RunState.CLOSED) and m.is_open(RunState.CLOSING)


def test_raise_only_upward() -> None:
    assert m.raise_to(RunState.ACTIVE, Level.YELLOW, Level.RED) is RunState.ACTIVE
    with pytest.raises(IllegalRunTransition, match="not above"):
        m.raise_to(RunState.ACTIVE, Level.ORANGE, Level.YELLOW)
    with pytest.raises(IllegalRunTransition):
        m.raise_to(RunState.CLOSED, Level.YELLOW, Level.RED)


@pytest.mark.parametrize(("mode", "level", "run", "consult"), [
    ("before", "yellow", False, True),
    ("before", "red", True, True),  # red never waits, whatever the file says
    ("parallel", "orange", True, True),
    ("skip", "blue", True, False),
])
def test_start_rule(mode: str, level: str, run: bool, consult: bool) -> None:
    assert m.start_rule(mode, level) == m.StartRule(run, consult)


def test_area_helpers() -> None:
    assert m.areas_added({"villages": ["1"]}, {"villages": ["1", "2"], "sites": ["s"]}) == {
        "villages": ["2"], "sites": ["s"]}
    assert m.overlaps({"villages": ["1"]}, {"villages": ["1", "3"]})
    assert not m.overlaps({"villages": ["1"]}, {"townships": ["1"]})
