"""Routes: the area tree and search, GeoJSON for the console map, admin imports, and ``POST /geo/match``."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, UploadFile
from shapely.geometry import shape
from sqlalchemy import select

from config.errors import ApiError, bad_request, errors, not_found
from config.users import Role, User
from config.web import ALL_ROLES, DB, STAFF, ClockDep, actor_of, require
from geo.crs import normalize_crs, to_wgs84
from geo.models import Area, HazardSite
from geo.region import region_index, run_import
from geo.schemas import CIRCLE_PATTERN, AreaNode, AreaOut, ImportReportOut, MatchRequest
from geo.service import current_version, search_areas
from geo.sites import SITE_KINDS
from geo.targets import MatchTarget

router = APIRouter(prefix="/geo", tags=["geo"])

MAX_IMPORT_BYTES = 20 * 1024 * 1024
CIRCLE_RE = re.compile(CIRCLE_PATTERN)


def _out(a: Area) -> AreaOut:
    return AreaOut(code=a.code, name=a.name, level=a.level, parent_code=a.parent_code, approximate=a.approximate,
                   context=a.context, has_geometry=a.geometry is not None, population=a.population,
                   households=a.households, label=a.label)


@router.get("/areas/tree", dependencies=[require(*ALL_ROLES)], responses=errors(404))
def geo_area_tree(db: DB, root: str | None = None, include_context: bool = False) -> list[AreaNode]:
    """The area tree (without geometry), from the district down, or from ``root``."""
    rows = list(db.execute(select(Area).order_by(Area.code)).scalars())
    nodes = {a.code: AreaNode(**_out(a).model_dump()) for a in rows if include_context or not a.context}
    tops: list[AreaNode] = []
    for a in rows:
        node = nodes.get(a.code)
        if node is None:
            continue
        parent = nodes.get(a.parent_code) if a.parent_code else None
        (parent.children if parent else tops).append(node)
    if root is not None:
        if root not in nodes:
            raise not_found("区域", "Area", root)
        return [nodes[root]]
    return tops


@router.get("/areas/search", dependencies=[require(*ALL_ROLES)])
def geo_area_search(db: DB, q: Annotated[str, Query(min_length=1, max_length=60)],
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[AreaOut]:
    """Areas by code prefix (6/9/12 digits) or by a part of the name."""
    return [_out(a) for a in search_areas(db, q, limit)]


@router.get("/areas/geojson", dependencies=[require(*ALL_ROLES)])
def geo_areas_geojson(db: DB, level: str | None = None, parent: str | None = None,
                      include_context: bool = False) -> dict[str, Any]:
    """Areas as a GeoJSON FeatureCollection for the map; ``approximate`` marks generated polygons."""
    stmt = select(Area).order_by(Area.code)
    if level:
        stmt = stmt.where(Area.level == level)
    if parent:
        stmt = stmt.where(Area.parent_code == parent)
    if not include_context:
        stmt = stmt.where(Area.context.is_(False))
    feats = [{"type": "Feature", "id": a.code, "geometry": a.geometry,
              "properties": {"code": a.code, "name": a.name, "level": a.level, "parent_code": a.parent_code,
                             "approximate": a.approximate, "context": a.context, "label": a.label,
                             "note": "示意范围，非测绘边界 / approximate, not surveyed" if a.approximate else None}}
             for a in db.execute(stmt).scalars() if a.geometry]  # JSON null is not SQL NULL: filter here
    return {"type": "FeatureCollection", "features": feats}


@router.get("/areas/{code}", dependencies=[require(*ALL_ROLES)], responses=errors(404))
def geo_area_get(db: DB, code: str) -> dict[str, Any]:
    a = db.execute(select(Area).where(Area.code == code)).scalar_one_or_none()
    if a is None:
        raise not_found("区域", "Area", code)
    children = [_out(c).model_dump() for c in
                db.execute(select(Area).where(Area.parent_code == code).order_by(Area.code)).scalars()]
    return {**_out(a).model_dump(), "geometry": a.geometry, "children": children}


@router.get("/sites/geojson", dependencies=[require(*ALL_ROLES)])
def geo_sites_geojson(db: DB, kind: str | None = None) -> dict[str, Any]:
    """Hazard sites for the map; ``demo`` marks demonstration data."""
    stmt = select(HazardSite).order_by(HazardSite.id)
    if kind:
        stmt = stmt.where(HazardSite.kind == kind)
    feats = [{"type": "Feature", "id": s.id, "geometry": s.geometry,
              "properties": {"key": s.key, "name": s.name, "kind": s.kind,
                             "kind_zh": SITE_KINDS.get(s.kind, ("", ""))[0], "area_code": s.area_code,
                             "risk_level": s.risk_level, "residents": s.residents, "demo": s.demo, **(s.attrs or {})}}
             for s in db.execute(stmt).scalars()]
    return {"type": "FeatureCollection", "features": feats}


@router.get("/version", dependencies=[require(*ALL_ROLES)])
def geo_version(db: DB) -> dict[str, Any]:
    version, _ = current_version(db)
    return {"version": version}


def _circle(value: str | list[float], what: str) -> tuple[float, float, float]:
    try:
        if isinstance(value, str):
            if not CIRCLE_RE.match(value):
                raise ValueError(value)
            centre, radius = value.strip().split()
            lat, lon = (float(v) for v in centre.split(","))
            return lat, lon, float(radius)
        lat, lon, radius = (float(v) for v in value)
        return lat, lon, radius
    except (ValueError, TypeError):
        raise bad_request("bad_circle", f"{what}格式应为 \"纬度,经度 半径km\"：{value!r}",
                          f"{what} must be \"lat,lon radius_km\": {value!r}") from None


@router.post("/match")
def geo_match(body: MatchRequest, db: DB,
              user: User = require(Role.ADMIN, Role.LEADER, Role.DUTY_OFFICER, Role.ANALYST)) -> dict[str, Any]:
    """Which villages, townships and sites a warning area reaches (test a geometry before relying on it)."""
    crs = normalize_crs(body.crs)
    if crs is None:
        raise bad_request("unknown_crs", f"未知坐标系 {body.crs!r}", f"Unknown CRS {body.crs!r}")
    polygons = []
    for i, raw in enumerate(body.polygons, start=1):
        try:
            geom = shape(raw.model_dump())
        except Exception as exc:  # malformed GeoJSON: a 400 naming the polygon, never a 500
            raise bad_request("bad_geometry", f"第 {i} 个多边形无法读取：{exc}",
                              f"Polygon {i} unreadable: {exc}") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise bad_request("bad_geometry", f"第 {i} 个几何不是面", f"Geometry {i} is not a polygon")
        polygons.append(to_wgs84(geom, crs))
    circles = tuple(_circle(c, "圆") for c in body.circles)
    points = tuple(_circle(p, "点") for p in body.points)
    if crs == "GCJ02":
        from geo.crs import gcj02_to_wgs84

        circles = tuple((gcj02_to_wgs84(lon, lat)[1], gcj02_to_wgs84(lon, lat)[0], r) for lat, lon, r in circles)
        points = tuple((gcj02_to_wgs84(lon, lat)[1], gcj02_to_wgs84(lon, lat)[0], r) for lat, lon, r in points)
    target = MatchTarget(polygons=tuple(polygons), circles=circles, points=points, geocodes=tuple(body.geocodes))
    try:
        return region_index(db).match(target).to_dict()
    except ValueError as exc:
        raise bad_request("bad_target", f"预警范围无效：{exc}", f"Invalid warning area: {exc}") from None


@router.post("/import/{kind}", response_model=ImportReportOut, responses=errors(413))
def geo_import(kind: Literal["areas", "sites"], db: DB, clock: ClockDep, file: Annotated[UploadFile, File()],
               fmt: Annotated[str | None, Query(pattern="^(geojson|csv)$")] = None,
               crs: str | None = None, skip_invalid: bool = False, accept_repaired: bool = False,
               user: User = require(Role.ADMIN)) -> dict[str, Any]:
    """Import areas (GeoJSON or CSV) or sites (GeoJSON). All or nothing unless ``skip_invalid``."""
    raw = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise ApiError(413, "too_large", "文件过大（上限 20 MB）", "File too large (20 MB max)")
    name = file.filename or "upload"
    fmt = fmt or ("csv" if name.lower().endswith(".csv") else "geojson")
    if kind == "sites" and fmt == "csv":
        raise bad_request("unsupported", "隐患点仅支持 GeoJSON 导入", "Sites are imported from GeoJSON only")
    report = run_import(db, kind, fmt, raw, now=clock.now(), actor=actor_of(user), source=f"upload:{name}"[:200],
                        crs=crs, skip_invalid=skip_invalid, accept_repaired=accept_repaired)
    if not report.applied:
        db.rollback()
        raise ApiError(422, "import_rejected", "导入未执行：文件存在问题，详见报告（可修正后重试，或选择跳过无效项）",
                       "Import not applied: the file has problems, see the report (fix them or skip invalid items)",
                       details=report.to_dict())
    db.commit()
    return report.to_dict()


__all__ = ["router", "STAFF"]
