"""The region's life: the default region (from ``config/defaults/region``), imports that change it, and the
cached matching index of the live one.

``default_region_index`` needs no database (``jiaoying normalize`` uses it). ``region_index`` builds the
index from the database once per region version: the version row carries a token that changes with
every change, so an index can never be served for data it does not describe, even across databases.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import threading
import tomllib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shapely.geometry import Point, mapping, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

import config
from config.eventlog import record
from geo.approximate import generate, round_geometry
from geo.importing import Parsed, SiteItem, parse_areas_csv, parse_areas_geojson, parse_sites_geojson
from geo.matching import RegionIndex
from geo.models import Area
from geo.service import (
    apply_areas,
    apply_sites,
    area_count,
    area_records,
    bump_version,
    current_version,
    site_records,
)
from geo.targets import AreaRecord, SiteRecord, circle_polygon

REGION_DIR = Path(config.__file__).parent / "defaults" / "region"
SOURCE = "default-region"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def region_settings(region_dir: Path = REGION_DIR) -> dict[str, Any]:
    with (region_dir / "region.toml").open("rb") as f:
        return tomllib.load(f)


def _boundary(region_dir: Path, cfg: dict[str, Any]) -> Any:
    data = json.loads((region_dir / cfg["boundary"]).read_text(encoding="utf-8"))
    return shape(data["features"][0]["geometry"])


def _groups(region_dir: Path, cfg: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]],
                                                           list[tuple[str, list[str]]]]:
    towns = _read_csv(region_dir / cfg["towns"])
    villages = _read_csv(region_dir / cfg["villages"])
    groups = [(t["code12"], [v["code12"] for v in villages if v["town_code12"] == t["code12"]]) for t in towns]
    return towns, villages, groups


def write_approximate_file(region_dir: Path = REGION_DIR) -> Path:
    """(Re)generate the approximate village and township polygons; deterministic, see ``geo.approximate``."""
    cfg = region_settings(region_dir)
    boundary = _boundary(region_dir, cfg)
    towns, villages, groups = _groups(region_dir, cfg)
    vpoly, tpoly, labels = generate(boundary, groups, seed=int(cfg.get("seed", 140502)))
    feats = []
    for t in towns:
        feats.append({"type": "Feature", "properties": {"code": t["code12"], "level": "township",
                                                        "approximate": True},
                      "geometry": mapping(round_geometry(tpoly[t["code12"]]))})
    for v in villages:
        lon, lat = labels[v["code12"]]
        feats.append({"type": "Feature", "properties": {"code": v["code12"], "level": "village", "approximate": True,
                                                        "label": [round(lon, 6), round(lat, 6)]},
                      "geometry": mapping(round_geometry(vpoly[v["code12"]]))})
    out = {"type": "FeatureCollection",
           "metadata": {"crs": "WGS84", "generator": "geo.approximate.generate", "seed": cfg.get("seed", 140502),
                        "note": "APPROXIMATE polygons generated inside the district boundary; not surveyed"},
           "features": feats}
    path = region_dir / cfg["approximate_polygons"]
    path.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return path


def default_area_records(region_dir: Path = REGION_DIR) -> list[AreaRecord]:
    cfg = region_settings(region_dir)
    district = cfg["district_code"]
    boundary = _boundary(region_dir, cfg)
    towns, villages, _ = _groups(region_dir, cfg)
    approx_path = region_dir / cfg["approximate_polygons"]
    approx: dict[str, tuple[Any, Any]] = {}
    if approx_path.exists():
        for f in json.loads(approx_path.read_text(encoding="utf-8"))["features"]:
            label = f["properties"].get("label")
            approx[f["properties"]["code"]] = (shape(f["geometry"]), tuple(label) if label else None)
    out = [AreaRecord(district, cfg.get("district_name", "城区"), "district", None, boundary, False)]
    for t in towns:
        geom, _ = approx.get(t["code12"], (None, None))
        out.append(AreaRecord(t["code12"], t["name"], "township", district, geom, geom is not None))
    for v in villages:
        geom, label = approx.get(v["code12"], (None, None))
        out.append(AreaRecord(v["code12"], v["name_short"], "village", v["town_code12"], geom, geom is not None,
                              label=label))
    for extra in cfg.get("attach", []):
        for t in _read_csv(region_dir / extra["town"]):
            out.append(AreaRecord(t["code12"], t["name"], "township", extra.get("parent", district), None, False))
        for v in _read_csv(region_dir / extra["villages"]):
            out.append(AreaRecord(v["code12"], v["name_short"], "village", v["town_code12"], None, False))
    if cfg.get("context"):
        data = json.loads((region_dir / cfg["context"]).read_text(encoding="utf-8"))
        have = {a.code for a in out}
        for f in data["features"]:
            code = str(f["properties"]["adcode"]).ljust(12, "0")
            if code not in have:
                out.append(AreaRecord(code, f["properties"]["name"], "district", None, shape(f["geometry"]), False,
                                      context=True))
    return out


def default_site_items(region_dir: Path = REGION_DIR) -> list[SiteItem]:
    cfg = region_settings(region_dir)
    path = region_dir / cfg.get("demo_sites", "demo_sites.geojson")
    if not path.exists():
        return []
    items = []
    for i, f in enumerate(json.loads(path.read_text(encoding="utf-8"))["features"], start=1):
        p = f["properties"]
        items.append(SiteItem(i, f["id"], p["name"], p["kind"], shape(f["geometry"]), p.get("area_code"),
                              p.get("risk_level"), p.get("residents"), bool(p.get("demo", True)),
                              {k: v for k, v in p.items() if k in ("note", "capacity_m3", "students")}))
    return items


def write_demo_sites(region_dir: Path = REGION_DIR) -> Path:
    """Demo hazard sites placed at fixed villages of the approximate layout (flagged demo everywhere)."""
    areas = {a.code: a for a in default_area_records(region_dir)}

    def at(code: str) -> tuple[float, float]:
        lon, lat = areas[code].representative_point() or (0.0, 0.0)
        return lon, lat

    specs = [
        ("demo-reservoir-1", "【演示】北石店水库", "reservoir", "140502100225", 0.25, "medium", None,
         {"capacity_m3": 1_200_000}),
        ("demo-geohazard-1", "【演示】西上庄滑坡隐患点", "geohazard_point", "140502007201", 0.0, "high", 23, {}),
        ("demo-school-1", "【演示】钟家庄小学", "school", "140502006001", 0.0, None, None, {"students": 640}),
        ("demo-forest-1", "【演示】西上庄林区", "forest_block", "140502007210", 0.4, "high", None, {}),
        # for the drill library (reservoir, levee breach, flash flood): people below a dam, behind a levee, on a slope
        ("demo-reservoir-downstream-1", "【演示】北石店水库下游南石店村居民点", "reservoir_downstream", "140502100230",
         0.0, "high", 86, {}),
        ("demo-river-section-1", "【演示】丹河东田石段堤防", "river_section", "140502009009", 0.0, "high", 54, {}),
        ("demo-slope-1", "【演示】窑坡村不稳定斜坡", "slope", "140502007218", 0.0, "high", 15, {}),
    ]
    feats = []
    for key, name, kind, code, radius, risk, residents, extra in specs:
        lon, lat = at(code)
        geom = circle_polygon(lat, lon, radius, 16) if radius else Point(lon, lat)
        feats.append({"type": "Feature", "id": key, "geometry": mapping(round_geometry(geom)),
                      "properties": {"name": name, "kind": kind, "area_code": code, "risk_level": risk,
                                     "residents": residents, "demo": True,
                                     "note": "演示数据，非真实设施 / demo data, not a real facility", **extra}})
    out = {"type": "FeatureCollection", "metadata": {"crs": "WGS84", "demo": True}, "features": feats}
    path = region_dir / region_settings(region_dir).get("demo_sites", "demo_sites.geojson")
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@functools.lru_cache(maxsize=2)
def _default_index(region_dir: Path) -> RegionIndex:
    sites = [SiteRecord(it.key, it.name, it.kind, it.geometry, it.area_code, it.residents, it.demo)
             for it in default_site_items(region_dir)]
    return RegionIndex(default_area_records(region_dir), sites, version=0)


def default_region_index(region_dir: Path = REGION_DIR) -> RegionIndex:
    """The default region's index, built once; no database involved."""
    return _default_index(region_dir)


_cache: OrderedDict[str, RegionIndex] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 4


def region_index(session: Session) -> RegionIndex:
    """The live region's index, rebuilt only when the region version changes."""
    version, token = current_version(session)
    with _cache_lock:
        got = _cache.get(token)
        if got is not None:
            _cache.move_to_end(token)
            return got
    index = RegionIndex(area_records(session), site_records(session), version=version)
    with _cache_lock:
        _cache[token] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index


def seed_default_region(session: Session, now: dt.datetime, region_dir: Path = REGION_DIR) -> int:
    """Load the default region into an empty database; idempotent (does nothing once any area exists).

    Returns the number of areas added.
    """
    from config.eventlog import record
    if area_count(session):
        return 0
    records = default_area_records(region_dir)
    counts = apply_areas(session, records, now=now, source=SOURCE)
    index = default_region_index(region_dir)
    sites = apply_sites(session, default_site_items(region_dir), now=now, source=SOURCE, locate=index.locate)
    version = bump_version(session, now)
    record(session, now=now, action="geo.default_region_seeded", entity_type="region", entity_id=version,
           actor="system", payload={"areas": counts.created, "sites": sites.created, "source": SOURCE})
    return counts.created


# ------------------------------------------------------------------------------------------------ imports


@dataclass
class ImportReport:
    kind: str
    source: str
    total: int
    valid: int
    problems: list[dict[str, Any]]
    applied: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    version: int = 0
    crs: str | None = None

    @property
    def ok(self) -> bool:
        return self.applied

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_import(session: Session, kind: str, fmt: str, raw: bytes, *, crs: str | None = None,
                 accept_repaired: bool = False) -> Parsed:
    known = set(session.execute(select(Area.code)).scalars())
    if kind == "sites":
        return parse_sites_geojson(raw, crs=crs, known_area_codes=known, accept_repaired=accept_repaired)
    if fmt == "csv":
        return parse_areas_csv(raw, known_codes=known)
    return parse_areas_geojson(raw, crs=crs, known_codes=known, accept_repaired=accept_repaired)


def run_import(session: Session, kind: str, fmt: str, raw: bytes, *, now: dt.datetime, actor: str, source: str,
               crs: str | None = None, skip_invalid: bool = False, accept_repaired: bool = False) -> ImportReport:
    """Validate, then apply all (default: only when nothing is wrong) or the valid rest (``skip_invalid``)."""
    if kind not in ("areas", "sites") or fmt not in ("geojson", "csv") or (kind == "sites" and fmt == "csv"):
        raise ValueError(f"unsupported import: {kind} as {fmt}")
    parsed = parse_import(session, kind, fmt, raw, crs=crs, accept_repaired=accept_repaired)
    valid = parsed.valid_items()
    report = ImportReport(kind, source, parsed.total, len(valid), parsed.problems_dicts(), applied=False,
                          crs=parsed.crs)
    version, _ = current_version(session)
    report.version = version
    if parsed.fatal or (parsed.has_errors and not skip_invalid) or not valid:
        return report
    if kind == "areas":
        valid.sort(key=lambda it: (it.level != "district", len(it.code), it.code))
        counts = apply_areas(session, valid, now=now, source=source)
    else:
        index = region_index(session)
        counts = apply_sites(session, valid, now=now, source=source, locate=index.locate)
    report.applied = True
    report.created, report.updated, report.unchanged = counts.created, counts.updated, counts.unchanged
    if counts.created or counts.updated:
        report.version = bump_version(session, now)
        record(session, now=now, action=f"geo.{kind}_imported", entity_type="region", entity_id=report.version,
               actor=actor, payload={
                   "source": source, "created": counts.created, "updated": counts.updated,
                   "unchanged": counts.unchanged, "skipped": parsed.total - len(valid),
                   "changed": counts.changed_codes[:200], "problems": len(parsed.problems),
               })
    return report


# ---- reading -----------------------------------------------------------------------------------
