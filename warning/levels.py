"""Which colour level (蓝/黄/橙/红 = IV/III/II/I) a warning gets.

The colour the issuing agency gave always wins. Chinese CAP puts it in the event or headline
("暴雨橙色预警", "由黄色升级为橙色"), sometimes as a grade ("Ⅱ级"); European sources put it in a
parameter ("awareness_level: 3; orange; Severe"); some English sources in the headline ("Red Warning").
In free text the LAST colour named wins, because upgrade/downgrade headlines name the old level first.
English colour words count only next to warning/alert/level/signal (or alone in a level parameter),
so that "Red River" in an area name is not read as a red warning. A parameter whose name is not
level-like is read only when its value is short (64 characters at most): a long value is free text,
such as the edit history SMHI sends, and the old levels it quotes are not the warning's level.

When the source gives no colour, the level comes from the CAP severity × urgency × certainty table:

1. Base level from severity:

   ========  =========
   severity  base
   ========  =========
   Extreme   red    (I)
   Severe    orange (II)
   Moderate  yellow (III)
   Minor     blue   (IV)
   Unknown   blue   (IV)  — lowest rather than none, so the duty officer still sees it
   ========  =========

2. Lower it one step for each of: urgency ``Future`` or ``Past`` (not imminent), certainty
   ``Possible``; two steps for certainty ``Unlikely``. ``Immediate``/``Expected`` urgency and
   ``Observed``/``Likely`` certainty (and ``Unknown`` of either) leave it unchanged. Never below blue.

   Resulting table (rows: severity; columns: steps lowered 0 / 1 / 2 / 3):

   ========  ======  ======  ======  ======
   severity  0       1       2       3
   ========  ======  ======  ======  ======
   Extreme   red     orange  yellow  blue
   Severe    orange  yellow  blue    blue
   Moderate  yellow  blue    blue    blue
   Minor     blue    blue    blue    blue
   ========  ======  ======  ======  ======

   e.g. Severe/Expected/Likely → orange; Severe/Future/Possible → blue; Extreme/Immediate/Observed → red.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from warning.draft import Level

# Simplified and Traditional (Taiwan's and Hong Kong's agencies write 藍色/黃色/紅色).
_ZH = {"蓝色": Level.BLUE, "黄色": Level.YELLOW, "橙色": Level.ORANGE, "红色": Level.RED,
       "藍色": Level.BLUE, "黃色": Level.YELLOW, "紅色": Level.RED}
_ZH_RE = re.compile("蓝色|黄色|橙色|红色|藍色|黃色|紅色")
_GRADE = {
    "Ⅳ": Level.BLUE, "IV": Level.BLUE, "四": Level.BLUE,
    "Ⅲ": Level.YELLOW, "III": Level.YELLOW, "三": Level.YELLOW,
    "Ⅱ": Level.ORANGE, "II": Level.ORANGE, "二": Level.ORANGE,
    "Ⅰ": Level.RED, "I": Level.RED, "一": Level.RED,
}
# Grades only in Roman or Chinese numerals: "风力4级" is a wind force, not a warning grade.
_GRADE_RE = re.compile(r"(IV|III|II|I|Ⅳ|Ⅲ|Ⅱ|Ⅰ|[一二三四])\s*[级級](?:预警|預警|響應|响应|风险|風險)?")
_EN = {"blue": Level.BLUE, "green": None, "yellow": Level.YELLOW, "amber": Level.ORANGE, "orange": Level.ORANGE,
       "red": Level.RED}
_EN_TEXT_RE = re.compile(
    r"\b(blue|yellow|amber|orange|red)[\s-]+(?:warning|alert|level|signal|rainstorm)\b"
    r"|\b(?:level|warning|alert)\s*[:：-]?\s*(blue|yellow|amber|orange|red)\b",
    re.I,
)
_EN_PARAM_RE = re.compile(r"\b(blue|green|yellow|amber|orange|red)\b", re.I)
# One cheap search first: almost no text names a level, and three findall passes per text add up.
_ANY_WORDS = ("蓝色", "黄色", "橙色", "红色", "级", "blue", "yellow", "amber", "orange", "red")


def _may_name_level(text: str) -> bool:
    # The words of _ANY_WORDS spelled out: a chain of substring tests is several times cheaper than
    # a generator over the tuple, and this runs for every event, headline and parameter value.
    if "级" in text or "級" in text or ("色" in text and _ZH_RE.search(text) is not None):
        return True
    if text.isascii():
        low = text.lower()
        return "red" in low or "blue" in low or "yellow" in low or "orange" in low or "amber" in low
    # Long non-ASCII texts (a JSON history in a parameter) are slow to lower-case as Unicode: their ASCII
    # letters alone, lower-cased as bytes, hold every colour word the Unicode lower-casing would show (no
    # non-ASCII letter lower-cases into one of these letters). Dropping the other characters can only
    # add a false "maybe", which the exact searches after this test then reject.
    low_b = text.encode("ascii", "ignore").lower()
    return b"red" in low_b or b"blue" in low_b or b"yellow" in low_b or b"orange" in low_b or b"amber" in low_b


_PARAM_NAME_RE = re.compile(r"level|colou?r|awareness|grade|等级|级别|颜色", re.I)

_BASE = {"extreme": 4, "severe": 3, "moderate": 2, "minor": 1, "unknown": 1}
_BY_RANK = {1: Level.BLUE, 2: Level.YELLOW, 3: Level.ORANGE, 4: Level.RED}


def level_from_text(text: str | None) -> Level | None:
    """The colour named in one free text (event or headline), the last one named, or None."""
    if not text or not _may_name_level(text):
        return None
    found = _ZH_RE.findall(text)
    if found:
        return _ZH[found[-1]]
    grades = _GRADE_RE.findall(text)
    if grades:
        return _GRADE[grades[-1]]
    hits = [a or b for a, b in _EN_TEXT_RE.findall(text)]
    if hits:
        return _EN[hits[-1].lower()]
    return None


# Longer than this, the value of a parameter whose name is not level-like is free text (SMHI sends the
# whole edit history of a warning as JSON): a source does not state the current level there, and the
# old levels it quotes would mislead.
_FREE_TEXT_CHARS = 64


class _LevelNames(dict):  # type: ignore[type-arg]
    """parameter name -> is it level-like; feeds use few names, so each is searched once."""

    def __missing__(self, name: str) -> bool:
        hit = _PARAM_NAME_RE.search(name) is not None
        if len(self) < 10_000:
            self[name] = hit
        return hit


_LEVEL_NAMES = _LevelNames()


def level_from_parameters(parameters: Iterable[tuple[str, str]]) -> Level | None:
    """A colour given in a parameter: any colour a level-like parameter (awareness_level, 预警等级,
    colour …) names, or a colour phrase in another parameter's short value."""
    names = _LEVEL_NAMES
    candidates = [(n, v) for n, v in parameters if v and (len(v) <= _FREE_TEXT_CHARS or names[n or ""])]
    # One test over all the values first: almost no parameter names a level, and a value that names
    # one makes the joined text name one too.
    if not candidates or not _may_name_level("\n".join(v for _, v in candidates)):
        return None
    best: Level | None = None
    for name, value in candidates:
        if not _may_name_level(value):
            continue
        lvl = level_from_text(value)
        if lvl is None and names[name or ""]:
            m = _EN_PARAM_RE.search(value)
            lvl = _EN.get(m.group(1).lower()) if m else None
        if lvl is not None and (best is None or lvl.rank > best.rank):
            best = lvl
    return best


def level_from_cap(severity: str | None, urgency: str | None, certainty: str | None) -> Level:
    """The documented severity × urgency × certainty table (module docstring)."""
    base = _BASE.get((severity or "unknown").strip().lower(), 1)
    steps = 0
    if (urgency or "").strip().lower() in ("future", "past"):
        steps += 1
    cert = (certainty or "").strip().lower()
    if cert == "possible":
        steps += 1
    elif cert == "unlikely":
        steps += 2
    return _BY_RANK[max(1, base - steps)]


def level_of(
    texts: Iterable[str | None],
    parameters: Iterable[tuple[str, str]],
    severity: str | None,
    urgency: str | None,
    certainty: str | None,
) -> tuple[Level, str]:
    """The level and where it came from ('colour' or 'table'), colour first."""
    for text in texts:
        lvl = level_from_text(text)
        if lvl is not None:
            return lvl, "colour"
    lvl = level_from_parameters(parameters)
    if lvl is not None:
        return lvl, "colour"
    return level_from_cap(severity, urgency, certainty), "table"


def max_level(levels: Iterable[Level | None]) -> Level | None:
    best: Level | None = None
    for lvl in levels:
        if lvl is not None and (best is None or lvl.rank > best.rank):
            best = lvl
    return best
