"""Approximate village polygons, generated deterministically inside a district boundary.

No village or township polygons exist publicly, yet targeting needs a surface for every village.
Stand-ins are generated so that the map and the matching behave plausibly until the district
imports surveyed polygons (``jiaoying geo import areas``), which replace them code by code:

1. One seed point per village on a regular hexagonal lattice fitted inside the boundary (spacing
   found by bisection so exactly one point per village falls inside), so cells are hexagons of equal
   size: a 1 km circle around a village's seed (its label point) reaches only its neighbours.
2. Townships are contiguous groups: the points are split recursively along the longer axis into
   runs whose sizes are the townships' village counts (a k-d split), so each township is one patch.
3. Village polygons are the Voronoi cells clipped to the boundary; townships are their unions, so
   villages tile the district exactly.

Work is done in a local plane (longitude scaled by cos(latitude)) so distances are isotropic.
Everything produced here is flagged ``approximate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon, box
from shapely.geometry.base import BaseGeometry


def _to_plane(geom: BaseGeometry, lat0: float) -> BaseGeometry:
    k = math.cos(math.radians(lat0))
    return shapely.transform(geom, lambda c: np.column_stack([c[:, 0] * k, c[:, 1]]))


def _from_plane(geom: BaseGeometry, lat0: float) -> BaseGeometry:
    k = math.cos(math.radians(lat0))
    return shapely.transform(geom, lambda c: np.column_stack([c[:, 0] / k, c[:, 1]]))


def _cells(points: np.ndarray, region: BaseGeometry) -> list[BaseGeometry]:
    frame = box(*region.buffer(0.05 * max(region.bounds[2] - region.bounds[0], 1e-9), join_style="mitre").bounds)
    vor = shapely.voronoi_polygons(MultiPoint(points), extend_to=frame, ordered=True)
    cells = list(vor.geoms)
    return [shapely.make_valid(shapely.intersection(c, region)) for c in cells]


def _lattice(region: BaseGeometry, d: float, ox: float, oy: float) -> np.ndarray:
    """Hexagonal lattice points (spacing ``d``, offset by fractions ``ox``, ``oy``) inside ``region``."""
    x0, y0, x1, y1 = region.bounds
    dy = d * math.sqrt(3.0) / 2.0
    rows = np.arange(y0 - dy + oy * dy, y1 + dy, dy)
    pts = []
    for r, y in enumerate(rows):
        shift = (0.5 * d if r % 2 else 0.0) + ox * d
        xs = np.arange(x0 - d + shift, x1 + d, d)
        pts.append(np.column_stack([xs, np.full(len(xs), y)]))
    allp = np.concatenate(pts)
    return allp[shapely.contains_xy(region, allp[:, 0], allp[:, 1])]


def lattice_candidates(region: BaseGeometry, n: int, seed: int) -> Iterator[np.ndarray]:
    """Sets of exactly ``n`` points of a hexagonal lattice inside ``region``, in a fixed order.

    A regular lattice makes every cell a hexagon of the same size (clipped at the boundary), which is
    what keeps a 1 km circle around a village's seed inside that village and its neighbours. The
    spacing is found by bisection; lattice offsets are tried in a fixed order (from ``seed``) until
    one admits exactly ``n`` points.
    """
    shapely.prepare(region)
    rng = np.random.default_rng(seed)
    offsets = [(0.0, 0.0)] + [tuple(o) for o in rng.uniform(0.0, 1.0, size=(200, 2))]
    guess = math.sqrt(region.area / n / (math.sqrt(3.0) / 2.0))
    for ox, oy in offsets:
        lo, hi = guess * 0.5, guess * 2.0
        for _ in range(60):
            mid = (lo + hi) / 2.0
            if len(_lattice(region, mid, ox, oy)) >= n:
                lo = mid
            else:
                hi = mid
        pts = _lattice(region, lo, ox, oy)
        if len(pts) == n:
            yield pts


def _split(indices: np.ndarray, pts: np.ndarray, sizes: Sequence[int], out: list[np.ndarray]) -> None:
    if len(sizes) == 1:
        out.append(indices)
        return
    half = sum(sizes) / 2.0
    acc, cut = 0, 1
    best = math.inf
    for i in range(1, len(sizes)):
        acc += sizes[i - 1]
        if abs(acc - half) < best:
            best, cut = abs(acc - half), i
    k = sum(sizes[:cut])
    sub = pts[indices]
    axis = 0 if np.ptp(sub[:, 0]) >= np.ptp(sub[:, 1]) else 1
    order = indices[np.lexsort((sub[:, 1 - axis], sub[:, axis]))]
    _split(order[:k], pts, sizes[:cut], out)
    _split(order[k:], pts, sizes[cut:], out)


def _violations(pts: np.ndarray, cells: list[BaseGeometry], parts: list[np.ndarray], clearance: float) -> int:
    """How many design invariants a layout breaks: split townships, and seeds within ``clearance`` of a
    village that is not a neighbour."""
    bad = 0
    for idx in parts:
        union = shapely.union_all([cells[int(i)] for i in idx])
        bad += union.geom_type != "Polygon"
    arr = np.array(cells, dtype=object)
    tree = shapely.STRtree(arr)
    seeds = shapely.points(pts)
    near = tree.query(seeds, predicate="dwithin", distance=clearance)
    for i, j in zip(near[0].tolist(), near[1].tolist(), strict=True):
        if i != j and not shapely.intersects(arr[i], arr[j]):
            bad += 1
    return bad


def generate(boundary: BaseGeometry, groups: Sequence[tuple[str, Sequence[str]]], seed: int = 140502,
             clearance_km: float = 1.0, max_tries: int = 60) -> tuple[
        dict[str, BaseGeometry], dict[str, BaseGeometry], dict[str, tuple[float, float]]]:
    """(village → polygon, township → polygon, village → label point (lon, lat)) for
    ``groups`` = [(township code, [village code, …]), …].

    Deterministic for a given boundary, grouping and seed. Lattices are tried in a fixed order and the
    first whose townships are each one piece and whose seeds are ``clearance_km`` from every
    non-neighbouring village is kept (else the one breaking fewest of these). Polygons are WGS84 lon/lat.
    """
    sizes = [len(v) for _, v in groups]
    n = sum(sizes)
    if n == 0:
        return {}, {}, {}
    lat0 = (boundary.bounds[1] + boundary.bounds[3]) / 2.0
    k = math.cos(math.radians(lat0))
    region = _to_plane(shapely.make_valid(boundary), lat0)
    best: tuple[int, np.ndarray, list[BaseGeometry], list[np.ndarray]] | None = None
    for tries, pts in enumerate(lattice_candidates(region, n, seed)):
        parts: list[np.ndarray] = []
        _split(np.arange(n), pts, sizes, parts)
        cells = _cells(pts, region)
        bad = _violations(pts, cells, parts, clearance_km / 111.195)
        if best is None or bad < best[0]:
            best = (bad, pts, cells, parts)
        if bad == 0 or tries + 1 >= max_tries:
            break
    if best is None:
        raise ValueError(f"no hexagonal lattice with exactly {n} points inside the boundary")
    _, pts, cells, parts = best
    villages: dict[str, BaseGeometry] = {}
    townships: dict[str, BaseGeometry] = {}
    labels: dict[str, tuple[float, float]] = {}
    for (town, codes), idx in zip(groups, parts, strict=True):
        # Within a township, number villages north to south, west to east, so neighbouring codes sit together.
        sub = pts[idx]
        order = idx[np.lexsort((sub[:, 0], -sub[:, 1]))]
        town_cells = []
        for code, i in zip(sorted(codes), order, strict=True):
            cell = cells[int(i)]
            villages[code] = _from_plane(cell, lat0)
            labels[code] = (float(pts[int(i), 0] / k), float(pts[int(i), 1]))
            town_cells.append(cell)
        townships[town] = _from_plane(shapely.union_all(town_cells), lat0)
    return villages, townships, labels


def round_geometry(geom: BaseGeometry, digits: int = 6) -> BaseGeometry:
    """Coordinates rounded (≈0.1 m) for a compact data file, repaired if rounding broke validity."""
    out = shapely.set_precision(geom, 10.0 ** -digits)
    return out if out.is_valid else shapely.make_valid(out)


__all__ = ["generate", "lattice_candidates", "round_geometry", "Polygon"]
