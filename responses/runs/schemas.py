"""API shapes of plans, runs, supervision and the duty roster."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.fields import AwareDateTimeIn


class PlanSummary(BaseModel):
    hazard: str
    title: str
    version: str
    source: Literal["default", "edited"]
    revision: int | None = None


class PlanOut(PlanSummary):
    plan: dict[str, Any]


class PlanEditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=500_000, description="预案文档 / the plan document text")
    format: Literal["yaml", "toml", "json"] = "yaml"
    note: str = Field(default="", max_length=2000)


class PlanCheckOut(BaseModel):
    ok: bool
    errors: list[dict[str, Any]]


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    thread_id: int
    warning_id: int
    hazard: str
    level: str
    response_level: str
    areas: dict[str, Any]
    measures: list[Any]
    trigger: str
    consultation_id: int | None
    decision_id: int | None
    plan_version: str
    state: str
    drill: bool
    started_at: dt.datetime
    started_by: str
    closing_at: dt.datetime | None
    closing_reason: str | None
    closed_at: dt.datetime | None


class RunDetail(RunOut):
    plan_snapshot: dict[str, Any]
    entry_snapshot: dict[str, Any]
    events: list[dict[str, Any]] = Field(default_factory=list)


class RunClosingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class RunCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000)


class FlagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    subject_type: str
    subject_id: str
    due_at: dt.datetime | None
    raised_at: dt.datetime
    detail: dict[str, Any]
    cleared_at: dt.datetime | None
    cleared_reason: str | None


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    created_at: dt.datetime
    kind: str
    recipient_role: str
    recipient_name: str | None
    subject: str
    subject_en: str
    entity_type: str
    entity_id: str
    read_at: dt.datetime | None


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 -]{4,19}$")


class ShiftIn(BaseModel):
    """One shift; it ends after it starts (``ends_at`` later than ``starts_at``)."""

    model_config = ConfigDict(extra="forbid")
    starts_at: AwareDateTimeIn
    ends_at: AwareDateTimeIn = Field(description="晚于 starts_at / later than starts_at")
    label: str = Field("", max_length=80)
    note: str = ""
    leader: PersonIn | None = None
    officers: list[PersonIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _order(self) -> ShiftIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at / 结束时间必须晚于开始时间")
        return self


class ShiftsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("API", max_length=200)
    shifts: list[ShiftIn] = Field(min_length=1, max_length=2000)


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    role: str
    name: str
    phone: str | None


class ShiftOut(BaseModel):
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    label: str
    note: str
    leader: MemberOut | None
    officers: list[MemberOut]


class OnDutyOut(BaseModel):
    at: dt.datetime
    shift: ShiftOut | None
    leader: MemberOut | None
    officers: list[MemberOut]


class RosterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    source: str
    filename: str | None
    rows_ok: int
    errors: list[Any]
    imported_at: dt.datetime
    imported_by: str
