"""API shapes of the intake: feeds and their health, quarantined items, warnings, manual entry."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from warning.draft import Hazard, Level

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,79}$")
ADAPTERS = ("cap", "usgs", "cenc", "quakeml", "firms", "hydro", "geohazard", "nws", "manual")


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


def _check_adapter(v: str) -> str:
    if v not in ADAPTERS:
        raise ValueError(f"未知适配器 / unknown adapter; one of {', '.join(ADAPTERS)}")
    return v


def _check_url(v: str | None) -> str | None:
    if v is not None and not v.startswith(("http://", "https://", "file://")):
        raise ValueError("地址须以 http(s):// 或 file:// 开头 / url must start with http(s):// or file://")
    return v


class FeedIn(BaseModel):
    name: str
    title: str = ""
    adapter: str
    url: str | None = None
    poll_seconds: int = Field(300, ge=0, le=7 * 86400)
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    default_hazard: Hazard | None = None
    max_bytes: int | None = Field(None, ge=1024, le=100 * 1024 * 1024)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("名称只能用小写字母、数字、- 和 _ / lowercase letters, digits, - and _ only")
        return v

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, v: str) -> str:
        return _check_adapter(v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _check_url(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_headers(v)


class FeedPatch(BaseModel):
    title: str | None = None
    adapter: str | None = None
    url: str | None = None
    poll_seconds: int | None = Field(None, ge=0, le=7 * 86400)
    headers: dict[str, str] | None = None
    enabled: bool | None = None
    default_hazard: Hazard | None = None
    max_bytes: int | None = Field(None, ge=1024, le=100 * 1024 * 1024)
    options: dict[str, Any] | None = None

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, v: str | None) -> str | None:
        return None if v is None else _check_adapter(v)

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
    hazard: str
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

    msg_type: Literal["alert", "update", "cancel"] = "alert"
    replaces_warning_id: int | None = None  # required for update / cancel: the warning it replaces
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
    sent: dt.datetime | None = None  # when the source issued it; default: now
    effective: dt.datetime | None = None
    onset: dt.datetime | None = None
    expires: dt.datetime | None = None
    area_description: str = Field("", max_length=1000)
    area_codes: list[str] = Field(default_factory=list)  # 6/9/12-digit statistical codes
    polygon: list[tuple[float, float]] | None = None  # (lon, lat) ring, WGS84

    @field_validator("area_codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for code in v:
            if not (code.isdigit() and len(code) in (6, 9, 12)):
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
