"""What real feeds and a fuzzer send that the first reader missed: no-<info> messages, points as circles of
radius 0, broken area blocks, hazards named by the event rather than the category, area blocks judged one by one.

The real samples are under tests/data/samples/cap/extra (see its PROVENANCE.md); the crafted broken inputs
under tests/data/broken (each file says what it tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.region import default_region_index
from geo.targets import POINT_SITE_KM, MatchTarget
from jiaoying.cli import app
from warning.draft import AreaSpec, Hazard, Level, MsgType
from warning.feeds import ParserContext, get_parser
from warning.hazards import hazard_from_code, hazard_from_text
from warning.normalize import area_to_target, result_to_json

cap = get_parser("cap")
CTX = ParserContext()


def one(path: Path):  # type: ignore[no-untyped-def]
    (w,) = cap(path.read_bytes(), CTX).warnings
    return w


# ---------------------------------------------------------------- 1. no <info>


@pytest.mark.parametrize("name", ["us-ipaws-athoc_cancel-no-info_signed_2016.cap",
                                  "us-ipaws-nv-dps_cancel-no-info_signed_2019.cap"])
def test_real_cancels_without_info_are_cancels_with_their_references(data_dir: Path, name: str) -> None:
    w = one(data_dir / "samples/cap/extra" / name)
    assert w.msg_type is MsgType.CANCEL and w.hazard is None and w.level is None and not w.infos
    assert w.references and all(r.identifier and r.sender for r in w.references)
    doc = result_to_json(cap((data_dir / "samples/cap/extra" / name).read_bytes(), CTX))
    (out,) = doc["warnings"]
    assert (out["msg_type"], out["hazard"], out["level"]) == ("cancel", None, None)
    assert out["references"][0]["identifier"] == w.references[0].identifier


def test_update_without_info_is_not_dropped_silently(data_dir: Path) -> None:
    result = cap((data_dir / "broken/update_without_info.cap").read_bytes(), CTX)
    (draft,) = result.warnings  # kept for intake, which carries the referenced content over
    assert draft.msg_type is MsgType.UPDATE and draft.hazard is None
    doc = result_to_json(result)
    assert not doc["warnings"]  # on its own it names no hazard: said in skipped, with its references
    (s,) = doc["skipped"]
    assert "no <info>" in s["reason"] and s["references"][0]["identifier"] == "BRK-GEOCODE"


def test_ack_is_skipped_with_what_it_references(data_dir: Path) -> None:
    (s,) = cap((data_dir / "broken/ack.cap").read_bytes(), CTX).skipped
    assert s.msg_type == "ack" and s.note == "已收到" and [r.identifier for r in s.references] == ["BRK-GEOCODE"]


def test_cancel_with_info_naming_no_hazard_still_cancels() -> None:
    body = b"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>X-2</identifier>
    <sender>s@example.cn</sender><sent>2026-07-20T09:00:00+08:00</sent><status>Actual</status>
    <msgType>Cancel</msgType><scope>Public</scope><references>s@example.cn,X-1,2026-07-20T08:00:00+08:00</references>
    <info><category>Other</category><event>Cancellation</event><urgency>Past</urgency><severity>Minor</severity>
    <certainty>Observed</certainty></info></alert>"""
    (w,) = cap(body, CTX).warnings
    assert w.msg_type is MsgType.CANCEL and w.hazard is None and w.references[0].identifier == "X-1"


# ---------------------------------------------------------------- 2. points and broken geometry


@pytest.mark.parametrize("name", ["us-usgs-cisn_earthquake_circle-radius0_signed_iso8859-1_2011.cap",
                                  "us-ntwc_tsunami-cancellation-update_circle-radius0_2013.cap",
                                  "au-nsw-rfs_bushfire_polygon-plus-circle-radius0_2015.cap"])
def test_real_circles_of_radius_zero_are_points(data_dir: Path, name: str) -> None:
    result = cap((data_dir / "samples/cap/extra" / name).read_bytes(), CTX)
    points = [p for w in result.warnings for b in w.areas for p in b.points]
    assert points and all(r == 0 for _lat, _lon, r in points)
    assert not [c for w in result.warnings for b in w.areas for c in b.circles if c[2] == 0]
    doc = result_to_json(result, default_region_index().match)  # targeting a point raises nothing
    assert all(not w.get("area_problems") for w in doc["warnings"])


def test_a_point_targets_its_village_and_the_sites_close_to_it() -> None:
    region = default_region_index()
    school = next(s for s in region.sites() if s.id == "demo-school-1")
    lon, lat = school.geometry.x, school.geometry.y
    near = region.match(area_to_target(AreaSpec(circles=[(lat + 0.002, lon, 0.0)])))  # ~220 m north
    assert [v.code for v in near.villages] == [region.locate(lon, lat + 0.002)]
    assert "demo-school-1" in [s.id for s in near.sites]
    far = region.match(MatchTarget(points=((lat + 2 * POINT_SITE_KM / 111.2, lon, 0.0),)))
    assert "demo-school-1" not in [s.id for s in far.sites] and far.villages
    assert region.match(MatchTarget(circles=((lat, lon, 0.0),))).villages  # geo takes radius 0 directly too


def test_a_broken_block_is_reported_and_the_others_go_on(data_dir: Path) -> None:
    doc = result_to_json(cap((data_dir / "broken/degenerate_and_out_of_range.cap").read_bytes(), CTX),
                         default_region_index().match)
    (w,) = doc["warnings"]
    problems = w["area_problems"]
    for n, word in ((1, "两点"), (2, "一条线"), (3, "纬度95"), (4, "负半径"), (5, "极大半径"), (6, "文字坐标")):
        assert any(f"区域 {n}（{word}）" in p for p in problems), (n, problems)
    assert len(problems) == 6 and w["affected"]["villages"]  # the good 5 km circle (block 7) still targets


def test_a_self_intersecting_ring_is_repaired_and_used(data_dir: Path) -> None:
    doc = result_to_json(cap((data_dir / "broken/self_intersecting_ring.cap").read_bytes(), CTX),
                         default_region_index().match)
    (w,) = doc["warnings"]
    assert not w.get("area_problems") and w["affected"]["villages"]


# ---------------------------------------------------------------- 3. hazard from what the event is


@pytest.mark.parametrize("text,hazard", [
    ("水库泄洪", Hazard.FLOOD), ("水庫洩洪", Hazard.FLOOD), ("水庫放流警戒", Hazard.FLOOD), ("溃坝险情", Hazard.FLOOD),
    ("城市内涝", Hazard.FLOOD), ("山洪灾害", Hazard.FLOOD), ("Dam Release Notice", Hazard.FLOOD),
    ("Dam Break Warning", Hazard.FLOOD), ("Storm Surge Warning", Hazard.FLOOD), ("土石流警戒", Hazard.GEOHAZARD),
    ("地質災害", Hazard.GEOHAZARD), ("豪雨特報", Hazard.WEATHER), ("颱風警報", Hazard.WEATHER),
    ("森林火災", Hazard.FOREST_FIRE), ("Seismic activity", Hazard.EARTHQUAKE), ("道路封閉", None),
    ("Child Abduction Emergency", None),
])
def test_vocabulary_simplified_traditional_english(text: str, hazard: Hazard | None) -> None:
    assert hazard_from_text(text) is hazard


@pytest.mark.parametrize("name,value,hazard", [
    ("SAME", "FFW", Hazard.FLOOD), ("SAME", "DBW", Hazard.FLOOD), ("SAME", "SVR", Hazard.WEATHER),
    ("SAME", "EQW", Hazard.EARTHQUAKE), ("SAME", "FRW", Hazard.FOREST_FIRE), ("SAME", "CAE", None),
    ("SAME", "RWT", None), ("NationalWeatherService", "FFW", Hazard.FLOOD), ("GB/T35561", "11B03", Hazard.WEATHER),
    ("CPEAS", "11A02", Hazard.FLOOD), ("CPEAS", "11D01", Hazard.GEOHAZARD), ("OET:v1.2", "OET-081", Hazard.FLOOD),
    ("OET:v1.2", "OET-999", None), ("profile:CAP-CP:Event:0.4", "rainfall", Hazard.WEATHER),
    ("profile:CAP-TWP:Event:1.0", "ReservoirDis", Hazard.FLOOD), ("x", "12345", None),
])
def test_event_codes(name: str, value: str, hazard: Hazard | None) -> None:
    assert hazard_from_code(name, value) is hazard


def test_real_reservoir_discharge_under_infra_is_a_red_flood(data_dir: Path) -> None:
    w = one(data_dir / "samples/cap/extra/tw-wra_reservoir-discharge_infra_2014.cap")
    assert w.hazard is Hazard.FLOOD and w.level is Level.RED  # alert_color 紅色 (Traditional)
    assert w.extra["categories"] == ["Infra"]


def test_event_beats_category_and_codes_decide_without_words(data_dir: Path) -> None:
    body = (data_dir / "samples/cap/extra/tw-wra_reservoir-discharge_infra_2014.cap").read_bytes()
    no_words = body.replace("水庫洩洪".encode(), "通知".encode()).replace("洩洪中".encode(), b"").replace(
        "水庫".encode(), b"")
    assert "水庫".encode() not in no_words and "洩洪".encode() not in no_words
    assert cap(no_words, CTX).warnings[0].hazard is Hazard.FLOOD  # the CAP-TWP event code ReservoirDis
    met_flood = body.replace(b"<category>Infra</category>", b"<category>Met</category>")
    assert cap(met_flood, CTX).warnings[0].hazard is Hazard.FLOOD  # the event, not the category


def test_reservoir_notice_targets_downstream_as_a_flood(data_dir: Path) -> None:
    doc = result_to_json(cap((data_dir / "broken/reservoir_discharge_traditional.cap").read_bytes(), CTX),
                         default_region_index().match)
    (w,) = doc["warnings"]
    assert w["hazard"] == "flood" and w["level"] == "orange" and w["affected"]["villages"]


# ---------------------------------------------------------------- 4. each <area> on its own


def test_each_area_block_is_kept_and_judged_on_its_own() -> None:
    drawn = AreaSpec(description="城区东南", polygons=[[(112.85, 35.45), (112.90, 35.45), (112.90, 35.50),
                                                      (112.85, 35.45)]], geocodes=[("areaCode", "140502000000")])
    coded = AreaSpec(description="北石店镇", geocodes=[("areaCode", "140502100000")])
    region = default_region_index()
    both = region.match(area_to_target([drawn, coded]))
    drawn_only = region.match(area_to_target([drawn]))
    coded_only = region.match(area_to_target([coded]))
    # The drawn block's county code does not widen it to the whole district; the code-only block counts in full.
    assert 0 < len(drawn_only.villages) < 60
    assert {v.code for v in both.villages} == {v.code for v in drawn_only.villages} | {v.code for v in
                                                                                        coded_only.villages}
    merged = AreaSpec(polygons=drawn.polygons, geocodes=drawn.geocodes + coded.geocodes)
    assert len(region.match(area_to_target([merged])).villages) == len(drawn_only.villages)  # the old, merged way


def test_blocks_of_a_message_are_kept_with_their_own_description_and_codes(data_dir: Path) -> None:
    w = one(data_dir / "broken/nan_coordinates.cap")
    assert [b.description for b in w.areas] == ["西上庄街道"] and w.areas[0].number == 2
    assert w.areas[0].geocodes == [("areaCode", "140502007000")]
    doc = result_to_json(cap((data_dir / "broken/nan_coordinates.cap").read_bytes(), CTX),
                         default_region_index().match)
    assert doc["warnings"][0]["affected"]["townships"] == ["140502007000"]


# ---------------------------------------------------------------- the CLI on every file


def _payloads(data_dir: Path) -> list[tuple[str, Path]]:
    formats = {"cap": "cap", "usgs": "usgs", "cenc": "cenc", "quakeml": "quakeml", "firms": "firms",
               "hydrology": "hydro", "geohazard": "geohazard", "nws": "nws"}
    out = []
    for f in sorted((data_dir / "samples").rglob("*")):
        if f.is_file() and f.suffix not in (".md", ".xsd"):
            top = f.relative_to(data_dir / "samples").parts[0]
            out.append((formats.get(top, "cap"), f))  # unsupported folders are tried as CAP: exit 2, not a crash
    out += [("cap", f) for f in sorted((data_dir / "broken").iterdir()) if f.suffix == ".cap"]
    return out


def test_normalize_never_crashes_on_any_file(data_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    combined: dict[str, list[object]] = {"warnings": [], "skipped": []}
    codes = {}
    for fmt, f in _payloads(data_dir):
        result = runner.invoke(app, ["normalize", "--format", fmt, str(f)])
        assert result.exit_code in (0, 2), (f.name, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (f.name, result.exception)
        codes[f.name] = result.exit_code
        if result.exit_code == 0:
            doc = json.loads(result.stdout)
            combined["warnings"] += doc["warnings"]
            combined["skipped"] += doc["skipped"]
    assert sum(1 for c in codes.values() if c == 0) >= 45 and codes["cancel_without_info.cap"] == 0
    cancels = [w for w in combined["warnings"] if isinstance(w, dict) and w["msg_type"] == "cancel"]
    assert len(cancels) >= 3 and all(w["references"] for w in cancels)
    out = tmp_path / "all.json"
    out.write_text(json.dumps(combined, ensure_ascii=False), encoding="utf-8")
    check = subprocess.run([sys.executable, str(data_dir / "tools/contracts.py"), "normalize", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout


def test_normalize_as_a_process_shows_no_traceback(data_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.cap"
    junk.write_bytes(b"\x00\xff<alert><<<")
    for f in (data_dir / "broken/every_area_broken.cap", data_dir / "broken/cancel_without_info.cap", junk):
        proc = subprocess.run([sys.executable, "-m", "jiaoying", "normalize", "--format", "cap", str(f)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2 and "无法解析" in proc.stderr  # the junk: a message, exit 2
