"""Coordinate systems: WGS84 inside, GCJ-02 converted on the way in.

Chinese web maps (Amap, Tencent, DataV) publish GCJ-02, an obfuscated datum about 550 m east of WGS84
at 晋城. Taking it as WGS84 sends a call to the wrong village, so every importer declares its CRS.
CGCS2000 differs from WGS84 by centimetres and is taken as WGS84.

GCJ-02 has a published forward formula (WGS84 → GCJ-02) but no closed inverse. ``gcj02_to_wgs84``
inverts it by fixed-point iteration: start at the GCJ-02 point, apply the forward offset to the
current guess and move the guess by the residual; the offset changes slowly (≈1e-5 per degree), so
each step shrinks the error by about five orders of magnitude and three steps reach < 1 mm. Outside
China the formula applies no offset, as the web maps do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

WGS84 = "WGS84"
CGCS2000 = "CGCS2000"
GCJ02 = "GCJ02"
CRS_NAMES = (WGS84, CGCS2000, GCJ02)

_ALIASES = {
    "WGS84": WGS84, "WGS-84": WGS84, "WGS 84": WGS84, "EPSG:4326": WGS84, "4326": WGS84,
    "URN:OGC:DEF:CRS:OGC:1.3:CRS84": WGS84, "CRS84": WGS84, "URN:OGC:DEF:CRS:EPSG::4326": WGS84,
    "CGCS2000": CGCS2000, "EPSG:4490": CGCS2000, "4490": CGCS2000, "URN:OGC:DEF:CRS:EPSG::4490": CGCS2000,
    "GCJ02": GCJ02, "GCJ-02": GCJ02, "GCJ_02": GCJ02, "MARS": GCJ02,
}

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the GCJ-02 formula
_EE = 0.00669342162296594323


def normalize_crs(name: str | None) -> str | None:
    """The canonical CRS name for a declared one, or None when it is not one we know."""
    if name is None:
        return None
    return _ALIASES.get(str(name).strip().upper())


def outside_china(lon: Any, lat: Any) -> Any:
    """Where the GCJ-02 offset is not applied (the rectangle the web maps use)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * pi)
    off = outside_china(lon, lat)
    return np.where(off, 0.0, dlon), np.where(off, 0.0, dlat)


def wgs84_to_gcj02_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84_arrays(lon: Any, lat: Any, *, tol_deg: float = 1e-10, max_iter: int = 30) -> tuple[
        np.ndarray, np.ndarray]:
    glon, glat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02_arrays(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon, wlat = wlon - elon, wlat - elat
        if float(np.max(np.abs(elon), initial=0.0)) < tol_deg and float(np.max(np.abs(elat), initial=0.0)) < tol_deg:
            break
    return wlon, wlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = wgs84_to_gcj02_arrays(lon, lat)
    return float(x), float(y)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    x, y = gcj02_to_wgs84_arrays(lon, lat)
    return float(x), float(y)


def _apply(geom: BaseGeometry, fn: Any) -> BaseGeometry:
    def _coords(xy: np.ndarray) -> np.ndarray:
        x, y = fn(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, _coords)


def geometry_gcj02_to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    return _apply(geom, gcj02_to_wgs84_arrays)


def geometry_wgs84_to_gcj02(geom: BaseGeometry) -> BaseGeometry:
    return _apply(geom, wgs84_to_gcj02_arrays)


def to_wgs84(geom: BaseGeometry, crs: str) -> BaseGeometry:
    """A geometry declared in ``crs`` (a canonical name) as WGS84."""
    if crs == GCJ02:
        return geometry_gcj02_to_wgs84(geom)
    if crs in (WGS84, CGCS2000):
        return geom
    raise ValueError(f"unknown CRS {crs!r}; expected one of {', '.join(CRS_NAMES)}")


def distance_m(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Great-circle distance in metres (haversine); enough for offsets of a few hundred metres."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))
