"""Tables: the area tree, hazard sites and the region version that keys the matching cache."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class Area(Base):
    """District → township → village → grid. Geometry is GeoJSON in WGS84; None when unknown."""

    __tablename__ = "area"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    level: Mapped[str] = mapped_column(String(12))
    parent_code: Mapped[str | None] = mapped_column(String(24), index=True)
    geometry: Mapped[dict[str, Any] | None]
    label: Mapped[list[Any] | None]  # [lon, lat] where the map writes the name
    approximate: Mapped[bool] = mapped_column(default=False)
    context: Mapped[bool] = mapped_column(default=False)  # neighbouring county, not managed here
    population: Mapped[int | None]
    households: Mapped[int | None]
    attrs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[dt.datetime]


class HazardSite(Base):
    """A place with its own risk: 隐患点, 风险区, reservoir, river section, school …

    ``key`` (the feature id, or a digest of name, kind and shape) makes imports idempotent.
    """

    __tablename__ = "hazard_site"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    geometry: Mapped[dict[str, Any]]
    area_code: Mapped[str | None] = mapped_column(String(24), index=True)
    risk_level: Mapped[str | None] = mapped_column(String(20))
    residents: Mapped[int | None]  # 避险转移人数
    attrs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    demo: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[dt.datetime]


class RegionVersion(Base):
    """One row. ``token`` is new at every change, so a cached index can never outlive the data it indexes."""

    __tablename__ = "region_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    token: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[dt.datetime]
