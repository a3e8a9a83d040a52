"""API shapes for contacts, callouts and answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from responses.callouts import AnswerChannel, AnswerKind
from responses.contacts import DutyRole


class DutyIn(BaseModel):
    role: DutyRole
    area_code: str | None = Field(default=None, pattern=r"^\d{12}$")
    site_id: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=80)  # department_duty: a department's name or code
    active_from: dt.datetime | None = None
    active_to: dt.datetime | None = None


class ContactIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    phone: str = Field(min_length=3, max_length=40)
    backup_phone: str | None = Field(default=None, max_length=40)
    two_way_sms: bool = False
    active_from: dt.datetime | None = None
    active_to: dt.datetime | None = None
    note: str = Field(default="", max_length=2000)
    duties: list[DutyIn] = Field(default_factory=list)


class ContactPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=80)
    phone: str | None = Field(default=None, max_length=40)
    backup_phone: str | None = Field(default=None, max_length=40)
    two_way_sms: bool | None = None
    active: bool | None = None
    active_from: dt.datetime | None = None
    active_to: dt.datetime | None = None
    note: str | None = Field(default=None, max_length=2000)


class AnswerIn(BaseModel):
    """A duty officer's entry: "电话确认" (channel duty_officer) needs a note saying who said what."""

    channel: AnswerChannel = AnswerChannel.DUTY_OFFICER
    kind: AnswerKind = AnswerKind.RECEIVED
    note: str = Field(default="", max_length=2000)
    report: dict[str, Any] = Field(default_factory=dict)
