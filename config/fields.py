"""Field types the API schemas share, each stating in the OpenAPI document the rule the server checks.

A client generated from ``/openapi.json`` can only respect a rule it is told about: an id is a row id
of the database's integer range, a time is an RFC 3339 text (not a number), a field of a partial update
may be left out but not set to null where its column takes no null, and a phone number is written as
people write it and stored in E.164 (the pattern below is exactly what ``normalize_phone`` accepts).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from config.users import default_departments

# Ids stay within the integers a JSON client reads exactly (and the databases store): a larger id names no row.
MAX_ROW_ID = 2**53 - 1

RowId = Annotated[int, Ge(1), Le(MAX_ROW_ID), BeforeValidator(lambda v: not_a_boolean(v))]



def not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("应为数字，不是 true/false / a number, not true or false")
    return value


# Lax parsing would also take 0/1 as a boolean and false as the number 0; the document says otherwise.
Flag = Annotated[bool, Strict()]
Number = Annotated[float, BeforeValidator(not_a_boolean)]


def _rfc3339_text(value: Any) -> Any:
    # Lax parsing would take a number as seconds since 1970; the document says a date-time text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("时间须写成 RFC 3339 文本，如 2026-07-20T08:00:00+08:00 / "
                         "a time is an RFC 3339 text, e.g. 2026-07-20T08:00:00+08:00")
    return value



def _department_keys() -> list[str]:
    return [key for d in default_departments() for key in (d["code"], d["name"])]


# Departments are data, seeded from the district's list: the document lists those, by code or by name. The
# server looks the key up in the database and refuses one it does not hold (as before, in its own words).
DepartmentKey = Annotated[str, Field(
    description="部门代码或名称（本区部门表）/ a department's code or name, from the district's list",
    json_schema_extra={"enum": _department_keys()},
)]

DateTimeIn = Annotated[dt.datetime, BeforeValidator(_rfc3339_text)]
AwareDateTimeIn = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]


class _NotNull:
    """May be left out of a partial update (its default is None, meaning "unchanged"), never sent as null."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        variants = out.get("anyOf")
        if isinstance(variants, list):
            kept = [v for v in variants if v != {"type": "null"}]
            out.pop("anyOf")
            if len(kept) == 1:
                out.update(kept[0])
            else:
                out["anyOf"] = kept
        return out


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("不能为 null；不修改就不要提交该字段 / may not be null; leave the field out to keep it")
    return value


NOT_NULL = _NotNull()


def _nullable(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(v.get("type") == "null" for v in prop.get("anyOf", []))


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    # A field that may only be left out has no default a client could send: "unchanged" is not a value.
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None and not _nullable(prop):
            del prop["default"]


class PartialUpdate(BaseModel):
    """A PATCH body: a field left out is unchanged; a field marked ``NOT_NULL`` may not be sent as null."""

    model_config = ConfigDict(json_schema_extra=_drop_null_defaults)

# Text that ``str.strip()`` does not reduce to nothing: one character that is not Python whitespace. Spelled
# out, because regex engines disagree on what ``\s`` covers (U+001C … U+001F, U+0085).
NOT_BLANK_PATTERN = "[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

# --------------------------------------------------------------------------- phone numbers

# What ``responses.contacts.core.normalize_phone`` accepts, with the separators people type between any two
# characters: a mainland mobile (1[3-9]…, or the never-allocated 12x block the demo list uses) or a
# landline with its area code, optionally after +86, 0086 or 86; or any other E.164 number after + or 00.
_S = r"[\s\-()（）.]*"


def _digits(n: int, m: int | None = None) -> str:
    return f"(?:[0-9]{_S}){{{n}}}" if m is None else f"(?:[0-9]{_S}){{{n},{m}}}"


_MAINLAND = f"(?:1{_S}[2-9]{_S}{_digits(9)}|0{_S}{_digits(9, 11)})"
_INTERNATIONAL = f"(?:[1-79]{_S}[0-9]{_S}|8{_S}[0-57-9]{_S}){_digits(6, 13)}"
PHONE_PATTERN = (
    f"^{_S}(?:"
    f"(?:\\+{_S}|0{_S}0{_S})(?:8{_S}6{_S}{_MAINLAND}|{_INTERNATIONAL})"  # +86 / 0086 …, or another country
    f"|8{_S}6{_S}(?:1{_S}[2-9]{_S}{_digits(9)}|0{_S}{_digits(10)})"  # 86 and eleven digits
    f"|1{_S}[2-9]{_S}{_digits(9)}|0{_S}[1-9]{_S}{_digits(8, 10)}"  # national
    f")$"
)
PHONE_RE = re.compile(PHONE_PATTERN)
BLANK_OR_PHONE_PATTERN = f"^\\s*$|{PHONE_PATTERN}"

PHONE_DOC = ("手机或座机号码，按习惯书写（可含空格、-、括号），保存为 E.164 / a mobile or landline number as "
             "people write it (spaces, dashes, brackets allowed), stored in E.164, e.g. 139 0356 1234, "
             "0356-2021234, +8613903561234")
