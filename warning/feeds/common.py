"""What every adapter shares: the parser context, time parsing, distances, stable ids.

Adapters are pure: everything they need about the region and its thresholds comes in a
``ParserContext``; they never read files, the clock or the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from warning.draft import ParseError

# 城区 (晋城市, 140502): centroid of the district boundary in WGS84 (lat, lon).
CHENGQU_CENTER: tuple[float, float] = (35.5164, 112.8430)


@dataclass(frozen=True)
class Site:
    """A monitored place an adapter can relate readings or hotspots to (gauge, forest block …)."""

    id: str
    name: str
    kind: str
    lon: float
    lat: float
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParserContext:
    """Region and thresholds for the pure parsers.

    ``config`` keys are documented in each adapter's module docstring; ``sites`` are tuples or
    ``Site`` objects ``(id, name, kind, lon, lat, attrs)``.
    """

    region_center: tuple[float, float] = CHENGQU_CENTER
    config: dict[str, Any] = field(default_factory=dict)
    sites: list[Any] = field(default_factory=list)

    def site_list(self) -> list[Site]:
        out: list[Site] = []
        for s in self.sites:
            if isinstance(s, Site):
                out.append(s)
            elif hasattr(s, "lon") and hasattr(s, "lat") and hasattr(s, "id"):
                out.append(Site(str(s.id), getattr(s, "name", str(s.id)), getattr(s, "kind", ""), float(s.lon),
                                float(s.lat), dict(getattr(s, "attrs", None) or {})))
            else:
                sid, name, kind, lon, lat, *rest = s
                out.append(Site(str(sid), str(name), str(kind), float(lon), float(lat), dict(rest[0] if rest else {})))
        return out

    def get(self, key: str, default: Any) -> Any:
        value = self.config.get(key, default)
        return default if value is None else value


_FROMISO = dt.datetime.fromisoformat


def parse_time(value: Any, *, field_name: str = "time", required: bool = False) -> dt.datetime | None:
    """An aware datetime from ISO 8601 text (``Z`` and ``-00:00`` accepted); naive text is refused."""
    if type(value) is str and value and value[-1] not in "Zz" and not value[-1].isspace() and not value[0].isspace():
        # The usual case, "2019-03-12T14:51:46+01:00": no stripping, no "Z" to rewrite.
        try:
            out = _FROMISO(value)
        except ValueError:
            raise ParseError("bad_time", f"{field_name}={value!r:.60}") from None
        if out.tzinfo is None:
            raise ParseError("bad_time", f"{field_name}={value!r:.60} 没有时区 / has no UTC offset")
        return out
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ParseError("missing_field", f"缺少 {field_name} / missing {field_name}")
        return None
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        out = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ParseError("bad_time", f"{field_name}={value!r:.60}") from None
    if out.tzinfo is None:
        raise ParseError("bad_time", f"{field_name}={value!r:.60} 没有时区 / has no UTC offset")
    return out


def from_epoch_ms(ms: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(ms) / 1000.0, tz=dt.UTC)


EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def stable_id(prefix: str, *parts: Any) -> str:
    """A short identifier that depends only on the inputs, so the same event gives the same id."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:16]
    return f"{prefix}-{digest}"


def check_lat_lon(lat: float, lon: float, what: str = "coordinate") -> None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ParseError("invalid_geometry", f"{what} 超出范围 / out of range: lat={lat}, lon={lon}")


_CN_PROVINCES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43",
    "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
}
_DIGITS = re.compile(r"^\d+$")


def china_admin_code(value: str) -> str | None:
    """A Chinese statistical division code (6, 9 or 12 digits) zero-padded to 12, else None.

    Recognised by shape and province prefix, whatever the geocode's valueName: Chinese sources
    label them "行政区划代码", "GB2260", "areaCode" or nothing. US FIPS/SAME codes start with 0 and
    are left alone.
    """
    v = value.strip()
    if len(v) in (6, 9, 12) and v[:2] in _CN_PROVINCES and _DIGITS.match(v):
        return v.ljust(12, "0")
    return None


def load_json(payload: bytes | str, *, allow_empty: bool = True) -> Any:
    """A JSON payload, or the ParseError that quarantines it (empty, not JSON, not UTF-8)."""
    if not allow_empty and not payload.strip():
        raise ParseError("empty", "空内容 / empty payload")
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError("malformed_json", str(exc)[:200]) from None
