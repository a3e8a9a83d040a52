"""Scenario files: the documented format parses; bad files name the line and the field."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from responses.drill.scenario import ScenarioError, load_scenario, parse_duration, parse_scenario

ISSUE_EXAMPLE = textwrap.dedent("""\
    name: 城区暴雨红色预警演练
    start: 2026-07-20T02:00:00+08:00    # virtual start
    duration: 6h                         # virtual length of the run
    contacts: contacts.csv               # optional; default: the region's demo contacts
    events:                              # inputs at virtual times (paths relative to this file)
      - at: 0m
        feed: {format: cap, file: red-rainstorm.xml}   # formats as in `jiaoying normalize`
      - at: 3h
        feed: {format: cap, file: cancel.xml}
    behaviour:
      answers:                           # simulated responsible people; first matching rule wins
        - match: {area: "140502101201"}  # people responsible for this area code (a village or township prefix)
          after: never
        - match: {role: grid_worker}     # or {phone: "+86…"}
          after: 12m
          channel: keypress              # keypress | sms | web | phone (entered by the duty officer)
        - match: {}
          after: 2m
      judgements:                        # invited departments not listed never answer
        - {department: 气象局, after: 5m, level: red}
      decision: {after: 20m, level: red} # the leader; omit = no decision is taken
      measures: {after: 40m}             # time to carry out each ordered measure; omit = never
      provider_faults: {rate: 0.1}       # optional share of failing provider requests
""")


def write(tmp_path: Path, text: str, files: tuple[str, ...] = ("red-rainstorm.xml", "cancel.xml", "contacts.csv")
          ) -> Path:
    for f in files:
        (tmp_path / f).write_text("x", encoding="utf-8")
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_issue_example_parses(tmp_path: Path) -> None:
    loaded = load_scenario(write(tmp_path, ISSUE_EXAMPLE))
    s = loaded.scenario
    assert s.name == "城区暴雨红色预警演练"
    assert s.start == dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert s.end - s.start == dt.timedelta(hours=6)
    assert [e.at for e in s.events] == [dt.timedelta(0), dt.timedelta(hours=3)]
    assert loaded.resolve(s.events[1].feed.file) == (tmp_path / "cancel.xml").resolve()
    b = s.behaviour
    assert b.decision is not None and b.decision.level == "red" and b.decision.after == dt.timedelta(minutes=20)
    assert b.measures is not None and b.measures.after == dt.timedelta(minutes=40)
    assert b.provider_faults is not None and b.provider_faults.rate == 0.1
    assert b.judgements[0].department == "气象局"


def test_first_matching_answer_rule_wins(tmp_path: Path) -> None:
    b = load_scenario(write(tmp_path, ISSUE_EXAMPLE)).scenario.behaviour
    never = b.answer_rule(areas=["140502101201"], role="grid_worker", phone="+8613900000001")
    assert never is not None and never.after is None
    grid = b.answer_rule(areas=["140502100201"], role="grid_worker", phone=None)
    assert grid is not None and grid.after == dt.timedelta(minutes=12) and grid.channel == "keypress"
    chief = b.answer_rule(areas=["140502100000"], role="township_chief", phone=None)
    assert chief is not None and chief.after == dt.timedelta(minutes=2)
    # a township prefix matches every village below it
    prefix = parse_scenario(ISSUE_EXAMPLE.replace('"140502101201"', '"140502101"')).behaviour
    rule = prefix.answer_rule(areas=["140502101205"], role="village_head", phone=None)
    assert rule is not None and rule.after is None


def test_no_rule_means_never(tmp_path: Path) -> None:
    text = ISSUE_EXAMPLE.replace("    - match: {}\n      after: 2m\n", "")
    b = parse_scenario(text).behaviour
    assert b.answer_rule(areas=["140502999999"], role="township_chief", phone=None) is None


@pytest.mark.parametrize(("value", "expected"), [
    ("0m", dt.timedelta(0)), ("90s", dt.timedelta(seconds=90)), ("1h30m", dt.timedelta(minutes=90)),
    ("2d", dt.timedelta(days=2)), ("12m", dt.timedelta(minutes=12)),
])
def test_durations(value: str, expected: dt.timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["12", "abc", "", "3 hours", 12])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def problems_of(text: str, tmp_path: Path) -> list[tuple[int | None, str]]:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    assert str(tmp_path / "scenario.yaml") in str(err.value)
    return [(p.line, p.field) for p in err.value.problems]


@pytest.mark.parametrize(("old", "new", "line", "field"), [
    ("level: red} # the leader", "level: purple} # the leader", 21, "behaviour.decision.level"),
    ("    after: 12m", "    after: 12", 15, "behaviour.answers[1].after"),
    ("    channel: keypress", "    channel: pigeon", 16, "behaviour.answers[1].channel"),
    ("    channel: keypress", "    chanel: keypress", 16, "behaviour.answers[1].chanel"),
    ("start: 2026-07-20T02:00:00+08:00", "start: 2026-07-20T02:00:00", 2, "start"),
    ("duration: 6h", "duration: six hours", 3, "duration"),
    ("feed: {format: cap, file: cancel.xml}", "feed: {format: kml, file: cancel.xml}", 9, "events[1].feed.format"),
    ("  - at: 3h", "  - at: 7h", 8, "events[1].at"),
    ("file: cancel.xml}", "file: missing.xml}", 9, "events[1].feed.file"),
    ("provider_faults: {rate: 0.1}", "provider_faults: {rate: 1.5}", 23, "behaviour.provider_faults.rate"),
    ("behaviour:", "behavior:", 10, "behavior"),
    ('{area: "140502101201"}', "{area: 140502101201}", 12, "behaviour.answers[0].match.area"),
])
def test_bad_field_names_line_and_field(tmp_path: Path, old: str, new: str, line: int, field: str) -> None:
    assert old in ISSUE_EXAMPLE
    problems = problems_of(ISSUE_EXAMPLE.replace(old, new, 1), tmp_path)
    assert (line, field) in problems, problems


def test_missing_field_and_all_problems_at_once(tmp_path: Path) -> None:
    text = ISSUE_EXAMPLE.replace("name: 城区暴雨红色预警演练\n", "").replace("level: red}", "level: pink}")
    problems = problems_of(text, tmp_path)
    fields = {f for _, f in problems}
    assert {"name", "behaviour.decision.level", "behaviour.judgements[0].level"} <= fields


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    text = ISSUE_EXAMPLE.replace("  - at: 3h\n", "  - at: [3h\n")
    problems = problems_of(text, tmp_path)
    assert problems and problems[0][0] is not None and 8 <= problems[0][0] <= 10


def test_not_a_mapping(tmp_path: Path) -> None:
    assert problems_of("- just\n- a list\n", tmp_path) == [(1, "")]


def test_duplicate_field(tmp_path: Path) -> None:
    problems = problems_of(ISSUE_EXAMPLE.replace("duration: 6h", "duration: 6h\nduration: 5h"), tmp_path)
    assert (4, "duration") in problems


def test_missing_contacts_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, ISSUE_EXAMPLE, files=("red-rainstorm.xml", "cancel.xml")))
    assert [(p.line, p.field) for p in err.value.problems] == [(4, "contacts")]
