"""Console pages: the map (地图) — where the warnings reach, which villages have answered, where the sites and
the measures are.

The page is Leaflet, served by Jiaoying from the installed ``xstatic-leaflet`` package: no CDN, and no tiles
unless an intranet tile server is configured (``settings.map``), so the base map is the region's own
boundaries. The layers are GeoJSON built here from the domains' services; geometries are stored in WGS84 and,
when the tiles are drawn in GCJ-02, shifted here, so the browser does no coordinate arithmetic.

The browser draws once and then only restyles: the boundaries are fetched once per page, the warnings, the
call-and-answer state, the sites and the measures again on each ``jiaoying:change`` event (``static/map.js``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import shapely
import xstatic.pkg.leaflet
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from shapely.geometry import Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from config.errors import not_found
from config.settings import Settings
from config.web import DB, STAFF, ClockDep, SettingsDep
from console.board import LEVEL_RANK, level_key, local
from console.i18n import Lang, text
from console.rendering import PageUser, lang_of, problem, render, secure, user_can
from console.security import check_csrf
from geo.codes import normalize_code
from geo.crs import geometry_wgs84_to_gcj02, wgs84_to_gcj02
from geo.matching import RegionIndex
from geo.region import region_index
from geo.service import current_version, hazard_sites
from geo.sites import SITE_KINDS
from responses.callouts import board as callout_board
from responses.contacts import service as contact_service
from responses.contacts.core import DutyRole
from responses.measures import service as measure_service
from responses.runs import service as run_service
from warning import service as warning_service
from warning.area import blocks_from_dict

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])

LEAFLET_DIR = Path(xstatic.pkg.leaflet.BASE_DIR).resolve()
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png",
               ".map": "application/json"}

# A village's state in a run, from the people called about it: one who answered is enough; else someone is
# still being called; else it went up the chain; else nobody answered and nobody is left above.
VILLAGE_STATES = ("answered", "waiting", "escalated", "unanswered")
CALLOUT_TO_VILLAGE = {"answered": "answered", "calling": "waiting", "escalated": "escalated",
                      "unanswered": "unanswered"}
CALLOUT_STATES = ("calling", "answered", "escalated", "unanswered", "cancelled")
MEASURE_STATES = ("ordered", "acknowledged", "in_progress", "carried_out", "rejected", "lifting", "lifted",
                  "cancelled", "waived")
CLOSED_MEASURES = frozenset({"lifted", "cancelled", "waived"})
RISKS = ("high", "medium", "low")
MEASURE_SPOTS = 3  # a measure over more areas than this is marked once per township
CONTEXT_TOLERANCE = 0.0008  # degrees (≈80 m): neighbouring counties are scenery, not targets


# ------------------------------------------------------------------------------------------------ display


class Display:
    """Coordinates as the map shows them: WGS84, or shifted to GCJ-02 to lie on GCJ-02 tiles."""

    def __init__(self, settings: Settings) -> None:
        self.gcj02 = settings.map.tile_crs == "gcj02"

    def geometry(self, geom: BaseGeometry, *, tolerance: float = 0.0) -> dict[str, Any]:
        if tolerance:
            geom = geom.simplify(tolerance, preserve_topology=True)
        if self.gcj02:
            geom = geometry_wgs84_to_gcj02(geom)
        return dict(mapping(shapely.set_precision(geom, 1e-6)))

    def latlng(self, lon: float, lat: float) -> list[float]:
        """``[lat, lon]``, Leaflet's order."""
        if self.gcj02:
            lon, lat = wgs84_to_gcj02(lon, lat)
        return [round(lat, 6), round(lon, 6)]


def _json(data: Any, status: int = 200) -> Response:
    return secure(JSONResponse(data, status_code=status))


def _point_of(geom: BaseGeometry) -> tuple[float, float]:
    p = geom if geom.geom_type == "Point" else geom.representative_point()
    return float(p.x), float(p.y)


# ------------------------------------------------------------------------------------------------ the region

_areas_cache: OrderedDict[tuple[str, bool], dict[str, Any]] = OrderedDict()
_areas_lock = threading.Lock()


def areas_layer(session: Session, display: Display) -> dict[str, Any]:
    """District, township and village boundaries (and the neighbouring counties, as scenery).

    Built once per region version and datum: the boundaries change only with an import, and every open map
    asks for them when it loads.
    """
    _, token = current_version(session)
    key = (token, display.gcj02)
    with _areas_lock:
        got = _areas_cache.get(key)
        if got is not None:
            return got
    index = region_index(session)
    features: list[dict[str, Any]] = []
    bounds: list[float] | None = None
    for a in index.areas():
        if a.geometry is None or a.geometry.is_empty or a.level not in ("district", "township", "village"):
            continue
        level = "context" if a.context else a.level
        parent = index.area(a.parent_code) if a.parent_code else None
        point = a.representative_point()
        features.append({
            "type": "Feature", "id": a.code,
            "geometry": display.geometry(a.geometry, tolerance=CONTEXT_TOLERANCE if a.context else 0.0),
            "properties": {"code": a.code, "name": a.name, "level": level, "approximate": a.approximate,
                           "town": parent.name if parent and a.level == "village" else None,
                           "label": display.latlng(*point) if point else None},
        })
        if a.level == "district" and not a.context:
            x0, y0, x1, y1 = a.geometry.bounds
            sw, ne = display.latlng(x0, y0), display.latlng(x1, y1)
            bounds = [sw[0], sw[1], ne[0], ne[1]] if bounds is None else [
                min(bounds[0], sw[0]), min(bounds[1], sw[1]), max(bounds[2], ne[0]), max(bounds[3], ne[1])]
    order = {"context": 0, "district": 1, "township": 2, "village": 3}
    features.sort(key=lambda f: order[f["properties"]["level"]])
    data = {"type": "FeatureCollection", "features": features, "bounds": bounds}
    with _areas_lock:
        _areas_cache[key] = data
        while len(_areas_cache) > 4:
            _areas_cache.popitem(last=False)
    return data


def villages_by_township(index: RegionIndex) -> list[dict[str, Any]]:
    """The village picker's groups: each township of the district with its villages, in code order."""
    groups = []
    for town in index.areas():
        if town.level != "township" or town.context:
            continue
        villages = [{"code": v.code, "name": v.name} for v in index.children(town.code) if v.level == "village"]
        if villages:
            groups.append({"code": town.code, "name": town.name, "villages": villages})
    return groups


# ------------------------------------------------------------------------------------------------ warnings


def _warning_props(w: Any, tz: ZoneInfo, lang: Lang) -> dict[str, Any]:
    level = level_key(w.level)
    hazard = w.hazard if w.hazard in ("weather", "flood", "earthquake", "geohazard", "forest_fire") else "none"
    return {"warning_id": w.id, "level": level, "level_text": text(f"level.{level}", lang),
            "headline": w.headline or w.event or "", "hazard_text": text(f"hazard.{hazard}", lang),
            "drill": bool(w.drill), "drill_text": text("map.drill", lang) if w.drill else "",
            "received": local(w.received_at, tz), "expires": local(w.expires, tz),
            "url": f"/console/warnings/{w.id}"}


def _warning_features(w: Any, props: dict[str, Any], index: RegionIndex, display: Display) -> list[dict[str, Any]]:
    """A warning's area as the source gave it: polygons, circles (kept as circles), points; a block that
    only names codes is drawn as the areas it names; a warning with no shape at all, as its villages."""
    out: list[dict[str, Any]] = []

    def add(geometry: dict[str, Any], shape_kind: str, **extra: Any) -> None:
        out.append({"type": "Feature", "geometry": geometry,
                    "properties": {**props, "shape": shape_kind, **extra}})

    def add_area(code: str) -> None:
        rec = index.area(code)
        if rec is not None and rec.geometry is not None and not rec.geometry.is_empty:
            add(display.geometry(rec.geometry), "area", area_name=rec.name)

    for block in blocks_from_dict(w.area_spec):
        for ring in block.polygons:
            if len(ring) >= 3:
                add(display.geometry(Polygon(ring)), "polygon")
        for lat, lon, radius in [*block.circles, *block.points]:
            centre = display.latlng(lon, lat)
            geometry = {"type": "Point", "coordinates": [centre[1], centre[0]]}
            if radius > 0:
                add(geometry, "circle", radius_m=round(radius * 1000.0, 1))
            else:
                add(geometry, "point")
        if not (block.polygons or block.circles or block.points):
            for _, value in block.geocodes:
                code = normalize_code(value)
                if code:
                    add_area(code)
    if not out:
        for code in (w.affected or {}).get("villages", []):
            add_area(str(code))
    return out


def warnings_layer(session: Session, display: Display, tz: ZoneInfo, lang: Lang) -> dict[str, Any]:
    """The active warnings' areas, red drawn last (on top), with a list for the side panel."""
    index = region_index(session)
    features: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for w in warning_service.active_warnings(session):
        props = _warning_props(w, tz, lang)
        drawn = _warning_features(w, props, index, display)
        features.extend(drawn)
        items.append({**props, "drawn": len(drawn)})
    items.sort(key=lambda i: LEVEL_RANK.get(i["level"], 9))
    features.sort(key=lambda f: -LEVEL_RANK.get(f["properties"]["level"], 9))
    return {"type": "FeatureCollection", "features": features, "warnings": items}


# ------------------------------------------------------------------------------------------------ runs


def pick_run(session: Session, wanted: str | None) -> tuple[Any | None, bool]:
    """The run the map colours villages by, and whether the choice was valid.

    ``None``/``auto``: the most recent open run, if any (so a map left open picks up the run a new red
    warning starts); ``none``: no run; a number: that run, open or closed.
    """
    if wanted in (None, "", "auto"):
        runs = run_service.open_runs(session, limit=1)
        return (runs[0] if runs else None), True
    if wanted == "none":
        return None, True
    if not wanted.isdigit() or len(wanted) > 12:
        return None, False
    run = run_service.get_run(session, int(wanted))
    return run, run is not None


def run_summary(run: Any, tz: ZoneInfo, lang: Lang) -> dict[str, Any]:
    level = level_key(run.level)
    return {"id": run.id, "number": run.number, "level": level, "level_text": text(f"level.{level}", lang),
            "hazard_text": text(f"hazard.{run.hazard}" if run.hazard in (
                "weather", "flood", "earthquake", "geohazard", "forest_fire") else "hazard.none", lang),
            "state": run.state, "state_text": text(f"map.run.{run.state}", lang), "drill": bool(run.drill),
            "started": local(run.started_at, tz), "url": f"/console/runs/{run.id}"}


def _village_codes(row: dict[str, Any]) -> list[str]:
    return [a["code"] for a in row.get("areas", []) if isinstance(a.get("code"), str)]


def village_states(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each village's state from the callouts about it (cancelled ones left out), and whether a call to it
    is past its deadline."""
    per: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["state"] in CALLOUT_TO_VILLAGE:
            for code in _village_codes(row):
                per[code].append(row)
    out: dict[str, dict[str, Any]] = {}
    for code, called in per.items():
        mapped = {CALLOUT_TO_VILLAGE[r["state"]] for r in called}
        state = next(s for s in VILLAGE_STATES if s in mapped)
        overdue = state == "waiting" and any(r["overdue"] for r in called if r["state"] == "calling")
        out[code] = {"state": state, "overdue": overdue, "people": len(called)}
    return out


def callouts_layer(session: Session, run: Any | None, *, now: dt.datetime, tz: ZoneInfo,
                   lang: Lang) -> dict[str, Any]:
    """The chosen run and each village's call-and-answer state in it, with counts for the legend."""
    if run is None:
        return {"run": None, "villages": {}, "counts": dict.fromkeys(VILLAGE_STATES, 0)}
    rows = callout_board.board(session, run.id, now=now, tz=tz)["callouts"]
    states = village_states(rows)
    counts = dict.fromkeys(VILLAGE_STATES, 0)
    villages = {}
    for code, s in states.items():
        counts[s["state"]] += 1
        words = text(f"map.state.{s['state']}", lang)
        if s["overdue"]:
            words += text("map.state.overdue_suffix", lang)
        villages[code] = {**s, "text": words}
    return {"run": run_summary(run, tz, lang), "villages": villages, "counts": counts}


# ------------------------------------------------------------------------------------------------ sites, measures


def _risk_text(risk: str | None, lang: Lang) -> str:
    if not risk:
        return text("map.risk.unknown", lang)
    return text(f"map.risk.{risk}", lang) if risk in RISKS else risk


def _kind_text(kind: str, lang: Lang) -> str:
    zh, en = SITE_KINDS.get(kind, (kind, kind))
    return zh if lang == "zh" else en


def sites_layer(session: Session, display: Display, lang: Lang) -> dict[str, Any]:
    """Hazard sites with their kind and risk: the outline where a site is an area, a marker at its point."""
    features = []
    for s in hazard_sites(session):
        try:
            geom = shape(s.geometry)
        except Exception:  # a stored geometry that cannot be read is left off the map, not fatal to it
            continue
        if geom.is_empty:
            continue
        lon, lat = _point_of(geom)
        risk = s.risk_level if s.risk_level in RISKS else "unknown"
        features.append({"type": "Feature", "id": s.id, "geometry": display.geometry(geom), "properties": {
            "id": s.id, "name": s.name, "kind": s.kind, "kind_text": _kind_text(s.kind, lang), "risk": risk,
            "risk_text": _risk_text(s.risk_level, lang), "residents": s.residents, "demo": bool(s.demo),
            "area_code": s.area_code, "point": display.latlng(lon, lat)}})
    return {"type": "FeatureCollection", "features": features}


def measure_row(view: dict[str, Any], lang: Lang, tz: ZoneInfo) -> dict[str, Any]:
    state = view["state"]
    return {"id": view["id"], "label": view["label"], "state": state,
            "state_text": text(f"map.measure.{state}", lang) if state in MEASURE_STATES else state,
            "open": state not in CLOSED_MEASURES, "overdue": bool(view["overdue"]),
            "unit": view["responsible_unit"], "person": view["person_name"] or "",
            "deadline": local(view["deadline"], tz), "places": [*view["area_names"], *view["site_names"]]}


Spot = tuple[str, tuple[float, float], str, str]  # key, (lon, lat), place name, what of it the measure covers


def _area_spots(codes: list[str], index: RegionIndex, lang: Lang) -> list[Spot]:
    """Where a measure over areas is marked: at each area when it names a few, else once per township (at
    the township's own point), so a district-wide order does not bury the villages' colours under flags."""
    recs = [r for r in (index.area(c) for c in codes) if r is not None and r.geometry is not None]
    if len(recs) <= MEASURE_SPOTS:
        return [(f"area:{r.code}", point, r.name, "") for r in recs
                if (point := r.representative_point()) is not None]
    by_town: dict[str, list[Any]] = defaultdict(list)
    for r in recs:
        by_town[r.parent_code if r.level == "village" and r.parent_code else r.code].append(r)
    out: list[Spot] = []
    for town_code, members in by_town.items():
        town = index.area(town_code)
        where = members[0] if town is None or town.geometry is None else town
        point = where.representative_point()
        if point is None:
            continue
        covers = "" if members == [town] else text("map.place.villages", lang).format(n=len(members))
        out.append((f"area:{where.code}", point, where.name, covers))
    return out


def measures_layer(session: Session, run: Any | None, display: Display, *, now: dt.datetime, tz: ZoneInfo,
                   lang: Lang) -> dict[str, Any]:
    """The run's measures by place: one marker per place (a site's point, else the area's label point),
    listing every measure ordered there."""
    if run is None:
        return {"places": []}
    index = region_index(session)
    site_points: dict[str, tuple[float, float]] = {}
    for s in hazard_sites(session):
        try:
            site_points[str(s.id)] = _point_of(shape(s.geometry))
        except Exception:  # as in sites_layer: an unreadable geometry has no place on the map
            continue
    places: dict[str, dict[str, Any]] = {}
    for order in measure_service.for_run(session, run.id):
        row = measure_row(measure_service.view(order, now), lang, tz)
        spots: list[Spot] = [(f"site:{sid}", site_points[str(sid)], str(name), "")
                             for sid, name in zip(order.site_ids or [], order.site_names or [], strict=False)
                             if str(sid) in site_points]
        if not spots:
            spots = _area_spots([str(c) for c in order.area_codes or []], index, lang)
        for key, (lon, lat), name, covers in spots:
            place = places.setdefault(key, {"point": display.latlng(lon, lat), "name": name, "measures": []})
            place["measures"].append({**row, "covers": covers})
    out = []
    for place in places.values():
        ms = place["measures"]
        place["open"] = any(m["open"] for m in ms)
        place["overdue"] = any(m["overdue"] and m["open"] for m in ms)
        out.append(place)
    return {"places": out}


# ------------------------------------------------------------------------------------------------ a village


def _when(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return ""
    try:
        return local(dt.datetime.fromisoformat(value), tz)
    except ValueError:
        return value


def village_detail(session: Session, code: str, run: Any | None, *, now: dt.datetime, tz: ZoneInfo, lang: Lang,
                   show_phones: bool) -> dict[str, Any] | None:
    """What the side panel shows for one village: who answers for it, their calls in the run, the measures
    and the sites there. ``None`` for a code that is not a village of the region."""
    index = region_index(session)
    rec = index.area(code)
    if rec is None or rec.level != "village" or rec.context:
        return None
    town = index.area(rec.parent_code) if rec.parent_code else None
    sites = [s for s in hazard_sites(session) if s.area_code == code]
    site_ids = [str(s.id) for s in sites]
    people: list[dict[str, Any]] = []
    above: list[dict[str, Any]] = []  # the township's chief: who is called when the village does not answer
    for contact, duty, reachable in contact_service.duties_at(
            session, area_codes=[code, *([town.code] if town else [])], site_ids=site_ids, now=now):
        role = duty.role if duty.role in {r.value for r in DutyRole} else ""
        person = {"name": contact.name, "role_text": text(f"map.role.{role}", lang) if role else duty.role,
                  "phone": contact.phone if show_phones else None,
                  "backup_phone": contact.backup_phone if show_phones else None,
                  "reachable": reachable, "demo": bool(contact.demo),
                  "site": next((s.name for s in sites if str(s.id) == duty.site_id), None)}
        (above if town is not None and duty.area_code == town.code else people).append(person)
    state = None
    calls: list[dict[str, Any]] = []
    measures: list[dict[str, Any]] = []
    if run is not None:
        rows = callout_board.board(session, run.id, now=now, tz=tz)["callouts"]
        mine = [r for r in rows if code in _village_codes(r)
                or (town is not None and town.code in _village_codes(r))
                or any(f"site:{sid}" in _village_codes(r) for sid in site_ids)]
        for r in mine:
            calls.append({"name": r["name"], "state": r["state"],
                          "state_text": text(f"map.callout.{r['state']}", lang) if r["state"] in CALLOUT_STATES
                          else r["state"], "overdue": r["overdue"], "late": bool(r["late"]),
                          "answered": _when(r["answered_at"], tz), "deadline": _when(r["deadline_at"], tz),
                          "about": "、".join(a["name"] for a in r["areas"] if a["name"])})
        own = village_states([r for r in rows if code in _village_codes(r)]).get(code)
        if own is not None:
            words = text(f"map.state.{own['state']}", lang)
            state = {**own, "text": words + (text("map.state.overdue_suffix", lang) if own["overdue"] else "")}
        for order in measure_service.for_run(session, run.id):
            codes = {str(c) for c in order.area_codes or []}
            if code in codes or (town is not None and town.code in codes) or set(site_ids) & {
                    str(s) for s in order.site_ids or []}:
                measures.append(measure_row(measure_service.view(order, now), lang, tz))
    return {
        "code": rec.code, "name": rec.name, "town": town.name if town else "", "approximate": rec.approximate,
        "population": rec.population, "people": people, "above": above, "show_phones": show_phones, "state": state,
        "calls": calls, "measures": measures,
        "sites": [{"name": s.name, "kind_text": _kind_text(s.kind, lang), "risk": s.risk_level or "unknown",
                   "risk_text": _risk_text(s.risk_level, lang), "residents": s.residents, "demo": bool(s.demo)}
                  for s in sites],
    }


# ------------------------------------------------------------------------------------------------ the page


def tile_origin(settings: Settings) -> str | None:
    """The intranet tile server's origin, for the page's Content-Security-Policy; None when tiles are off or
    come from Jiaoying's own origin (a path such as ``/tiles/{z}/{x}/{y}.png`` behind the same proxy)."""
    url = settings.map.tile_url
    if not url or url.startswith("/"):
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def allow_tiles(response: Response, settings: Settings) -> Response:
    """Let the page load images from the configured tile server, and nothing else from anywhere else.

    A page that embeds ``map/panel.html`` calls this on its response when a tile server is configured.
    """
    origin = tile_origin(settings)
    csp = response.headers.get("Content-Security-Policy")
    if origin and csp:
        response.headers["Content-Security-Policy"] = csp.replace("img-src 'self' data:",
                                                                  f"img-src 'self' data: {origin}")
    return response


@router.get("/map")
def map_page(request: Request, user: PageUser, session: DB, settings: SettingsDep, clock: ClockDep,
             run: Annotated[str | None, Query(max_length=20)] = None,
             village: Annotated[str | None, Query(max_length=24)] = None) -> Response:
    lang = lang_of(request)
    tz = settings.tz
    chosen, valid = pick_run(session, run)
    index = region_index(session)
    detail = None
    if village:
        detail = village_detail(session, village, chosen, now=clock.now(), tz=tz, lang=lang,
                                show_phones=user_can(user, STAFF))
    open_runs = [run_summary(r, tz, lang) for r in run_service.open_runs(session, limit=50)]
    states = callouts_layer(session, chosen, now=clock.now(), tz=tz, lang=lang)
    summary = states["run"]
    if summary is not None and all(r["id"] != summary["id"] for r in open_runs):
        open_runs.append(summary)
    warnings = warnings_layer(session, Display(settings), tz, lang)["warnings"]
    response = render(request, "map/page.html", {
        "user": user, "run": summary, "run_param": run or "auto", "run_valid": valid, "runs": open_runs,
        "groups": villages_by_township(index), "village": detail, "village_asked": village or "",
        "warnings": warnings, "counts": states["counts"],
        "approximate": any(a.approximate for a in index.areas() if a.level == "village" and not a.context),
    })
    return allow_tiles(response, settings)


@router.get("/map/layers/areas.json")
def map_areas(user: PageUser, session: DB, settings: SettingsDep) -> Response:
    return _json(areas_layer(session, Display(settings)))


@router.get("/map/layers/warnings.json")
def map_warnings(request: Request, user: PageUser, session: DB, settings: SettingsDep) -> Response:
    return _json(warnings_layer(session, Display(settings), settings.tz, lang_of(request)))


@router.get("/map/layers/sites.json")
def map_sites(request: Request, user: PageUser, session: DB, settings: SettingsDep) -> Response:
    return _json(sites_layer(session, Display(settings), lang_of(request)))


def _run_or_404(session: Session, run: str | None) -> Any:
    chosen, valid = pick_run(session, run)
    if not valid:
        raise not_found("响应", "Run", run)
    return chosen


@router.get("/map/layers/callouts.json")
def map_callouts(request: Request, user: PageUser, session: DB, settings: SettingsDep, clock: ClockDep,
                 run: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    chosen = _run_or_404(session, run)
    return _json(callouts_layer(session, chosen, now=clock.now(), tz=settings.tz, lang=lang_of(request)))


@router.get("/map/layers/measures.json")
def map_measures(request: Request, user: PageUser, session: DB, settings: SettingsDep, clock: ClockDep,
                 run: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    chosen = _run_or_404(session, run)
    return _json(measures_layer(session, chosen, Display(settings), now=clock.now(), tz=settings.tz,
                                lang=lang_of(request)))


@router.get("/map/villages/{code}")
def map_village(request: Request, code: str, user: PageUser, session: DB, settings: SettingsDep, clock: ClockDep,
                run: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    """The side panel's content for one village (an HTML fragment ``map.js`` puts into the panel)."""
    chosen, _ = pick_run(session, run)
    lang = lang_of(request)
    detail = village_detail(session, code, chosen, now=clock.now(), tz=settings.tz, lang=lang,
                            show_phones=user_can(user, STAFF))
    if detail is None:
        return problem(request, not_found("村（社区）", "Village", code), back="/console/map")
    summary = run_summary(chosen, settings.tz, lang) if chosen is not None else None
    return render(request, "map/village.html", {"user": user, "village": detail, "run": summary})


@router.get("/assets/leaflet/{path:path}")
def leaflet_asset(path: str) -> Response:
    """Leaflet's script, stylesheet and images from the installed package; nothing outside its folder."""
    parts = Path(path).parts
    if not path or "\\" in path or "\x00" in path or ".." in parts or Path(path).is_absolute():
        return PlainTextResponse("not found", status_code=404)
    target = (LEAFLET_DIR / path).resolve()
    if not target.is_relative_to(LEAFLET_DIR) or not target.is_file() or target.suffix not in ASSET_TYPES:
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(target, media_type=ASSET_TYPES[target.suffix],
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})
