"""The map while the bundled drill runs live (``jiaoying demo --live``, a real process on an accelerated clock),
in headless Chromium logged in through the console: the full map page draws the drill's red warning area and
the 134 village polygons coloured by their call-and-answer state; the board's side column and the run's page
carry the smaller map of the same run, kept live while the drill moves; no request leaves the server's origin.
Screenshots at a duty-room screen (1366x768) and a phone width are kept under ``test-artifacts/console/``
(``map-drill-*.png``, ``board-map-*.png``, ``run-map-*.png``) for a person to look at."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.console.test_browser import _browser_or_skip
from tests.console.test_map_browser import ARTIFACTS, CHROMIUM, SIZES
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
VILLAGES = 134  # the bundled region's village polygons (南村镇's villages have none)
COLOURED = ("path.village.state-waiting, path.village.state-answered, path.village.state-escalated, "
            "path.village.state-unanswered")
PHONE_OVERFLOW = ("Array.from(document.querySelectorAll('body *')).filter(function (e) {"
                  " return e.getBoundingClientRect().right > window.innerWidth + 1; })"
                  ".slice(0, 5).map(function (e) { return e.tagName + '.' + e.className; })")


def _poll(what: str, check: Any, timeout: float) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            got = check()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def drill(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The live drill as a newcomer starts it; its base URL, the printed login and its first (red) run.

    The process is always ended, and the wait for it is bounded: a drill left running would hold its port.
    """
    port = free_port()
    out = tmp_path / "stdout.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jiaoying", "demo", "--live", "--out", str(tmp_path / "live"), "--port", str(port)],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            _poll("the server", lambda: http.get("/healthz").status_code == 200, 60)
            login = re.search(r"login: (\S+) (\S+)", out.read_text(encoding="utf-8"))
            assert login, out.read_text(encoding="utf-8")
            token = http.post("/auth/token", data={"username": login[1], "password": login[2]}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            runs = _poll("the drill's run", lambda: http.get("/responses/runs", headers=headers).json(), 60)
            assert runs[0]["level"] == "red" and runs[0]["drill"] is True
            _poll("the drill's calls", lambda: http.get(f"/callouts/runs/{runs[0]['id']}/board",
                                                         headers=headers).json()["callouts"], 30)
        yield {"base": base, "user": login[1], "password": login[2], "run": runs[0], "proc": proc, "out": out}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _map_drawn(page: Any, selector: str) -> None:
    """The map element has drawn its layers, with the villages and the drill's red area."""
    page.wait_for_selector(f"{selector}[data-loaded]", state="attached")
    page.wait_for_function(
        "(sel) => document.querySelectorAll(sel + ' path.village').length === 134", arg=selector)
    page.wait_for_selector(f"{selector} path.warning-area.warning-red", state="attached")
    page.wait_for_function("(args) => document.querySelectorAll(args[0] + ' ' + args[1]).length > 0",
                           arg=[selector, COLOURED.replace(", ", ", " + selector + " ")])


def _coloured(page: Any, selector: str) -> dict[str, int]:
    return {state: page.locator(f"{selector} path.village.state-{state}").count()
            for state in ("answered", "waiting", "escalated", "unanswered")}


def _no_overflow(page: Any, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wide = page.evaluate(PHONE_OVERFLOW) if overflow > 0 else []
    assert overflow <= 0, f"{name}: the phone page is {overflow}px wider than the screen: {wide}"


def _shot(page: Any, name: str, part: str | None = None) -> None:
    """The panel by itself, then the first screen as the officer sees it, then the whole page."""
    if part:
        page.locator(part).screenshot(path=str(ARTIFACTS / f"{name}-panel.png"), animations="disabled")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.screenshot(path=str(ARTIFACTS / f"{name}-page.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.timeout(280)
def test_the_map_shows_the_drill_on_its_page_on_the_board_and_on_the_run_page(drill: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base, run = drill["base"], drill["run"]
    origin = urlsplit(base).netloc
    requests: list[str] = []
    page_errors: list[str] = []
    csp_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(viewport=SIZES["desktop"])
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("console", lambda m: csp_errors.append(m.text)
                    if m.type == "error" and "Content Security Policy" in m.text else None)

            page.goto(f"{base}/login")
            page.fill("input[name=username]", drill["user"])
            page.fill("input[name=password]", drill["password"])
            page.click("form[action=\"/login\"] button[type=submit]")
            page.wait_for_url(f"{base}/")

            # the full map page
            page.goto(f"{base}/console/map")
            _map_drawn(page, "#map")
            assert page.locator("#map path.village").count() == VILLAGES
            states = _coloured(page, "#map")
            assert sum(states.values()) > 10, states
            assert "红色预警" in page.locator("[data-testid=map-run]").inner_text()
            assert run["number"] in page.locator("[data-testid=map-run]").inner_text()
            assert "演练" in page.locator("[data-testid=map-warnings]").inner_text()
            _shot(page, "map-drill-desktop")

            # the board: its urgent lists first, the map panel in the side column following the drill's run
            page.goto(f"{base}/")
            warnings_top = page.locator("#warnings").bounding_box()
            runs_top = page.locator("#runs").bounding_box()
            assert warnings_top and runs_top and warnings_top["y"] < 768 and runs_top["y"] < 768, \
                "the warnings and the runs start on the first screen"
            panel = page.locator("#map-box-auto")
            assert panel.locator("xpath=ancestor::div[contains(@class,'board-side')]").count() == 1
            panel.scroll_into_view_if_needed()
            _map_drawn(page, "#map-panel-auto")
            assert run["number"] in page.locator("[data-testid=map-panel-run]").inner_text()
            counts = page.locator("#map-box-auto [data-count=waiting]").inner_text()
            assert counts.isdigit(), "the panel's key counts the villages by state"
            box = page.locator("#map-panel-auto").bounding_box()
            assert box and box["width"] >= 300 and box["height"] >= 280, f"big enough to read: {box}"
            # live: the drill keeps changing things; the board is re-rendered around the panel, which stays
            # the same element and redraws itself
            page.evaluate("document.getElementById('map-panel-auto').jiaoyingMark = true")
            loaded = page.get_attribute("#map-panel-auto", "data-loaded")
            page.wait_for_function("(before) => { const el = document.getElementById('map-panel-auto');"
                                   " return el && el.getAttribute('data-loaded') !== before; }", arg=loaded,
                                   timeout=45_000)
            assert page.evaluate("!!document.getElementById('map-panel-auto').jiaoyingMark"), \
                "the live refresh keeps the panel in place"
            _shot(page, "board-map-desktop", "#map-box-auto")

            # the run's page: the panel beside the run's head, coloured by this run
            page.goto(f"{base}/console/runs/{run['id']}")
            selector = f"#map-panel-{run['id']}"
            _map_drawn(page, selector)
            assert page.get_attribute(selector, "data-run") == str(run["id"])
            head = page.locator("#run").bounding_box()
            box = page.locator(selector).bounding_box()
            assert head and box and box["y"] < 768, (
                f"the run's map is on its first screen: map {box}, head {head},"
                f" scrolled {page.evaluate('window.scrollY')}, alarms {page.locator('[data-testid=alarm]').count()}")
            assert box["x"] > head["x"] + head["width"] - 5, "beside the run's head on a wide screen"
            _shot(page, "run-map-desktop", f"#map-box-{run['id']}")

            # a phone
            page.set_viewport_size(SIZES["phone"])
            page.goto(f"{base}/console/map")
            _map_drawn(page, "#map")
            _no_overflow(page, "map")
            _shot(page, "map-drill-phone")
            page.goto(f"{base}/")
            page.locator("#map-box-auto").scroll_into_view_if_needed()
            _map_drawn(page, "#map-panel-auto")
            _no_overflow(page, "board")
            _shot(page, "board-map-phone", "#map-box-auto")
            page.goto(f"{base}/console/runs/{run['id']}")
            page.locator(selector).scroll_into_view_if_needed()
            _map_drawn(page, selector)
            _no_overflow(page, "run")
            _shot(page, "run-map-phone", f"#map-box-{run['id']}")
        finally:
            browser.close()
    assert drill["proc"].poll() is None, drill["out"].read_text(encoding="utf-8")
    strangers = [u for u in requests if urlsplit(u).netloc != origin]
    assert requests and strangers == [], f"requests left the server's origin: {strangers}"
    assert any("/console/map/layers/callouts.json?run=auto" in u for u in requests)
    assert any(f"/console/map/layers/callouts.json?run={run['id']}" in u for u in requests)
    assert csp_errors == [] and page_errors == [], (csp_errors, page_errors)
