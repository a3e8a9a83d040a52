"""Which of the five hazards a warning is about: from what the event *is*, the category only as a fallback.

A reservoir discharge notice (水库泄洪, in Traditional characters 水庫洩洪) comes under CAP category
``Infra``; a dam-break warning under ``Safety``; an urban waterlogging notice under ``Env`` or ``Other``.
For the people downstream each of them is a flood warning, so the category cannot decide first. The
order used by the CAP reader (``warning/feeds/cap.py``):

1. the **event text** of every ``<info>`` (``<event>``), against the vocabulary below;
2. the **event codes** (``<eventCode>``): SAME / NWS codes, China's GB/T 35561 classes, WMO OET codes,
   and any code whose value is a word (CAP-CP ``rainfall``, ``wildfire`` …) read as text;
3. the **headline** text, against the same vocabulary;
4. the CAP **category** (``Met`` → weather, ``Fire`` → forest fire, ``Geo`` → geohazard) — the fallback;
5. the feed's configured default hazard.

Vocabulary (``HAZARD_WORDS``). The first hazard *in this order* that the text names wins, so
"暴雨诱发山洪" is a flood, "地质灾害气象风险预警" a geohazard and "Fire Weather Watch" a fire. Chinese is
matched as substrings, Simplified and Traditional both listed; ASCII words match whole words (a plural
-s/-es allowed: "ice" is not in "police"); ASCII phrases match whole-word sequences.

=================  ==========================================================================================
hazard             words (sources)
=================  ==========================================================================================
earthquake         地震; earthquake, quake, seismic; German, Swedish, French names (CAP from DWD, SMHI, ECCC)
geohazard          地质灾害/地質災害, 滑坡, 泥石流/土石流, 崩塌, 山崩, 落石, 地面塌陷/地層下陷, 地裂缝; landslide,
                   mudslide, debris flow, rockfall, avalanche (GB/T 35561 class 11D; NCDR 土石流 alerts)
forest_fire        森林火险/森林火險, 草原火险, 森林火灾/森林火災, 火灾/火災, 火险/火險, 山火, 林火, 野火; bushfire,
                   wildfire, grassfire, fire, red flag (CAP-AU, NWS Red Flag Warning)
flood              山洪, 洪水, 内涝/內澇, 渍涝/漬澇, 洪涝/洪澇, 积水/積水, 淹水, 溃坝/潰壩, 溃堤/潰堤, 决口/決口,
                   泄洪/洩洪, 水库/水庫 (放水、放流、险情), 放流警戒, 堤防, 堰塞湖, 风暴潮/風暴潮, 水位, 汛,
                   海啸/海嘯; flood, tsunami, inundation, storm surge, high water, dam release, dam break,
                   dam failure, levee, spillway, reservoir (NWS/SAME FFW, FLW, DBW; NCDR 水庫放流警戒;
                   GB/T 35561 class 11A 水旱灾害: 洪水, 内涝, 水库重大险情, 堤防重大险情)
weather            暴雨/豪雨, 大雨, 大风/強風, 暴雪, 寒潮/寒流, 台风/颱風, 高温/高溫, 干旱/乾旱, 冰雹, 雷电/雷電,
                   雷雨, 大雾/濃霧, 霾, 道路结冰, 霜冻, 沙尘/沙塵, 低温/低溫, 强对流/強對流, 干热风 … (the CMA
                   warning signals of GB/T 27962); storm, rain, snow, wind, heat, cold, fog, hail, tornado,
                   cyclone, hurricane, typhoon, lightning, drought …
=================  ==========================================================================================

Event codes (``EVENT_CODES`` and ``_code_hazard``):

- **SAME** (47 CFR § 11.31, the EAS event codes that NWS, IPAWS and Environment Canada's SAME-coded CAP
  carry, valueName ``SAME`` or ``NationalWeatherService``): each code listed below; non-hazard codes (tests
  RWT/RMT, civil CAE/CDW/CEM, child abduction CAE, evacuation EVI, hazmat HMW, nuclear NUW …) name no hazard.
- **GB/T 35561-2017** 突发事件分类与编码: natural-disaster classes by their prefix — 11A 水旱灾害 → flood,
  11B 气象灾害 → weather, 11C 地震灾害 → earthquake, 11D 地质灾害 → geohazard. Other classes name none.
  A drought (干旱) is named in the event text, which is read first, and stays a weather warning.
- **WMO OET** (the Event Terms list, valueName ``OET:v1.x``): the codes agencies are seen to use —
  OET-079 flood, OET-081 flash flood (Singapore PUB flood alerts), OET-103 rising water level → flood;
  OET-098 extreme heat, OET-170 dust storm, OET-184 heavy snow → weather. Other OET codes fall through.
- Any other code whose value is a word or phrase ("rainfall", "wildFire" in CAP-CP) is read as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from warning.draft import Hazard

HAZARD_WORDS: list[tuple[Hazard, tuple[str, ...]]] = [
    (Hazard.EARTHQUAKE, ("地震", "earthquake", "quake", "seism", "seismic", "erdbeben", "jordbävning", "séisme")),
    (Hazard.GEOHAZARD, ("地质灾害", "地質災害", "滑坡", "泥石流", "土石流", "崩塌", "山崩", "落石", "地面塌陷",
                        "地層下陷", "地裂缝", "地裂縫", "landslide", "mudslide", "debris flow", "rockfall",
                        "rock fall", "land slip", "geohazard", "sinkhole", "avalanche")),
    (Hazard.FOREST_FIRE, ("森林火险", "森林火險", "草原火险", "草原火險", "森林火灾", "森林火災", "草原火灾",
                          "草原火災", "火灾", "火災", "火险", "火險", "山火", "林火", "野火",
                          "bushfire", "bush fire", "wildfire", "grassfire", "grass fire", "forest fire", "fire",
                          "red flag", "waldbrand")),
    (Hazard.FLOOD, ("山洪", "洪水", "内涝", "內澇", "渍涝", "漬澇", "洪涝", "洪澇", "积水", "積水", "淹水",
                    "溃坝", "潰壩", "溃堤", "潰堤", "决口", "決口", "泄洪", "洩洪", "水库", "水庫", "放流警戒",
                    "堤防", "堰塞湖", "风暴潮", "風暴潮", "水位", "汛", "海啸", "海嘯",
                    "flood", "tsunami", "inundation", "storm surge", "high water", "dam release", "dam break",
                    "dam failure", "levee", "spillway", "reservoir", "hochwasser", "översvämning", "inondation")),
    (Hazard.WEATHER, ("暴雨", "豪雨", "大雨", "大风", "大風", "強風", "强风", "暴雪", "寒潮", "寒流", "台风", "颱風",
                      "高温", "高溫", "干旱", "乾旱", "冰雹", "雷电", "雷電", "雷雨", "大雾", "大霧", "濃霧", "霾",
                      "道路结冰", "道路結冰", "霜冻", "霜凍", "沙尘", "沙塵", "低温", "低溫", "降温", "降溫",
                      "强对流", "強對流", "干热风", "乾熱風", "气象", "氣象", "天气", "天氣", "降雪", "降雨",
                      "thunderstorm", "storm", "rainfall", "snowfall", "gale", "gust",
                      "wind", "rain", "snow", "blizzard", "winter", "heat", "cold",
                      "freeze", "frost", "fog", "hail", "tornado", "cyclone", "hurricane", "typhoon", "dust", "ice",
                      "lightning", "weather", "drought", "sturm", "gewitter", "regen", "schnee", "glätte",
                      "orage", "météo", "vent", "neige", "pluie", "vind", "snö", "regn", "åska", "oväder")),
]


def _split(words: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str], tuple[str, ...]]:
    """(non-ASCII words, single ASCII words, ASCII phrases) — each matched its own fast way."""
    zh = tuple(w for w in words if not w.isascii())
    single = frozenset(w for w in words if w.isascii() and " " not in w)
    phrases = tuple(f" {w} " for w in words if w.isascii() and " " in w)
    return zh, single, phrases


def _any_of(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One search for "any of these substrings" (None for none), instead of a substring test per word."""
    return re.compile("|".join(map(re.escape, words))) if words else None


_MATCHERS = [(h, single, _any_of(zh), _any_of(phrases)) for h, words in HAZARD_WORDS
             for zh, single, phrases in (_split(words),)]
_TOKEN = re.compile(r"\w+")

# Each single ASCII word -> the position of the first hazard listing it: one dict lookup per token finds
# the first hazard a whole word names; only the hazards before it then need their non-ASCII/phrase searches.
_WORD_RANK: dict[str, int] = {}
for _rank, (_h, _single, _zh, _phrases) in enumerate(_MATCHERS):
    for _w in _single:
        _WORD_RANK.setdefault(_w, _rank)
_NO_RANK = len(_MATCHERS)


def hazard_from_text(*texts: str | None) -> Hazard | None:
    """The hazard the texts name (the first in ``HAZARD_WORDS`` order), or None when they name none."""
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
    has_zh = not joined.isascii()  # every non-ASCII word needs non-ASCII text: pure ASCII skips those searches
    padded = None
    for hazard, _single, zh, phrases in _MATCHERS[:best]:
        if has_zh and zh is not None and zh.search(joined) is not None:
            return hazard
        if phrases is not None:
            if padded is None:
                padded = " " + " ".join(tokens) + " "
            if phrases.search(padded) is not None:
                return hazard
    return _MATCHERS[best][0] if best < _NO_RANK else None


_W, _F, _E, _G, _FF = Hazard.WEATHER, Hazard.FLOOD, Hazard.EARTHQUAKE, Hazard.GEOHAZARD, Hazard.FOREST_FIRE

# SAME event codes (47 CFR § 11.31(e)); codes not listed name no hazard.
SAME_CODES: dict[str, Hazard] = {
    "BZW": _W, "CFA": _F, "CFW": _F, "DSW": _W, "EWW": _W, "FFA": _F, "FFW": _F, "FFS": _F, "FLA": _F, "FLW": _F,
    "FLS": _F, "HWA": _W, "HWW": _W, "HUA": _W, "HUW": _W, "HLS": _W, "SVA": _W, "SVR": _W, "SVS": _W, "SMW": _W,
    "SPS": _W, "SSA": _F, "SSW": _F, "TOA": _W, "TOR": _W, "TRA": _W, "TRW": _W, "TSA": _F, "TSW": _F, "WSA": _W,
    "WSW": _W, "SQW": _W, "ISW": _W, "WCW": _W, "LSW": _W, "ECW": _W, "EHW": _W, "EHA": _W, "FRW": _FF,
    "FWW": _FF, "EQW": _E, "AVA": _G, "AVW": _G, "DBA": _F, "DBW": _F, "VOW": _G,
}
# GB/T 35561-2017 natural-disaster classes, by the code's first three characters.
GBT35561_CLASSES: dict[str, Hazard] = {"11A": _F, "11B": _W, "11C": _E, "11D": _G}
# WMO OET codes agencies are seen to send (module docstring); others fall through to the text.
OET_CODES: dict[str, Hazard] = {
    "OET-079": _F, "OET-081": _F, "OET-103": _F, "OET-098": _W, "OET-170": _W, "OET-184": _W,
}
_WORDLIKE = re.compile(r"[^\W\d_]{3,}")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def hazard_from_code(name: str, value: str) -> Hazard | None:
    """The hazard one ``<eventCode>`` names, or None."""
    v = value.strip()
    if not v:
        return None
    n = name.strip().lower()
    upper = v.upper()
    if n in ("same", "nationalweatherservice", "nws") or n.startswith("same"):
        return SAME_CODES.get(upper)
    if upper.startswith("OET-") or n.startswith("oet"):
        return OET_CODES.get(upper)
    if len(v) >= 3 and v[:2] == "11" and v[2:3].upper() in "ABCDEFG":
        return GBT35561_CLASSES.get(upper[:3])
    if _WORDLIKE.search(v):  # CAP-CP "rainfall", "wildFire": a word, read as text
        return hazard_from_text(_CAMEL.sub(" ", v))
    return None


def hazard_from_codes(codes: Iterable[tuple[str, str] | list[str]]) -> Hazard | None:
    for name, value in codes:
        h = hazard_from_code(name or "", value or "")
        if h is not None:
            return h
    return None


CATEGORY_HAZARD = {"met": Hazard.WEATHER, "fire": Hazard.FOREST_FIRE, "geo": Hazard.GEOHAZARD}


def hazard_from_category(categories: Iterable[str]) -> Hazard | None:
    """The fallback: CAP ``Met``/``Fire``/``Geo``; the other categories name no hazard by themselves."""
    for c in categories:
        h = CATEGORY_HAZARD.get(c.strip().lower())
        if h is not None:
            return h
    return None
