"""Loading and saving the region: applying areas and sites, the region version, tree and search queries.

The caller commits (one commit per request or job). Every change bumps the region version in the same
transaction and is written to the event log; an import that changes nothing bumps nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import mapping, shape
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from geo.approximate import round_geometry
from geo.codes import normalize_code, significant_prefix
from geo.importing import AreaItem, SiteItem
from geo.models import Area, HazardSite, RegionVersion
from geo.targets import AreaRecord, SiteRecord


def geojson_of(geom: Any) -> dict[str, Any] | None:
    if geom is None or geom.is_empty:
        return None
    # Through JSON so it compares equal to what the database hands back (lists, not tuples).
    return json.loads(json.dumps(mapping(round_geometry(geom))))  # type: ignore[no-any-return]


def current_version(session: Session) -> tuple[int, str]:
    row = session.get(RegionVersion, 1)
    return (row.version, row.token) if row else (0, "empty")


def bump_version(session: Session, now: dt.datetime) -> int:
    row = session.execute(select(RegionVersion).where(RegionVersion.id == 1).with_for_update()).scalar_one_or_none()
    if row is None:
        row = RegionVersion(id=1, version=0, token="", changed_at=now)
        session.add(row)
    row.version += 1
    row.token = uuid.uuid4().hex
    row.changed_at = now
    session.flush()
    return row.version


@dataclass
class ApplyCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_codes: list[str] = field(default_factory=list)


def _area_values(it: AreaItem | AreaRecord, label: Any = None) -> dict[str, Any]:
    return {
        "name": it.name, "level": it.level, "parent_code": it.parent_code,
        "geometry": geojson_of(it.geometry), "approximate": bool(it.approximate), "context": bool(it.context),
        "population": it.population, "households": it.households,
        "label": list(label) if label else None,
    }


def apply_areas(session: Session, items: list[AreaItem] | list[AreaRecord], *, now: dt.datetime,
                source: str) -> ApplyCounts:
    """Insert or update areas by code. A surveyed polygon replaces an approximate one (and clears the flag)."""
    counts = ApplyCounts()
    codes = [it.code for it in items]
    existing = {a.code: a for a in session.execute(select(Area).where(Area.code.in_(codes))).scalars()} if codes else {}
    for it in items:
        values = _area_values(it, getattr(it, "label", None))
        attrs = dict(getattr(it, "attrs", {}) or {})
        row = existing.get(it.code)
        if row is None:
            session.add(Area(code=it.code, attrs=attrs, source=source, updated_at=now, **values))
            counts.created += 1
            counts.changed_codes.append(it.code)
            continue
        if values["geometry"] is None and row.geometry is not None:
            # A code list without shapes must not erase the polygons already known.
            values["geometry"], values["approximate"], values["label"] = row.geometry, row.approximate, row.label
        if values["label"] is None and values["geometry"] == row.geometry:
            values["label"] = row.label
        for opt in ("population", "households"):
            if values[opt] is None:
                values[opt] = getattr(row, opt)
        merged_attrs = {**(row.attrs or {}), **attrs}
        if all(getattr(row, k) == v for k, v in values.items()) and merged_attrs == (row.attrs or {}):
            counts.unchanged += 1
            continue
        for k, v in values.items():
            setattr(row, k, v)
        row.attrs, row.source, row.updated_at = merged_attrs, source, now
        counts.updated += 1
        counts.changed_codes.append(it.code)
    session.flush()
    return counts


def apply_sites(session: Session, items: list[SiteItem], *, now: dt.datetime, source: str,
                locate: Any = None) -> ApplyCounts:
    """Insert or update sites by key; a site without an area code is placed in the area that contains it."""
    counts = ApplyCounts()
    keys = [it.key for it in items]
    existing = ({s.key: s for s in session.execute(select(HazardSite).where(HazardSite.key.in_(keys))).scalars()}
                if keys else {})
    for it in items:
        area_code = it.area_code
        if area_code is None and locate is not None:
            p = it.geometry.representative_point()
            area_code = locate(p.x, p.y)
        values = {
            "name": it.name, "kind": it.kind, "geometry": geojson_of(it.geometry), "area_code": area_code,
            "risk_level": it.risk_level, "residents": it.residents, "demo": it.demo, "attrs": dict(it.attrs),
        }
        row = existing.get(it.key)
        if row is None:
            session.add(HazardSite(key=it.key, source=source, updated_at=now, **values))
            counts.created += 1
            counts.changed_codes.append(it.key)
        elif all(getattr(row, k) == v for k, v in values.items()):
            counts.unchanged += 1
        else:
            for k, v in values.items():
                setattr(row, k, v)
            row.source, row.updated_at = source, now
            counts.updated += 1
            counts.changed_codes.append(it.key)
    session.flush()
    return counts


def area_records(session: Session) -> list[AreaRecord]:
    rows = session.execute(select(Area).order_by(Area.code)).scalars()
    return [
        AreaRecord(r.code, r.name, r.level, r.parent_code, shape(r.geometry) if r.geometry else None,
                   r.approximate, r.context, r.population, r.households,
                   (float(r.label[0]), float(r.label[1])) if r.label else None)
        for r in rows
    ]


def site_records(session: Session) -> list[SiteRecord]:
    rows = session.execute(select(HazardSite).order_by(HazardSite.id)).scalars()
    return [SiteRecord(r.id, r.name, r.kind, shape(r.geometry), r.area_code, r.residents, r.demo) for r in rows]


def search_areas(session: Session, q: str, limit: int = 50) -> list[Area]:
    q = q.strip()
    if not q:
        return []
    code = normalize_code(q)
    cond = or_(Area.code.startswith(significant_prefix(code) if code else q), Area.name.contains(q))
    return list(session.execute(select(Area).where(cond).order_by(func.length(Area.code), Area.code).limit(limit))
                .scalars())


def area_count(session: Session) -> int:
    return int(session.execute(select(func.count(Area.id)).where(Area.context.is_(False))).scalar_one())


def monitored_sites(session: Session, kinds: set[str] | None = None) -> list[tuple[str, str, str, float, float,
                                                                                 dict[str, Any]]]:
    """Sites as the feed parsers take them, ``(key, name, kind, lon, lat, attrs)``: gauges with their
    warning and guarantee levels, forest blocks for hotspots. A site's point is a point inside it."""
    stmt = select(HazardSite)
    if kinds:
        stmt = stmt.where(HazardSite.kind.in_(sorted(kinds)))
    out = []
    for site in session.execute(stmt).scalars():
        try:
            p = shape(site.geometry).representative_point()
        except Exception:  # a stored geometry that cannot be read is skipped, not fatal to a feed
            continue
        out.append((site.key, site.name, site.kind, float(p.x), float(p.y), dict(site.attrs or {})))
    return out


def hazard_sites(session: Session) -> list[HazardSite]:
    """Every hazard site with its kind, risk level and evacuation list, in the order they were imported.

    The console's map marks each site with its risk, which ``site_records`` (made for matching) leaves out,
    and the map sits above this package, reading no table itself.
    """
    return list(session.execute(select(HazardSite).order_by(HazardSite.id)).scalars())
