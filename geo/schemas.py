"""API shapes for areas, sites, targeting and imports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from config.fields import Number
from geo.crs import _ALIASES as CRS_ALIASES  # the one table of accepted CRS names

# A number as ``float()`` reads it in a CAP circle, without the spellings (inf, nan, 1_0) no area uses.
_NUM = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
CIRCLE_PATTERN = rf"^\s*{_NUM},{_NUM}\s+{_NUM}\s*$"
# Documented here, checked by the handler (400 bad_circle, as it always answered).
CircleText = Annotated[str, Field(description='"纬度,经度 半径km" / "lat,lon radius_km"',
                                  json_schema_extra={"pattern": CIRCLE_PATTERN})]
Circle = CircleText | Annotated[list[Number], Field(min_length=3, max_length=3)]  # [lat, lon, radius_km]
Position = Annotated[list[Number], Field(min_length=2, max_length=3)]  # lon, lat[, altitude]
Ring = Annotated[list[Position], Field(min_length=4)]


class GeoJsonPolygon(BaseModel):
    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1)]


class GeoJsonMultiPolygon(BaseModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1)]], Field(min_length=1)]


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

    polygons: list[Annotated[GeoJsonPolygon | GeoJsonMultiPolygon, Field(discriminator="type")]] = Field(
        default_factory=list, description="GeoJSON Polygon/MultiPolygon; a ring needs 3 distinct points and may "
                                          "not cross itself")
    circles: list[Circle] = Field(default_factory=list)
    points: list[Circle] = Field(default_factory=list)
    geocodes: list[str] = Field(default_factory=list)
    crs: str = Field("WGS84", description="WGS84 | CGCS2000 | GCJ02 (converted to WGS84), or another name of them",
                     json_schema_extra={"enum": sorted(CRS_ALIASES)})


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
