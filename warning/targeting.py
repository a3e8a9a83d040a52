"""Which villages, townships and sites a warning's area reaches, asked of ``geo``.

A targeting failure must not lose the warning: the warning is stored with an empty ``affected``
and the error, visible to the duty officer, who can still act on the text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from warning.draft import AreaSpec

log = logging.getLogger("jiaoying.warning")

Targeter = Callable[[Session, list[AreaSpec]], dict[str, Any]]


def empty_affected() -> dict[str, Any]:
    return {"villages": [], "townships": [], "sites": []}


def geo_targeter(session: Session, areas: list[AreaSpec]) -> dict[str, Any]:
    """The affected villages, townships and sites of a warning's area blocks (each judged on its own)."""
    if all(a.empty for a in areas):
        return empty_affected()
    try:
        from geo.region import region_index
        from warning.normalize import affected_json, area_to_target

        target = area_to_target(areas)
        if target is None:
            return empty_affected()
        out = affected_json(region_index(session).match(target))
    except Exception as exc:  # reported on the warning, never raised: the warning itself must be kept
        log.warning("targeting failed: %s", exc)
        return {**empty_affected(), "error": f"{type(exc).__name__}: {exc}"[:500]}
    for key in ("villages", "townships", "sites"):
        out.setdefault(key, [])
    return out
