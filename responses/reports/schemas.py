"""The shapes of the information reports API (/reports)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from config.fields import NOT_BLANK_PATTERN


class ReportOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    run_id: int
    kind: str
    kind_zh: str
    seq: int
    due_at: dt.datetime
    due_local: str
    state: str
    state_zh: str
    title: str
    text: str
    draft_text: str
    edited: bool
    sent_at: dt.datetime | None
    sent_via: str | None
    recipient: str | None
    late: bool | None
    overdue: bool


class ReportTextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20000, description="不能只有空白 / not blank",
                      json_schema_extra={"pattern": NOT_BLANK_PATTERN})


class ReportSentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    via: Literal["phone", "written", "fax", "system", "other"]
    recipient: str | None = Field(default=None, max_length=120)
    text: str | None = Field(default=None, max_length=20000, description="给出时不能只有空白 / if given, not blank",
                             json_schema_extra={"pattern": NOT_BLANK_PATTERN})
