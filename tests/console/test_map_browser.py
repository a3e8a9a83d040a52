"""The console's map in real headless Chromium against the whole server (uvicorn): the region's 134 village
polygons are drawn from Jiaoying's own files with no request leaving its origin; a red warning pushed through
the API draws its area and colours the villages it calls; clicking a village (or finding it from the keyboard)
shows its people. Screenshots of the map with the drill's warning running, at a duty-room screen and a phone
width, are kept under ``test-artifacts/console/`` for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.console.test_browser import _browser_or_skip
from tests.live import console_server, red_cap_now

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
VILLAGE = "140502001001"  # 建设路社区, inside the drill's red polygon, with a demo village head and grid worker
ANSWERING = 6  # villages whose head answers, so the screenshots show both colours
PASSWORD = "duty-pass-123"



@pytest.fixture
def live(tmp_path: Path) -> Iterator[str]:
    with console_server(tmp_path / "map.db", [("duty", "张值班", "duty_officer", PASSWORD)],
                        secret="console-map") as url:
        yield url


def _push_red_and_answer(base: str) -> int:
    """The drill's red rainstorm pushed as a feed pushes it; a few village heads answer by phone."""
    with httpx.Client(base_url=base, timeout=30) as c:
        token = c.post("/auth/token", data={"username": "duty", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        r = c.post("/feeds/national-cap/items", content=red_cap_now("map"),
                   headers={**h, "Content-Type": "application/cap+xml"})
        assert r.status_code == 202, r.text
        run_id = int(c.get("/responses/runs", headers=h).json()[0]["id"])
        rows = c.get(f"/callouts/runs/{run_id}/board", headers=h).json()["callouts"]
        heads = [row for row in rows if row["role"] == "village_head"
                 and VILLAGE not in [a["code"] for a in row["areas"]]][:ANSWERING]
        for row in heads:
            r = c.post(f"/callouts/{row['id']}/answers", headers=h,
                       json={"channel": "duty_officer", "note": "电话确认：已组织巡查转移"})
            assert r.status_code == 201, r.text
        return run_id


def _settled(page: Any) -> None:
    """Wait until the map has drawn its layers and stays the same element for a while.

    A page script that re-renders <main> after each server event (live.js) may replace the map element while
    the changes of a push still arrive; map.js then draws the new one. Until it keeps ``data-live="self"``
    parts in place, the test waits for the burst of events to pass instead of racing it.
    """
    for _ in range(20):
        page.wait_for_selector("#map[data-loaded]", state="attached")
        page.evaluate("document.getElementById('map').jiaoyingMark = true")
        page.wait_for_timeout(1500)
        if page.evaluate("!!(document.getElementById('map') || {}).jiaoyingMark"):
            page.wait_for_selector("#map[data-loaded]", state="attached")
            return
    pytest.fail("the map kept being replaced")


def _change(page: Any) -> None:
    """What live.js does for every server event: tell the page's scripts that something changed."""
    page.evaluate("document.dispatchEvent(new CustomEvent('jiaoying:change'))")


@pytest.mark.browser
def test_the_map_draws_the_region_a_red_warning_and_a_village_s_people(live: str) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    origin = urlsplit(live).netloc
    requests: list[str] = []
    console_errors: list[str] = []
    page_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(viewport=SIZES["desktop"])
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))

            page.goto(f"{live}/login")
            page.fill("input[name=username]", "duty")
            page.fill("input[name=password]", PASSWORD)
            page.click("form[action=\"/login\"] button[type=submit]")
            page.wait_for_url(f"{live}/")
            page.click("nav a[data-nav=map]")
            page.wait_for_url(f"{live}/console/map")
            _settled(page)
            assert page.locator("path.village").count() == 134, "every village polygon of 城区 is drawn"
            assert page.locator("path.village.village-approximate").count() == 134, "drawn as approximate"
            assert page.locator("path.area-district").count() == 1
            assert page.locator("path.warning-area").count() == 0
            assert page.locator("path.village.state-waiting").count() == 0
            assert "暂无生效预警" in page.locator("[data-testid=map-warnings]").locator("..").inner_text()
            assert "虚线村界" in page.locator("[data-testid=approximate-note]").inner_text()

            run_id = _push_red_and_answer(live)
            _change(page)
            page.wait_for_selector("path.warning-area.warning-red", state="attached")
            page.wait_for_selector("path.village.state-answered", state="attached")
            _settled(page)
            waiting = page.locator("path.village.state-waiting").count()
            answered = page.locator("path.village.state-answered").count()
            assert answered == ANSWERING and waiting > 10, (answered, waiting)
            assert page.locator(f"path.v-{VILLAGE}.state-waiting").count() == 1
            assert "红色预警" in page.locator("[data-testid=map-warnings]").inner_text()
            assert "红色预警" in page.locator("[data-testid=map-run]").inner_text()
            assert page.locator("[data-count=answered]").inner_text() == str(ANSWERING)
            _shot(page, "map-desktop")
            box = page.locator(f"path.v-{VILLAGE}").bounding_box()
            assert box
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            tip = page.locator(".leaflet-tooltip.map-tip")
            tip.wait_for()
            assert "建设路社区" in tip.inner_text() and "等待应答" in tip.inner_text(), "hover: name and state"
            page.locator("#map").screenshot(path=str(ARTIFACTS / "map-desktop-hover.png"))
            page.mouse.move(2, 2)

            page.locator(f"path.v-{VILLAGE}").dispatch_event("click")
            card = page.locator("[data-testid=village-card]")
            card.wait_for()
            people = card.locator("[data-testid=village-people]").inner_text()
            assert "演示村长001" in people and "演示网格员001" in people and "+8612300000001" in people
            assert "等待应答" in card.locator("[data-testid=village-state]").inner_text()
            assert "演示村长001" in card.locator("[data-testid=village-calls]").inner_text()
            assert page.evaluate("document.activeElement.id") == "village-title", "the panel takes the focus"
            assert f"village={VILLAGE}" in page.url, "a reload keeps the village open"
            assert page.locator(f"path.v-{VILLAGE}.selected").count() == 1
            _shot(page, "map-desktop-village")

            card.locator("[data-map-close]").click()
            page.wait_for_selector("[data-testid=village-card]", state="detached")
            # from the keyboard: the finder's select and its button
            page.locator("#map-village-pick").select_option("140502007201")
            page.locator("#map-village-pick").focus()
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")
            page.wait_for_selector("[data-testid=village-card][data-code=\"140502007201\"]")
            assert "【演示】西上庄滑坡隐患点" in page.locator("[data-testid=village-card]").inner_text()

            page.set_viewport_size(SIZES["phone"])
            page.goto(f"{live}/console/map?run={run_id}&village={VILLAGE}")
            _settled(page)
            page.wait_for_selector(f"path.v-{VILLAGE}.selected", state="attached")
            assert "演示村长001" in page.locator("[data-testid=village-people]").inner_text()
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            wide = page.evaluate("Array.from(document.querySelectorAll('body *')).filter(function (e) {"
                                 " return e.getBoundingClientRect().right > window.innerWidth + 1; })"
                                 ".slice(0, 5).map(function (e) { return e.tagName + '.' + e.className; })")
            assert overflow <= 0, f"the phone page is {overflow}px wider than the screen: {wide}"
            _shot(page, "map-phone")
            page.locator(f"path.v-{VILLAGE}").dispatch_event("click")
            page.wait_for_selector("[data-testid=village-card]")
            _shot(page, "map-phone-village")

            page.context.add_cookies([{"name": "jiaoying_lang", "value": "en", "url": live}])
            page.set_viewport_size(SIZES["desktop"])
            page.goto(f"{live}/console/map")
            _settled(page)
            page.wait_for_selector("path.warning-area.warning-red", state="attached")
            assert "Red warning" in page.locator("[data-testid=map-warnings]").inner_text()
            _shot(page, "map-desktop-en")
        finally:
            browser.close()
    assert requests
    strangers = [u for u in requests if urlsplit(u).netloc != origin]
    assert strangers == [], f"requests left Jiaoying's origin: {strangers}"
    assert any("/console/assets/leaflet/leaflet.js" in u for u in requests)
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
    assert page_errors == [], page_errors


def _shot(page: Any, name: str) -> None:
    """The whole page, and the map page's own part (below any alarm banner the page may show)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.locator("#map-page").screenshot(path=str(ARTIFACTS / f"{name}-map.png"))
