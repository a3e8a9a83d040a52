"""API shapes for areas, sites, targeting and imports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AreaOut(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None
    approximate: bool
    context: bool
    has_geometry: bool
    population: int | None = None
    households: int | None = None
    label: list[float] | None = None


class AreaNode(AreaOut):
    children: list[AreaNode] = Field(default_factory=list)


class MatchRequest(BaseModel):
    """A warning area to test. Circles/points may be ``"lat,lon radius_km"`` (CAP) or ``[lat, lon, radius_km]``."""

    polygons: list[dict[str, Any]] = Field(default_factory=list, description="GeoJSON Polygon/MultiPolygon")
    circles: list[str | list[float]] = Field(default_factory=list)
    points: list[str | list[float]] = Field(default_factory=list)
    geocodes: list[str] = Field(default_factory=list)
    crs: str = Field("WGS84", description="WGS84 | CGCS2000 | GCJ02 (converted to WGS84)")


class ImportReportOut(BaseModel):
    kind: str
    source: str
    total: int
    valid: int
    problems: list[dict[str, Any]]
    applied: bool
    created: int
    updated: int
    unchanged: int
    version: int
    crs: str | None
