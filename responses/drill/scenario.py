"""Drill scenario files (YAML): the format, its parsing, and errors that name the line and the field.

The format is an interface people write by hand and keep for years, so it is strict: unknown fields
are refused (a misspelt ``behavior`` must not silently mean "nobody answers"), and every problem is
reported with its line, its field path and a Chinese and English message — all problems at once.

    name: 城区暴雨红色预警演练
    start: 2026-07-20T02:00:00+08:00    # virtual start (with its offset)
    duration: 6h                         # virtual length
    contacts: contacts.csv               # optional; default: the region's demo contacts
    plans: plans                         # optional folder of plan files used instead of the bundled ones
    roster:                              # optional duty shifts (absolute times); default: one drill shift
      - {start: 2026-07-19T20:00:00+08:00, end: 2026-07-20T08:00:00+08:00, label: 夜班,
         leader: {name: 张带班, phone: "+8613900000101"}, officers: [{name: 李值班}]}
    events:                              # inputs at virtual times (paths relative to this file)
      - at: 0m
        feed: {format: cap, file: red-rainstorm.xml}
      - at: 30m                          # a warning phoned in: the JSON body POST /warnings/manual takes
        manual: {file: township-call.json}
    duty_log:                            # optional entries the officer on duty writes
      - {at: 20m, kind: call, text: 建设路积水, from_unit: 东街街道, for_handover: true}
    behaviour:
      answers:                           # first matching rule wins
        - match: {area: "140502101201"}  # area code or prefix; or {role: grid_worker}; or {phone: "+86…"};
                                         # with {call: escalation} (or plan): only calls escalated to them
          after: never
          channel: keypress              # keypress | sms | web | phone
      judgements:
        - {department: 气象局, after: 5m, level: red}
      decision: {after: 20m, level: red}
      measures: {after: 40m}
      measure_rules:                     # optional, first match wins before ``measures``
        - {match: {kind: evacuation, area: "140502001"}, after: 25m, lift_after: never}
      provider_faults: {rate: 0.1}
      handover: {sign_before_end: 10m, acknowledge_after_start: 5m}   # or never
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from warning.feeds import FORMATS

_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")

Path_ = tuple[str | int, ...]


def parse_duration(value: Any) -> dt.timedelta:
    """``90s``, ``12m``, ``3h``, ``1h30m``, ``2d`` → a timedelta. A bare number is refused (minutes or seconds?)."""
    if isinstance(value, dt.timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("时长须写成带单位的文字，如 12m、3h、1h30m、90s / write a duration with a unit: 12m, 3h, 90s")
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        raise ValueError(f"无法识别的时长 {value!r}，应如 12m、3h、1h30m、90s / not a duration: {value!r}")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return dt.timedelta(days=d, hours=h, minutes=mi, seconds=s)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedRef(_Strict):
    format: str  # a format of ``jiaoying normalize`` (warning.feeds.FORMATS)
    file: str = Field(min_length=1)

    @field_validator("format")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in FORMATS:
            known = ", ".join(FORMATS)
            raise ValueError(f"未知的格式 {v!r}，可选：{known} / unknown format {v!r}; known: {known}")
        return v


class ManualRef(_Strict):
    """A warning phoned in and typed by the officer: ``file`` holds the body ``POST /warnings/manual`` takes."""

    file: str = Field(min_length=1)


class ScenarioEvent(_Strict):
    """One input: a feed payload, or a warning entered by hand (exactly one of the two)."""

    at: dt.timedelta
    feed: FeedRef | None = None
    manual: ManualRef | None = None

    _at = field_validator("at", mode="before")(parse_duration)

    @model_validator(mode="after")
    def _one_input(self) -> ScenarioEvent:
        if (self.feed is None) == (self.manual is None):
            raise ValueError("每个事件须有 feed 或 manual 之一 / each event has either feed or manual")
        return self

    @property
    def file(self) -> str:
        return self.feed.file if self.feed is not None else self.manual.file  # type: ignore[union-attr]

    @property
    def kind(self) -> str:
        """The feed format, or ``manual``."""
        return self.feed.format if self.feed is not None else "manual"


class Match(_Strict):
    area: str | None = Field(default=None, pattern=r"^\d{1,12}$")
    role: str | None = None
    phone: str | None = None
    call: Literal["plan", "escalation"] | None = None  # the person's own call, or one escalated to them

    @field_validator("area", "role", "phone", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            raise ValueError("请加引号写成文字，如 \"140502101201\" / quote it as text")
        return v

    def matches(self, *, areas: list[str], role: str | None, phone: str | None, call: str | None = None) -> bool:
        """All given conditions must hold; an empty match matches everyone."""
        if self.area is not None and not any(a.startswith(self.area) for a in areas):
            return False
        if self.call is not None and self.call != call:
            return False
        if self.role is not None and self.role != role:
            return False
        return self.phone is None or self.phone == phone


def _after_or_never(v: Any) -> dt.timedelta | None:
    if v is None or (isinstance(v, str) and v.strip().lower() == "never"):
        return None
    return parse_duration(v)


class AnswerRule(_Strict):
    match: Match = Field(default_factory=Match)
    after: dt.timedelta | None  # None = never answers
    channel: Literal["keypress", "sms", "web", "phone"] = "keypress"

    _after = field_validator("after", mode="before")(_after_or_never)


class JudgementRule(_Strict):
    department: str = Field(min_length=1)
    after: dt.timedelta
    level: Literal["blue", "yellow", "orange", "red"] | None = None  # None = "no warning needed"

    _after = field_validator("after", mode="before")(parse_duration)


class DecisionRule(_Strict):
    after: dt.timedelta
    level: Literal["blue", "yellow", "orange", "red"]

    _after = field_validator("after", mode="before")(parse_duration)


class MeasuresRule(_Strict):
    after: dt.timedelta

    _after = field_validator("after", mode="before")(parse_duration)


class MeasureMatch(_Strict):
    kind: str | None = None  # a measure kind of the plan: evacuation, stop_school, …
    area: str | None = Field(default=None, pattern=r"^\d{1,12}$")  # code or prefix of one of its areas

    def matches(self, *, kind: str, areas: list[str]) -> bool:
        if self.kind is not None and self.kind != kind:
            return False
        return self.area is None or any(a.startswith(self.area) for a in areas)


class MeasureRule(_Strict):
    """One measure's own timing (a replay writes one per measure): carried out ``after`` its order, its
    lifting confirmed ``lift_after`` the lift order; either may be ``never``; ``lift_after`` omitted = ``after``."""

    match: MeasureMatch = Field(default_factory=MeasureMatch)
    after: dt.timedelta | None
    lift_after: dt.timedelta | None = None

    _after = field_validator("after", "lift_after", mode="before")(_after_or_never)


class ProviderFaults(_Strict):
    rate: float = Field(ge=0.0, le=1.0)


class HandoverRule(_Strict):
    """The officers' side of a change of shift: the outgoing one signs the handover this long before the shift
    ends, the incoming one acknowledges it this long after the next shift begins (``never``: they do not)."""

    sign_before_end: dt.timedelta | None = None  # omitted = never
    acknowledge_after_start: dt.timedelta | None = None

    _sign = field_validator("sign_before_end", mode="before")(_after_or_never)
    _ack = field_validator("acknowledge_after_start", mode="before")(_after_or_never)


class Behaviour(_Strict):
    answers: list[AnswerRule] = Field(default_factory=list)
    judgements: list[JudgementRule] = Field(default_factory=list)
    decision: DecisionRule | None = None
    measures: MeasuresRule | None = None
    measure_rules: list[MeasureRule] = Field(default_factory=list)  # first match wins, before ``measures``
    provider_faults: ProviderFaults | None = None
    handover: HandoverRule | None = None

    def measure_after(self, *, kind: str, areas: list[str], lifting: bool) -> dt.timedelta | None:
        """How long after its (lift) order a measure is carried out (lifted): the first matching
        ``measure_rules`` entry, else ``measures``; None = never."""
        for rule in self.measure_rules:
            if rule.match.matches(kind=kind, areas=areas):
                if lifting and "lift_after" in rule.model_fields_set:
                    return rule.lift_after
                return rule.after
        return self.measures.after if self.measures is not None else None

    def answer_rule(self, *, areas: list[str], role: str | None, phone: str | None,
                    call: str | None = None) -> AnswerRule | None:
        """The first rule that matches this person; None = no rule, the person never answers."""
        for rule in self.answers:
            if rule.match.matches(areas=areas, role=role, phone=phone, call=call):
                return rule
        return None


def _aware_time(v: Any) -> Any:
    if isinstance(v, str):
        try:
            when = dt.datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"无法识别的时间 {v!r}，应如 2026-07-20T02:00:00+08:00 / not an ISO time") from None
        if when.tzinfo is None:
            raise ValueError("时间须带时区，如 +08:00 / the time needs a UTC offset, e.g. +08:00")
        return when
    return v


class Person(_Strict):
    name: str = Field(min_length=1, max_length=80)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 -]{4,19}$")


class RosterShift(_Strict):
    """A shift of the drill's duty roster (absolute times, like a roster's): who leads and who is on duty."""

    start: dt.datetime
    end: dt.datetime
    label: str = Field(default="", max_length=80)
    leader: Person | None = None
    officers: list[Person] = Field(default_factory=list)

    _times = field_validator("start", "end", mode="before")(_aware_time)

    @model_validator(mode="after")
    def _order(self) -> RosterShift:
        if self.end <= self.start:
            raise ValueError("班次结束时间须晚于开始时间 / a shift ends after it starts")
        return self


class DutyLogInput(_Strict):
    """An entry the officer on duty writes in the duty log at a virtual time."""

    at: dt.timedelta
    kind: Literal["call", "instruction", "action", "note"]
    text: str = Field(min_length=1, max_length=4000)
    from_name: str | None = Field(default=None, max_length=80)
    from_unit: str | None = Field(default=None, max_length=120)
    from_phone: str | None = Field(default=None, max_length=40)
    for_handover: bool = False

    _at = field_validator("at", mode="before")(parse_duration)


class Scenario(_Strict):
    name: str = Field(min_length=1)
    start: dt.datetime
    duration: dt.timedelta
    contacts: str | None = None
    plans: str | None = None  # a folder of plan files used instead of the bundled ones (same layout)
    roster: list[RosterShift] = Field(default_factory=list)
    events: list[ScenarioEvent] = Field(min_length=1)
    duty_log: list[DutyLogInput] = Field(default_factory=list)
    behaviour: Behaviour = Field(default_factory=Behaviour)

    _duration = field_validator("duration", mode="before")(parse_duration)
    _start = field_validator("start", mode="before")(_aware_time)

    @property
    def end(self) -> dt.datetime:
        return self.start + self.duration


@dataclass(frozen=True)
class Problem:
    line: int | None
    field: str
    zh: str
    en: str

    def __str__(self) -> str:
        where = f"第 {self.line} 行 / line {self.line}" if self.line else "文件 / file"
        return f"{where}，字段 / field {self.field or '(顶层 / top level)'}：{self.zh} / {self.en}"


class ScenarioError(Exception):
    """A scenario file that cannot be run; ``problems`` lists every one found, each with line and field."""

    def __init__(self, path: Path | str, problems: list[Problem]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{self.path}:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class LoadedScenario:
    """A parsed scenario and the folder its relative paths start from."""

    scenario: Scenario
    path: Path
    base_dir: Path

    def resolve(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()


# ---- YAML with line numbers -------------------------------------------------------------------------------

_constructor = yaml.SafeLoader  # resolver/constructor for plain scalars


def _to_python(node: Node, path: Path_, marks: dict[Path_, int], problems: list[Problem]) -> Any:
    marks[path] = node.start_mark.line + 1
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                line = key_node.start_mark.line + 1
                problems.append(Problem(line, _dotted(path), "键必须是文字", "keys must be text"))
                continue
            key = str(key_node.value)
            if key in out:
                problems.append(Problem(key_node.start_mark.line + 1, _dotted((*path, key)), "字段重复",
                                        "duplicate field"))
            out[key] = _to_python(value_node, (*path, key), marks, problems)
            marks[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, SequenceNode):
        return [_to_python(item, (*path, i), marks, problems) for i, item in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    if node.tag == "tag:yaml.org,2002:timestamp":
        return str(node.value)  # parsed by the model, which insists on an offset
    loader = _constructor("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_for(loc: Path_, marks: dict[Path_, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in marks:
            return marks[loc[:n]]
    return None


_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "未知字段（请检查拼写）",
    "literal_error": "取值不在允许范围内",
    "string_pattern_mismatch": "格式不对",
    "too_short": "不能为空",
    "string_too_short": "不能为空",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "float_parsing": "应为数字",
    "datetime_parsing": "无法识别的时间",
    "datetime_type": "应为时间",
    "list_type": "应为列表",
    "dict_type": "应为键值对象",
    "model_type": "应为键值对象",
    "string_type": "应为文字",
}


def _problems_from(exc: ValidationError, marks: dict[Path_, int]) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "value_error" and " / " in msg:
            zh, en = msg.split(" / ", 1)
        else:
            zh, en = _ZH.get(err["type"], "取值无效"), msg
            if err["type"] == "literal_error":
                zh += f"：{msg.split('Input should be ', 1)[-1]}"
        out.append(Problem(_line_for(loc, marks), _dotted(loc), zh, en))
    return out


def parse_scenario(text: str, *, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Parse a scenario; every problem (YAML syntax, fields, missing files, times past the end) in one error."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ScenarioError(source, [Problem(line, "", f"YAML 语法错误：{exc.problem}", f"YAML syntax: {exc.problem}")]
                            ) from None
    if root is None or not isinstance(root, MappingNode):
        raise ScenarioError(source, [Problem(1, "", "演练脚本应为键值对象（name、start、events…）",
                                             "a scenario is a mapping (name, start, events…)")])
    marks: dict[Path_, int] = {}
    problems: list[Problem] = []
    data = _to_python(root, (), marks, problems)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, problems + _problems_from(exc, marks)) from None
    for i, ev in enumerate(scenario.events):
        if ev.at > scenario.duration:
            problems.append(Problem(marks.get(("events", i, "at")), f"events[{i}].at",
                                    "事件时间超出演练时长", "the event lies after the end of the run"))
        key = "feed" if ev.feed is not None else "manual"
        if base_dir is not None and not (base_dir / ev.file).is_file():
            problems.append(Problem(marks.get(("events", i, key, "file")), f"events[{i}].{key}.file",
                                    f"找不到文件 {ev.file}（相对于演练脚本所在目录）",
                                    f"file not found: {ev.file} (relative to the scenario file)"))
        elif base_dir is not None and ev.manual is not None:
            problems += _manual_problems(base_dir / ev.file, marks.get(("events", i, "manual", "file")), i)
    for i, entry in enumerate(scenario.duty_log):
        if entry.at > scenario.duration:
            problems.append(Problem(marks.get(("duty_log", i, "at")), f"duty_log[{i}].at",
                                    "记录时间超出演练时长", "the entry lies after the end of the run"))
    if base_dir is not None and scenario.contacts and not (base_dir / scenario.contacts).is_file():
        problems.append(Problem(marks.get(("contacts",)), "contacts", f"找不到联系人文件 {scenario.contacts}",
                                f"contacts file not found: {scenario.contacts}"))
    if base_dir is not None and scenario.plans and not (base_dir / scenario.plans).is_dir():
        problems.append(Problem(marks.get(("plans",)), "plans", f"找不到预案目录 {scenario.plans}",
                                f"plans folder not found: {scenario.plans}"))
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def _manual_problems(path: Path, line: int | None, i: int) -> list[Problem]:
    """A manual warning file is checked when the scenario is loaded, as the API would check the body."""
    from warning.schemas import ManualWarningIn

    where = f"events[{i}].manual.file"
    try:
        data = ManualWarningIn.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return [Problem(line, where, f"人工录入预警 {path.name} 有误：{loc} {first['msg']}",
                        f"manual warning {path.name} is invalid: {loc} {first['msg']}")]
    if data.msg_type != "alert":
        return [Problem(line, where, "演练中的人工录入预警只支持 alert（首次发布）",
                        "a manual warning in a drill can only be an alert")]
    return []


def load_scenario(path: Path) -> LoadedScenario:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(path, [Problem(None, "", "找不到演练脚本文件", "scenario file not found")]) from None
    except UnicodeDecodeError:
        raise ScenarioError(path, [Problem(None, "", "文件不是 UTF-8 编码", "the file is not UTF-8")]) from None
    base = path.resolve().parent
    return LoadedScenario(parse_scenario(text, source=str(path), base_dir=base), path.resolve(), base)
