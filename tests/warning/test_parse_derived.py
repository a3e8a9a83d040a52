"""Warnings derived by rule: earthquakes, FIRMS hotspot clusters, gauge exceedances, geohazard zones."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from warning.draft import Hazard, Level, ParseError
from warning.feeds import ParserContext, Site, get_parser
from warning.feeds.common import CHENGQU_CENTER, distance_km
from warning.feeds.firms import Hotspot, _clusters
from warning.feeds.quake import intensity_at, radius_for

CTX = ParserContext()
LAT, LON = CHENGQU_CENTER


def cenc_doc(lat: float, lon: float, m: float, cata: str = "CC20260720100000") -> bytes:
    return json.dumps({"shuju": [{"CATA_ID": cata, "O_TIME": "2026-07-20 10:00:00", "EPI_LAT": str(lat),
                                  "EPI_LON": str(lon), "EPI_DEPTH": 10, "M": str(m),
                                  "LOCATION_C": "山西晋城"}]}).encode()


def test_attenuation_relation() -> None:
    assert intensity_at(6.0, 0) == pytest.approx(7.99, abs=0.01)
    assert intensity_at(5.0, radius_for(5.0, 4.0)) == pytest.approx(4.0, abs=1e-6)
    assert radius_for(7.0, 6.0) > radius_for(6.0, 6.0) > 0


def test_earthquake_rule_near_far_small() -> None:
    r = get_parser("cenc")(cenc_doc(LAT + 0.1, LON, 5.5), CTX)
    (w,) = r.warnings
    assert w.hazard is Hazard.EARTHQUAKE and w.level in (Level.YELLOW, Level.ORANGE)
    assert w.sent.utcoffset() == dt.timedelta(hours=8)
    lat, lon, radius = w.area.circles[0]
    assert radius > distance_km(lat, lon, LAT, LON)  # the region is inside the warned circle
    assert w.identifier == get_parser("cenc")(cenc_doc(LAT + 0.1, LON, 5.5), CTX).warnings[0].identifier
    far = get_parser("cenc")(cenc_doc(LAT + 5, LON + 5, 5.5), CTX)
    assert not far.warnings and "too far" in far.skipped[0].reason
    small = get_parser("cenc")(cenc_doc(LAT, LON, 2.0), CTX)
    assert not small.warnings and "magnitude" in small.skipped[0].reason
    strict = get_parser("cenc")(cenc_doc(LAT + 0.1, LON, 5.5), ParserContext(config={"earthquake_min_magnitude": 6}))
    assert not strict.warnings


def test_usgs_and_quakeml_samples(data_dir: Path) -> None:
    r = get_parser("usgs")((data_dir / "samples/usgs/detail_pr2021097004.geojson").read_bytes(), CTX)
    assert not r.warnings and r.skipped[0].identifier == "eq-usgs-pr2021097004"
    q = get_parser("quakeml")((data_dir / "samples/quakeml/iris_fdsn_event_quakeml-1.2_2events.xml").read_bytes(),
                              ParserContext(region_center=(38.0, 142.0)))
    (w,) = [w for w in q.warnings if w.extra["magnitude"] == 9.1]
    assert w.level is Level.RED and w.onset.tzinfo is not None
    with pytest.raises(ParseError):
        get_parser("usgs")(b'{"type": "FeatureCollection", "features": [{"properties": {}}]}', CTX)


def firms_csv(rows: list[tuple[float, float, str, str, str]], viirs: bool = False) -> bytes:
    if viirs:
        head = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,"
                "bright_ti5,frp,daynight")
        lines = [f"{a},{b},330,0.4,0.4,{d},{t},N,VIIRS,{c},2.0NRT,290,5.0,D" for a, b, d, t, c in rows]
    else:
        head = ("latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,confidence,version,"
                "bright_t31,frp,daynight")
        lines = [f"{a},{b},320,1,1,{d},{t},T,{c},6.1NRT,290,12.0,D" for a, b, d, t, c in rows]
    return "\n".join([head, *lines]).encode()


def test_firms_filters_clusters_and_is_stable() -> None:
    rows = [(LAT + 0.001 * i, LON, "2026-07-20", f"03{i:02d}", "80") for i in range(4)]  # one cluster of 4
    rows += [(LAT + 0.15, LON + 0.1, "2026-07-20", "0300", "90")]  # a second, lone hotspot ~18 km away
    rows += [(LAT, LON + 0.05, "2026-07-20", "0300", "10")]  # low confidence
    rows += [(20.0, 100.0, "2026-07-20", "0300", "95")]  # far away
    r = get_parser("firms")(firms_csv(rows), CTX)
    assert sorted(len(w.extra["points"]) for w in r.warnings) == [1, 4]
    big = next(w for w in r.warnings if w.extra["hotspots"] == 4)
    assert big.level is Level.YELLOW and big.hazard is Hazard.FOREST_FIRE
    assert "1 below the confidence threshold and 1 not near" in r.skipped[0].reason
    again = get_parser("firms")(firms_csv(list(reversed(rows))), CTX)
    assert {w.identifier for w in again.warnings} == {w.identifier for w in r.warnings}
    forest = ParserContext(sites=[("F1", "白马寺林区", "forest_block", LON, LAT, {"radius_km": 1})])
    assert next(w for w in get_parser("firms")(firms_csv(rows), forest).warnings
                if w.extra["hotspots"] == 4).level is Level.ORANGE
    viirs = get_parser("firms")(firms_csv([(LAT, LON, "2026-07-20", "0300", "h"),
                                           (LAT, LON, "2026-07-20", "0300", "l")], viirs=True), CTX)
    assert len(viirs.warnings) == 1 and viirs.warnings[0].extra["instrument"] == "VIIRS"


def test_clustering_matches_brute_force() -> None:
    rnd = random.Random(7)
    t0 = dt.datetime(2026, 7, 20, tzinfo=dt.UTC)
    pts = [Hotspot(LAT + rnd.uniform(-0.2, 0.2), LON + rnd.uniform(-0.2, 0.2),
                   t0 + dt.timedelta(hours=rnd.uniform(0, 96)), 50, 1, "T", "MODIS") for _ in range(300)]
    parent = list(range(len(pts)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(pts)):
        for j in range(i + 1, len(pts)):
            if abs(pts[i].t - pts[j].t) <= dt.timedelta(hours=24) and distance_km(
                    pts[i].lat, pts[i].lon, pts[j].lat, pts[j].lon) <= 2.0:
                a, b = find(i), find(j)
                if a != b:
                    parent[b] = a
    brute = sorted(sorted(k for k in range(len(pts)) if find(k) == root) for root in {find(k) for k in range(len(pts))})
    index = {id(p): k for k, p in enumerate(pts)}
    fast = sorted(sorted(index[id(p)] for p in g) for g in _clusters(pts, 2.0, dt.timedelta(hours=24)))
    assert fast == brute and len(brute) > 10


def test_hydro_generic_json_csv_sites_and_rise() -> None:
    doc = {"stations": [{"STCD": "41401500", "STNM": "丹河城区站", "lon": LON, "lat": LAT, "WRZ": 652.5, "GRZ": 654.0,
                         "readings": [{"TM": "2026-07-20 06:00:00", "Z": 652.0}, {"TM": "2026-07-20 08:00:00",
                                                                               "Z": 652.7}]}]}
    (w,) = get_parser("hydro")(json.dumps(doc).encode(), CTX).warnings
    assert w.hazard is Hazard.FLOOD and w.level is Level.YELLOW and w.extra["rise_per_hour"] == pytest.approx(0.35)
    assert w.identifier == "hydro-cn-hydro-41401500-yellow-2026-07-20"
    doc["stations"][0]["readings"][0]["Z"] = 651.0  # 0.85 m/h: fast rise raises one level
    (fast,) = get_parser("hydro")(json.dumps(doc).encode(), CTX).warnings
    assert fast.level is Level.ORANGE and fast.extra["raised_for_fast_rise"]
    csv_text = "stcd,stnm,tm,z\nS1,白水河,2026-07-20 08:00,101.2\nS2,无阈值站,2026-07-20 08:00,5\n"
    ctx = ParserContext(sites=[Site("site-9", "白水河桥", "gauge", LON, LAT,
                                    {"station": "S1", "warning_level": 100.0, "guarantee_level": 101.0})])
    r = get_parser("hydro")(csv_text.encode(), ctx)
    assert [(w.level, w.extra["site_id"]) for w in r.warnings] == [(Level.RED, "site-9")]
    assert "1 without configured levels" in r.skipped[0].reason
    with pytest.raises(ParseError):
        get_parser("hydro")(b"stcd,tm\nS1,2026", CTX)


def test_hydro_samples_with_configured_levels(data_dir: Path) -> None:
    payload = (data_dir / "samples/hydrology/usgs_nwis_iv_waterml-json_01491000_01645000.json").read_bytes()
    ctx = ParserContext(config={"hydro_stations": {"01491000": {"warning_level": 6.4, "guarantee_level": 8}}})
    (w,) = get_parser("hydro")(payload, ctx).warnings
    assert w.level is Level.YELLOW and w.extra["rise_per_hour"] < 0
    ea = (data_dir / "samples/hydrology/ea_flood-monitoring_measures_latest-readings_2017-03-03_first150.json")
    ctx = ParserContext(config={"hydro_stations": {"1029TH": {"warning_level": 0.2}}})
    r = get_parser("hydro")(ea.read_bytes(), ctx)
    assert [w.extra["station"] for w in r.warnings] == ["1029TH"]


def test_geohazard_zones_grouped_by_level() -> None:
    doc = {"type": "FeatureCollection", "id": "JC-DZ-1", "sender": "晋城市自然资源局",
           "sent": "2026-07-20T08:00:00+08:00",
           "features": [
               {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[112.8, 35.5], [112.85, 35.5],
                                                                                  [112.85, 35.55], [112.8, 35.5]]]},
                "properties": {"zone_id": "Z1", "name": "北石店", "level": "橙色", "kinds": ["滑坡"]}},
               {"type": "Feature", "geometry": None, "properties": {"zone_id": "Z2", "level": 3,
                                                                    "geocodes": ["140502100"]}}]}
    r = get_parser("geohazard")(json.dumps(doc).encode(), CTX)
    assert [(w.identifier, w.level) for w in r.warnings] == [("JC-DZ-1-orange", Level.ORANGE),
                                                            ("JC-DZ-1-yellow", Level.YELLOW)]
    assert r.warnings[1].area.geocodes == [("行政区划代码", "140502100000")]
    doc["features"][0]["properties"]["level"] = "purple"
    with pytest.raises(ParseError):
        get_parser("geohazard")(json.dumps(doc).encode(), CTX)
