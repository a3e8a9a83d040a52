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


# The largest circle a warning may draw (km): beyond it a radius is a unit or typing error, not an area.
MAX_RADIUS_KM = 2000.0


@dataclass
class AreaSpec:
    """One area block (a CAP ``<area>``) of a warning, as the source said it, in WGS84.

    polygons: rings of (lon, lat); circles and points: (lat, lon, radius_km), a radius of 0 being the
    point itself; geocodes: (name, value). Each block is judged on its own: where it has a polygon or a
    circle, its geocodes only describe it (see ``warning.normalize.area_to_target``).
    """

    description: str | None = None
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)
    circles: list[tuple[float, float, float]] = field(default_factory=list)
    points: list[tuple[float, float, float]] = field(default_factory=list)
    geocodes: list[tuple[str, str]] = field(default_factory=list)
    number: int = 0  # its place among the message's area blocks (1-based), to name it in problems; 0 = one area

    @property
    def label(self) -> str:
        """How a problem names this block: "区域 2（城区东部）/ area 2 (城区东部)"."""
        n_zh = f"区域 {self.number}" if self.number else "区域"
        n_en = f"area {self.number}" if self.number else "area"
        return f"{n_zh}（{self.description or '无描述'}）/ {n_en} ({self.description or 'no description'})"

    @property
    def empty(self) -> bool:
        return not (self.polygons or self.circles or self.points or self.geocodes)

    @property
    def has_geometry(self) -> bool:
        return bool(self.polygons or self.circles or self.points)


def merge_areas(blocks: list[AreaSpec]) -> AreaSpec:
    """All blocks as one, for display and the stored GeoJSON: shapes and codes once each, descriptions joined."""
    if len(blocks) == 1:
        return blocks[0]
    out = AreaSpec()
    descs: list[str] = []
    for b in blocks:
        if b.description and b.description not in descs:
            descs.append(b.description)
        for mine, theirs in ((out.polygons, b.polygons), (out.circles, b.circles), (out.points, b.points),
                             (out.geocodes, b.geocodes)):
            mine.extend(x for x in theirs if x not in mine)  # type: ignore[attr-defined]
    out.description = "; ".join(descs) or None
    return out


@dataclass
class WarningDraft:
    identifier: str
    sender: str
    sent: dt.datetime
    msg_type: MsgType
    status: Status
    # None only for a Cancel (or an Update) whose own content names no hazard, e.g. one with no <info>:
    # it takes the hazard of the warning it references once matched.
    hazard: Hazard | None
    event: str | None
    level: Level | None
    effective: dt.datetime | None = None
    onset: dt.datetime | None = None
    expires: dt.datetime | None = None
    references: list[Reference] = field(default_factory=list)
    infos: list[InfoText] = field(default_factory=list)  # zh first when present
    areas: list[AreaSpec] = field(default_factory=list)  # one per area block, in the source's order
    severity: str | None = None
    urgency: str | None = None
    certainty: str | None = None
    parameters: dict[str, list[str]] = field(default_factory=dict)
    source_format: str = ""  # cap, usgs, cenc, quakeml, firms, hydro, geohazard, nws, manual
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific facts (magnitude, gauge level, …)
    # Area blocks left out because their geometry cannot be an area (why, one line each): the rest goes on.
    area_problems: list[str] = field(default_factory=list)

    @property
    def area(self) -> AreaSpec:
        """Every block merged: what the warning covers as a whole (display, GeoJSON, CAP export)."""
        return merge_areas(self.areas) if self.areas else AreaSpec()

    @property
    def has_info(self) -> bool:
        return bool(self.infos)

    @property
    def headline(self) -> str | None:
        for info in self.infos:
            if info.headline:
                return info.headline
        return None


@dataclass(frozen=True)
class Skipped:
    """A payload (or a part of one) that is not a hazard warning, with the reason, e.g. an AMBER alert.

    A CAP Ack or Error is not a warning either, but it speaks of warnings: it keeps its type, sender,
    references and note so that intake can record it against the warnings it names.
    """

    reason: str
    identifier: str | None = None
    msg_type: str | None = None  # ack | error, for CAP messages that answer other messages
    sender: str | None = None
    references: tuple[Reference, ...] = ()
    note: str | None = None


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
