"""API shapes of the consultation: what a department, the duty desk and the leader send and see."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.fields import DepartmentKey, RowId, not_a_boolean
from warning.draft import Level


class Areas(BaseModel):
    model_config = ConfigDict(extra="forbid")
    villages: list[str] = Field(default_factory=list)
    townships: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)


class ConsultationOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warning_id: RowId
    departments: list[DepartmentKey] = Field(min_length=1, description="部门代码或名称 / department codes or names")
    deadline_minutes: int = Field(gt=0, le=24 * 60)
    reminder_minutes: int | None = Field(default=None, gt=0, le=24 * 60)

    _numbers = field_validator("deadline_minutes", "reminder_minutes", mode="before")(not_a_boolean)


class JudgementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: DepartmentKey
    assessed_level: Level | None = Field(description="研判等级；null 表示无需预警 / null = no warning needed")
    trend: Literal["rising", "steady", "easing"]
    confidence: Literal["low", "medium", "high"]
    text: str = Field(default="", max_length=10_000)
    areas_add: Areas | None = None
    areas_remove: Areas | None = None
    measures: list[str] = Field(default_factory=list, description="建议措施种类 / recommended measure kinds")


class MeasureIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: Literal["closure", "evacuation", "stop_work", "stop_school", "stop_business", "stop_transport",
                  "traffic_control", "custom"]
    title: str | None = None
    targets: dict[str, list[str]] = Field(default_factory=dict)
    deadline_minutes: int = Field(gt=0, le=7 * 24 * 60)
    responsible_unit: str = Field(min_length=1)

    _numbers = field_validator("deadline_minutes", mode="before")(not_a_boolean)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    final_level: Level
    response_level: Literal["I", "II", "III", "IV"] | None = None
    areas: Areas | None = Field(default=None,
                                description="省略则按预警范围及各部门增减 / default: warning + judgements")
    measures: list[MeasureIn] | None = Field(default=None, description="省略则按预案 / default: the plan's")
    reason: str = Field(default="", max_length=10_000, description="修订决策时必填 / required for a revision")


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=10_000)


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: int = Field(gt=0, le=24 * 60)

    _numbers = field_validator("minutes", mode="before")(not_a_boolean)


class JudgementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    department: str
    author: str
    assessed_level: str | None
    trend: str
    confidence: str
    text: str
    areas_add: dict[str, Any]
    areas_remove: dict[str, Any]
    measures: list[Any]
    late: bool
    recorded_at: dt.datetime
    supersedes_id: int | None


class DecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    final_level: str
    response_level: str
    areas: dict[str, Any]
    measures: list[Any]
    reason: str
    decided_by: str
    decided_at: dt.datetime
    supersedes_id: int | None


class ConsultationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    thread_id: int
    warning_id: int
    hazard: str
    level: str | None
    state: str
    mode: str
    areas: dict[str, Any]
    invited: list[Any]
    missing: list[Any]
    opened_at: dt.datetime
    opened_by: str
    deadline: dt.datetime
    decided_at: dt.datetime | None
    dismiss_reason: str | None
    close_reason: str | None
    drill: bool


class ConsultationDetail(ConsultationOut):
    judgements: list[JudgementOut] = Field(default_factory=list)
    judgement_history: list[JudgementOut] = Field(default_factory=list)
    decisions: list[DecisionOut] = Field(default_factory=list)
