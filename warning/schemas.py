"""API shapes of the intake: feeds and their health, quarantined items, warnings, manual entry."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from config.fields import NOT_NULL, DateTimeIn, Flag, Number, PartialUpdate, RowId, not_a_boolean
from warning.draft import Hazard, Level

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,79}$")
Adapter = Literal["cap", "usgs", "cenc", "quakeml", "firms", "hydro", "geohazard", "nws", "manual"]
ADAPTERS: tuple[str, ...] = get_args(Adapter)
_URL_PATTERN = r"^(https?|file)://"
_AREA_CODE = re.compile(r"^([0-9]{6}|[0-9]{9}|[0-9]{12})$")


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


# A header whose name looks like a secret must hold an environment reference (``${NAME}``), never the value.
_SECRET_HEADER = "|".join([*(f"^{_any_case(h)}$" for h in ("authorization", "x-api-key", "api-key", "cookie")),
                           _any_case("token")])
_HEADERS_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "patternProperties": {_SECRET_HEADER: {"type": "string", "pattern": r"\$\{"}},
    "description": "请求头；看起来是密钥的（Authorization、Cookie、含 token 等）须写成环境变量引用 ${名称} / "
                   "request headers; one that looks secret (Authorization, Cookie, *token* …) must be an "
                   "environment reference ${NAME}",
}
PollSeconds = Annotated[int, Field(ge=0, le=7 * 86400), BeforeValidator(not_a_boolean)]
ByteLimit = Annotated[int, Field(ge=1024, le=100 * 1024 * 1024), BeforeValidator(not_a_boolean)]
FeedName = Annotated[str, Field(description="信息源名称 / the feed's name", examples=["national-cap"])]


class FeedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    title: str
    adapter: str
    url: str | None
    poll_seconds: int
    headers: dict[str, Any]
    enabled: bool
    default_hazard: str | None
    max_bytes: int | None
    options: dict[str, Any]
    source: str
    has_push_token: bool = False
    next_poll_at: dt.datetime | None
    last_polled_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error_at: dt.datetime | None
    last_error: str | None
    consecutive_failures: int
    items_count: int
    last_item_at: dt.datetime | None


def _check_headers(v: dict[str, Any]) -> dict[str, Any]:
    for key, value in v.items():
        lowered = key.lower()
        secretish = lowered in ("authorization", "x-api-key", "api-key", "cookie") or "token" in lowered
        if secretish and "${" not in str(value):
            raise ValueError(
                f"请求头 {key} 看起来是密钥，请写成环境变量引用 ${{名称}} / header {key} looks secret: "
                "write it as an environment reference ${NAME}"
            )
    return v


def _check_url(v: str | None) -> str | None:
    if v is not None and not v.startswith(("http://", "https://", "file://")):
        raise ValueError("地址须以 http(s):// 或 file:// 开头 / url must start with http(s):// or file://")
    return v


class FeedIn(BaseModel):
    name: str = Field(json_schema_extra={"pattern": _NAME.pattern},
                      description="小写字母、数字、- 和 _ / lowercase letters, digits, - and _")
    title: str = Field("", max_length=200)
    adapter: Adapter
    url: str | None = Field(None, max_length=1000, json_schema_extra={"pattern": _URL_PATTERN})
    poll_seconds: PollSeconds = 300
    headers: dict[str, str] = Field(default_factory=dict, json_schema_extra=_HEADERS_SCHEMA)
    enabled: Flag = True
    default_hazard: Hazard | None = None
    max_bytes: ByteLimit | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("名称只能用小写字母、数字、- 和 _ / lowercase letters, digits, - and _ only")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _check_url(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_headers(v)


class FeedPatch(PartialUpdate):
    """Fields left out stay as they are; null only where a feed may have none (url, default hazard, size limit)."""

    title: Annotated[str | None, NOT_NULL] = Field(None, max_length=200)
    adapter: Annotated[Adapter | None, NOT_NULL] = None
    url: str | None = Field(None, max_length=1000, json_schema_extra={"pattern": _URL_PATTERN})
    poll_seconds: Annotated[PollSeconds | None, NOT_NULL] = None
    headers: Annotated[dict[str, str] | None, NOT_NULL] = Field(None, json_schema_extra=_HEADERS_SCHEMA)
    enabled: Annotated[Flag | None, NOT_NULL] = None
    default_hazard: Hazard | None = None
    max_bytes: ByteLimit | None = None
    options: Annotated[dict[str, Any] | None, NOT_NULL] = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _check_url(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else _check_headers(v)


class FeedHealth(BaseModel):
    name: str
    title: str
    enabled: bool
    healthy: bool
    last_success_at: dt.datetime | None
    last_error_at: dt.datetime | None
    last_error: str | None
    consecutive_failures: int
    items_count: int
    last_item_at: dt.datetime | None
    lag_seconds: float | None  # time since the last item received
    quarantined: int
    next_poll_at: dt.datetime | None


class PushToken(BaseModel):
    feed: str
    token: str  # shown once; only its hash is stored


class FeedItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    feed_id: int
    received_at: dt.datetime
    content_type: str | None
    sha256: str
    size: int
    source_url: str | None
    parent_id: int | None
    state: str
    reason: str | None
    detail: str | None
    warnings_count: int
    skipped: list[Any]
    processed_at: dt.datetime | None
    attempts: int
    resolved_by: str | None


class DismissIn(BaseModel):
    note: str = Field("", max_length=1000)


class WarningOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sender: str
    identifier: str
    msg_type: str
    status: str
    drill: bool
    hazard: str | None  # a Cancel without <info> names no hazard until it is matched to what it cancels
    event: str | None
    level: str | None
    severity: str | None
    urgency: str | None
    certainty: str | None
    sent: dt.datetime
    effective: dt.datetime | None
    onset: dt.datetime | None
    expires: dt.datetime | None
    headline: str | None
    state: str
    version: int
    thread_id: int | None
    supersedes_id: int | None
    superseded_by_id: int | None
    feed_id: int | None
    feed_item_id: int | None
    received_at: dt.datetime
    entered_by: str | None
    entry_channel: str | None
    held_until: dt.datetime | None
    flagged_at: dt.datetime | None
    flag_reason: str | None
    affected: dict[str, Any]


class WarningDetail(WarningOut):
    infos: list[Any]
    area_description: str | None
    area_geojson: dict[str, Any] | None
    geocodes: list[Any]
    references: list[Any]
    parameters: dict[str, Any]
    extra: dict[str, Any]
    source_format: str
    held_since: dt.datetime | None
    ended_at: dt.datetime | None


class ManualWarningIn(BaseModel):
    """A warning that reached the duty room by phone, fax or a messaging app, typed in by the officer."""

    model_config = ConfigDict(json_schema_extra={  # an update or a cancel names the warning it replaces
        "if": {"properties": {"msg_type": {"enum": ["update", "cancel"]}}, "required": ["msg_type"]},
        "then": {"properties": {"replaces_warning_id": {"type": "integer"}}, "required": ["replaces_warning_id"]},
    })

    msg_type: Literal["alert", "update", "cancel"] = "alert"
    replaces_warning_id: RowId | None = None  # required for update / cancel: the warning it replaces
    channel: Literal["phone", "fax", "messaging", "other"]
    source: str = Field(..., min_length=1, max_length=200)  # issuing agency, e.g. 晋城市气象台
    received_from: str = Field("", max_length=200)  # who called / sent it, with number
    hazard: Hazard
    event: str = Field(..., min_length=1, max_length=200)
    level: Level | None = None
    status: Literal["actual", "exercise", "test"] = "actual"
    headline: str = Field(..., min_length=1, max_length=500)
    description: str = Field("", max_length=10_000)
    instruction: str = Field("", max_length=5000)
    sent: DateTimeIn | None = None  # when the source issued it; default: now
    effective: DateTimeIn | None = None
    onset: DateTimeIn | None = None
    expires: DateTimeIn | None = None
    area_description: str = Field("", max_length=1000)
    area_codes: list[Annotated[str, Field(json_schema_extra={"pattern": _AREA_CODE.pattern})]] = Field(
        default_factory=list, description="6、9 或 12 位统计用区划代码 / 6, 9 or 12-digit statistical codes")
    polygon: list[tuple[Number, Number]] | None = None  # (lon, lat) ring, WGS84

    @field_validator("area_codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for code in v:
            if not _AREA_CODE.match(code):
                raise ValueError(f"行政区划代码应为 6、9 或 12 位数字 / admin codes are 6, 9 or 12 digits: {code}")
        return v

    @field_validator("sent", "effective", "onset", "expires")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("时间须带时区 / times need a UTC offset, e.g. +08:00")
        return v


class IngestOut(BaseModel):
    item_id: int
    state: str
    duplicate_payload: bool
    reason: str | None
    created: list[int]
    duplicates: list[int]
    held: list[int]
    changes: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    links: list[str]
