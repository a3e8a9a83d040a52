"""report.html renders in headless Chromium, with both charts drawn and their Chinese text laid out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from responses.audit.render import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _browser_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("headless Chromium is required under CI=true")
        pytest.skip("chromium not installed")


def render_in_browser(path: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            info: dict[str, Any] = page.evaluate("""() => {
                const charts = [...document.querySelectorAll('svg.chart')];
                return {
                  title: document.title,
                  charts: charts.map(svg => {
                    const r = svg.getBoundingClientRect();
                    const texts = [...svg.querySelectorAll('text')];
                    return {
                      cls: svg.getAttribute('class'), width: r.width, height: r.height,
                      marks: svg.querySelectorAll('circle, rect, polygon, line').length,
                      chinese: texts.filter(t => /[\\u4e00-\\u9fff]/.test(t.textContent))
                                    .map(t => ({text: t.textContent, w: t.getBBox().width})),
                    };
                  }),
                  kpis: [...document.querySelectorAll('[data-kpi]')].map(e => e.dataset.kpi),
                };
            }""")
            info["requests"] = requests
            return info
        finally:
            browser.close()


@pytest.mark.browser
def test_html_renders_with_charts(sample_report: dict[str, Any], tmp_path: Path) -> None:
    _browser_or_skip()
    path = write_report(sample_report, tmp_path)["html"]
    info = render_in_browser(path)
    assert info["requests"] == [path.as_uri()], "the page must not fetch anything"
    assert "演练" in info["title"]
    classes = [c["cls"] for c in info["charts"]]
    assert any("chart-timeline" in c for c in classes) and any("chart-answers" in c for c in classes)
    for chart in info["charts"]:
        assert chart["width"] > 300 and chart["height"] > 50
        assert chart["marks"] > 5
        assert chart["chinese"], "chart text must be Chinese text, not paths"
        assert all(t["w"] > 0 for t in chart["chinese"]), "Chinese labels must take up room when laid out"
    answers = next(c for c in info["charts"] if "chart-answers" in c["cls"])
    assert {"东街街道", "钟家庄街道"} <= {t["text"] for t in answers["chinese"]}
    assert len(info["kpis"]) == 11


@pytest.mark.browser
def test_finding_shows_first_when_nothing_ran(no_run_report: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    _browser_or_skip()
    path = write_report(no_run_report, tmp_path)["html"]
    info = render_in_browser(path)
    assert info["requests"] == [path.as_uri()]
    assert len(info["charts"]) == 2 and all(c["width"] > 300 for c in info["charts"])
    assert len(info["kpis"]) == 11
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(path.as_uri())
            box = page.locator("#findings .zh").bounding_box()
            kpis = page.locator("#kpis").bounding_box()
            text = page.locator("#findings").inner_text()
        finally:
            browser.close()
    assert box is not None and kpis is not None
    assert box["width"] > 300 and box["height"] > 10 and box["y"] < kpis["y"] < 800, "seen without scrolling"
    assert text.index("接收时已过期") < text.index("expired on arrival")
