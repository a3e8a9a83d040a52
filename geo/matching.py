"""Spatial targeting: from a warning's area to the villages, townships, district and hazard sites it touches.

Pure (shapely and numpy only). A ``RegionIndex`` is built once per region version and shared by every
request and thread: it holds an STRtree over the finest area polygons and one over the sites, plus the
tree arrays needed to roll shares up, and is never mutated after construction. Each call prepares its
own target geometry (a copy, so concurrent calls never share GEOS preparation state).

Large targets (a detailed warning polygon) are not overlaid with every candidate village: the target's
rings are cut into short chunks and only the villages those chunks touch are partial; every other
candidate is wholly inside or outside, decided by one point-in-polygon test on a point of the village.
Partial villages get an exact overlaid share while that stays cheap (``EXACT_SHARE_BUDGET``) and
otherwise a share estimated from a fixed lattice of sample points (flagged ``estimated``, error a few
per cent), so a 5,000-vertex polygon over thousands of villages answers in milliseconds.

Matching never raises for a target outside the region: it returns an explicit empty result.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from functools import partial
from operator import attrgetter
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo.codes import LEVELS, normalize_code, significant_prefix
from geo.targets import (
    KM_PER_DEG_LAT,
    POINT_SITE_KM,
    AreaHit,
    AreaRecord,
    MatchResult,
    MatchTarget,
    SiteHit,
    SiteRecord,
    checked_point,
    circle_polygon,
    km_to,
    polygonal,
)

EXACT_SHARE_BUDGET = 60_000  # partial villages × target vertices overlaid exactly; beyond it, sampled
SMALL_TARGET_VERTICES = 512  # below this the target is overlaid directly (circles, simple polygons)
CHUNK_VERTICES = 12
MIN_SHARE = 1e-9
COVER_RATIO = 0.99  # children whose polygons cover this much of their parent replace it in matching
class RegionIndex:
    """The region's areas and sites, indexed once; ``match`` is read-only and safe from many threads."""

    def __init__(self, areas: Iterable[AreaRecord], sites: Iterable[SiteRecord] = (), version: int = 0) -> None:
        self.version = version
        self._areas: dict[str, AreaRecord] = {}
        for a in areas:
            if a.code in self._areas:
                raise ValueError(f"duplicate area code {a.code}")
            if a.level not in LEVELS:
                raise ValueError(f"area {a.code}: unknown level {a.level!r}")
            self._areas[a.code] = a
        self._children: dict[str, list[str]] = {}
        for a in self._areas.values():
            if a.parent_code and a.parent_code in self._areas:
                self._children.setdefault(a.parent_code, []).append(a.code)
        for kids in self._children.values():
            kids.sort()
        self._sorted_codes = sorted(self._areas)
        self._sites = list(sites)
        self._build_tree_arrays()
        self._build_spatial()

    # ---- construction -------------------------------------------------------------------------

    def _has_geom(self, a: AreaRecord) -> bool:
        return a.geometry is not None and not a.geometry.is_empty

    def _build_tree_arrays(self) -> None:
        managed = [a for a in self._areas.values() if not a.context]
        self._finest = sorted(a.code for a in managed if not self._children.get(a.code))
        self._finest_pos = {c: i for i, c in enumerate(self._finest)}
        recs = [self._areas[c] for c in self._finest]
        self._f_code = np.array(self._finest, dtype=object)
        self._f_name = np.array([a.name for a in recs], dtype=object)
        self._f_level = np.array([a.level for a in recs], dtype=object)
        self._f_level_no = np.array([LEVELS.index(a.level) for a in recs], dtype=np.int64)
        self._f_approx = np.array([bool(a.approximate) for a in recs], dtype=bool)
        # One immutable whole-area hit per finest area, shared by every call that covers the area exactly.
        self._full_hit_arr = np.fromiter(
            map(_new_area_hit, ((a.code, a.name, a.level, 1.0, a.approximate, False) for a in recs)),
            dtype=object, count=len(recs))
        # Ancestors of each finest area (managed only), as positions into self._upper.
        self._upper = sorted(a.code for a in managed if self._children.get(a.code))
        upper_pos = {c: i for i, c in enumerate(self._upper)}
        anc_rows: list[list[int]] = []
        for code in self._finest:
            row: list[int] = []
            seen: set[str] = {code}
            parent = self._areas[code].parent_code
            while parent and parent in upper_pos and parent not in seen:
                row.append(upper_pos[parent])
                seen.add(parent)
                parent = self._areas[parent].parent_code
            anc_rows.append(row)
        depth = max((len(r) for r in anc_rows), default=0)
        self._anc = np.full((len(self._finest), max(depth, 1)), -1, dtype=np.int64)
        for i, row in enumerate(anc_rows):
            self._anc[i, : len(row)] = row
        # Weights: an area's own surface, or the mean surface where it has none (e.g. areas known only by code).
        areas = np.array(
            [self._areas[c].geometry.area if self._has_geom(self._areas[c]) else np.nan for c in self._finest],
            dtype=float,
        )
        known = areas[~np.isnan(areas)]
        fallback = float(known.mean()) if known.size else 1.0
        self._weight = np.where(np.isnan(areas) | (areas <= 0), fallback, areas)
        flat = self._anc.ravel()
        mask = flat >= 0
        self._upper_den = np.bincount(
            flat[mask], weights=np.repeat(self._weight, self._anc.shape[1])[mask], minlength=len(self._upper)
        )

    def _build_spatial(self) -> None:
        # Geometric leaves: walking down from the roots, an area with geometry is split into its children
        # with geometry when those cover it (children without geometry are then reached by code only);
        # otherwise it is matched as a whole and its hits spread to the finest areas under it (e.g.
        # villages known only by code, surveyed grids covering part of a village).
        leaves: list[AreaRecord] = []
        stack = [a for a in self._areas.values() if not a.context
                 and (not a.parent_code or a.parent_code not in self._areas)]
        while stack:
            a = stack.pop()
            kids = self.children(a.code)
            if self._has_geom(a):
                shaped = self._shaped_frontier(a.code)
                covered = sum(k.geometry.area for k in shaped)  # type: ignore[union-attr]
                if shaped and covered >= COVER_RATIO * a.geometry.area:  # type: ignore[union-attr]
                    stack.extend(shaped)
                else:
                    leaves.append(a)
            else:
                stack.extend(kids)
        leaves.sort(key=lambda a: a.code)
        self._leaf_codes = [a.code for a in leaves]
        geoms = [polygonal(a.geometry) or a.geometry for a in leaves]
        self._leaf_geoms = np.array(geoms, dtype=object) if geoms else np.empty(0, dtype=object)
        self._leaf_area = shapely.area(self._leaf_geoms) if geoms else np.empty(0)
        self._leaf_multi = np.array([g.geom_type == "MultiPolygon" for g in geoms], dtype=bool)
        reps = shapely.point_on_surface(self._leaf_geoms) if geoms else np.empty(0, dtype=object)
        self._rep_x = shapely.get_x(reps) if geoms else np.empty(0)
        self._rep_y = shapely.get_y(reps) if geoms else np.empty(0)
        self._tree = shapely.STRtree(self._leaf_geoms)
        self._build_samples()
        # Each leaf stands for the finest areas under it (itself, or descendants known only by code).
        self._leaf_finest: list[np.ndarray] = []
        for code in self._leaf_codes:
            if code in self._finest_pos:
                self._leaf_finest.append(np.array([self._finest_pos[code]], dtype=np.int64))
            else:
                self._leaf_finest.append(
                    np.array([self._finest_pos[c] for c in self.descendants(code) if c in self._finest_pos],
                             dtype=np.int64))
        self._leaf_simple = np.array([len(f) == 1 for f in self._leaf_finest], dtype=bool)
        self._leaf_to_finest = np.array([f[0] if len(f) == 1 else -1 for f in self._leaf_finest], dtype=np.int64)
        ctx = [a for a in self._areas.values() if a.context and self._has_geom(a)]
        ctx.sort(key=lambda a: a.code)
        self._ctx_codes = [a.code for a in ctx]
        self._ctx_geoms = np.array([a.geometry for a in ctx], dtype=object)
        self._ctx_tree = shapely.STRtree(self._ctx_geoms)
        self._site_geoms = np.array([s.geometry for s in self._sites], dtype=object)
        self._site_tree = shapely.STRtree(self._site_geoms)
        self._sites_by_area: dict[str, list[int]] = {}
        for i, s in enumerate(self._sites):
            if s.area_code:
                self._sites_by_area.setdefault(s.area_code, []).append(i)

    def _build_samples(self) -> None:
        """A fixed lattice of sample points inside every leaf, for estimated shares, stored flat (CSR: the samples
        of leaf i are ``_smp_x[_smp_off[i]:_smp_off[i + 1]]``) so a call gathers them without a Python loop.

        Per leaf: the centres of an n × n grid over its bounding box that fall inside it, the first of n = 5, 10,
        20 that gives at least 8 (else the n = 20 ones), else the leaf's representative point. All leaves are
        tested together, one point-in-polygon call per lattice size."""
        nleaf = len(self._leaf_geoms)
        counts = np.zeros(nleaf, dtype=np.int64)
        kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (leaf of each sample, x, y)
        todo = np.arange(nleaf)
        bounds = shapely.bounds(self._leaf_geoms) if nleaf else np.empty((0, 4))
        # Private prepared copies (the records' geometries may be in use elsewhere): point-in-polygon on a
        # prepared polygon is several times faster, and this is one lattice point per call.
        geoms = shapely.transform(self._leaf_geoms, lambda c: c) if nleaf else self._leaf_geoms
        shapely.prepare(geoms)
        for n in (4, 8, 16, 32):
            if not len(todo):
                break
            x0, y0, x1, y1 = (bounds[todo, k][:, None] for k in range(4))
            steps = (np.arange(n) + 0.5)[None, :]
            gx = x0 + steps * (x1 - x0) / n  # (leaves, n): the lattice columns, then rows
            gy = y0 + steps * (y1 - y0) / n
            xs = np.tile(gx, (1, n)).ravel()  # row-major over (row, column), as a meshgrid ravels
            ys = np.repeat(gy, n, axis=1).ravel()
            owner = np.repeat(todo, n * n)
            inside = shapely.contains_xy(geoms[owner], xs, ys)
            got = np.bincount(owner[inside], minlength=nleaf)[todo]
            final = (got >= 6) | (n == 32)
            done = todo[final & (got > 0)]
            sel = inside & np.isin(owner, done)
            kept.append((owner[sel], xs[sel], ys[sel]))
            counts[done] = got[final & (got > 0)]
            todo = todo[~final]
        empty = np.flatnonzero(counts == 0)  # nothing of any lattice inside (a sliver): the representative point
        kept.append((empty, self._rep_x[empty], self._rep_y[empty]))
        counts[empty] = 1
        owner = np.concatenate([k[0] for k in kept])
        order = np.argsort(owner, kind="stable")
        self._smp_x = np.concatenate([k[1] for k in kept])[order]
        self._smp_y = np.concatenate([k[2] for k in kept])[order]
        self._smp_cnt = counts
        self._smp_off = np.concatenate([[0], np.cumsum(counts)])

    def _shaped_frontier(self, code: str) -> list[AreaRecord]:
        """The nearest descendants with geometry (looking through levels that have none)."""
        out: list[AreaRecord] = []
        stack = list(self._children.get(code, []))
        seen: set[str] = {code}
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            rec = self._areas[c]
            if self._has_geom(rec):
                out.append(rec)
            else:
                stack.extend(self._children.get(c, []))
        return out

    # ---- tree navigation ----------------------------------------------------------------------

    def area(self, code: str) -> AreaRecord | None:
        return self._areas.get(code)

    def areas(self) -> list[AreaRecord]:
        return [self._areas[c] for c in self._sorted_codes]

    def sites(self) -> list[SiteRecord]:
        return list(self._sites)

    def children(self, code: str) -> list[AreaRecord]:
        return [self._areas[c] for c in self._children.get(code, [])]

    def descendants(self, code: str) -> list[str]:
        out: list[str] = []
        stack = list(reversed(self._children.get(code, [])))
        seen: set[str] = {code}
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            out.append(c)
            stack.extend(reversed(self._children.get(c, [])))
        return out

    def villages_of(self, code: str) -> list[AreaRecord]:
        return [self._areas[c] for c in self.descendants(code) if self._areas[c].level == "village"]

    def roots(self) -> list[AreaRecord]:
        return [self._areas[c] for c in self._sorted_codes
                if not self._areas[c].parent_code or self._areas[c].parent_code not in self._areas]

    def neighbours(self, code: str) -> list[str]:
        """Finest-level areas whose polygons touch this one's (shared edge or corner)."""
        rec = self._areas.get(code)
        if rec is None or not self._has_geom(rec):
            return []
        idx = self._tree.query(rec.geometry, predicate="intersects")
        return sorted(self._leaf_codes[i] for i in idx if self._leaf_codes[i] != code)

    def locate(self, lon: float, lat: float) -> str | None:
        """The finest area containing a point, or None outside the region."""
        idx = self._tree.query(Point(lon, lat), predicate="intersects")
        return self._leaf_codes[int(min(idx))] if len(idx) else None

    # ---- matching -----------------------------------------------------------------------------

    def match(self, target: MatchTarget) -> MatchResult:
        areal, points = self._target_geometry(target)
        n = len(self._finest)
        share = np.full(n, -1.0)  # -1 = not reached; 0 = reached by a point; else the covered share
        estimated = np.zeros(n, dtype=bool)
        ctx_hits: dict[str, float] = {}
        site_idx: set[int] = set()

        if areal is not None:
            leaf_idx, shares, est = self._match_areal(areal)
            simple = self._leaf_simple[leaf_idx]
            fi = self._leaf_to_finest[leaf_idx[simple]]  # distinct: a finest area is at most one leaf
            share[fi] = np.maximum(share[fi], shares[simple])
            estimated[fi[est[simple]]] = True
            for li, sh, es in zip(leaf_idx[~simple].tolist(), shares[~simple].tolist(), est[~simple].tolist(),
                                  strict=True):
                spread = self._leaf_finest[li]
                share[spread] = np.maximum(share[spread], sh)
                if es:
                    estimated[spread] = True
            if len(self._ctx_codes):
                for ci in self._ctx_tree.query(areal, predicate="intersects").tolist():
                    geom = self._ctx_geoms[ci]
                    ctx_share = float(shapely.area(shapely.intersection(geom, areal)) / geom.area)
                    if ctx_share > MIN_SHARE:
                        ctx_hits[self._ctx_codes[ci]] = ctx_share
            if len(self._sites):
                site_idx.update(self._site_tree.query(areal, predicate="intersects").tolist())
        if points:
            parr = np.array(points, dtype=object)
            if len(self._leaf_codes):
                _, li = self._tree.query(parr, predicate="intersects")
                for leaf in li.tolist():
                    spread = self._leaf_finest[leaf]
                    share[spread] = np.maximum(share[spread], 0.0)
            if len(self._ctx_codes):
                _, ci = self._ctx_tree.query(parr, predicate="intersects")
                for c in ci.tolist():
                    ctx_hits.setdefault(self._ctx_codes[c], 0.0)
            if len(self._sites):
                deg = POINT_SITE_KM / KM_PER_DEG_LAT
                for pt in points:
                    near = self._site_tree.query(pt, predicate="dwithin", distance=deg / max(
                        math.cos(math.radians(pt.y)), 1e-6))
                    for si in near.tolist():
                        if km_to(pt, self._site_geoms[si]) <= POINT_SITE_KM:
                            site_idx.add(si)

        unknown: list[str] = []
        for raw in target.geocodes:
            managed, context = self._codes_for(raw)
            if not managed and not context:
                unknown.append(str(raw))
                continue
            for code in context:
                ctx_hits[code] = 1.0
            for code in managed:
                for c in (code, *self.descendants(code)):
                    pos = self._finest_pos.get(c)
                    if pos is not None:
                        share[pos] = 1.0
                        estimated[pos] = False
                    site_idx.update(self._sites_by_area.get(c, ()))
        return self._result(share, estimated, ctx_hits, site_idx, unknown)

    def _target_geometry(self, target: MatchTarget) -> tuple[BaseGeometry | None, list[Point]]:
        parts: list[BaseGeometry] = []
        for poly in target.polygons:
            fixed = polygonal(poly)
            if fixed is not None:
                parts.append(fixed)
        points: list[Point] = []
        for lat, lon, radius in target.circles:
            if float(radius) == 0:  # CAP's way of sending a point
                points.append(checked_point(lat, lon))
            else:
                parts.append(circle_polygon(float(lat), float(lon), float(radius)))
        for lat, lon, radius in target.points:
            if radius and float(radius) > 0:
                parts.append(circle_polygon(float(lat), float(lon), float(radius)))
            else:
                points.append(checked_point(lat, lon))
        if not parts:
            return None, points
        # A private copy: preparing the caller's object would share GEOS state between threads.
        areal = shapely.transform(parts[0], lambda c: c) if len(parts) == 1 else shapely.union_all(parts)
        shapely.prepare(areal)
        return areal, points

    def _match_areal(self, areal: BaseGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Leaf positions touched by the target, their covered shares, and which shares are estimates."""
        empty = (np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=bool))
        if not len(self._leaf_codes):
            return empty
        cand = self._tree.query(areal)
        if not len(cand):
            return empty
        nverts = int(shapely.get_num_coordinates(areal))
        if nverts <= SMALL_TARGET_VERTICES:
            hit = cand[shapely.intersects(areal, self._leaf_geoms[cand])]
            shares = self._exact_shares(areal, hit)
            keep = shares > MIN_SHARE
            return hit[keep], shares[keep], np.zeros(int(keep.sum()), dtype=bool)
        # Large target: cells near its rings (bounding boxes meeting a short chunk of a ring) may be partial;
        # every other candidate is wholly in or out. Chunks are short so their boxes hug the rings; only
        # bounding boxes are compared here (preparing hundreds of chunks would cost more than it saves).
        chunks, ring_xy, chunk_lo, chunk_hi = _ring_chunks(areal)
        near_chunk, near = self._tree.query(chunks)
        partial = np.unique(near)
        is_partial = np.zeros(len(self._leaf_codes), dtype=bool)
        is_partial[partial] = True
        rest = cand[~is_partial[cand]]
        multi = rest[self._leaf_multi[rest]]  # a multi-part leaf can straddle without touching a ring
        rest = rest[~self._leaf_multi[rest]]
        if len(multi):
            partial = np.union1d(partial, multi)
        inside = rest[shapely.contains_xy(areal, self._rep_x[rest], self._rep_y[rest])]
        if len(partial) * nverts <= EXACT_SHARE_BUDGET:
            pshare = self._exact_shares(areal, partial)
            pest = np.zeros(len(partial), dtype=bool)
        else:
            pshare = self._sampled_shares(areal, partial, _RingNear(ring_xy, chunk_lo, chunk_hi, near_chunk, near))
            pest = np.ones(len(partial), dtype=bool)
        keep = pshare > MIN_SHARE
        idx = np.concatenate([inside, partial[keep]])
        shares = np.concatenate([np.ones(len(inside)), pshare[keep]])
        est = np.concatenate([np.zeros(len(inside), dtype=bool), pest[keep]])
        return idx, shares, est

    def _exact_shares(self, areal: BaseGeometry, idx: np.ndarray) -> np.ndarray:
        if not len(idx):
            return np.empty(0)
        geoms = self._leaf_geoms[idx]
        full = shapely.contains_properly(areal, geoms)
        shares = np.ones(len(idx))
        part = ~full
        if part.any():
            inter = shapely.area(shapely.intersection(geoms[part], areal))
            shares[part] = np.clip(inter / self._leaf_area[idx[part]], 0.0, 1.0)
        return shares

    def _sampled_shares(self, areal: BaseGeometry, idx: np.ndarray, ring: _RingNear) -> np.ndarray:
        if not len(idx):
            return np.empty(0)
        counts = self._smp_cnt[idx]
        owner = np.repeat(np.arange(len(idx)), counts)
        ends = np.cumsum(counts)
        pos = np.arange(int(ends[-1])) + np.repeat(self._smp_off[idx] - (ends - counts), counts)
        inside = shapely.contains_xy(areal, self._smp_x[pos], self._smp_y[pos])
        covered = np.bincount(owner[inside], minlength=len(idx))
        shares = covered / counts
        # A leaf near the rings that no sample falls in may still overlap the target: if it does (and not
        # merely along the rim) it gets half a sample's worth; an overlay with a large target costs more
        # than all the rest. A leaf whose samples all fall inside is reported whole (within sample error).
        low = np.flatnonzero(shares <= MIN_SHARE)
        if len(low):
            shares[low] = np.where(self._interiors_meet(areal, idx[low], ring), 0.5 / (counts[low] + 1), 0.0)
        return shares

    def _interiors_meet(self, areal: BaseGeometry, leaves: np.ndarray, ring: _RingNear) -> np.ndarray:
        """Whether each leaf (sorted positions) overlaps the target, not merely along the rim.

        Same answer as ``intersects and not touches``, but a vertex usually settles it with the point locator
        already built: a leaf vertex strictly inside the target, or a target vertex strictly inside the leaf,
        proves the interiors meet. Only leaves left undecided pay for GEOS's relate machinery."""
        geoms = self._leaf_geoms[leaves]
        out = np.zeros(len(leaves), dtype=bool)
        vxy, owner = shapely.get_coordinates(geoms, return_index=True)
        out[owner[shapely.contains_xy(areal, vxy[:, 0], vxy[:, 1])]] = True
        todo = np.flatnonzero(~out)
        if len(todo):
            todo = todo[shapely.intersects(areal, geoms[todo])]
        if len(todo):
            # Target vertices in the chunks near each undecided leaf (the chunks' boxes hold every target
            # vertex within the leaf's box).
            pick = np.isin(ring.leaf, leaves[todo])
            chunk, leaf = ring.chunk[pick], ring.leaf[pick]
            nv = ring.hi[chunk] - ring.lo[chunk] + 1
            ends = np.cumsum(nv)
            pos = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(ring.lo[chunk] - (ends - nv), nv)
            k = np.searchsorted(leaves, np.repeat(leaf, nv))
            inside = shapely.contains_xy(geoms[k], ring.xy[pos, 0], ring.xy[pos, 1])
            out[k[inside]] = True
            todo = todo[~out[todo]]
        if len(todo):
            out[todo] = ~shapely.touches(areal, geoms[todo])
        return out

    def _codes_for(self, raw: str) -> tuple[list[str], list[str]]:
        """Managed and context area codes a geocode names: the area itself and all areas under its prefix."""
        code = normalize_code(raw)
        if code is None:
            direct = str(raw).strip()
            if direct in self._areas:  # a non-statistical code (e.g. a grid) given verbatim
                a = self._areas[direct]
                return ([], [direct]) if a.context else ([direct], [])
            return [], []
        prefix = significant_prefix(code)
        codes: set[str] = set()
        if code in self._areas:
            codes.add(code)
        lo = bisect.bisect_left(self._sorted_codes, prefix)
        for c in self._sorted_codes[lo:]:
            if not c.startswith(prefix):
                break
            codes.add(c)
        managed = sorted(c for c in codes if not self._areas[c].context)
        context = sorted(c for c in codes if self._areas[c].context)
        return managed, context

    def _result(self, share: np.ndarray, estimated: np.ndarray, ctx_hits: dict[str, float],
                site_idx: set[int], unknown: list[str]) -> MatchResult:
        by_level: dict[str, list[AreaHit]] = {lv: [] for lv in LEVELS}
        fi = np.flatnonzero(share >= 0.0)
        merge: set[str] = set()  # levels holding both finest and upper areas: their hits need sorting
        if len(fi):
            sh = share[fi]
            anc = self._anc[fi]
            mask = anc >= 0
            wts = np.broadcast_to((sh * self._weight[fi])[:, None], anc.shape)
            num = np.bincount(anc[mask], weights=wts[mask], minlength=len(self._upper))
            touched = np.unique(anc[mask])
            est_f = estimated[fi]
            est_upper = np.zeros(len(self._upper), dtype=bool)
            if est_f.any():
                est_anc = anc[est_f]
                est_upper[est_anc[est_anc >= 0]] = True
            # Hits come out in code order: finest positions are sorted by code. Whole, exact hits are the
            # area's shared immutable instance; only the others are created, in one vectorised pass.
            rounded = np.round(sh, 4)
            own = np.flatnonzero((rounded != 1.0) | est_f)
            found = self._full_hit_arr[fi]
            if len(own):
                oi = fi[own]
                fresh = map(_new_area_hit, zip(self._f_code[oi].tolist(), self._f_name[oi].tolist(),
                                               self._f_level[oi].tolist(), rounded[own].tolist(),
                                               self._f_approx[oi].tolist(), est_f[own].tolist(), strict=True))
                found[own] = np.fromiter(fresh, dtype=object, count=len(own))  # fromiter: tuples stay whole
            hits: list[AreaHit] = found.tolist()
            lv = self._f_level_no[fi]
            if lv.min() == lv.max():
                by_level[LEVELS[int(lv[0])]] = hits
            else:
                for no in np.unique(lv).tolist():
                    by_level[LEVELS[no]] = [hits[k] for k in np.flatnonzero(lv == no).tolist()]
            for u in touched.tolist():
                rec = self._areas[self._upper[u]]
                up = float(num[u] / self._upper_den[u]) if self._upper_den[u] > 0 else 0.0
                level_hits = by_level[rec.level]
                if level_hits and level_hits[-1].code > rec.code:
                    merge.add(rec.level)
                level_hits.append(AreaHit(rec.code, rec.name, rec.level, round(min(up, 1.0), 4), rec.approximate,
                                          bool(est_upper[u])))
        for level in merge:
            by_level[level].sort(key=_code_of)
        context = [
            AreaHit(c, self._areas[c].name, self._areas[c].level, round(min(s, 1.0), 4), self._areas[c].approximate)
            for c, s in sorted(ctx_hits.items())
        ]
        sites = sorted(
            (SiteHit(s.id, s.name, s.kind, s.area_code) for s in (self._sites[i] for i in site_idx)),
            key=lambda h: str(h.id),
        )
        return MatchResult(
            villages=by_level["village"], townships=by_level["township"], district=by_level["district"],
            sites=sites, unknown_geocodes=unknown, grids=by_level["grid"], context=context,
            region_version=self.version,
        )


_code_of = attrgetter("code")
_new_area_hit = partial(tuple.__new__, AreaHit)  # AreaHit from a tuple of its fields, without per-field calls


class _RingNear(NamedTuple):
    """The target's ring vertices, its chunks as vertex ranges, and the (chunk, leaf) pairs whose boxes meet."""

    xy: np.ndarray
    lo: np.ndarray  # first vertex of each chunk
    hi: np.ndarray  # last vertex of each chunk (inclusive)
    chunk: np.ndarray
    leaf: np.ndarray


def _ring_chunks(geom: BaseGeometry, size: int = CHUNK_VERTICES) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """Short runs of the target's rings (exterior and holes), consecutive runs sharing a vertex, so every ring
    segment lies in some run: for each, a geometry with the run's bounding box (its diagonal: tree queries
    compare boxes only, and a two-point line is cheaper to create than a box), then the ring vertices and
    each run's first and last vertex."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    if not len(rings):
        none = np.empty(0, dtype=np.int64)
        return np.empty(0, dtype=object), np.empty((0, 2)), none, none
    xy = shapely.get_coordinates(rings)
    lens = shapely.get_num_coordinates(rings)
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]])
    starts = np.concatenate([off + np.arange(0, max(n - 1, 1), size) for off, n in zip(offsets, lens, strict=True)])
    last = np.repeat(offsets + lens - 1, [len(np.arange(0, max(n - 1, 1), size)) for n in lens])
    ends = np.minimum(starts + size, last)
    lo = np.minimum(np.minimum.reduceat(xy, starts, axis=0), xy[ends])
    hi = np.maximum(np.maximum.reduceat(xy, starts, axis=0), xy[ends])
    return shapely.linestrings(np.stack([lo, hi], axis=1)), xy, starts, ends
