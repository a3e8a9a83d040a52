"""The console's map through the app's own client: its page, its GeoJSON layers, the village panel, Leaflet's
files and the GCJ-02 setting.

The database holds what ``jiaoying db upgrade`` seeds (the bundled region of 城区, its demo sites and demo
contacts, the feeds); a red rainstorm CAP pushed through the JSON API starts a run with its callouts, as it
does in the server, and the map is read back through its own routes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from console.i18n import MESSAGES
from console.map_pages import village_states
from console.rendering import templates
from geo.crs import distance_m
from geo.region import seed_default_region
from jiaoying.app import create_app
from responses.contacts.models import Duty
from responses.contacts.service import seed_demo_contacts
from tests.conftest import make_user
from tests.conftest import test_settings as settings_with
from tests.live import DEMO_CAP
from warning.service import seed_feeds

PASSWORD = "correct-horse-9"
VILLAGE = "140502001001"  # 建设路社区, 东街街道: two demo contacts, inside the drill's red polygon
ZH = {key: pair[0] for key, pair in MESSAGES.items()}


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "every console page carries the CSRF token"
    return found.group(1)


@pytest.fixture
def seeded(sqlite_runtime: Runtime) -> Runtime:
    """What ``jiaoying db upgrade`` puts in a new database: feeds, the region with its sites, demo contacts."""
    with session_scope(sqlite_runtime.session_factory) as s:
        now = sqlite_runtime.clock.now()
        seed_feeds(s, now)
        seed_default_region(s, now)
        seed_demo_contacts(s, now=now, tz=sqlite_runtime.settings.tz)
    return sqlite_runtime


@pytest.fixture
def as_role(client: TestClient, seeded: Runtime) -> Iterator[Callable[..., TestClient]]:
    """``as_role("viewer")`` → a browser of its own, logged in through the console form as a new user."""
    opened: list[TestClient] = []

    def _login(role: str, app: Any = None) -> TestClient:
        name = f"map-{role}{len(opened) + 1}"
        make_user(seeded.session_factory, name, role, "meteorology" if role == "analyst" else None)
        browser = TestClient(app or client.app)
        opened.append(browser)
        page = browser.get("/login")
        r = browser.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token_of(page.text)},
                         follow_redirects=False)
        assert r.status_code == 303, r.text
        return browser

    yield _login
    for browser in opened:
        browser.close()


def red_cap(identifier: str = "map-red-1") -> bytes:
    """The bundled drill's red rainstorm (sent 01:58, expires 08:00 Beijing time), as a real warning."""
    text = DEMO_CAP.read_text(encoding="utf-8").replace("<status>Exercise</status>", "<status>Actual</status>")
    return text.replace("14050241600000_20260720015800", identifier).encode()


def push_red(browser: TestClient) -> None:
    """Push the red CAP through the JSON API with the browser's own session, as a source system would."""
    r = browser.post("/feeds/national-cap/items", content=red_cap(),
                     headers={"Content-Type": "application/cap+xml"})
    assert r.status_code == 202, r.text
    assert r.json()["changes"][0]["level"] == "red"


def layer(browser: TestClient, name: str, **params: str) -> dict[str, Any]:
    r = browser.get(f"/console/map/layers/{name}.json", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- access


def test_without_a_session_every_map_route_goes_to_login(client: TestClient, seeded: Runtime) -> None:
    for path in ("/console/map", "/console/map/layers/areas.json", "/console/map/layers/callouts.json",
                 f"/console/map/villages/{VILLAGE}"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path


# ---------------------------------------------------------------------------------------------- the page


def test_the_page_without_warnings_or_runs_says_so_and_loads_leaflet_from_here(
        as_role: Callable[..., TestClient]) -> None:
    r = as_role("viewer").get("/console/map")
    assert r.status_code == 200
    html = r.text
    assert ZH["map.warnings.empty"] in html and ZH["map.run.nothing"] in html
    assert ZH["map.village.hint"] in html and ZH["map.legend.approximate_note"] in html
    for words in ("红色预警", "橙色预警", "黄色预警", "蓝色预警", "已应答", "等待应答", "未应答，已升级",
                  "未应答，无上级可升级"):
        assert words in html, f"the legend says {words} in words"
    assert 'href="/console/assets/leaflet/leaflet.css"' in html
    assert 'src="/console/assets/leaflet/leaflet.js"' in html and 'src="/static/map.js"' in html
    assert 'data-live="self"' in html and 'data-run="auto"' in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "no inline script"
    assert "style=" not in html and not re.search(r"\son[a-z]+=", html), "no inline style or handler"
    assert "img-src 'self' data:;" in r.headers["content-security-policy"], "no tile server: images only from here"
    assert 'data-tile-url=""' in html
    villages = re.findall(r'<option value="(\d{12})"', html)
    assert len(villages) == 170 and VILLAGE in villages, "every village of the district in the finder"


def test_the_page_in_english(as_role: Callable[..., TestClient]) -> None:
    browser = as_role("duty_officer")
    browser.cookies.set("jiaoying_lang", "en")
    push_red(browser)
    html = browser.get("/console/map").text
    assert '<html lang="en">' in html and "Warnings and call-and-answer map" in html
    assert "Red warning" in html and "Answered" in html
    warnings = layer(browser, "warnings")
    assert warnings["warnings"][0]["level_text"] == "Red warning"
    assert layer(browser, "callouts")["run"]["state_text"] == "Active"


# ---------------------------------------------------------------------------------------------- the region


def test_the_areas_layer_has_the_districts_townships_and_134_villages(as_role: Callable[..., TestClient]) -> None:
    data = layer(as_role("viewer"), "areas")
    by_level: dict[str, list[dict[str, Any]]] = {}
    for f in data["features"]:
        by_level.setdefault(f["properties"]["level"], []).append(f)
    villages = by_level["village"]
    assert len(villages) == 134, "the villages of 城区 with a polygon (南村镇's have none)"
    assert all(f["properties"]["approximate"] is True for f in villages), "the bundled polygons are generated"
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in villages)
    assert len(by_level["district"]) == 1 and by_level["district"][0]["properties"]["approximate"] is False
    assert len(by_level["township"]) == 8, "南村镇, attached by code, has no polygon"
    assert by_level["context"], "the neighbouring counties are drawn around the district"
    one = next(f for f in villages if f["id"] == VILLAGE)
    assert one["properties"]["name"] == "建设路社区" and one["properties"]["town"] == "东街街道"
    lat, lon = one["properties"]["label"]
    south, west, north, east = data["bounds"]
    assert south < lat < north and west < lon < east, "labels are [lat, lon], inside the district's bounds"


def test_the_gcj02_setting_shifts_what_the_map_shows_by_a_few_hundred_metres(
        client: TestClient, seeded: Runtime, as_role: Callable[..., TestClient]) -> None:
    plain = layer(as_role("viewer"), "areas")
    settings = settings_with(map={"tile_url": "https://tiles.intranet.example/{z}/{x}/{y}.png",
                                  "tile_crs": "gcj02", "tile_attribution": "区测绘院"})
    app = create_app(settings, runtime=seeded, scheduler=False)
    with TestClient(app):
        browser = as_role("viewer", app=app)
        shifted = layer(browser, "areas")
        page = browser.get("/console/map")
    a = next(f for f in plain["features"] if f["id"] == VILLAGE)["properties"]["label"]
    b = next(f for f in shifted["features"] if f["id"] == VILLAGE)["properties"]["label"]
    moved = float(distance_m(a[1], a[0], b[1], b[0]))
    assert 300 < moved < 800, f"GCJ-02 lies a few hundred metres off WGS84 at 晋城, moved {moved:.0f} m"
    assert b[1] > a[1], "eastwards, as GCJ-02 is there"
    ring_a = next(f for f in plain["features"] if f["id"] == VILLAGE)["geometry"]["coordinates"][0][0]
    ring_b = next(f for f in shifted["features"] if f["id"] == VILLAGE)["geometry"]["coordinates"][0][0]
    assert 300 < float(distance_m(ring_a[0], ring_a[1], ring_b[0], ring_b[1])) < 800, "the polygons move too"
    assert 'data-tile-url="https://tiles.intranet.example/{z}/{x}/{y}.png"' in page.text
    assert "区测绘院" in page.text
    csp = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://tiles.intranet.example;" in csp, "the tile server may serve images"
    assert "default-src 'self'" in csp and "script-src 'self';" in csp, "and nothing else is loosened"


def test_the_sites_layer_has_the_demo_sites_with_kind_and_risk(as_role: Callable[..., TestClient]) -> None:
    sites = layer(as_role("viewer"), "sites")["features"]
    assert len(sites) == 7 and all(f["properties"]["demo"] for f in sites)
    slide = next(f["properties"] for f in sites if f["properties"]["kind"] == "geohazard_point")
    assert slide["kind_text"] == "地质灾害隐患点" and slide["risk_text"] == "高风险" and slide["residents"] == 23
    assert slide["area_code"] == "140502007201" and len(slide["point"]) == 2


# ---------------------------------------------------------------------------------------------- a red warning


def test_a_red_cap_draws_its_area_and_colours_the_villages_it_calls(as_role: Callable[..., TestClient]) -> None:
    duty = as_role("duty_officer")
    assert layer(duty, "warnings")["features"] == []
    assert layer(duty, "callouts")["run"] is None
    push_red(duty)

    warnings = layer(duty, "warnings")
    assert len(warnings["warnings"]) == 1
    item = warnings["warnings"][0]
    assert item["level"] == "red" and item["level_text"] == "红色预警" and item["drawn"] == 1
    (area,) = warnings["features"]
    assert area["properties"]["shape"] == "polygon" and area["properties"]["level"] == "red"
    lons = [p[0] for p in area["geometry"]["coordinates"][0]]
    lats = [p[1] for p in area["geometry"]["coordinates"][0]]
    assert (min(lons), max(lons), min(lats), max(lats)) == (112.808, 112.892, 35.43, 35.492), "as the CAP drew it"

    states = layer(duty, "callouts")
    assert states["run"] is not None and states["run"]["level_text"] == "红色预警"
    called = states["villages"]
    assert VILLAGE in called and called[VILLAGE]["state"] == "waiting" and called[VILLAGE]["text"] == "等待应答"
    assert states["counts"]["waiting"] == len(called) > 10
    assert set(called) <= {f["id"] for f in layer(duty, "areas")["features"]}, "every coloured village is drawn"
    run_id = states["run"]["id"]
    assert layer(duty, "callouts", run=str(run_id))["villages"] == called, "auto is the latest open run"
    assert layer(duty, "callouts", run="none")["villages"] == {}

    board = duty.get(f"/callouts/runs/{run_id}/board").json()["callouts"]
    head = next(c for c in board if VILLAGE in [a["code"] for a in c["areas"]] and c["role"] == "village_head")
    r = duty.post(f"/callouts/{head['id']}/answers", json={"channel": "duty_officer", "note": "电话确认：已组织巡查"})
    assert r.status_code == 201, r.text
    after = layer(duty, "callouts")
    assert after["villages"][VILLAGE]["state"] == "answered" and after["villages"][VILLAGE]["text"] == "已应答"
    assert after["counts"]["answered"] == 1 and after["counts"]["waiting"] == len(called) - 1

    page = duty.get("/console/map").text
    assert item["headline"] in page and "红色预警" in page and f'href="/console/runs/{run_id}"' in page


def test_the_measures_layer_puts_each_measure_of_the_run_at_its_place(as_role: Callable[..., TestClient]) -> None:
    duty = as_role("duty_officer")
    assert layer(duty, "measures") == {"places": []}
    push_red(duty)
    places = layer(duty, "measures")["places"]
    assert places, "a red rainstorm orders measures"
    for place in places:
        assert len(place["point"]) == 2 and place["name"]
        for m in place["measures"]:
            assert m["label"] and m["state_text"] == "已下达" and m["open"] is True
    names = [p["name"] for p in places]
    assert len(names) == len(set(names)), "one marker per place, listing every measure there"
    east = next(p for p in places if p["name"] == "东街街道")
    assert [m["label"] for m in east["measures"]] == ["停学", "停业", "交通管控"]  # the red plan's township orders
    assert re.fullmatch(r"（\d+ 个村/社区）", east["measures"][0]["covers"]), "an order over many villages is " \
        "marked once per township, saying how many of its villages it covers"


def test_circles_points_and_code_only_areas_are_drawn_as_such(
        as_role: Callable[..., TestClient], seeded: Runtime, make_warning: Callable[..., Any],
        clock: VirtualClock) -> None:
    with session_scope(seeded.session_factory) as s:
        w = make_warning(s, now=clock.now(), level="orange", event="大风")
        w.area_spec = {"description": "两处", "polygons": [], "circles": [], "points": [], "geocodes": [],
                       "blocks": [
                           {"description": "圆", "polygons": [], "circles": [[35.5, 112.85, 2.0]], "points": [],
                            "geocodes": []},
                           {"description": "点", "polygons": [], "circles": [[35.48, 112.83, 0.0]], "points": [],
                            "geocodes": []},
                           {"description": "街道", "polygons": [], "circles": [], "points": [],
                            "geocodes": [["ADMIN_CODE", "140502001"]]}]}
        make_warning(s, now=clock.now(), level="yellow", event="高温")  # no shape: drawn as its villages
    data = layer(as_role("viewer"), "warnings")
    shapes = {(f["properties"]["level"], f["properties"]["shape"]) for f in data["features"]}
    assert shapes == {("orange", "circle"), ("orange", "point"), ("orange", "area"), ("yellow", "area")}
    circle = next(f for f in data["features"] if f["properties"]["shape"] == "circle")
    assert circle["properties"]["radius_m"] == 2000.0 and circle["geometry"]["coordinates"] == [112.85, 35.5]
    town = next(f for f in data["features"] if f["properties"]["shape"] == "area" and f["properties"]["level"]
                == "orange")
    assert town["properties"]["area_name"] == "东街街道"
    levels = [f["properties"]["level"] for f in data["features"]]
    assert levels == sorted(levels, key=lambda lv: -["red", "orange", "yellow", "blue"].index(lv)), "red on top"
    assert [w["level"] for w in data["warnings"]] == ["orange", "yellow"], "the list: the higher level first"


def test_a_village_takes_the_best_state_of_the_people_called_about_it() -> None:
    def call(state: str, *codes: str, overdue: bool = False) -> dict[str, Any]:
        return {"state": state, "overdue": overdue, "areas": [{"code": c, "name": c} for c in codes]}

    got = village_states([
        call("unanswered", "A"), call("escalated", "A"), call("answered", "A"),
        call("unanswered", "B"), call("escalated", "B"),
        call("calling", "C", overdue=True), call("unanswered", "C"),
        call("unanswered", "D"), call("cancelled", "E"), call("calling", "F", "site:3"),
    ])
    assert {code: s["state"] for code, s in got.items()} == {
        "A": "answered", "B": "escalated", "C": "waiting", "D": "unanswered", "F": "waiting", "site:3": "waiting"}
    assert got["C"]["overdue"] is True and got["F"]["overdue"] is False


def test_an_unknown_run_is_said_on_the_page_and_refused_by_the_layers(as_role: Callable[..., TestClient]) -> None:
    viewer = as_role("viewer")
    html = viewer.get("/console/map", params={"run": "99999"}).text
    assert ZH["map.run.unknown"] in html and 'data-run="none"' in html
    assert viewer.get("/console/map/layers/callouts.json", params={"run": "99999"}).status_code == 404
    assert viewer.get("/console/map/layers/measures.json", params={"run": "x1"}).status_code == 404


# ---------------------------------------------------------------------------------------------- a village


def test_the_village_panel_lists_its_people_calls_and_sites(as_role: Callable[..., TestClient]) -> None:
    duty = as_role("duty_officer")
    before = duty.get(f"/console/map/villages/{VILLAGE}")
    assert before.status_code == 200
    assert "<html" not in before.text, "a fragment for the side panel"
    assert "建设路社区" in before.text and "东街街道" in before.text and VILLAGE in before.text
    assert ZH["map.calls.no_run"] in before.text

    push_red(duty)
    html = duty.get(f"/console/map/villages/{VILLAGE}").text
    people = re.search(r'data-testid="village-people">(.*?)</ul>', html, re.S)
    assert people, html
    assert "演示村长001" in people.group(1) and "村（社区）负责人" in people.group(1)
    assert "演示网格员001" in people.group(1) and "网格员" in people.group(1)
    assert 'href="tel:+8612300000001"' in people.group(1), "the number, to call from a phone"
    above = re.search(r'data-testid="village-above">(.*?)</ul>', html, re.S)
    assert above and "演示镇长01" in above.group(1) and "镇（街道）负责人" in above.group(1), "the township's chief"
    assert "演示镇长01" not in people.group(1)
    calls = re.search(r'data-testid="village-calls">(.*?)</table>', html, re.S)
    assert calls and "演示村长001" in calls.group(1) and "叫应中" in calls.group(1)
    assert 'data-testid="village-state">等待应答' in html
    assert ZH["map.sites.none"] in html

    slide = duty.get("/console/map/villages/140502007201").text
    assert "【演示】西上庄滑坡隐患点" in slide and "高风险" in slide and "23" in slide

    page = duty.get("/console/map", params={"village": VILLAGE}).text
    assert 'data-testid="village-card"' in page and "演示村长001" in page, "the panel without script too"


def test_a_viewer_sees_the_people_but_not_their_numbers(as_role: Callable[..., TestClient]) -> None:
    html = as_role("viewer").get(f"/console/map/villages/{VILLAGE}").text
    assert "演示村长001" in html and "+8612300000001" not in html and "tel:" not in html
    assert ZH["map.people.phone_hidden"] in html
    html = as_role("analyst").get(f"/console/map/villages/{VILLAGE}").text
    assert "+8612300000001" not in html


def test_a_village_without_people_says_what_to_do(as_role: Callable[..., TestClient], seeded: Runtime) -> None:
    with session_scope(seeded.session_factory) as s:
        assert s.query(Duty).filter(Duty.area_code == VILLAGE).delete() == 2
    html = as_role("viewer").get(f"/console/map/villages/{VILLAGE}").text
    assert ZH["map.people.empty"] in html and "演示村长001" not in html


def test_an_unknown_village_is_a_404_page(as_role: Callable[..., TestClient]) -> None:
    viewer = as_role("viewer")
    for code in ("999999999999", "140502001000", "nonsense"):  # unknown, a township, not a code
        r = viewer.get(f"/console/map/villages/{code}")
        assert r.status_code == 404, code
        assert "未找到村（社区）" in r.text and 'data-testid="problem"' in r.text
    html = viewer.get("/console/map", params={"village": "999999999999"}).text
    assert ZH["map.village.unknown"] in html


# ---------------------------------------------------------------------------------------------- Leaflet


def test_leaflet_is_served_from_the_installed_package(client: TestClient) -> None:
    js = client.get("/console/assets/leaflet/leaflet.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "Leaflet" in js.text[:400]
    css = client.get("/console/assets/leaflet/leaflet.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for image in re.findall(r"url\(([^)]+)\)", css.text):
        if not image.startswith(("data:", "#")):
            assert client.get(f"/console/assets/leaflet/{image}").status_code == 200, image
    assert client.get("/console/assets/leaflet/images/layers.png").headers["content-type"] == "image/png"


@pytest.mark.parametrize("path", [
    "..%2F__init__.py", "..%2f..%2f..%2fconsole%2fmap_pages.py", "%2e%2e/__init__.py", "images/..%2F..%2F__init__.py",
    "%2Fetc%2Fpasswd", "..%5C__init__.py", "missing.js", "images", "",
])
def test_the_leaflet_route_serves_nothing_outside_its_folder(client: TestClient, path: str) -> None:
    r = client.get(f"/console/assets/leaflet/{path}")
    assert r.status_code == 404, path
    assert "xstatic" not in r.text and "import" not in r.text


# ---------------------------------------------------------------------------------------------- the panel


def test_the_panel_partial_makes_a_smaller_live_map_for_another_page(seeded: Runtime) -> None:
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=seeded.settings)))
    html = templates.get_template("map/panel.html").render(
        request=request, t=lambda key: MESSAGES[key][0], map_run=7)
    assert re.search(r'<div class="map-canvas map-panel"[^>]*\bdata-map\b', html)
    assert 'data-run="7"' in html and 'data-live="self"' in html and "data-full" not in html
    assert 'src="/console/assets/leaflet/leaflet.js"' in html and 'src="/static/map.js"' in html
    assert 'href="/console/map?run=7"' in html
    auto = templates.get_template("map/panel.html").render(request=request, t=lambda key: MESSAGES[key][0])
    assert 'data-run="auto"' in auto


def _run_of(browser: TestClient) -> dict[str, Any]:
    run = layer(browser, "callouts")["run"]
    assert run is not None, "the red CAP started a run"
    return run  # type: ignore[no-any-return]


def test_the_board_has_the_map_panel_following_the_latest_open_run(as_role: Callable[..., TestClient]) -> None:
    duty = as_role("duty_officer")
    before = duty.get("/").text
    assert 'id="map-panel-auto"' in before and 'data-run="auto"' in before, "the board's panel follows the runs"
    panel = before[before.index('id="map-box-auto"'):]
    assert ZH["map.panel.no_run"] in panel.split("</section>")[0], "no run yet: the region and the warnings only"
    assert 'src="/console/assets/leaflet/leaflet.js"' in before and 'src="/static/map.js"' in before
    side = before[before.index('class="board-side"'):]
    assert side.index('id="h-measures"') < side.index('id="map-box-auto"') < side.index('id="h-feeds"'), \
        "in the side column, below the urgent lists"
    assert before.index('id="h-runs"') < before.index('class="board-side"')

    push_red(duty)
    run = _run_of(duty)
    html = duty.get("/").text
    box = html[html.index('id="map-box-auto"'):].split("</section>")[0]
    line = box[box.index('data-testid="map-panel-run"'):]
    assert run["number"] in line and f'href="/console/runs/{run["id"]}"' in line, "which run colours the villages"
    assert '<span class="badge level-red" data-run-badge>红色预警</span>' in line
    assert re.search(r'<span data-run-none class="muted" hidden>', box), "the no-run words are hidden"
    assert 'href="/console/map?run=auto"' in box
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None and "style=" not in box
    duty.cookies.set("jiaoying_lang", "en")
    english = duty.get("/").text
    box = english[english.index('id="map-box-auto"'):].split("</section>")[0]
    assert "Map: warning areas and villages&#39; answers" in box and "Red warning" in box and "地图" not in box


def test_a_run_page_has_the_map_panel_of_that_run(as_role: Callable[..., TestClient]) -> None:
    duty = as_role("duty_officer")
    push_red(duty)
    run = _run_of(duty)
    r = duty.get(f"/console/runs/{run['id']}")
    assert r.status_code == 200
    html = r.text
    box = html[html.index(f'id="map-box-{run["id"]}"'):].split("</section>")[0]
    assert f'id="map-panel-{run["id"]}"' in box and f'data-run="{run["id"]}"' in box, "coloured by this run"
    assert 'data-run="auto"' not in html, "a run's page never follows another run"
    assert f'href="/console/map?run={run["id"]}"' in box and 'data-live="self"' in html
    assert ZH["map.panel.title_run"] in box and 'data-testid="map-panel-run"' not in box
    assert html.index('id="h-run"') < html.index('id="map-box-') < html.index('id="h-callouts"'), \
        "beside the run's head, above the long list of calls"
    assert "img-src 'self' data:;" in r.headers["content-security-policy"], "no tile server: images only from here"


def test_the_board_and_a_run_page_allow_the_configured_tile_server(
        client: TestClient, seeded: Runtime, as_role: Callable[..., TestClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIAOYING_MAP__TILE_URL", "https://tiles.intranet.example/{z}/{x}/{y}.png")
    settings = settings_with()
    assert settings.map.tile_url == "https://tiles.intranet.example/{z}/{x}/{y}.png"
    app = create_app(settings, runtime=seeded, scheduler=False)
    with TestClient(app):
        duty = as_role("duty_officer", app=app)
        push_red(duty)
        run = _run_of(duty)
        pages = {"/": duty.get("/"), "run": duty.get(f"/console/runs/{run['id']}"), "map": duty.get("/console/map")}
        other = duty.get("/console/warnings")
    for name, page in pages.items():
        assert page.status_code == 200, name
        csp = page.headers["content-security-policy"]
        assert "img-src 'self' data: https://tiles.intranet.example;" in csp, f"{name}: tiles may be drawn"
        assert "default-src 'self'" in csp and "script-src 'self';" in csp, f"{name}: nothing else is loosened"
        assert 'data-tile-url="https://tiles.intranet.example/{z}/{x}/{y}.png"' in page.text, name
    assert "tiles.intranet.example" not in other.headers["content-security-policy"], "a page without a map is not"


def test_map_words_exist_in_both_languages() -> None:
    keys = [k for k in MESSAGES if k.startswith("map.")]
    assert len(keys) > 80
    assert all(MESSAGES[k][0] and MESSAGES[k][1] for k in keys)


def test_reading_the_map_writes_nothing(as_role: Callable[..., TestClient], seeded: Runtime) -> None:
    from config.eventlog import Event

    duty = as_role("duty_officer")
    push_red(duty)
    with session_scope(seeded.session_factory) as s:
        events = s.query(Event).count()
    for path in ("/console/map", "/console/map/layers/areas.json", "/console/map/layers/warnings.json",
                 "/console/map/layers/callouts.json", "/console/map/layers/sites.json",
                 "/console/map/layers/measures.json", f"/console/map/villages/{VILLAGE}"):
        assert duty.get(path).status_code == 200, path
    with session_scope(seeded.session_factory) as s:
        assert s.query(Event).count() == events
