"""The 12-digit statistical area codes (统计用区划代码): padding, structure, level and parent.

Layout: province 2 · city 2 · county 2 · township 3 · village 3 (城区 140502000000, 东街街道
140502001000, 建设路社区 140502001001). Shorter codes (6 = county, 9 = township) are the same code
without its trailing zero groups, so they are zero-padded to 12.
"""

from __future__ import annotations

LEVELS = ("district", "township", "village", "grid")
LEVEL_ZH = {"district": "区县", "township": "乡镇/街道", "village": "村/社区", "grid": "网格", "city": "市"}

_GROUPS = ((0, 2), (2, 4), (4, 6), (6, 9), (9, 12))


def normalize_code(raw: object) -> str | None:
    """A 12-digit code from 2/4/6/9/12 digits, or None when the text is not such a code."""
    text = str(raw).strip() if raw is not None else ""
    if not text.isdigit() or not text.isascii() or len(text) not in (2, 4, 6, 9, 12):
        return None
    return text.ljust(12, "0")


def significant_prefix(code12: str) -> str:
    """The code without its trailing all-zero groups: every area under it starts with this prefix."""
    end = 0
    for start, stop in _GROUPS:
        if code12[start:stop].strip("0"):
            end = stop
    return code12[:end] if end else code12[:2]


def level_of_code(code12: str) -> str:
    """The level the code's structure implies; grids are not in the statistical scheme."""
    prefix = significant_prefix(code12)
    return {2: "province", 4: "city", 6: "district", 9: "township", 12: "village"}[len(prefix)]


def structural_parent(code12: str) -> str | None:
    """The parent by code structure (village → township → county), None above the county."""
    prefix = significant_prefix(code12)
    if len(prefix) == 12:
        return code12[:9] + "000"
    if len(prefix) == 9:
        return code12[:6] + "000000"
    return None
