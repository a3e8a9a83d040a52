"""The drill library: the bundled demo and the scenarios shipped beside it in ``config/defaults/drills/``.

A scenario is found by its place, not by a list to keep up to date: ``drills/<stem>.yaml`` is the demo
(named by the file stem, ``red-rainstorm``), ``drills/<name>/scenario.yaml`` a library scenario (named
by its folder, ``waterlogging``, ``earthquake``…). The folder names are what people type
(``jiaoying demo NAME``); the Chinese title is the scenario's own ``name:``.

The hazards a scenario exercises are read from its inputs, as the system will read them: each feed
payload through its format's parser (with the default region's parser sites, as ``jiaoying normalize``
does), each warning entered by hand by its ``hazard`` field. The scenario format stays as it is.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from responses.drill.scenario import LoadedScenario, ScenarioError, load_scenario

DRILLS_DIR = Path(__file__).resolve().parents[2] / "config" / "defaults" / "drills"
DEMO_NAME = "red-rainstorm"
SCENARIO_FILE = "scenario.yaml"


@dataclass(frozen=True)
class LibraryScenario:
    """One entry of the library: its name, its file, and (read on demand) what the file says."""

    name: str
    path: Path
    bundled_demo: bool = False

    @cached_property
    def loaded(self) -> LoadedScenario:
        """The parsed scenario; a broken file raises ``ScenarioError`` naming its lines."""
        return load_scenario(self.path)

    @property
    def title(self) -> str:
        return self.loaded.scenario.name

    @property
    def duration(self) -> dt.timedelta:
        return self.loaded.scenario.duration

    @cached_property
    def hazards(self) -> list[str]:
        """The hazards of the warnings its inputs make, in the order they first appear."""
        return scenario_hazards(self.loaded)


def list_scenarios(root: Path | None = None) -> list[LibraryScenario]:
    """The bundled demo first, then the library scenarios by name."""
    root = root or DRILLS_DIR
    demos = sorted(p for p in root.glob("*.yaml") if p.is_file())
    library = sorted(p for p in root.glob(f"*/{SCENARIO_FILE}") if p.is_file())
    out = [LibraryScenario(p.stem, p, bundled_demo=p.stem == DEMO_NAME) for p in demos]
    out.sort(key=lambda e: (not e.bundled_demo, e.name))
    out += [LibraryScenario(p.parent.name, p) for p in library]
    return out


def names(root: Path | None = None) -> list[str]:
    return [e.name for e in list_scenarios(root)]


def find(name: str, root: Path | None = None) -> LibraryScenario | None:
    """The scenario of that name (``red-rainstorm``, ``waterlogging``…), or None."""
    for entry in list_scenarios(root):
        if entry.name == name:
            return entry
    return None


def duration_text(value: dt.timedelta) -> str:
    """``25h``, ``6h30m``, ``45m``: how the scenario files write durations."""
    total = int(value.total_seconds())
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    text = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return text or "0m"


def _parser_context() -> Any:
    from geo.region import default_region_index
    from warning.feeds import ParserContext
    from warning.service import PARSER_SITE_KINDS

    sites = []
    for site in default_region_index().sites():
        if site.kind in PARSER_SITE_KINDS:
            p = site.geometry.representative_point()
            sites.append((str(site.id), site.name, site.kind, p.x, p.y, {}))
    return ParserContext(sites=sites)


def scenario_hazards(loaded: LoadedScenario) -> list[str]:
    """Hazard codes (``weather``, ``earthquake``…) of the warnings the scenario's inputs make.

    An input that cannot be read adds nothing here: running the scenario is where it is reported.
    """
    from warning.feeds import get_parser

    found: list[str] = []
    ctx = None
    for ev in loaded.scenario.events:
        feed = getattr(ev, "feed", None)
        manual = getattr(ev, "manual", None)
        hazards: list[str] = []
        try:
            if feed is not None:
                ctx = ctx or _parser_context()
                result = get_parser(feed.format)(loaded.resolve(feed.file).read_bytes(), ctx)
                hazards = [str(w.hazard) for w in result.warnings if w.hazard is not None]
            elif manual is not None:
                body = json.loads(loaded.resolve(manual.file).read_text(encoding="utf-8"))
                if isinstance(body, dict) and isinstance(body.get("hazard"), str):
                    hazards = [body["hazard"]]
        except Exception:  # noqa: BLE001 - a listing shows what it can; the run reports the bad input
            continue
        for h in hazards:
            if h not in found:
                found.append(h)
    return found


__all__ = ["DEMO_NAME", "DRILLS_DIR", "LibraryScenario", "ScenarioError", "duration_text", "find",
           "list_scenarios", "names", "scenario_hazards"]
