"""The shapes of the duty API (/duty): the log, its entries, handovers and roster gaps."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from config.fields import NOT_BLANK_PATTERN, AwareDateTimeIn, Flag, RowId


class ShiftBrief(BaseModel):
    id: int
    label: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    starts_local: str
    ends_local: str
    leader: str | None
    officers: list[str]


class LogEntryOut(BaseModel):
    """One line of the log; ``system`` entries are read from the event log and have no ``id``."""

    id: int | None = Field(description="手写记录的编号；系统记录为 null / a written entry's id; null for a system one")
    system: bool
    event_seq: int | None = Field(description="系统记录对应的事件日志序号 / the event log's seq of a system entry")
    at: dt.datetime
    at_local: str
    kind: str
    kind_zh: str
    text: str = Field(description="日志中显示的内容 / the line as the log shows it")
    body: str | None = Field(description="手写记录的原文 / what the officer wrote")
    from_name: str | None
    from_unit: str | None
    from_phone: str | None
    source: str = Field(description="来源/记录人：系统，或记录人姓名 / 'system' (系统) or the author's name")
    author: str
    for_handover: bool
    warning_id: int | None
    run_id: int | None
    shift_id: int | None
    action: str | None
    entity_type: str | None
    entity_id: str | None
    drill: bool


class LogOut(BaseModel):
    title: str
    shift: ShiftBrief | None
    day: dt.date | None
    from_: dt.datetime = Field(alias="from", serialization_alias="from")
    to: dt.datetime
    from_local: str
    to_local: str
    generated_at: dt.datetime
    generated_local: str
    entries: list[LogEntryOut]

    model_config = ConfigDict(populate_by_name=True)


class LogEntryIn(BaseModel):
    """An entry of the current shift. ``at`` defaults to now and may be back-dated within the shift (a call
    taken earlier, logged when the line was free); not in the future, not before the shift began."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["call", "instruction", "action", "note"] = Field(
        description="call 来电 | instruction 领导批示/上级指示 | action 处置 | note 记事")
    text: str = Field(min_length=1, max_length=4000, description="内容，不能只有空白 / what happened; not blank",
                      json_schema_extra={"pattern": NOT_BLANK_PATTERN})
    at: AwareDateTimeIn | None = Field(default=None, description="发生时间，默认现在；可补记本班内更早的时间 / "
                                                                 "when; default now, back-dated within the shift")
    from_name: str | None = Field(default=None, max_length=80, description="来电人或批示人 / caller or who gave it")
    from_unit: str | None = Field(default=None, max_length=120, description="单位 / their unit")
    from_phone: str | None = Field(default=None, max_length=40, description="来电号码（照录）/ the number, as given")
    warning_id: RowId | None = None
    run_id: RowId | None = None
    for_handover: Flag = Field(default=False, description="列入交接班事项 / carry into the handover")


class HandoverMarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    for_handover: Flag


class HandoverDraftIn(BaseModel):
    """Which shift to draft for (default: the current one), and whether to draft a draft again."""

    model_config = ConfigDict(extra="forbid")

    shift: RowId | None = Field(default=None, description="班次编号，默认当前班次 / the shift; default the current")
    redraft: Flag = Field(default=False, description="草稿按当前数据重新起草（已改内容被替换）/ "
                                                     "draft the draft again from the current data")


class HandoverSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=20000,
                             description="修改后的交接内容；省略则按草稿签字 / the edited text; omitted: as drafted",
                             json_schema_extra={"pattern": NOT_BLANK_PATTERN})


class HandoverAckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000, description="接班意见 / a remark on taking over")


class HandoverOut(BaseModel):
    id: int
    shift_id: int
    next_shift_id: int | None
    shift: ShiftBrief | None
    next_shift: ShiftBrief | None
    state: Literal["draft", "signed", "acknowledged"]
    state_zh: str
    allowed_actions: list[str]
    sections: dict[str, Any] = Field(description="草稿的结构化内容 / the draft's sections as data")
    draft_text: str
    text: str
    edited: bool
    drafted_at: dt.datetime
    drafted_local: str
    drafted_by: str
    signed_at: dt.datetime | None
    signed_local: str
    signed_by: str | None
    signed_by_name: str | None
    ack_due_at: dt.datetime
    ack_due_local: str
    acknowledged_at: dt.datetime | None
    acknowledged_local: str
    acknowledged_by: str | None
    acknowledged_by_name: str | None
    ack_note: str | None
    overdue: bool = Field(description="已过接班确认时限仍未确认 / past the deadline, not acknowledged")
    late: bool | None = Field(description="确认晚于时限（未确认为 null）/ acknowledged late; null until acknowledged")
    flagged_at: dt.datetime | None


class GapOut(BaseModel):
    key: str
    kind: Literal["no_shift", "no_officer", "no_leader"]
    kind_zh: str
    kind_en: str
    shift_id: int | None
    label: str
    starts_at: dt.datetime | None = Field(description="null：值班表中此前无班次 / null: nothing on the roster before")
    ends_at: dt.datetime | None = Field(description="null：此后未排班 / null: nothing on the roster after")
    starts_local: str
    ends_local: str
    message: str
    message_en: str
    now: bool
    within_24h: bool
