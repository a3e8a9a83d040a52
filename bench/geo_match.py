"""Benchmark: targeting against a synthetic region of 50,000 village polygons.

Run: ``.venv/bin/python bench/geo_match.py`` (about a minute). Prints the median time of one match for a
5,000-vertex polygon (county-sized, with a hole), for 100 circles and for 1,000 points, and, in the same run,
the same matches done by a plain loop over every polygon (``intersects`` then ``intersection``), with the
ratio. The loop is timed on a subset of the circles and points (it takes seconds per call); it also checks
that both ways hit the same villages.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Point, Polygon, box

from geo.matching import RegionIndex
from geo.targets import AreaRecord, MatchTarget, circle_polygon


def synthetic_region(n: int, seed: int) -> tuple[list[AreaRecord], list[Polygon]]:
    """Voronoi villages in a 2.5° × 2.0° box (≈ 50,000 km²), grouped into 25 × 20 townships."""
    rng = np.random.default_rng(seed)
    x0, y0, w, h = 111.5, 34.5, 2.5, 2.0
    frame = box(x0, y0, x0 + w, y0 + h)
    pts = rng.uniform([x0, y0], [x0 + w, y0 + h], size=(n, 2))
    cells = shapely.voronoi_polygons(MultiPoint(pts), extend_to=frame, ordered=True)
    polys = list(shapely.intersection(np.array(cells.geoms), frame))
    areas = [AreaRecord("990000000000", "合成区", "district", None, frame, True)]
    town_of = (np.minimum((pts[:, 0] - x0) / w * 25, 24).astype(int) * 20
               + np.minimum((pts[:, 1] - y0) / h * 20, 19).astype(int))
    for t in range(500):
        areas.append(AreaRecord(f"99000{t + 1:04d}000"[:12], f"镇{t}", "township", "990000000000", None, True))
    counters: dict[int, int] = {}
    for i, poly in enumerate(polys):
        t = int(town_of[i])
        counters[t] = counters.get(t, 0) + 1
        town = f"99000{t + 1:04d}000"[:12]
        areas.append(AreaRecord(f"{town[:9]}{counters[t]:03d}", f"村{i}", "village", town, poly, True))
    return areas, polys


def star_polygon(cx: float, cy: float, r: float, vertices: int) -> Polygon:
    ang = np.linspace(0, 2 * np.pi, vertices - 200, endpoint=False)
    rad = r * (1 + 0.25 * np.sin(9 * ang) + 0.05 * np.sin(97 * ang))
    outer = np.column_stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang) * 0.8])
    hang = np.linspace(0, 2 * np.pi, 199, endpoint=False)
    hole = np.column_stack([cx + 0.2 * r * np.cos(hang), cy + 0.2 * r * np.sin(hang)])[::-1]
    return Polygon(outer, [hole])


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000.0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--villages", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--loop-circles", type=int, default=10, help="circles also timed with the plain loop")
    ap.add_argument("--loop-points", type=int, default=20, help="points also timed with the plain loop")
    args = ap.parse_args()

    t0 = time.perf_counter()
    areas, polys = synthetic_region(args.villages, args.seed)
    t1 = time.perf_counter()
    index = RegionIndex(areas)
    t2 = time.perf_counter()
    print(f"synthetic region: {args.villages} villages in 500 townships (generated in {t1 - t0:.1f} s); "
          f"index built in {(t2 - t1) * 1000:.0f} ms")
    codes = [a.code for a in areas if a.level == "village"]
    parr = np.array(polys, dtype=object)
    parea = shapely.area(parr)

    def loop(target: object) -> set[str]:
        hit = set()
        for code, poly, a in zip(codes, polys, parea, strict=True):
            if poly.intersects(target) and (isinstance(target, Point)
                                            or poly.intersection(target).area / a > 1e-9):
                hit.add(code)
        return hit

    rng = np.random.default_rng(args.seed + 1)
    poly = star_polygon(112.75, 35.5, 0.16, 5000)
    assert int(shapely.get_num_coordinates(poly)) >= 5000 and poly.is_valid
    circles = [(float(rng.uniform(34.6, 36.4)), float(rng.uniform(111.6, 113.9)), float(rng.uniform(1, 10)))
               for _ in range(100)]
    points = [(float(rng.uniform(34.5, 36.5)), float(rng.uniform(111.5, 114.0))) for _ in range(1000)]

    index.match(MatchTarget(polygons=(poly,)))  # warm-up (imports, allocator)
    fast_poly, cpu_poly = [], []
    for _ in range(21):
        cpu = time.thread_time()
        fast_poly.append(timed(lambda: index.match(MatchTarget(polygons=(poly,))))[0])
        cpu_poly.append((time.thread_time() - cpu) * 1000.0)
    res = index.match(MatchTarget(polygons=(poly,)))
    fast_circ = [timed(lambda c=c: index.match(MatchTarget(circles=(c,))))[0] for c in circles]  # type: ignore[misc]
    fast_pts = [timed(lambda p=p: index.match(MatchTarget(points=((p[0], p[1], 0.0),))))[0]  # type: ignore[misc]
                for p in points]

    loop_poly = []
    for _ in range(3):
        ms, hit = timed(lambda: loop(poly))
        loop_poly.append(ms)
    assert hit == {h.code for h in res.villages}, "indexed and loop results differ (polygon)"
    loop_circ = []
    for c in circles[: args.loop_circles]:
        ms, hit = timed(lambda c=c: loop(circle_polygon(*c)))  # type: ignore[misc]
        loop_circ.append(ms)
        assert hit == {h.code for h in index.match(MatchTarget(circles=(c,))).villages}, "circle results differ"
    loop_pts = []
    for p in points[: args.loop_points]:
        ms, hit = timed(lambda p=p: loop(Point(p[1], p[0])))  # type: ignore[misc]
        loop_pts.append(ms)
        assert hit == {h.code for h in index.match(MatchTarget(points=((p[0], p[1], 0.0),))).villages}

    def row(name: str, fast: list[float], slow: list[float], extra: str) -> None:
        f, s = statistics.median(fast), statistics.median(slow)
        print(f"{name:<28} indexed median {f:8.3f} ms   plain loop median {s:9.1f} ms   ratio {s / f:8.0f}x   {extra}")

    est = sum(h.estimated for h in res.villages)
    print(f"polygon: {int(shapely.get_num_coordinates(poly))} vertices, hits {len(res.villages)} villages "
          f"({est} partial, shares sampled), {len(res.townships)} townships")
    row("5,000-vertex polygon", fast_poly, loop_poly,
        f"(21 runs; loop 3 runs; CPU median {statistics.median(cpu_poly):.3f} ms, min {min(cpu_poly):.3f} ms)")
    row("100 circles (1-10 km)", fast_circ, loop_circ, f"(loop on {len(loop_circ)})")
    row("1,000 points", fast_pts, loop_pts, f"(loop on {len(loop_pts)})")
    ok = statistics.median(fast_poly) <= 5.0 and statistics.median(loop_poly) / statistics.median(fast_poly) >= 10
    print("target (polygon ≤ 5 ms median, ≥ 10× the loop):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
