"""API shapes of measure orders and information reports."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.fields import NOT_BLANK_PATTERN, PHONE_DOC, PHONE_PATTERN, RowId, not_a_boolean
from responses.runs.plans import MeasureKind

# Checked by the measure service (400 bad_phone in its own words); blank means nobody is named.
OptionalPhone = Annotated[str, Field(max_length=40, description="可留空 / may be blank; " + PHONE_DOC,
                                     json_schema_extra={"pattern": f"^$|{PHONE_PATTERN}"})]


class MeasureOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    run_id: int
    kind: str
    label: str
    state: str
    state_zh: str
    allowed_actions: list[str]
    area_codes: list[str]
    area_names: list[str]
    site_ids: list[str]
    site_names: list[str]
    expected: int | None
    responsible_unit: str
    person_name: str | None
    person_phone: str | None
    deadline: dt.datetime
    report: dict[str, Any]
    gap: dict[str, Any] | None
    overdue: bool
    lift_ordered_at: dt.datetime | None
    lift_acknowledged_at: dt.datetime | None
    lifted_at: dt.datetime | None
    lift_reason: str | None


class MeasureDetail(MeasureOut):
    events: list[dict[str, Any]] = Field(default_factory=list)


class MeasureActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    report: dict[str, Any] | None = None  # carry_out: places_closed, schools_suspended, people_evacuated …
    via: Literal["web", "phone", "sms", "voice", "other"] | None = None  # how the unit told us
    note: str | None = Field(default=None, max_length=2000)
    unit: str | None = Field(default=None, max_length=120)  # reassign: the new responsible unit


class MeasureCreateIn(BaseModel):
    """A measure beyond the plan: for some areas or sites (at least one); a custom one needs its own label."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "anyOf": [{"properties": {"area_codes": {"minItems": 1}}, "required": ["area_codes"]},
                  {"properties": {"site_ids": {"minItems": 1}}, "required": ["site_ids"]}],
        "if": {"properties": {"kind": {"const": MeasureKind.CUSTOM.value}}, "required": ["kind"]},
        "then": {"properties": {"label": {"type": "string", "pattern": NOT_BLANK_PATTERN}}, "required": ["label"]},
    })

    run_id: RowId
    kind: MeasureKind
    label: str | None = Field(default=None, max_length=200)
    area_codes: list[str] = Field(default_factory=list)
    site_ids: list[str] = Field(default_factory=list)
    sectors: list[str] | None = None
    responsible_unit: str = Field(min_length=1, max_length=120)
    deadline_minutes: int = Field(gt=0, le=7 * 24 * 60)
    expected: int | None = Field(default=None, ge=0)
    person_name: str | None = Field(default=None, max_length=80)
    person_phone: OptionalPhone | None = None

    _numbers = field_validator("deadline_minutes", "expected", mode="before")(not_a_boolean)


class MeasureAssignIn(BaseModel):
    """Who carries the measure out: a contact, or a number (and a name)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"properties": {"contact_id": {"type": "integer"}}, "required": ["contact_id"]},
        {"properties": {"phone": {"type": "string", "minLength": 1}}, "required": ["phone"]},
    ]})

    contact_id: RowId | None = None
    name: str | None = Field(default=None, max_length=80)
    phone: OptionalPhone | None = None


class NoticeTextOut(BaseModel):
    measure_id: int
    which: str
    text: str
