"""The console in real headless Chromium against the whole server (uvicorn): log in through the form, read
the board with a red warning and its run, switch to English, log out. Every request the page makes must go to
Jiaoying's own origin. Screenshots of the board in both languages, at a duty-room screen and a phone width,
are kept under ``test-artifacts/console/`` for a person to look at."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.live import console_server, red_cap_now

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def _browser_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("headless Chromium is required under CI=true")
        pytest.skip("chromium not installed")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[str]:
    with console_server(tmp_path / "console.db", [
            (username, name, role, f"{username}-pass-123")
            for username, name, role in (("duty", "张值班", "duty_officer"), ("lead", "李带班", "leader"),
                                         ("look", "王查看", "viewer"))], secret="console") as url:
        yield url


def _seed_through_the_api(base: str) -> None:
    """A red warning pushed in as a feed would push it, and tonight's shift in the roster."""
    with httpx.Client(base_url=base, timeout=30) as c:
        token = c.post("/auth/token", data={"username": "duty", "password": "duty-pass-123"}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        now = dt.datetime.now(dt.UTC)
        r = c.post("/responses/roster/shifts", headers=h, json={"shifts": [{
            "starts_at": (now - dt.timedelta(hours=2)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=10)).isoformat(),
            "leader": {"name": "李带班", "phone": "+8612300009001"},
            "officers": [{"name": "张值班", "phone": "+8612300009002"}]}]})
        assert r.status_code == 201, r.text
        r = c.post("/feeds/national-cap/items", content=red_cap_now("console"),
                   headers={**h, "Content-Type": "application/cap+xml"})
        assert r.status_code == 202, r.text


@pytest.mark.browser
def test_log_in_read_the_board_switch_language_log_out(live: str) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    _seed_through_the_api(live)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    origin = urlsplit(live).netloc
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(viewport=SIZES["desktop"])
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            console_errors: list[str] = []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

            page.goto(f"{live}/")
            assert page.url.endswith("/login")
            page.fill("input[name=username]", "duty")
            page.fill("input[name=password]", "wrong-pass")
            page.click("form[action=\"/login\"] button[type=submit]")
            assert "用户名或密码错误" in page.locator("[data-testid=login-error]").inner_text()
            page.fill("input[name=password]", "duty-pass-123")
            page.click("form[action=\"/login\"] button[type=submit]")
            page.wait_for_url(f"{live}/")

            warning = page.locator("[data-testid=warning][data-level=red]").first
            assert "红色预警" in warning.inner_text()
            assert page.locator("[data-testid=leader]").inner_text() == "李带班"
            assert page.locator("[data-testid=run]").count() >= 1
            assert page.evaluate("document.documentElement.lang") == "zh-CN"
            clock = page.locator("[data-testid=clock]").inner_text()
            assert clock[:2] == "20" and ":" in clock
            _shots(page, "zh")

            page.locator("[data-testid=lang-switch]").focus()
            page.keyboard.press("Enter")  # reachable from the keyboard
            page.wait_for_selector("html[lang=en]", state="attached")  # the CSP forbids eval: no wait_for_function
            assert "Red warning" in page.locator("[data-testid=warning][data-level=red]").first.inner_text()
            page.reload()
            assert page.evaluate("document.documentElement.lang") == "en", "the choice is remembered"
            _shots(page, "en")

            page.click("[data-testid=logout]")
            page.wait_for_url(f"{live}/login")
            page.goto(f"{live}/")
            assert page.url.endswith("/login")
        finally:
            browser.close()
    assert requests
    strangers = [u for u in requests if urlsplit(u).netloc != origin]
    assert strangers == [], f"requests left Jiaoying's origin: {strangers}"
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors


def _shots(page: Any, lang: str) -> None:
    for name, size in SIZES.items():
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / f"board-{lang}-{name}.png"), full_page=True)
        page.screenshot(path=str(ARTIFACTS / f"board-{lang}-{name}-first-screen.png"))
        page.locator("[data-testid=run]").first.screenshot(path=str(ARTIFACTS / f"run-{lang}-{name}.png"))
        # nothing wider than the screen: no sideways scrolling on a phone
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{lang} {name}: the page is {overflow}px wider than the screen"
    page.set_viewport_size(SIZES["desktop"])


def _log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass-123")
    page.click("form[action=\"/login\"] button[type=submit]")
    page.wait_for_url(f"{base}/")


@pytest.mark.browser
def test_a_leader_acts_on_a_red_warning_and_a_viewer_cannot(live: str) -> None:
    """The issue's walk-through: the board open, a red warning pushed through the API appears without a reload
    and sounds the alarm; acknowledged; the run opened; a callout confirmed by phone with a note; a measure
    carried out and lifted; logged out. Then a viewer: no action buttons, and 403 from the endpoints."""
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    origin = urlsplit(live).netloc
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--autoplay-policy=no-user-gesture-required"])
        try:
            context = browser.new_context(viewport=SIZES["desktop"])
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: d.accept())  # the confirmations of what cannot be undone
            _log_in(page, live, "lead")
            page.wait_for_selector("body[data-live=open]", timeout=10_000)
            assert page.locator("[data-testid=warning][data-level=red]").count() == 0

            _seed_through_the_api(live)  # while the board is open
            page.wait_for_selector("[data-testid=warning][data-level=red]", timeout=15_000)
            page.wait_for_selector("body[data-alarm=sounding]", timeout=15_000)
            banner = page.locator("#alarms button[type=submit]").first
            banner.click()
            page.wait_for_selector("body[data-alarm=silent]", timeout=15_000)

            page.locator("[data-testid=run] a[href^='/console/runs/']").first.click()
            page.wait_for_url(f"{live}/console/runs/*")
            callout = page.locator("[data-testid=callout][data-state=calling]").first
            callout_id = callout.get_attribute("data-callout-id")
            callout.locator("[data-testid=confirm-callout] input[name=note]").fill("电话确认：已收到，正在组织转移")
            callout.locator("[data-testid=confirm-callout] button[type=submit]").click()
            page.wait_for_selector("[data-testid=done]")
            row = page.locator(f"[data-testid=callout][data-callout-id='{callout_id}']")
            assert row.get_attribute("data-state") == "answered"
            assert "正在组织转移" in row.inner_text()
            page.screenshot(path=str(ARTIFACTS / "run-page-zh-desktop.png"), full_page=True)

            measure = page.locator("[data-testid=measure]:has([data-action=carry_out])").first
            measure_id = measure.get_attribute("data-measure-id")
            mine = f"[data-testid=measure][data-measure-id='{measure_id}']"

            def act(action: str, **fields: str) -> None:
                form = page.locator(f"{mine} form:has([data-action={action}])")
                for name, value in fields.items():
                    box = form.locator(f"[name={name}]")
                    if box.count():
                        box.fill(value)
                figure = form.locator("input[name=figure]")
                if figure.count():
                    figure.fill("3")
                form.locator(f"[data-action={action}]").click()
                page.wait_for_selector("[data-testid=done]")

            act("carry_out", note="已落实")
            assert page.locator(mine).get_attribute("data-state") == "carried_out"
            act("order_lift", reason="预警解除")
            assert page.locator(mine).get_attribute("data-state") == "lifting"
            act("confirm_lifted")
            assert page.locator(mine).get_attribute("data-state") == "lifted"

            page.click("[data-testid=logout]")
            page.wait_for_url(f"{live}/login")

            _log_in(page, live, "look")
            run_href = page.locator("[data-testid=run] a[href^='/console/runs/']").first.get_attribute("href")
            page.goto(f"{live}{run_href}")
            assert page.locator("[data-testid=callout]").count() > 0, "a viewer reads the board"
            assert page.locator("main form").count() == 0, "a viewer sees no action buttons"
            token = page.locator("meta[name=csrf-token]").get_attribute("content")
            status = page.request.post(f"{live}{run_href}/callouts/{callout_id}/answer",
                                       form={"note": "x", "csrf_token": token}).status
            assert status == 403
            status = page.request.post(f"{live}{run_href}/measures/{measure_id}/carry_out",
                                       form={"csrf_token": token}).status
            assert status == 403
        finally:
            browser.close()
    strangers = [u for u in requests if urlsplit(u).netloc != origin]
    assert strangers == [], f"requests left Jiaoying's origin: {strangers}"
