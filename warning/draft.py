"""The plain data an adapter's pure ``parse()`` returns, before it is stored as a ``Warning``.

Adapters know their format; they do not know the database, the region or the clock. Everything
here is plain Python so parsers stay pure and testable.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any


class Hazard(enum.StrEnum):
    WEATHER = "weather"
    FLOOD = "flood"
    EARTHQUAKE = "earthquake"
    GEOHAZARD = "geohazard"
    FOREST_FIRE = "forest_fire"


HAZARD_ZH = {
    Hazard.WEATHER: "气象灾害",
    Hazard.FLOOD: "洪涝灾害",
    Hazard.EARTHQUAKE: "地震",
    Hazard.GEOHAZARD: "地质灾害",
    Hazard.FOREST_FIRE: "森林火灾",
}


class Level(enum.StrEnum):
    """Colour levels; IV (blue) is the lowest, I (red) the highest."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def zh(self) -> str:
        return _ZH[self]

    @property
    def roman(self) -> str:
        return _ROMAN[self]


_RANK = {Level.BLUE: 1, Level.YELLOW: 2, Level.ORANGE: 3, Level.RED: 4}
_ZH = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
_ROMAN = {Level.BLUE: "IV", Level.YELLOW: "III", Level.ORANGE: "II", Level.RED: "I"}


class MsgType(enum.StrEnum):
    ALERT = "alert"
    UPDATE = "update"
    CANCEL = "cancel"


class Status(enum.StrEnum):
    ACTUAL = "actual"
    EXERCISE = "exercise"
    TEST = "test"
    SYSTEM = "system"
    DRAFT = "draft"


@dataclass(frozen=True)
class Reference:
    sender: str
    identifier: str
    sent: dt.datetime | None


@dataclass
class InfoText:
    """One language's texts of a warning (CAP ``<info>`` block)."""

    language: str  # e.g. "zh-CN", "en-US"
    event: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    sender_name: str | None = None
    web: str | None = None


@dataclass
class AreaSpec:
    """Where a warning applies, as the source said it, in WGS84.

    polygons: rings of (lon, lat); circles and points: (lat, lon, radius_km); geocodes: (name, value).
    """

    description: str | None = None
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)
    circles: list[tuple[float, float, float]] = field(default_factory=list)
    points: list[tuple[float, float, float]] = field(default_factory=list)
    geocodes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.polygons or self.circles or self.points or self.geocodes)


@dataclass
class WarningDraft:
    identifier: str
    sender: str
    sent: dt.datetime
    msg_type: MsgType
    status: Status
    hazard: Hazard
    event: str | None
    level: Level | None
    effective: dt.datetime | None = None
    onset: dt.datetime | None = None
    expires: dt.datetime | None = None
    references: list[Reference] = field(default_factory=list)
    infos: list[InfoText] = field(default_factory=list)  # zh first when present
    area: AreaSpec = field(default_factory=AreaSpec)
    severity: str | None = None
    urgency: str | None = None
    certainty: str | None = None
    parameters: dict[str, list[str]] = field(default_factory=dict)
    source_format: str = ""  # cap, usgs, cenc, quakeml, firms, hydro, geohazard, nws, manual
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific facts (magnitude, gauge level, …)

    @property
    def headline(self) -> str | None:
        for info in self.infos:
            if info.headline:
                return info.headline
        return None


@dataclass(frozen=True)
class Skipped:
    """A payload (or a part of one) that is not a hazard warning, with the reason, e.g. an AMBER alert."""

    reason: str
    identifier: str | None = None


@dataclass
class ParseResult:
    warnings: list[WarningDraft] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # CAP messages an Atom/RSS index points to, to fetch next


class ParseError(Exception):
    """The payload cannot be read at all (malformed, hostile, wrong encoding, too large): quarantine it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
