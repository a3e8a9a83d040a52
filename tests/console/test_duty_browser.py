"""The duty room in real headless Chromium against the whole server: with two shifts on the roster and a red
warning's response open, the outgoing officer drafts the handover in the console (the open run is in it),
edits and signs it; the incoming officer logs in and acknowledges it; the page shows it acknowledged, with
the time. Every request stays on Jiaoying's origin. A screenshot is kept under ``test-artifacts/console/``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.console.test_browser import ARTIFACTS, CHROMIUM, SIZES, _browser_or_skip
from tests.live import console_server, red_cap_now

PASSWORD = "duty-pass-123"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[str]:
    with console_server(tmp_path / "duty.db", [("wang", "王交班", "duty_officer", PASSWORD),
                                               ("zhao", "赵接班", "duty_officer", PASSWORD)],
                        secret="duty-room") as url:
        yield url


def _seed(base: str) -> None:
    """Two shifts (王交班's ends in 20 minutes, 赵接班's follows) and a red warning pushed in as a feed would."""
    with httpx.Client(base_url=base, timeout=30) as c:
        token = c.post("/auth/token", data={"username": "wang", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        change = now + dt.timedelta(minutes=20)
        r = c.post("/responses/roster/shifts", headers=h, json={"shifts": [
            {"starts_at": (now - dt.timedelta(hours=8)).isoformat(), "ends_at": change.isoformat(), "label": "白班",
             "leader": {"name": "李带班"}, "officers": [{"name": "王交班"}]},
            {"starts_at": change.isoformat(), "ends_at": (change + dt.timedelta(hours=12)).isoformat(),
             "label": "夜班", "leader": {"name": "钱带班"}, "officers": [{"name": "赵接班"}]}]})
        assert r.status_code == 201, r.text
        r = c.post("/feeds/national-cap/items", content=red_cap_now("duty"),
                   headers={**h, "Content-Type": "application/cap+xml"})
        assert r.status_code == 202, r.text
        runs = c.get("/responses/runs", headers=h).json()
        assert any(run["state"] in ("active", "closing") for run in runs), runs


def _log_in(page: Any, live: str, username: str) -> None:
    page.goto(f"{live}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action=\"/login\"] button[type=submit]")
    page.wait_for_url(f"{live}/")


@pytest.mark.browser
def test_a_shift_ends_the_handover_is_drafted_signed_and_acknowledged(live: str) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    _seed(live)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    origin = urlsplit(live).netloc
    requests: list[str] = []
    console_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(viewport=SIZES["desktop"])
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("dialog", lambda d: d.accept())  # the data-confirm question before signing

            _log_in(page, live, "wang")
            page.click("nav a[href='/console/duty']")
            page.wait_for_url(f"{live}/console/duty")
            assert page.locator("[data-testid=duty-leader]").inner_text() == "李带班"
            assert "尚无交接班记录" in page.locator("[data-testid=duty-handovers]").inner_text()

            page.fill("#log-text", "东村来电：河水上涨，已通知转移")
            page.select_option("#log-kind", "call")
            page.check("#log-for-handover")
            page.click("[data-testid=duty-write] button[type=submit]")
            page.wait_for_selector("[data-testid=done]")
            assert "东村来电" in page.locator("[data-testid=duty-log]").inner_text()

            page.click("[data-testid=duty-draft]")
            page.wait_for_selector("[data-testid=handover][data-state=draft]")
            runs = page.locator("[data-testid=section-item][data-section=runs]")
            assert runs.count() >= 1, "the open run is in the handover"
            note = page.locator("textarea[data-testid=handover-text]")
            text = note.input_value()
            number = runs.first.locator("a").inner_text().strip()
            assert number and f"响应 {number}" in text, "the note names the open run"
            assert "东村来电" in text, "the marked log entry is handed over"
            page.screenshot(path=str(ARTIFACTS / "duty-handover-zh-desktop.png"), full_page=True)
            note.fill(text + "补充：夜间注意雨情。\n")
            page.click("[data-testid=handover-sign]")
            page.wait_for_selector("[data-testid=handover][data-state=signed]")
            assert "王交班" in page.locator("[data-testid=handover-signed]").inner_text()
            handover_url = page.url.split("?")[0]
            page.click("[data-testid=logout]")
            page.wait_for_url(f"{live}/login")

            _log_in(page, live, "zhao")
            page.goto(handover_url)
            assert "补充：夜间注意雨情" in page.locator("[data-testid=handover-text]").inner_text()
            page.fill("#ack-note", "已阅，接班")
            page.click("[data-testid=handover-ack]")
            page.wait_for_selector("[data-testid=handover][data-state=acknowledged]")
            acked = page.locator("[data-testid=handover-acknowledged]").inner_text()
            assert "赵接班" in acked and re.search(r"20\d\d-\d\d-\d\d \d\d:\d\d", acked), acked
            assert page.locator("[data-testid=handover-state]").inner_text() == "已确认"
            page.goto(f"{live}/console/duty")
            row = page.locator("[data-testid=duty-handover][data-state=acknowledged]")
            assert row.count() == 1 and "赵接班" in row.inner_text()
            page.screenshot(path=str(ARTIFACTS / "duty-zh-desktop.png"), full_page=True)
        finally:
            browser.close()
    assert requests
    strangers = [u for u in requests if urlsplit(u).netloc != origin]
    assert strangers == [], f"requests left Jiaoying's origin: {strangers}"
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
