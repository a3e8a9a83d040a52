"""A handover nobody acknowledged, in real headless Chromium against the whole server: the roster (through the
JSON API) has shift A, ended 40 minutes ago, and shift B on duty since then with its leader on duty. The
handover sweep (the scheduler's job; the live test server runs without a scheduler, so the test runs the job
once on the server's database) drafts A's handover and, 30 minutes into B, flags it. The leader on duty sees
the flag on the board and the overdue handover on the duty page; once A's officer has signed and B's officer
acknowledges in the browser, the flag leaves the board. Then B's officer edits and removes a coming shift.
Screenshots (desktop and phone in Chinese, desktop in English) go under ``test-artifacts/console/``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.console.test_browser import ARTIFACTS, CHROMIUM, SIZES, _browser_or_skip
from tests.live import console_server

PASSWORD = "flag-pass-123"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "flag.db"
    with console_server(db, [("wang", "王交班", "duty_officer", PASSWORD),
                             ("zhao", "赵接班", "duty_officer", PASSWORD),
                             ("qian", "钱带班", "leader", PASSWORD)], secret="duty-flag") as url:
        yield url, db


def _headers(c: httpx.Client, username: str) -> dict[str, str]:
    token = c.post("/auth/token", data={"username": username, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _seed(base: str) -> int:
    """A (ended 40 minutes ago), B (on duty, 钱带班 leading), C (tomorrow, to edit and remove); C's id."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    change = now - dt.timedelta(minutes=40)
    b_end = change + dt.timedelta(hours=12)
    with httpx.Client(base_url=base, timeout=30) as c:
        h = _headers(c, "wang")
        r = c.post("/responses/roster/shifts", headers=h, json={"shifts": [
            {"starts_at": (change - dt.timedelta(hours=12)).isoformat(), "ends_at": change.isoformat(),
             "label": "白班", "leader": {"name": "李带班"}, "officers": [{"name": "王交班"}]},
            {"starts_at": change.isoformat(), "ends_at": b_end.isoformat(), "label": "夜班",
             "leader": {"name": "钱带班"}, "officers": [{"name": "赵接班"}]},
            {"starts_at": b_end.isoformat(), "ends_at": (b_end + dt.timedelta(hours=12)).isoformat(),
             "label": "次日白班", "leader": {"name": "李带班"}, "officers": [{"name": "孙值班"}]}]})
        assert r.status_code == 201, r.text
        shifts = c.get("/responses/roster/shifts", headers=h).json()
    return next(s["id"] for s in shifts if s["label"] == "次日白班")


def _sweep(db: Path) -> dict[str, list[int]]:
    """One tick of the scheduler's handover sweep on the server's database."""
    from config.database import make_engine, make_session_factory, session_scope
    from responses.duty import handovers

    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_scope(make_session_factory(engine)) as s:
            return handovers.sweep(s, dt.datetime.now(dt.UTC), ZoneInfo("Asia/Shanghai"))
    finally:
        engine.dispose()


def _log_in(page: Any, live: str, username: str) -> None:
    page.goto(f"{live}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action=\"/login\"] button[type=submit]")
    page.wait_for_url(f"{live}/")


@pytest.mark.browser
def test_an_unacknowledged_handover_is_flagged_until_acknowledged(live: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    url, db = live
    later_id = _seed(url)
    swept = _sweep(db)
    assert len(swept["drafted"]) == 1 and swept["flagged"] == swept["drafted"], swept
    handover_id = swept["flagged"][0]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    origin = urlsplit(url).netloc
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(viewport=SIZES["desktop"])
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: d.accept())

            _log_in(page, url, "qian")  # the leader on duty
            row = page.locator(f"[data-testid=board-handover][data-handover-id='{handover_id}']")
            assert row.get_attribute("data-overdue") == "true"
            assert "交接班未确认" in row.inner_text() and "白班" in row.inner_text()
            assert page.locator("[data-testid=board-handover-flagged]").count() == 1
            box = row.bounding_box()
            assert box is not None and box["y"] + box["height"] < SIZES["desktop"]["height"], "on the first screen"
            runs = page.locator("#runs")
            runs_box = runs.bounding_box()
            assert runs_box is not None and runs_box["y"] < SIZES["desktop"]["height"], "runs stay in view"
            page.screenshot(path=str(ARTIFACTS / "duty-flag-board-zh-desktop.png"))
            page.goto(f"{url}/console/duty")
            duty_row = page.locator(f"[data-testid=duty-handover][data-handover-id='{handover_id}']")
            assert "row-overdue" in (duty_row.get_attribute("class") or "")
            assert "已超过确认时限" in duty_row.inner_text(), duty_row.inner_text()

            phone = browser.new_context(viewport=SIZES["phone"], is_mobile=True)
            ppage = phone.new_page()
            _log_in(ppage, url, "qian")
            assert ppage.locator("[data-testid=board-handover]").count() == 1
            ppage.screenshot(path=str(ARTIFACTS / "duty-flag-board-zh-phone.png"))
            phone.close()
            en = browser.new_context(viewport=SIZES["desktop"])
            en.add_cookies([{"name": "jiaoying_lang", "value": "en", "url": url}])
            epage = en.new_page()
            _log_in(epage, url, "qian")
            assert "Handover not acknowledged" in epage.locator("[data-testid=board-duty-line]").inner_text()
            epage.screenshot(path=str(ARTIFACTS / "duty-flag-board-en-desktop.png"))
            en.close()

            with httpx.Client(base_url=url, timeout=30) as c:  # A's officer signs, late
                r = c.post(f"/duty/handovers/{handover_id}/sign", headers=_headers(c, "wang"), json={})
                assert r.status_code == 200, r.text
            page.click("[data-testid=logout]")
            page.wait_for_url(f"{url}/login")
            _log_in(page, url, "zhao")  # B's officer acknowledges
            page.goto(f"{url}/console/duty/handovers/{handover_id}")
            page.fill("#ack-note", "已阅，接班")
            page.click("[data-testid=handover-ack]")
            page.wait_for_selector("[data-testid=handover][data-state=acknowledged]")
            page.goto(f"{url}/")
            assert page.locator("[data-testid=board-handover]").count() == 0, "the flag has left the board"

            # the roster: edit tomorrow's shift, then remove it (after the confirmation)
            page.goto(f"{url}/console/duty")
            shift = page.locator(f"[data-testid=duty-shift][data-shift-id='{later_id}']")
            shift.locator("summary").click()
            shift.locator("input[name=label]").fill("次日白班（调整）")
            shift.locator("textarea[name=officers]").fill("孙值班 13800000001\n周值班")
            shift.locator("[data-testid=duty-shift-save]").click()
            page.wait_for_selector("[data-testid=done]")
            shift = page.locator(f"[data-testid=duty-shift][data-shift-id='{later_id}']")
            assert "次日白班（调整）" in shift.inner_text() and "周值班" in shift.inner_text()
            on_duty = page.locator("[data-testid=duty-shift]:has([data-testid=duty-shift-on])")
            assert on_duty.count() == 1 and on_duty.locator("[data-testid=duty-shift-remove]").count() == 0
            shift.locator("summary").click()
            page.screenshot(path=str(ARTIFACTS / "duty-flag-roster-edit-zh-desktop.png"), full_page=True)
            shift.locator("[data-testid=duty-shift-remove]").click()
            page.wait_for_selector("[data-testid=done]")
            assert page.locator(f"[data-testid=duty-shift][data-shift-id='{later_id}']").count() == 0
            page.goto(f"{url}/")
            gap = page.locator("[data-testid=board-gap][data-kind=no_shift]")
            assert gap.count() == 1, "with tomorrow's shift gone, nobody is rostered after the night shift"
            page.screenshot(path=str(ARTIFACTS / "duty-flag-board-gap-zh-desktop.png"))
        finally:
            browser.close()
    strangers = [u for u in requests if urlsplit(u).netloc != origin]
    assert strangers == [], f"requests left Jiaoying's origin: {strangers}"
