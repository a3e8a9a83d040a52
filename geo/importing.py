"""Validating region imports (GeoJSON areas and sites, CSV code lists) before anything is written.

Pure: it turns a file into items plus a list of every problem, each naming the feature or row. The
service applies the items all-or-nothing (or, with ``skip_invalid``, the valid rest). Checks:
unknown CRS, unreadable or invalid geometry (repaired with ``make_valid`` and reported; the repair is
used only when the caller accepts repairs), coordinates out of range or apparently swapped (outside
China one way round, inside the other), bad or duplicate codes, unknown parents, unknown site kinds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geo.codes import LEVELS, level_of_code, normalize_code, structural_parent
from geo.crs import CRS_NAMES, normalize_crs, to_wgs84
from geo.sites import SITE_KINDS

CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)


@dataclass(frozen=True)
class Problem:
    index: int  # 1-based feature number or CSV data row number; 0 = the whole file
    ref: str  # the code / name / key the item gave, to find it in the file
    code: str
    zh: str
    en: str
    severity: str = "error"  # 'error' blocks the item; 'warning' is reported only


@dataclass
class AreaItem:
    index: int
    code: str
    name: str
    level: str
    parent_code: str | None
    geometry: BaseGeometry | None
    approximate: bool = False
    context: bool = False
    population: int | None = None
    households: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SiteItem:
    index: int
    key: str
    name: str
    kind: str
    geometry: BaseGeometry
    area_code: str | None
    risk_level: str | None = None
    residents: int | None = None
    demo: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    kind: str  # 'areas' | 'sites'
    items: list[Any]
    problems: list[Problem]
    total: int
    crs: str | None = None

    def errors_for(self, index: int) -> list[Problem]:
        return [p for p in self.problems if p.index == index and p.severity == "error"]

    @property
    def fatal(self) -> bool:
        """A problem with the whole file (e.g. unknown CRS): nothing in it can be imported."""
        return any(p.index == 0 and p.severity == "error" for p in self.problems)

    def valid_items(self) -> list[Any]:
        if self.fatal:
            return []
        bad = {p.index for p in self.problems if p.severity == "error"}
        return [it for it in self.items if it.index not in bad]

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def problems_dicts(self) -> list[dict[str, Any]]:
        return [asdict(p) for p in self.problems]


def _resolve_crs(declared: str | None, data: dict[str, Any], problems: list[Problem]) -> str | None:
    named = declared
    if named is None:
        crs_member = data.get("crs")
        if isinstance(crs_member, dict):
            named = (crs_member.get("properties") or {}).get("name")
        elif isinstance(crs_member, str):
            named = crs_member
        elif isinstance(data.get("metadata"), dict) and isinstance(data["metadata"].get("crs"), str):
            named = data["metadata"]["crs"].split()[0]
    if named is None:
        return "WGS84"  # RFC 7946: GeoJSON without a CRS is WGS84
    crs = normalize_crs(named)
    if crs is None:
        problems.append(Problem(
            0, str(named), "unknown_crs",
            f"未知坐标系 {named!r}，可选：{', '.join(CRS_NAMES)}（GCJ-02 为火星坐标）",
            f"Unknown CRS {named!r}; expected one of {', '.join(CRS_NAMES)}",
        ))
    return crs


def check_geometry(index: int, ref: str, raw: Any, crs: str | None, accept_repaired: bool,
                   problems: list[Problem]) -> BaseGeometry | None:
    """The feature's geometry in WGS84, or None after reporting why it cannot be used."""
    try:
        geom = shape(raw)
    except Exception as exc:  # any malformed GeoJSON geometry is one reported problem, not a crash
        problems.append(Problem(index, ref, "bad_geometry", f"几何无法读取：{exc}", f"Unreadable geometry: {exc}"))
        return None
    if geom.is_empty:
        problems.append(Problem(index, ref, "empty_geometry", "几何为空", "Empty geometry"))
        return None
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        problems.append(Problem(index, ref, "bad_coordinates", "坐标含非数字值", "Coordinates are not finite numbers"))
        return None
    lon, lat = coords[:, 0], coords[:, 1]

    def in_china(x: np.ndarray, y: np.ndarray) -> bool:
        return bool(((x >= CHINA_LON[0]) & (x <= CHINA_LON[1]) & (y >= CHINA_LAT[0]) & (y <= CHINA_LAT[1])).all())

    if not in_china(lon, lat):
        if in_china(lat, lon):
            problems.append(Problem(
                index, ref, "swapped_coordinates",
                f"经纬度疑似颠倒：第一个坐标 {coords[0].tolist()} 在中国范围外，交换后在范围内；"
                "GeoJSON 应为 [经度, 纬度]",
                f"Longitude/latitude apparently swapped: {coords[0].tolist()} is outside China, inside when swapped;"
                " GeoJSON wants [lon, lat]",
            ))
        elif (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
            problems.append(Problem(index, ref, "out_of_range", f"坐标超出范围：{coords[0].tolist()}",
                                    f"Coordinates out of range: {coords[0].tolist()}"))
        else:
            problems.append(Problem(index, ref, "outside_china", f"坐标不在中国范围内：{coords[0].tolist()}",
                                    f"Coordinates outside China: {coords[0].tolist()}"))
        return None
    if not geom.is_valid:
        reason = explain_validity(geom)
        repaired = shapely.make_valid(geom)
        problems.append(Problem(
            index, ref, "invalid_geometry",
            f"几何无效（{reason}），已用 make_valid 修复为 {repaired.geom_type}"
            + ("并采用" if accept_repaired else "；请核对后修正原文件，或使用 --accept-repaired 采用修复结果"),
            f"Invalid geometry ({reason}); make_valid gives a {repaired.geom_type}"
            + (" (used)" if accept_repaired else "; fix the file or pass --accept-repaired"),
            "warning" if accept_repaired else "error",
        ))
        if not accept_repaired:
            return None
        geom = repaired
    if crs is None:
        return None
    return to_wgs84(geom, crs)


def _int_or_none(v: Any) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _features(data: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        problems.append(Problem(0, "", "not_geojson", "不是 GeoJSON 对象", "Not a GeoJSON object"))
        return []
    if data.get("type") == "Feature":
        return [data]
    if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        problems.append(Problem(0, "", "not_geojson", "需要 GeoJSON FeatureCollection",
                                "Expected a GeoJSON FeatureCollection"))
        return []
    return list(data["features"])


def load_json(raw: bytes | str) -> tuple[Any, list[Problem]]:
    try:
        return json.loads(raw), []
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [Problem(0, "", "bad_json", f"JSON 无法解析：{exc}", f"Invalid JSON: {exc}")]


def _check_tree(items: list[AreaItem], known_codes: Iterable[str], problems: list[Problem]) -> None:
    """Duplicate codes and unknown parents (a parent may be in the file or already in the region)."""
    first: dict[str, int] = {}
    for it in items:
        if it.code in first:
            problems.append(Problem(it.index, it.code, "duplicate_code",
                                    f"代码 {it.code} 重复（首次出现于第 {first[it.code]} 项）",
                                    f"Duplicate code {it.code} (first at item {first[it.code]})"))
        else:
            first[it.code] = it.index
    known = set(known_codes)
    # Parents must resolve through items that are themselves importable, so iterate to a fixed point.
    while True:
        bad = {p.index for p in problems if p.severity == "error"}
        ok_codes = {it.code for it in items if it.index not in bad} | known
        added = False
        for it in items:
            if it.index in bad or it.parent_code is None or it.parent_code in ok_codes:
                continue
            in_file = any(o.code == it.parent_code for o in items)
            problems.append(Problem(
                it.index, it.code, "unknown_parent",
                f"上级代码 {it.parent_code} " + ("在本文件中无效" if in_file else "不存在（文件和现有区域中均无）"),
                f"Parent code {it.parent_code} " + ("is invalid in this file" if in_file else
                                                     "is unknown (neither in the file nor in the region)"),
            ))
            added = True
        if not added:
            return


def _area_fields(index: int, props: dict[str, Any], problems: list[Problem]) -> tuple[str, str, str, str | None] | None:
    raw_code = props.get("code") or props.get("code12") or props.get("adcode")
    name = str(props.get("name") or props.get("name_short") or "").strip()
    ref = str(raw_code or name or f"#{index}")
    code = normalize_code(raw_code) if raw_code is not None else None
    level = str(props.get("level") or "").strip().lower() or None
    if level == "grid" and raw_code:
        code = str(raw_code).strip()
    if not code:
        problems.append(Problem(index, ref, "bad_code", f"代码缺失或格式错误：{raw_code!r}（应为 6/9/12 位数字）",
                                f"Missing or malformed code {raw_code!r} (6/9/12 digits expected)"))
        return None
    if not name:
        problems.append(Problem(index, ref, "missing_name", "缺少名称", "Missing name"))
    aliases = {"county": "district", "town": "township", "street": "township", "community": "village"}
    level = aliases.get(level or "", level) or aliases.get(level_of_code(code), level_of_code(code))
    if level not in LEVELS:
        problems.append(Problem(index, ref, "bad_level", f"层级 {level!r} 无效，可选：{', '.join(LEVELS)}",
                                f"Invalid level {level!r}; expected one of {', '.join(LEVELS)}"))
        return None
    raw_parent = props.get("parent_code") or props.get("parent")
    if raw_parent:
        parent = normalize_code(raw_parent) or str(raw_parent).strip()
    else:
        parent = structural_parent(code) if level in ("township", "village") else None
    return code, name or code, level, parent


def parse_areas_geojson(raw: bytes | str, *, crs: str | None = None, known_codes: Iterable[str] = (),
                        accept_repaired: bool = False) -> Parsed:
    data, problems = load_json(raw)
    if data is None:
        return Parsed("areas", [], problems, 0)
    resolved = _resolve_crs(crs, data, problems)
    feats = _features(data, problems)
    items: list[AreaItem] = []
    for i, feat in enumerate(feats, start=1):
        props = (feat or {}).get("properties") or {}
        fields = _area_fields(i, props, problems)
        geom = None
        ref = fields[0] if fields else str(props.get("code") or props.get("name") or f"#{i}")
        if (feat or {}).get("geometry") is not None:
            geom = check_geometry(i, ref, feat["geometry"], resolved, accept_repaired, problems)
            if geom is not None and geom.geom_type not in ("Polygon", "MultiPolygon"):
                problems.append(Problem(i, ref, "not_polygon", f"区域几何应为面，实为 {geom.geom_type}",
                                        f"Area geometry must be a polygon, got {geom.geom_type}"))
                geom = None
        if fields is None:
            continue
        code, name, level, parent = fields
        items.append(AreaItem(
            i, code, name, level, parent, geom, approximate=bool(props.get("approximate", False)),
            context=bool(props.get("context", False)), population=_int_or_none(props.get("population")),
            households=_int_or_none(props.get("households")),
            attrs={k: v for k, v in props.items() if k in ("name_official", "type", "pinyin", "note")},
        ))
    _check_tree(items, known_codes, problems)
    return Parsed("areas", items, problems, len(feats), resolved)


def parse_areas_csv(raw: bytes | str, *, known_codes: Iterable[str] = ()) -> Parsed:
    """A code list: columns ``code`` (or ``code12``), ``name`` (or ``name_short``), optional ``level``,
    ``parent_code``, ``population``, ``households``. Without a parent column the hierarchy comes from the codes."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.lstrip("\ufeff")
    problems: list[Problem] = []
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not ({"code", "code12"} & set(reader.fieldnames)):
        problems.append(Problem(0, "", "bad_header", "CSV 缺少 code 或 code12 列", "CSV lacks a code or code12 column"))
        return Parsed("areas", [], problems, 0)
    items: list[AreaItem] = []
    total = 0
    for i, row in enumerate(reader, start=1):
        total += 1
        props = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
        props.setdefault("code", props.get("code12"))
        if not props.get("parent_code") and props.get("town_code12") and normalize_code(props.get("code") or ""):
            props["parent_code"] = props["town_code12"]
        fields = _area_fields(i, props, problems)
        if fields is None:
            continue
        code, name, level, parent = fields
        items.append(AreaItem(i, code, name, level, parent, None,
                              population=_int_or_none(props.get("population")),
                              households=_int_or_none(props.get("households")),
                              attrs={k: v for k, v in props.items() if k in ("name_official", "type")}))
    _check_tree(items, known_codes, problems)
    return Parsed("areas", items, problems, total)


def site_key(name: str, kind: str, geom: BaseGeometry) -> str:
    """A stable key for a site that has no id of its own, so importing it twice finds the same row."""
    digest = hashlib.sha1(name.encode() + kind.encode() + shapely.to_wkb(geom, output_dimension=2)).hexdigest()
    return f"auto-{digest[:20]}"


def parse_sites_geojson(raw: bytes | str, *, crs: str | None = None, known_area_codes: Iterable[str] = (),
                        accept_repaired: bool = False) -> Parsed:
    data, problems = load_json(raw)
    if data is None:
        return Parsed("sites", [], problems, 0)
    resolved = _resolve_crs(crs, data, problems)
    feats = _features(data, problems)
    known = set(known_area_codes)
    items: list[SiteItem] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(feats, start=1):
        feat = feat or {}
        props = feat.get("properties") or {}
        name = str(props.get("name") or "").strip()
        kind = str(props.get("kind") or "").strip()
        ref = str(feat.get("id") or props.get("key") or name or f"#{i}")
        if not name:
            problems.append(Problem(i, ref, "missing_name", "缺少名称", "Missing name"))
        if kind not in SITE_KINDS:
            problems.append(Problem(i, ref, "unknown_kind", f"未知类型 {kind!r}，可选：{', '.join(SITE_KINDS)}",
                                    f"Unknown kind {kind!r}; expected one of {', '.join(SITE_KINDS)}"))
        geom = None
        if feat.get("geometry") is None:
            problems.append(Problem(i, ref, "missing_geometry", "缺少几何", "Missing geometry"))
        else:
            geom = check_geometry(i, ref, feat["geometry"], resolved, accept_repaired, problems)
        area_code = None
        if props.get("area_code"):
            area_code = normalize_code(props["area_code"]) or str(props["area_code"]).strip()
            if area_code not in known:
                problems.append(Problem(i, ref, "unknown_area", f"所属区域代码 {area_code} 不存在",
                                        f"Area code {area_code} is unknown"))
        if geom is None or not name or kind not in SITE_KINDS:
            continue
        key = str(feat.get("id") or props.get("key") or site_key(name, kind, geom))[:80]
        if key in seen:
            problems.append(Problem(i, key, "duplicate_key", f"标识 {key} 重复（首次出现于第 {seen[key]} 项）",
                                    f"Duplicate key {key} (first at item {seen[key]})"))
            continue
        seen[key] = i
        items.append(SiteItem(
            i, key, name, kind, geom, area_code, risk_level=(str(props["risk_level"]) if props.get("risk_level")
                                                              else None),
            residents=_int_or_none(props.get("residents")), demo=bool(props.get("demo", False)),
            attrs={k: v for k, v in props.items()
                   if k not in ("name", "kind", "key", "area_code", "risk_level", "residents", "demo")},
        ))
    return Parsed("sites", items, problems, len(feats), resolved)
