"""What every adapter shares: the parser context, time parsing, hazard words, distances, stable ids.

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

from warning.draft import Hazard, ParseError

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


# Order matters: the first hazard whose words appear wins ("暴雨诱发山洪" is a flood,
# "地质灾害气象风险预警" a geohazard, "Fire Weather Watch" a fire).
_HAZARD_WORDS: list[tuple[Hazard, tuple[str, ...]]] = [
    (Hazard.EARTHQUAKE, ("地震", "earthquake", "quake", "seism", "erdbeben", "jordbävning", "séisme")),
    (Hazard.GEOHAZARD, ("地质灾害", "滑坡", "泥石流", "崩塌", "地面塌陷", "地裂缝", "landslide", "mudslide",
                        "debris flow", "rockfall", "rock fall", "land slip", "geohazard", "sinkhole")),
    (Hazard.FOREST_FIRE, ("森林火险", "草原火险", "森林火灾", "草原火灾", "火灾", "火险", "山火", "林火",
                          "bushfire", "bush fire", "wildfire", "grassfire", "grass fire", "forest fire", "fire",
                          "red flag", "waldbrand")),
    (Hazard.FLOOD, ("山洪", "洪水", "内涝", "渍涝", "洪涝", "溃坝", "水位", "汛", "flood", "tsunami", "海啸",
                    "inundation", "high water", "hochwasser", "översvämning", "inondation", "dam failure")),
    (Hazard.WEATHER, ("暴雨", "大风", "暴雪", "寒潮", "台风", "高温", "干旱", "冰雹", "雷电", "雷雨", "大雾", "霾",
                      "道路结冰", "霜冻", "沙尘", "低温", "降温", "强对流", "干热风", "气象", "天气", "降雪", "降雨",
                      "thunderstorm", "storm", "rainfall", "snowfall", "gale", "gust",
                       "wind", "rain", "snow", "blizzard", "winter", "heat", "cold",
                      "freeze", "frost", "fog", "hail", "tornado", "cyclone", "hurricane", "typhoon", "dust", "ice",
                      "lightning", "weather", "drought", "sturm", "gewitter", "regen", "schnee", "glätte", "frost",
                      "orage", "météo", "vent", "neige", "pluie", "vind", "snö", "regn", "åska", "oväder")),
]
def _split(words: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str], tuple[str, ...]]:
    """(Chinese words, single ASCII words, ASCII phrases) — each matched its own fast way."""
    zh = tuple(w for w in words if not w.isascii())
    single = frozenset(w for w in words if w.isascii() and " " not in w)
    phrases = tuple(f" {w} " for w in words if w.isascii() and " " in w)
    return zh, single, phrases


def _any_of(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One search for "any of these substrings" (None for none), instead of a substring test per word."""
    return re.compile("|".join(map(re.escape, words))) if words else None


_HAZARD_SETS = [(h, *_split(words)) for h, words in _HAZARD_WORDS]
# The same as _HAZARD_SETS with the Chinese words and the phrases each as one compiled search.
_HAZARD_MATCHERS = [(h, single, _any_of(zh), _any_of(phrases)) for h, zh, single, phrases in _HAZARD_SETS]
_TOKEN = re.compile(r"\w+")


_CATEGORY_HAZARD = {"met": Hazard.WEATHER, "fire": Hazard.FOREST_FIRE, "geo": Hazard.GEOHAZARD}


# Each single ASCII word -> the position of the first hazard listing it: one dict lookup per token finds
# the first hazard a whole word names; only the hazards before it then need their Chinese/phrase searches.
_WORD_RANK: dict[str, int] = {}
for _rank, (_h, _single, _zh, _phrases) in enumerate(_HAZARD_MATCHERS):
    for _w in _single:
        _WORD_RANK.setdefault(_w, _rank)
_NO_RANK = len(_HAZARD_MATCHERS)


def hazard_from_text(*texts: str | None) -> Hazard | None:
    """The hazard the event text names, or None when it names none of the five.

    ASCII words match whole words (a plural -s/-es allowed): "ice" is not in "police". The first
    hazard (in ``_HAZARD_WORDS`` order) named by a word, a Chinese word or a phrase wins.
    """
    joined = " ".join(t for t in texts if t).lower()
    if not joined:
        return None
    tokens = _TOKEN.findall(joined)
    best = _NO_RANK
    rank = _WORD_RANK.get
    for t in tokens:
        r = rank(t, best)
        if t[-1:] == "s":
            r = min(r, rank(t[:-1], best))
            if t[-2:] == "es":
                r = min(r, rank(t[:-2], best))
        if r < best:
            best = r
    has_zh = not joined.isascii()  # every Chinese word is non-ASCII: pure ASCII text needs no search for them
    padded = None
    for hazard, _single, zh, phrases in _HAZARD_MATCHERS[:best]:
        if has_zh and zh is not None and zh.search(joined) is not None:
            return hazard
        if phrases is not None:
            if padded is None:
                padded = " " + " ".join(tokens) + " "
            if phrases.search(padded) is not None:
                return hazard
    return _HAZARD_MATCHERS[best][0] if best < _NO_RANK else None


def hazard_from_category(categories: list[str]) -> Hazard | None:
    for c in categories:
        h = _CATEGORY_HAZARD.get(c.strip().lower())
        if h is not None:
            return h
    return None


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
