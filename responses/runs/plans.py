"""Response plans (应急预案) as data: the schema, loading, and validation that names every error.

A plan file covers one hazard; for each warning level it says the response level, how the
consultation relates to the response, who is called and how fast they must answer, which measures
are ordered, and when information reports are due. The numbers in the shipped defaults are local
rules: a district edits its files (or an admin edits them through the API) and ``jiaoying plans
validate`` proves the result before it is used.

Errors carry the file, the line (YAML) or path (TOML/JSON), the field, and a Chinese and English
message, so one run of the validator lists everything that needs fixing — never just the first.
"""

from __future__ import annotations

import enum
import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from config.users import default_departments
from warning.draft import Hazard, Level

DEFAULT_PLANS_DIR = Path(__file__).resolve().parents[2] / "config" / "defaults" / "plans"
PLAN_SUFFIXES = (".yaml", ".yml", ".toml", ".json")

LEVEL_ORDER = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
RESPONSE_LEVELS = ("I", "II", "III", "IV")


class ConsultationMode(enum.StrEnum):
    BEFORE = "before"  # consult first; the leader's decision starts the run
    PARALLEL = "parallel"  # start the run at once and consult alongside it
    SKIP = "skip"  # start the run at once, no consultation


class CallRole(enum.StrEnum):
    DISTRICT_LEADER = "district_leader"
    TOWNSHIP_CHIEF = "township_chief"
    VILLAGE_HEAD = "village_head"
    GRID_WORKER = "grid_worker"
    SITE_MONITOR = "site_monitor"


class Tier(enum.StrEnum):
    DISTRICT = "district"
    TOWNSHIP = "township"
    VILLAGE = "village"
    SITE = "site"


class LadderStep(enum.StrEnum):
    SITE = "site"
    VILLAGE = "village"
    TOWNSHIP = "township"
    DISTRICT = "district"
    LEADER_ON_DUTY = "leader_on_duty"  # the district leader on duty (带班领导) from the roster


class Channel(enum.StrEnum):
    SMS = "sms"
    VOICE = "voice"


class MeasureKind(enum.StrEnum):
    CLOSURE = "closure"  # 关闭公共场所
    EVACUATION = "evacuation"  # 转移疏散
    STOP_WORK = "stop_work"  # 停工
    STOP_SCHOOL = "stop_school"  # 停学
    STOP_BUSINESS = "stop_business"  # 停业
    STOP_TRANSPORT = "stop_transport"  # 停运
    TRAFFIC_CONTROL = "traffic_control"  # 交通管控
    CUSTOM = "custom"


MEASURE_ZH = {
    MeasureKind.CLOSURE: "关闭公共场所",
    MeasureKind.EVACUATION: "转移疏散",
    MeasureKind.STOP_WORK: "停工",
    MeasureKind.STOP_SCHOOL: "停学",
    MeasureKind.STOP_BUSINESS: "停业",
    MeasureKind.STOP_TRANSPORT: "停运",
    MeasureKind.TRAFFIC_CONTROL: "交通管控",
    MeasureKind.CUSTOM: "其他措施",
}

AreaLevel = Literal["district", "township", "village", "grid"]
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


def _known_departments(info: ValidationInfo) -> dict[str, str]:
    """code and name → code; the validation context may carry a district's own list."""
    ctx = info.context or {}
    depts = ctx.get("departments") or default_departments()
    table: dict[str, str] = {}
    for d in depts:
        table[d["code"]] = d["code"]
        table[d["name"]] = d["code"]
    return table


class ConsultationRule(_Strict):
    mode: ConsultationMode
    departments: list[str] = Field(default_factory=list)
    deadline_minutes: int | None = Field(default=None, gt=0, le=24 * 60)
    reminder_minutes: int | None = Field(default=None, gt=0, le=24 * 60)  # before the deadline

    @field_validator("departments")
    @classmethod
    def _departments_known(cls, v: list[str], info: ValidationInfo) -> list[str]:
        known = _known_departments(info)
        unknown = [d for d in v if d not in known]
        if unknown:
            raise ValueError(f"unknown department(s) {unknown}; use a code or name from departments.toml")
        codes = [known[d] for d in v]
        if len(set(codes)) != len(codes):
            raise ValueError("a department is listed twice")
        return codes

    @model_validator(mode="after")
    def _needs_people_and_deadline(self) -> ConsultationRule:
        if self.mode is not ConsultationMode.SKIP:
            if not self.departments:
                raise ValueError("a consultation needs invited departments (mode is not skip)")
            if self.deadline_minutes is None:
                raise ValueError("a consultation needs deadline_minutes (mode is not skip)")
        if self.reminder_minutes and self.deadline_minutes and self.reminder_minutes >= self.deadline_minutes:
            raise ValueError("reminder_minutes (before the deadline) must be shorter than deadline_minutes")
        return self


class Retries(_Strict):
    count: int = Field(ge=0, le=10)
    interval_minutes: int = Field(gt=0, le=240)


class CallRule(_Strict):
    answer_minutes: int = Field(gt=0, le=24 * 60)
    retries: Retries
    channels: list[Channel] = Field(min_length=1)
    tiers: dict[Tier, list[CallRole]] = Field(min_length=1)
    escalation: list[LadderStep] = Field(min_length=1)

    @field_validator("escalation")
    @classmethod
    def _ladder_climbs(cls, v: list[LadderStep]) -> list[LadderStep]:
        order = list(LadderStep)
        ranks = [order.index(s) for s in v]
        if ranks != sorted(set(ranks)):
            raise ValueError("the escalation ladder must climb (site → village → township → district → "
                             "leader_on_duty) without repeats")
        return v

    @field_validator("channels")
    @classmethod
    def _no_repeat(cls, v: list[Channel]) -> list[Channel]:
        if len(set(v)) != len(v):
            raise ValueError("a channel is listed twice")
        return v


class MeasureTargets(_Strict):
    area_levels: list[AreaLevel] = Field(default_factory=list)
    site_kinds: list[str] = Field(default_factory=list)

    @field_validator("site_kinds")
    @classmethod
    def _snake(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if not _SNAKE.match(k)]
        if bad:
            raise ValueError(f"site kinds are snake_case codes, got {bad}")
        return v

    @model_validator(mode="after")
    def _something(self) -> MeasureTargets:
        if not self.area_levels and not self.site_kinds:
            raise ValueError("a measure needs area_levels or site_kinds")
        return self


class MeasureRule(_Strict):
    kind: MeasureKind
    title: str | None = None  # required for custom; otherwise the kind's own name
    targets: MeasureTargets
    deadline_minutes: int = Field(gt=0, le=7 * 24 * 60)
    responsible_unit: str = Field(min_length=1)

    @model_validator(mode="after")
    def _custom_has_title(self) -> MeasureRule:
        if self.kind is MeasureKind.CUSTOM and not self.title:
            raise ValueError("a custom measure needs a title")
        return self

    @property
    def display(self) -> str:
        return self.title or MEASURE_ZH[self.kind]


class ReportSchedule(_Strict):
    initial_phone_minutes: int = Field(gt=0, le=24 * 60)
    written_minutes: int = Field(gt=0, le=24 * 60)
    followups_local: list[str] = Field(default_factory=list)  # "HH:MM" in the display time zone
    final_on_closure: bool = True

    @field_validator("followups_local")
    @classmethod
    def _hhmm(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not _HHMM.match(t)]
        if bad:
            raise ValueError(f"follow-up times are HH:MM (00:00–23:59), got {bad}")
        return v

    @model_validator(mode="after")
    def _written_after_phone(self) -> ReportSchedule:
        if self.written_minutes < self.initial_phone_minutes:
            raise ValueError("the written report cannot be due before the initial phone report")
        return self


class PlanEntry(_Strict):
    """What one hazard × level calls for."""

    response_level: Literal["I", "II", "III", "IV"]
    run_start_minutes: int = Field(gt=0, le=24 * 60)  # supervision: a run must start within this time
    consultation: ConsultationRule
    calls: CallRule
    measures: list[MeasureRule] = Field(default_factory=list)
    reports: ReportSchedule


class ResponsePlan(_Strict):
    hazard: Hazard
    title: str = Field(min_length=1)
    title_en: str = ""
    version: str = Field(min_length=1)
    notes: str = ""
    levels: dict[Level, PlanEntry]

    @model_validator(mode="after")
    def _all_levels(self) -> ResponsePlan:
        missing = [lv.value for lv in LEVEL_ORDER if lv not in self.levels]
        if missing:
            raise ValueError(f"every level needs an entry; missing {missing}")
        return self

    def problems(self) -> list[tuple[str, str, str]]:
        """Rules across levels, each as (path, zh, en); all of them, not just the first."""
        out: list[tuple[str, str, str]] = []
        red = self.levels[Level.RED]
        if red.consultation.mode is ConsultationMode.BEFORE:
            out.append(("levels.red.consultation.mode", "红色预警必须立即启动响应：应为 parallel 或 skip",
                        "a red warning starts the response at once: use parallel or skip"))
        prev: tuple[Level, PlanEntry] | None = None
        for lv in LEVEL_ORDER:
            entry = self.levels[lv]
            if prev and entry.calls.answer_minutes > prev[1].calls.answer_minutes:
                out.append((f"levels.{lv.value}.calls.answer_minutes",
                            f"应答时限（{entry.calls.answer_minutes} 分钟）长于较低等级 {prev[0].value}",
                            f"answer_minutes ({entry.calls.answer_minutes}) is longer than at the lower level "
                            f"{prev[0].value} ({prev[1].calls.answer_minutes})"))
            if prev and RESPONSE_LEVELS.index(entry.response_level) > RESPONSE_LEVELS.index(prev[1].response_level):
                out.append((f"levels.{lv.value}.response_level", f"响应等级低于较低预警等级 {prev[0].value}",
                            f"response_level is lower than at {prev[0].value}"))
            prev = (lv, entry)
        return out

    def entry(self, level: Level | str) -> PlanEntry:
        return self.levels[Level(level)]


# ---------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class PlanError:
    file: str
    line: int | None
    path: str  # dotted location inside the document, e.g. levels.red.calls.answer_minutes
    field: str  # the last named part of the path
    message_zh: str
    message_en: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(文档)'}: {self.message_zh} / {self.message_en}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "path": self.path, "field": self.field,
                "message": self.message_zh, "message_en": self.message_en}


_ZH_BY_TYPE = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的字段（拼写错误？）",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "string_type": "应为文本",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为映射（键: 值）",
    "model_type": "应为映射（键: 值）",
    "greater_than": "数值太小",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "too_short": "不能为空",
    "string_too_short": "不能为空",
    "value_error": "取值不合要求",
}


def _zh(err_type: str) -> str:
    return _ZH_BY_TYPE.get(err_type, "取值不合要求")


def _loc_path(loc: Iterable[Any]) -> list[str | int]:
    # pydantic appends the tag of a dict key error as "[key]"; keep only real steps
    return [p for p in loc if not (isinstance(p, str) and p.startswith("[key]"))]


def _line_of(node: yaml.Node | None, loc: list[str | int]) -> int | None:
    """Walk the YAML node tree along a pydantic location; the deepest node found gives the line."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in loc:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(getattr(k, "value", None)) == str(step):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            nxt = node.value[step]
            line = nxt.start_mark.line + 1
        if nxt is None:
            return line
        node = nxt
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            line = node.start_mark.line + 1
    return line


def errors_from_validation(exc: ValidationError, file: str, root: yaml.Node | None) -> list[PlanError]:
    out: list[PlanError] = []
    for e in exc.errors():
        loc = _loc_path(e.get("loc", ()))
        path = ".".join(str(p) for p in loc)
        named = [p for p in loc if isinstance(p, str)]
        en = str(e.get("msg", "invalid"))
        en = en.removeprefix("Value error, ")
        out.append(PlanError(file, _line_of(root, loc), path, named[-1] if named else "", _zh(e["type"]), en))
    return out


# ---------------------------------------------------------------------------------------------- loading


@dataclass
class LoadResult:
    plan: ResponsePlan | None
    errors: list[PlanError]
    data: Any = None


def parse_text(text: str, file: str, fmt: str | None = None, *,
               departments: list[dict[str, str]] | None = None) -> LoadResult:
    """Parse and validate one plan document; never raises for bad content, returns its errors."""
    fmt = (fmt or Path(file).suffix.lstrip(".") or "yaml").lower()
    root: yaml.Node | None = None
    try:
        if fmt in ("yaml", "yml"):
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        elif fmt == "toml":
            data = tomllib.loads(text)
        elif fmt == "json":
            data = json.loads(text)
        else:
            return LoadResult(None, [PlanError(file, None, "", "", f"不支持的文件格式 {fmt}",
                                               f"unsupported format {fmt}; use YAML, TOML or JSON")])
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        return LoadResult(None, [PlanError(file, line, "", "", "YAML 语法错误", str(exc.problem or exc))])
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        return LoadResult(None, [PlanError(file, line, "", "", "文件语法错误", str(exc))])
    if not isinstance(data, dict):
        return LoadResult(None, [PlanError(file, 1, "", "", "预案文件应为一个映射（键: 值）",
                                           "a plan file must be a mapping at the top")])
    ctx = {"departments": departments} if departments else None
    try:
        plan = ResponsePlan.model_validate(data, context=ctx)
    except ValidationError as exc:
        return LoadResult(None, errors_from_validation(exc, file, root), data)
    problems = plan.problems()
    if problems:
        errors = []
        for path, zh, en in problems:
            loc: list[str | int] = list(path.split("."))
            errors.append(PlanError(file, _line_of(root, loc), path, path.rsplit(".", 1)[-1], zh, en))
        return LoadResult(None, errors, data)
    return LoadResult(plan, [], data)


def load_file(path: Path, *, departments: list[dict[str, str]] | None = None) -> LoadResult:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(None, [PlanError(str(path), None, "", "", "无法读取文件", str(exc))])
    return parse_text(text, str(path), departments=departments)


def plan_files(directory: Path) -> Iterator[Path]:
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.suffix.lower() in PLAN_SUFFIXES:
            yield p


@dataclass
class PlanSet:
    plans: dict[Hazard, ResponsePlan]
    errors: list[PlanError]
    sources: dict[Hazard, str]

    @property
    def ok(self) -> bool:
        return not self.errors


def load_dir(directory: Path = DEFAULT_PLANS_DIR, *, require_all: bool = True,
             departments: list[dict[str, str]] | None = None) -> PlanSet:
    """Every plan file of a folder; a hazard defined twice or (with ``require_all``) not at all is an error."""
    plans: dict[Hazard, ResponsePlan] = {}
    sources: dict[Hazard, str] = {}
    errors: list[PlanError] = []
    if not directory.is_dir():
        return PlanSet({}, [PlanError(str(directory), None, "", "", "预案目录不存在", "plan folder not found")], {})
    for path in plan_files(directory):
        res = load_file(path, departments=departments)
        errors.extend(res.errors)
        if res.plan is None:
            continue
        if res.plan.hazard in plans:
            errors.append(PlanError(str(path), 1, "hazard", "hazard",
                                    f"灾种 {res.plan.hazard.value} 已在 {sources[res.plan.hazard]} 中定义",
                                    f"hazard {res.plan.hazard.value} already defined in {sources[res.plan.hazard]}"))
            continue
        plans[res.plan.hazard] = res.plan
        sources[res.plan.hazard] = str(path)
    if require_all:
        defined_or_broken = set(plans)
        broken_files = {e.file for e in errors}
        for hz in Hazard:
            if hz not in defined_or_broken and not any(Path(f).stem == hz.value for f in broken_files):
                errors.append(PlanError(str(directory), None, "", "hazard", f"缺少灾种 {hz.value} 的预案",
                                        f"no plan for hazard {hz.value}"))
    return PlanSet(plans, errors, sources)


def validate_path(path: Path, *, departments: list[dict[str, str]] | None = None) -> list[PlanError]:
    if path.is_dir():
        return load_dir(path, departments=departments).errors
    return load_file(path, departments=departments).errors


def snapshot(plan: ResponsePlan) -> dict[str, Any]:
    """The JSON a run freezes: plain data, so a later edit of the plan never reaches it."""
    return plan.model_dump(mode="json")


def entry_from_snapshot(snap: dict[str, Any], level: Level | str) -> PlanEntry:
    return PlanEntry.model_validate(snap["levels"][Level(level).value])
