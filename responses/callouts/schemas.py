"""API shapes for contacts, callouts and answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from config.fields import (
    BLANK_OR_PHONE_PATTERN,
    NOT_BLANK_PATTERN,
    NOT_NULL,
    PHONE_DOC,
    PHONE_PATTERN,
    DateTimeIn,
    DepartmentKey,
    Flag,
    PartialUpdate,
)
from responses.callouts.core import AnswerChannel, AnswerKind
from responses.contacts.core import AREA_LEVEL_OF_ROLE, DutyRole

# Documented here, checked by ``normalize_phone`` in the handler (which answers 422 bad_phone in its own words).
Phone = Annotated[str, Field(max_length=40, description=PHONE_DOC, json_schema_extra={"pattern": PHONE_PATTERN})]
BackupPhone = Annotated[str, Field(max_length=40, description="可留空 / may be blank; " + PHONE_DOC,
                                   json_schema_extra={"pattern": BLANK_OR_PHONE_PATTERN})]

# Where a duty is held follows from its role (``AREA_LEVEL_OF_ROLE``): a village role a village code, the
# township chief a township code, a district leader the district's code, a site monitor a site, a
# department duty one department and nothing else. The area, site or department must exist.
_NOT_000 = "([1-9][0-9]{2}|0[1-9][0-9]|00[1-9])"
_CODE_OF_LEVEL = {
    "village": f"^[0-9]{{9}}{_NOT_000}$",
    "township": f"^[0-9]{{6}}{_NOT_000}000$",
    "district": "^[0-9]{6}000000$",
}
_EMPTY = {"anyOf": [{"type": "null"}, {"const": ""}]}


def _place_rule(level: str) -> dict[str, Any]:
    if level in _CODE_OF_LEVEL:
        then: dict[str, Any] = {"properties": {"area_code": {"type": "string", "pattern": _CODE_OF_LEVEL[level]},
                                               "department": _EMPTY}, "required": ["area_code"]}
    elif level == "site":
        then = {"properties": {"site_id": {"type": "string", "minLength": 1}, "department": _EMPTY},
                "required": ["site_id"]}
    else:
        then = {"properties": {"department": {"type": "string", "minLength": 1}, "area_code": {"type": "null"},
                               "site_id": _EMPTY}, "required": ["department"]}
    roles = [r.value for r, lv in AREA_LEVEL_OF_ROLE.items() if lv == level]
    return {"if": {"properties": {"role": {"enum": roles}}, "required": ["role"]}, "then": then}


class DutyIn(BaseModel):
    """A duty: a role held for an area of the region, a hazard site, or (department duty) a department."""

    model_config = ConfigDict(json_schema_extra={
        "allOf": [_place_rule(level) for level in dict.fromkeys(AREA_LEVEL_OF_ROLE.values())]})

    role: DutyRole
    area_code: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    site_id: str | None = Field(default=None, max_length=64)
    department: DepartmentKey | None = Field(default=None, max_length=80)  # department_duty: name or code
    active_from: DateTimeIn | None = None
    active_to: DateTimeIn | None = None


class ContactIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    phone: Phone
    backup_phone: BackupPhone | None = None
    two_way_sms: Flag = False
    active_from: DateTimeIn | None = None
    active_to: DateTimeIn | None = None
    note: str = Field(default="", max_length=2000)
    duties: list[DutyIn] = Field(default_factory=list)


class ContactPatch(PartialUpdate):
    name: Annotated[str | None, NOT_NULL] = Field(default=None, min_length=1, max_length=80)
    phone: Annotated[Phone | None, NOT_NULL] = None
    backup_phone: BackupPhone | None = None
    two_way_sms: Annotated[Flag | None, NOT_NULL] = None
    active: Annotated[Flag | None, NOT_NULL] = None
    active_from: DateTimeIn | None = None
    active_to: DateTimeIn | None = None
    note: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=2000)


class AnswerIn(BaseModel):
    """A duty officer's entry: "电话确认" (channel duty_officer) needs a note saying who said what."""

    model_config = ConfigDict(json_schema_extra={  # channel left out means duty_officer
        "if": {"properties": {"channel": {"const": AnswerChannel.DUTY_OFFICER.value}}},
        "then": {"properties": {"note": {"type": "string", "pattern": NOT_BLANK_PATTERN}}, "required": ["note"]},
    })

    channel: Annotated[AnswerChannel, Field(
        description="值班员只能录入电话确认或网页确认；按键和短信回复由系统记录 / only duty_officer or web are "
                    "entered here; keypresses and SMS replies come from the provider",
        json_schema_extra={"enum": [AnswerChannel.DUTY_OFFICER.value, AnswerChannel.WEB.value]},
    )] = AnswerChannel.DUTY_OFFICER
    kind: AnswerKind = AnswerKind.RECEIVED
    note: str = Field(default="", max_length=2000)
    report: dict[str, Any] = Field(default_factory=dict)
