"""The live console in real headless Chromium against the whole server (uvicorn): a red warning pushed through
the API appears on the open board without a reload, its alarm banner shows and the generated siren sounds; the
acknowledgement silences it and is recorded; the lost-server sign shows when the server goes away and hides
when it is back. Every request the page makes goes to Jiaoying's own origin."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from config.database import make_engine, make_session_factory, session_scope
from config.eventlog import Event
from config.settings import Settings
from config.users import User, hash_password
from jiaoying.app import create_app
from jiaoying.cli_common import upgrade_and_seed
from responses.messaging.fake_twilio.server import ThreadedServer
from tests.live import free_port, red_cap_now

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "duty-pass-123"


def _browser_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("headless Chromium is required under CI=true")
        pytest.skip("chromium not installed")


class Site:
    """The server on a fixed port, which the test can stop and start again on the same database."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = Settings(
            env="test", public_base_url=self.url, database={"url": f"sqlite:///{tmp_path / 'live.db'}"},
            scheduler={"enabled": False}, security={"secret_key": "console-live-" + "k" * 40},
        )
        self.server: ThreadedServer | None = None

    def start(self) -> None:
        self.server = ThreadedServer(create_app(self.settings), port=self.port)
        # an open event stream must not hold the shutdown up: it is cut after a second, as a restart would
        self.server.server.config.timeout_graceful_shutdown = 1
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def events(self, action: str) -> list[Event]:
        engine = make_engine(self.settings.database.url)
        try:
            with session_scope(make_session_factory(engine)) as s:
                rows = list(s.execute(select(Event).where(Event.action == action)).scalars())
                s.expunge_all()
                return rows
        finally:
            engine.dispose()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    upgrade_and_seed(site.settings)
    engine = make_engine(site.settings.database.url)
    with session_scope(make_session_factory(engine)) as s:
        s.add(User(username="duty", display_name="张值班", password_hash=hash_password(PASSWORD),
                   role="duty_officer", created_at=dt.datetime.now(dt.UTC)))
    engine.dispose()
    site.start()
    try:
        yield site
    finally:
        site.stop()


def api_post(base: str, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as c:
        token = c.post("/auth/token", data={"username": "duty", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}", **kwargs.pop("headers", {})}
        return c.post(path, headers=headers, **kwargs)


def push_red(base: str, prefix: str) -> None:
    r = api_post(base, "/feeds/national-cap/items", content=red_cap_now(prefix),
                 headers={"Content-Type": "application/cap+xml"})
    assert r.status_code == 202, r.text


def enter_blue(base: str, headline: str) -> None:
    r = api_post(base, "/warnings/manual", json={"channel": "phone", "source": "晋城市气象台", "hazard": "weather",
                                                 "event": "大风", "level": "blue", "headline": headline})
    assert r.status_code == 201, r.text


# A form being filled in, put on the board by the test (the board itself has none): live updates must wait.
TYPING_FORM = """() => {
  const form = document.createElement("form");
  form.id = "typing-form";
  const input = document.createElement("input");
  input.id = "typing-note";
  input.name = "note";
  form.appendChild(input);
  document.getElementById("main").prepend(form);
}"""


def log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "duty")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action=\"/login\"] button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.wait_for_selector("body[data-live=open]", state="attached", timeout=10_000)


@pytest.mark.browser
def test_a_red_warning_appears_live_sounds_the_alarm_and_is_acknowledged(site: Site) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    origin = urlsplit(site.url).netloc
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            navigations: list[str] = []
            page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
            log_in(page, site.url)
            assert page.locator("[data-testid=warning]").count() == 0
            assert page.evaluate("document.body.dataset.alarm") == "silent"
            assert page.locator("#link-state").is_hidden()
            page.evaluate("document.body.setAttribute('data-kept', 'yes')")  # gone if the page were reloaded
            loaded = len(navigations)

            # someone is typing: the page's content waits, a notice offers the refresh instead
            page.evaluate(TYPING_FORM)
            page.fill("#typing-note", "正在记录来电内容")
            enter_blue(site.url, "城区大风蓝色预警")
            notice = page.locator("[data-testid=live-notice]")
            notice.wait_for(state="visible", timeout=10_000)
            assert "有新变化，点此刷新" in notice.inner_text()
            assert page.input_value("#typing-note") == "正在记录来电内容", "what was typed is untouched"
            assert page.locator("[data-testid=warning][data-level=blue]").count() == 0
            notice.click()  # asked for: the board is brought up to date (the test's own form goes with it)
            page.wait_for_selector("[data-testid=warning][data-level=blue]", timeout=10_000)
            assert notice.is_hidden() and page.locator("#typing-form").count() == 0

            push_red(site.url, "live-browser")
            started = time.monotonic()
            page.wait_for_selector("[data-testid=warning][data-level=red]", timeout=15_000)
            shown_after = time.monotonic() - started
            assert len(navigations) == loaded and page.evaluate("document.body.getAttribute('data-kept')") == "yes", \
                "the board changed in place, without a reload"
            banner = page.locator("#alarms [data-testid=alarm]")
            banner.first.wait_for(timeout=10_000)
            assert banner.count() == 1
            text = banner.inner_text()
            assert "红色预警" in text and "新红色预警" in text and "确认收到" in text
            page.wait_for_selector("body[data-alarm=sounding]", state="attached", timeout=5_000)
            assert page.locator("[data-testid=alarm-sound]").is_hidden(), "no button needed when audio runs"
            before = page.locator("[data-testid=clock]").inner_text()
            page.wait_for_timeout(1500)
            assert page.locator("[data-testid=clock]").inner_text() != before, "the clock still ticks after a refresh"
            page.screenshot(path=str(ARTIFACTS / "alarm-zh-desktop.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(ARTIFACTS / "alarm-zh-phone.png"))
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"the banner makes the phone page {overflow}px wider than the screen"
            page.set_viewport_size({"width": 1366, "height": 768})

            page.locator("[data-testid=alarm-ack]").focus()
            page.keyboard.press("Enter")  # reachable from the keyboard
            page.wait_for_selector("#alarms [data-testid=alarm]", state="detached", timeout=10_000)
            page.wait_for_selector("body[data-alarm=silent]", state="attached", timeout=5_000)
            assert len(navigations) == loaded, "acknowledged without leaving the page"
            [ack] = site.events("console.alarm_acknowledged")
            assert ack.actor == "user:duty" and ack.entity_type == "alarm"
            page.reload()
            page.wait_for_selector("body[data-live=open]", state="attached")
            page.wait_for_timeout(500)
            assert page.locator("#alarms [data-testid=alarm]").count() == 0, "it stays acknowledged"

            # the server goes away: the page says so; it comes back: the sign goes and the page catches up
            site.stop()
            page.wait_for_selector("#link-state", state="visible", timeout=15_000)
            assert page.evaluate("document.body.dataset.live") == "lost"
            page.screenshot(path=str(ARTIFACTS / "link-lost-zh.png"))
            site.start()
            page.wait_for_selector("#link-state", state="hidden", timeout=20_000)
            assert page.evaluate("document.body.dataset.live") == "open"
            push_red(site.url, "live-browser-again")
            page.locator("#alarms [data-testid=alarm]").first.wait_for(timeout=15_000)
            page.wait_for_selector("body[data-alarm=sounding]", state="attached", timeout=5_000)
        finally:
            browser.close()
    assert shown_after < 5, f"the warning took {shown_after:.1f}s to appear"
    assert requests
    strangers = [u for u in requests if urlsplit(u).netloc != origin]
    assert strangers == [], f"requests left Jiaoying's origin: {strangers}"
    assert not [e for e in errors if "Content Security Policy" in e], errors


# Reports each alarm state with the sound button's visibility on the console, so the test can watch the page
# without evaluating anything in it: Playwright's evaluations count as a user gesture and would unlock the audio.
WATCH_ALARM_STATE = """
new MutationObserver(function () {
  var b = document.querySelector("[data-alarm-sound]");
  console.log("alarm-state " + document.body.dataset.alarm + " " + (b && !b.hidden ? "button" : "no-button"));
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-alarm"]});
"""


@pytest.mark.browser
def test_without_autoplay_the_banner_offers_to_enable_the_sound(site: Site) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    origin = urlsplit(site.url).netloc
    requests: list[str] = []
    states: list[str] = []
    push_red(site.url, "live-blocked")
    with httpx.Client(base_url=site.url) as c:  # a session without a single gesture on the page
        c.post("/auth/token", data={"username": "duty", "password": PASSWORD}).raise_for_status()
        session = c.cookies["jiaoying_session"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=[*ARGS, "--autoplay-policy=document-user-activation-required"])
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            context.add_cookies([{"name": "jiaoying_lang", "value": "en", "url": site.url},
                                 {"name": "jiaoying_session", "value": session, "url": site.url}])
            context.add_init_script(WATCH_ALARM_STATE)
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: states.append(m.text) if m.text.startswith("alarm-state") else None)
            page.goto(f"{site.url}/")
            deadline = time.monotonic() + 10
            while "alarm-state blocked button" not in states and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            assert states[-1:] == ["alarm-state blocked button"], states
            button = page.locator("[data-testid=alarm-sound]")
            assert "Click to enable the alarm sound" in button.inner_text()
            assert "New red warning" in page.locator("#alarms").inner_text()
            button.click()
            page.wait_for_selector("body[data-alarm=sounding]", state="attached", timeout=5_000)
            assert button.is_hidden()
            assert states[-1] == "alarm-state sounding no-button", states
        finally:
            browser.close()
    assert [u for u in requests if urlsplit(u).netloc != origin] == []


# Counts the change messages the page hears and notes when it fetches what (in the page's own clock: the test's
# thread is busy writing rows meanwhile and would see the requests late).
COUNT_CHANGES = """
window.jiaoyingChanges = 0;
window.jiaoyingFetches = [];
document.addEventListener("jiaoying:change", function () { window.jiaoyingChanges += 1; });
var pageFetch = window.fetch;
window.fetch = function (url) {
  window.jiaoyingFetches.push([new URL(String(url), location.href).pathname, performance.now() / 1000]);
  return pageFetch.apply(this, arguments);
};
"""


@pytest.mark.browser
def test_a_burst_of_changes_refreshes_the_page_a_few_times_and_shows_the_last(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """200 rows written within a few seconds, then a warning: the page is fetched at most once every two
    seconds (the last fetch after the last change, so the warning shows), the banners only when a row may
    have changed them. The server is made to send a message per read here, so the page's own limit is what
    is measured."""
    from playwright.sync_api import sync_playwright

    from config.clock import SystemClock
    from config.eventlog import record
    from console import live

    _browser_or_skip()
    monkeypatch.setattr(live, "COALESCE_SECONDS", 0.0)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        engine = make_engine(site.settings.database.url)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            context.add_init_script(COUNT_CHANGES)
            page = context.new_page()
            log_in(page, site.url)
            page.wait_for_timeout(2500)  # the load's own fetches are over
            factory = make_session_factory(engine)
            clock = SystemClock()
            started = page.evaluate("performance.now() / 1000")
            for i in range(200):
                with session_scope(factory) as s:
                    action = "callout.escalated" if i == 100 else ("callout.started", "outbox.sent")[i % 2]
                    record(s, now=clock.now(), action=action, entity_type=action.split(".")[0], entity_id=i,
                           actor="rule:test")
                time.sleep(0.015)
            enter_blue(site.url, "城区大风蓝色预警（最后一条）")
            last_change = page.evaluate("performance.now() / 1000")
            page.wait_for_selector("[data-testid=warning][data-level=blue]", timeout=10_000)
            shown_after = page.evaluate("performance.now() / 1000") - last_change
            page.wait_for_timeout(3000)  # anything still to come would come now
            changes = page.evaluate("window.jiaoyingChanges")
            fetches = [(path, at) for path, at in page.evaluate("window.jiaoyingFetches") if at >= started]
            page.screenshot(path=str(ARTIFACTS / "burst-final-desktop.png"))
        finally:
            engine.dispose()
            browser.close()
    pages = [at for path, at in fetches if path == "/"]
    alarms = [at for path, at in fetches if path == "/console/alarms"]
    seconds = last_change - started
    print(f"{changes} change messages over {seconds:.1f} s → {len(pages)} page fetches, {len(alarms)} alarm fetches; "
          f"the last warning shown {shown_after:.1f} s after it was entered")
    assert changes >= 20, f"the server sent {changes} messages: the page's own limit is not exercised"
    print("page fetched at", [round(t - started, 2) for t in pages], "s; banners at",
          [round(t - started, 2) for t in alarms], "s")
    gaps = [b - a for a, b in zip(pages, pages[1:], strict=False)]
    assert pages and min(gaps, default=2.0) >= 1.9, gaps
    assert len(pages) <= seconds / 2 + 3, (len(pages), seconds)
    assert pages[-1] >= last_change, "a trailing fetch after the last change"
    assert 1 <= len(alarms) <= 3, f"banners fetched {len(alarms)} times: for the escalation and the warning only"


@pytest.mark.browser
def test_a_refresh_keeps_a_section_the_officer_opened_open(site: Site) -> None:
    """A warning's page with its CAP text opened: the next change redraws the page, the section stays open."""
    from playwright.sync_api import sync_playwright

    from warning.models import Warning

    _browser_or_skip()
    enter_blue(site.url, "城区大风蓝色预警（展开查看）")
    engine = make_engine(site.settings.database.url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            wid = s.execute(select(Warning.id)).scalar_one()
    finally:
        engine.dispose()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            log_in(page, site.url)
            page.goto(f"{site.url}/console/warnings/{wid}")
            page.wait_for_selector("body[data-live=open]", state="attached", timeout=10_000)
            page.click("details.w-cap > summary")
            assert page.evaluate("document.querySelector('details.w-cap').open")
            page.evaluate("document.querySelector('details.w-cap').jiaoyingBefore = true")
            enter_blue(site.url, "城区大风蓝色预警（另一条）")  # a change: every open page is redrawn
            page.wait_for_function(
                "() => { const d = document.querySelector('details.w-cap'); return d && !d.jiaoyingBefore; }",
                timeout=15_000)
            assert page.evaluate("document.querySelector('details.w-cap').open"), "the redraw closed it"
        finally:
            browser.close()
