"""Kinds of hazard site and their Chinese names."""

from __future__ import annotations

SITE_KINDS: dict[str, tuple[str, str]] = {
    "geohazard_point": ("地质灾害隐患点", "geohazard point"),
    "geohazard_zone": ("地质灾害风险区", "geohazard risk zone"),
    "reservoir": ("水库", "reservoir"),
    "river_section": ("河段", "river section"),
    "reservoir_downstream": ("水库下游居民点", "settlement below a dam"),
    "slope": ("不稳定斜坡", "unstable slope"),
    "gauge": ("水文/雨量站", "gauge"),
    "forest_block": ("林区/林班", "forest block"),
    "school": ("学校", "school"),
    "hospital": ("医院", "hospital"),
    "public_place": ("公共场所", "public place"),
    "construction_site": ("建筑工地", "construction site"),
    "mine": ("矿山", "mine"),
    "other": ("其他", "other"),
}
