"""The console's feeds and quarantine, contacts and plans pages, through the app's own client on SQLite."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from config.database import session_scope
from config.eventlog import events_for
from config.runtime import Runtime
from geo.region import seed_default_region
from tests.conftest import make_user
from warning.models import Feed

PASSWORD = "correct-horse-9"
HOSTILE = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
Login = Callable[..., dict[str, str]]


def token_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "every console form carries the CSRF token"
    return found.group(1)


def sign_in(client: TestClient, rt: Runtime, username: str, role: str) -> TestClient:
    """A console session (cookie and CSRF token) for a new user of that role."""
    make_user(rt.session_factory, username, role)
    client.cookies.clear()
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token_of(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client


def post_form(client: TestClient, page_path: str, action: str, data: dict[str, Any] | None = None,
              **kw: Any) -> Any:
    """Submit a form as the browser would: with the token of the page the form is on."""
    token = token_of(client.get(page_path).text)
    return client.post(action, data={**(data or {}), "csrf_token": token}, follow_redirects=False, **kw)


def no_inline_code(page: str) -> None:
    assert "<script>" not in page and "style=" not in page, "the CSP allows no inline script or style"
    assert not re.search(r"\son[a-z]+=", page), "no inline event handlers"


def cap(identifier: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>sx-jc@example.cn</sender><sent>2026-07-20T01:00:00+08:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info><language>zh-CN</language><category>Met</category><event>暴雨黄色预警</event>
    <urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>
    <expires>2026-07-21T01:00:00+08:00</expires><headline>城区气象台发布暴雨黄色预警</headline>
    <area><areaDesc>城区</areaDesc><geocode><valueName>GB</valueName><value>140502000000</value></geocode></area>
  </info>
</alert>""".encode()


def make_feed(client: TestClient, admin: dict[str, str], name: str, title: str, adapter: str = "cap") -> None:
    r = client.post("/feeds", json={"name": name, "title": title, "adapter": adapter, "poll_seconds": 0},
                    headers=admin)
    assert r.status_code == 201, r.text


def push(client: TestClient, headers: dict[str, str], feed: str, body: bytes) -> dict[str, Any]:
    r = client.post(f"/feeds/{feed}/items", content=body, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def intake(client: TestClient, login: Login) -> dict[str, Any]:
    """Two feeds: one healthy, one with a hostile payload in quarantine and a CAP document sent to the wrong
    parser (quarantined too, readable once the feed's format is corrected)."""
    admin, duty = login("admin"), login("duty_officer")
    make_feed(client, admin, "jc-cap", "晋城市气象台")
    make_feed(client, admin, "jc-quake", "地震台网", adapter="usgs")
    make_feed(client, admin, "jc-ok", "水文站")
    hostile = push(client, duty, "jc-cap", HOSTILE)
    wrong = push(client, duty, "jc-quake", cap("WRONG-1"))
    assert hostile["state"] == "quarantined" and wrong["state"] == "quarantined"
    return {"admin": admin, "duty": duty, "hostile": hostile["item_id"], "wrong": wrong["item_id"]}


def item_state(client: TestClient, headers: dict[str, str], item_id: int) -> str:
    return str(client.get(f"/feeds/items/{item_id}", headers=headers).json()["state"])


# ------------------------------------------------------------------------------------------ feeds


def test_feeds_page_empty_says_what_to_do(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    r = client.get("/console/feeds")
    assert r.status_code == 200
    assert "未配置信息源" in r.text and "隔离区为空" in r.text
    no_inline_code(r.text)


def test_feeds_page_shows_unhealthy_feeds_first_and_the_quarantined_items(
        client: TestClient, sqlite_runtime: Runtime, intake: dict[str, Any]) -> None:
    with session_scope(sqlite_runtime.session_factory) as s:
        feed = s.query(Feed).filter(Feed.name == "jc-quake").one()
        feed.consecutive_failures = 3
        feed.last_error = "HTTP 503 from the source"
        feed.last_error_at = dt.datetime(2026, 7, 20, 1, 30, tzinfo=dt.UTC)
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    page = client.get("/console/feeds").text
    no_inline_code(page)
    rows = re.findall(r'data-testid="feed-row" data-feed="([^"]+)" data-state="([^"]+)"', page)
    assert rows[-1] == ("jc-ok", "ok") and {r for r in rows[:2]} == {("jc-cap", "bad"), ("jc-quake", "bad")}
    assert "HTTP 503 from the source" in page and "2026-07-20 09:30" in page, "last error, in Beijing time"
    cap_row = page.split('data-feed="jc-cap"')[1].split("</li>")[0]
    assert re.search(r'data-testid="feed-items">1<', cap_row) and "✕ 异常" in cap_row, "colour and text"
    quarantined = re.findall(r'data-testid="quarantine-row" data-item="(\d+)"', page)
    assert {int(i) for i in quarantined} == {intake["hostile"], intake["wrong"]}
    assert "含危险的 XML 结构" in page and "晋城市气象台" in page
    assert f'href="/feeds/items/{intake["hostile"]}/raw"' in page
    raw = client.get(f"/feeds/items/{intake['hostile']}/raw")  # the JSON API takes the console's session
    assert raw.status_code == 200 and raw.content == HOSTILE
    assert page.count('data-testid="reprocess-form"') == 2 and page.count('data-testid="dismiss-form"') == 2
    assert 'data-confirm="' in page


def test_reprocess_that_fails_again_says_why_and_one_that_succeeds_leaves_quarantine(
        client: TestClient, sqlite_runtime: Runtime, intake: dict[str, Any]) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    r = post_form(client, "/console/feeds", f"/console/feeds/items/{intake['hostile']}/reprocess")
    assert r.status_code == 303 and r.headers["location"] == f"/console/feeds?failed={intake['hostile']}"
    page = client.get(r.headers["location"]).text
    failed = page.split('data-testid="reprocess-failed"')[1].split("</div>")[0]
    assert "仍无法解析" in failed and "含危险的 XML 结构" in failed and "hostile_xml" in failed
    assert item_state(client, intake["duty"], intake["hostile"]) == "quarantined"

    fixed = client.patch("/feeds/jc-quake", json={"adapter": "cap"}, headers=intake["admin"])  # the parser is fixed
    assert fixed.status_code == 200, fixed.text
    r = post_form(client, "/console/feeds", f"/console/feeds/items/{intake['wrong']}/reprocess")
    assert r.status_code == 303 and "done=admin_reprocessed" in r.headers["location"]
    page = client.get(r.headers["location"]).text
    assert "已重新处理：解析成功" in page and 'data-testid="reprocess-outcome"' in page
    assert f'data-item="{intake["wrong"]}"' not in page, "out of the quarantine list"
    assert item_state(client, intake["duty"], intake["wrong"]) == "processed"
    warnings = client.get("/warnings", headers=intake["duty"]).json()
    assert any(w["identifier"] == "WRONG-1" for w in warnings)


def test_dismiss_needs_a_reason_and_is_logged(client: TestClient, sqlite_runtime: Runtime,
                                              intake: dict[str, Any]) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    action = f"/console/feeds/items/{intake['hostile']}/dismiss"
    blank = post_form(client, "/console/feeds", action, {"note": "  "})
    assert blank.status_code == 422 and "请填写忽略原因" in blank.text
    assert item_state(client, intake["duty"], intake["hostile"]) == "quarantined"
    r = post_form(client, "/console/feeds", action, {"note": "攻击样本，已报网信"})
    assert r.status_code == 303 and r.headers["location"] == "/console/feeds?done=admin_dismissed"
    page = client.get(r.headers["location"]).text
    assert "已忽略该条信息" in page and f'data-item="{intake["hostile"]}"' not in page
    item = client.get(f"/feeds/items/{intake['hostile']}", headers=intake["duty"]).json()
    assert item["state"] == "dismissed" and item["resolved_by"] == "user:duty1"
    with session_scope(sqlite_runtime.session_factory) as s:
        logged = [e for e in events_for(s, "feed_item", intake["hostile"]) if e.action == "feed_item.dismissed"]
        assert len(logged) == 1 and logged[0].actor == "user:duty1"
        assert logged[0].payload["note"] == "攻击样本，已报网信", "the reason is kept in the event log"
    # an item no longer quarantined: the service's refusal, as a page
    processed = push(client, intake["duty"], "jc-ok", cap("OK-1"))["item_id"]
    again = post_form(client, "/console/feeds", f"/console/feeds/items/{processed}/dismiss", {"note": "x"})
    assert again.status_code == 409 and "不在隔离区" in again.text and 'data-testid="problem"' in again.text
    missing = post_form(client, "/console/feeds", "/console/feeds/items/999999/reprocess")
    assert missing.status_code == 404 and "未找到原始数据" in missing.text


def test_viewer_sees_health_only_and_gets_403_from_the_actions(client: TestClient, sqlite_runtime: Runtime,
                                                              intake: dict[str, Any]) -> None:
    sign_in(client, sqlite_runtime, "viewer1", "viewer")
    page = client.get("/console/feeds")
    assert page.status_code == 200 and 'data-testid="feed-row"' in page.text
    assert 'data-testid="quarantine-row"' not in page.text and "隔离内容仅管理员" in page.text
    assert "reprocess-form" not in page.text and "dismiss-form" not in page.text
    for action, data in (("reprocess", {}), ("dismiss", {"note": "不需要"})):
        r = post_form(client, "/console/feeds", f"/console/feeds/items/{intake['hostile']}/{action}", data)
        assert r.status_code == 403 and 'data-testid="forbidden"' in r.text
    assert item_state(client, intake["duty"], intake["hostile"]) == "quarantined"


def test_leader_sees_the_items_but_not_the_buttons(client: TestClient, sqlite_runtime: Runtime,
                                                   intake: dict[str, Any]) -> None:
    sign_in(client, sqlite_runtime, "leader1", "leader")
    page = client.get("/console/feeds").text
    assert 'data-testid="quarantine-row"' in page and "reprocess-form" not in page
    r = post_form(client, "/console/feeds", f"/console/feeds/items/{intake['hostile']}/reprocess")
    assert r.status_code == 403  # POST /feeds/items/{id}/reprocess admits admins and duty officers only


def test_actions_without_the_csrf_token_are_refused(client: TestClient, sqlite_runtime: Runtime,
                                                    intake: dict[str, Any]) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    r = client.post(f"/console/feeds/items/{intake['hostile']}/dismiss", data={"note": "x"},
                    follow_redirects=False)
    assert r.status_code == 403 and "防伪令牌" in r.text
    r = client.post(f"/console/feeds/items/{intake['hostile']}/reprocess", data={"csrf_token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403
    assert item_state(client, intake["duty"], intake["hostile"]) == "quarantined"


def test_feeds_page_in_english(client: TestClient, sqlite_runtime: Runtime, intake: dict[str, Any]) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    client.cookies.set("jiaoying_lang", "en")
    page = client.get("/console/feeds").text
    assert '<html lang="en">' in page
    assert "Feeds and quarantine" in page and "Hostile XML (blocked)" in page and "Reprocess" in page
    assert "信息源与隔离区" not in page


# ------------------------------------------------------------------------------------------ contacts

CSV_MIXED = ("姓名,手机,职务,村/社区代码,双向短信\n"
             "张三,13900001111,网格员,140502001001,是\n"
             "李四,1390000,村长,140502001002,否\n"
             "王五,13900003333,村长,140502001099,否\n"
             "赵六,13900004444,街道主任,140502001000,\n").encode()


@pytest.fixture
def region(sqlite_runtime: Runtime) -> None:
    with session_scope(sqlite_runtime.session_factory) as s:
        seed_default_region(s, dt.datetime(2026, 7, 20, tzinfo=dt.UTC))


def upload(client: TestClient, name: str, data: bytes, skip_invalid: bool = False) -> Any:
    form = {"skip_invalid": "true"} if skip_invalid else {}
    return post_form(client, "/console/contacts", "/console/contacts/import", form,
                     files={"file": (name, data, "text/csv")})


def test_contacts_empty_page_says_what_to_do(client: TestClient, sqlite_runtime: Runtime, region: None) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    r = client.get("/console/contacts")
    assert r.status_code == 200
    assert "暂无联系人。请导入联系人名单" in r.text and 'data-testid="import-form"' in r.text
    assert 'enctype="multipart/form-data"' in r.text and '<label for="import-file">' in r.text
    no_inline_code(r.text)


def test_import_with_bad_rows_shows_the_row_report_then_imports_the_rest(
        client: TestClient, sqlite_runtime: Runtime, region: None) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    r = upload(client, "名单.csv", CSV_MIXED)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/contacts?import=")
    assert "done=" not in r.headers["location"], "a rejected file is not reported as done"
    page = client.get(r.headers["location"]).text
    report = page.split('data-testid="import-report"')[1].split("</section>")[0]
    assert 'data-status="rejected"' in page and "未导入" in report
    assert re.search(r'data-testid="rows-total"[^>]*>4<', report)
    assert re.search(r'data-testid="rows-bad"[^>]*>2<', report)
    bad_rows = re.findall(r'data-testid="import-error" data-row="(\d+)"', report)
    assert sorted(bad_rows) == ["3", "4"]
    assert "未知区域代码 140502001099" in report and "手机" in report
    assert 'data-testid="contacts-total">0<' in page, "nothing imported"

    client.cookies.set("jiaoying_lang", "en")
    english = client.get(r.headers["location"]).text
    assert "Rejected rows and why" in english and "unknown area code 140502001099" in english
    client.cookies.set("jiaoying_lang", "zh")

    r = upload(client, "名单.csv", CSV_MIXED, skip_invalid=True)
    assert r.status_code == 303 and "done=admin_imported" in r.headers["location"]
    page = client.get(r.headers["location"]).text
    assert 'data-status="partial"' in page and "部分导入" in page
    assert 'data-testid="contacts-total">2<' in page
    assert "张三" in page and "赵六" in page and "+8613900001111" in page
    assert '<span title="代码 140502001001" data-code="140502001001">' in page, "the area by name, code on hover"
    assert client.get("/contacts").json()["total"] == 2, "the JSON API, on the console's session, agrees"


def test_an_xlsx_list_imports_and_a_search_finds_by_name(client: TestClient, sqlite_runtime: Runtime,
                                                       region: None) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in (["姓名", "手机", "职务", "村/社区代码"], ["钱七", "13900005555", "网格员", "140502001001"],
                ["孙八", "13900006666", "镇长", "140502001000"]):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    sign_in(client, sqlite_runtime, "admin1", "admin")
    r = upload(client, "名单.xlsx", buf.getvalue())
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert 'data-status="applied"' in page and "已导入" in page
    found = client.get("/console/contacts", params={"q": "钱七"}).text
    assert 'data-testid="contacts-total">1<' in found and "网格员" in found and "孙八" not in found
    chiefs = client.get("/console/contacts", params={"role": "township_chief"}).text
    assert "孙八" in chiefs and "钱七" not in chiefs
    nobody = client.get("/console/contacts", params={"q": "无此人"}).text
    assert "没有符合条件的联系人" in nobody


def test_a_file_that_is_not_a_list_shows_the_problem(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    r = upload(client, "名单.pdf", b"%PDF-1.4")
    assert r.status_code == 400 and "不支持的文件类型" in r.text
    r = post_form(client, "/console/contacts", "/console/contacts/import")
    assert r.status_code == 400 and "请选择要导入的" in r.text


def test_coverage_gaps_are_listed_by_name(client: TestClient, sqlite_runtime: Runtime, region: None) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    upload(client, "名单.csv", CSV_MIXED, skip_invalid=True)
    page = client.get("/console/contacts").text
    gaps = page.split('data-testid="coverage"')[1].split("</section>")[0]
    assert re.search(r'data-testid="uncovered-total">169<', gaps), "170 villages, one covered by 张三"
    assert 'data-code="140502001001"' not in gaps, "建设路社区 has its grid worker"
    village = re.search(r'<span title="代码 (140502\d{6})" data-code="\1">([^<]+)</span>', gaps)
    assert village and village.group(2) != village.group(1), "villages by name, the code on hover"
    assert 'data-testid="townships-without-chief"' in gaps and "没有可联系的区领导" in gaps


def test_contacts_are_for_staff_and_importing_for_editors(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "viewer1", "viewer")
    assert client.get("/console/contacts").status_code == 403
    token = token_of(client.get("/console/feeds").text)
    r = client.post("/console/contacts/import", data={"csrf_token": token},
                    files={"file": ("a.csv", CSV_MIXED, "text/csv")}, follow_redirects=False)
    assert r.status_code == 403
    sign_in(client, sqlite_runtime, "leader1", "leader")
    page = client.get("/console/contacts")
    assert page.status_code == 200 and 'data-testid="import-form"' not in page.text
    r = upload(client, "a.csv", CSV_MIXED)
    assert r.status_code == 403  # POST /contacts/import admits admins and duty officers


def test_an_upload_without_the_token_is_refused(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    r = client.post("/console/contacts/import", files={"file": ("a.csv", CSV_MIXED, "text/csv")},
                    follow_redirects=False)
    assert r.status_code == 403
    assert 'data-testid="contacts-total">0<' in client.get("/console/contacts").text


# ------------------------------------------------------------------------------------------ plans


def test_plans_are_readable_by_a_duty_officer(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    page = client.get("/console/plans")
    assert page.status_code == 200
    no_inline_code(page.text)
    hazards = re.findall(r'data-testid="plan" data-hazard="([a-z_]+)"', page.text)
    assert sorted(hazards) == sorted(["weather", "flood", "earthquake", "geohazard", "forest_fire"])
    weather = page.text.split('data-hazard="weather"')[1].split("</section>")[0]
    levels = re.findall(r'data-testid="plan-level" data-level="(\w+)"', weather)
    assert levels == ["red", "orange", "yellow", "blue"], "red first"
    assert "红色预警" in weather and "Ⅰ级响应" in weather and "应答时限" in weather and "停学" in weather

    detail = client.get("/console/plans/weather")
    assert detail.status_code == 200
    no_inline_code(detail.text)
    red = detail.text.split('id="level-red"')[1].split("</section>")[0]
    assert "立即响应，同时会商" in red and "5 分钟" in red and "带班领导" in red and "区教育局" in red
    assert "村（社区）负责人" in red and "语音电话" in red and "08:00" in red
    assert "<textarea" not in detail.text and 'data-testid="plan-read-only"' in detail.text
    r = post_form(client, "/console/plans/weather", "/console/plans/weather", {"source": "x", "format": "yaml"})
    assert r.status_code == 403
    missing = client.get("/console/plans/tsunami")
    assert missing.status_code == 404 and "未找到灾种预案" in missing.text


def _weather_source(page: str) -> str:
    found = re.search(r'<textarea[^>]*name="source"[^>]*>\n(.*?)</textarea>', page, re.S)
    assert found, "the admin's edit form holds the plan's text"
    return html.unescape(found.group(1))


def test_admin_edits_a_plan_bad_text_is_kept_with_its_errors(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "admin1", "admin")
    page = client.get("/console/plans/weather").text
    assert 'data-testid="plan-form"' in page and 'data-confirm="' in page and '<label for="plan-source">' in page
    source = _weather_source(page)
    assert "hazard: weather" in source and "# 城区气象灾害应急预案" in source, "the shipped file, comments kept"

    bad = source.replace("answer_minutes: 5\n", "answer_minutes: 0\n", 1) + "\n# <b>mine</b>\n"
    r = post_form(client, "/console/plans/weather", "/console/plans/weather", {"source": bad, "format": "yaml"})
    assert r.status_code == 422
    assert 'data-testid="plan-errors"' in r.text and "answer_minutes" in r.text and "未保存" in r.text
    assert _weather_source(r.text) == bad, "the text comes back exactly as typed"
    assert "&lt;b&gt;mine&lt;/b&gt;" in r.text and "<b>mine</b>" not in r.text
    broken = post_form(client, "/console/plans/weather", "/console/plans/weather",
                       {"source": "hazard: [weather", "format": "yaml"})
    assert broken.status_code == 422 and "YAML 语法错误" in broken.text
    wrong = post_form(client, "/console/plans/weather", "/console/plans/flood", {"source": source, "format": "yaml"})
    assert wrong.status_code == 422 and "与地址中的 flood 不符" in wrong.text
    api = client.get("/responses/plans/weather").json()  # the JSON API, on the console's session
    assert api["source"] == "default", "nothing saved"

    good = source.replace("version: '2026.1'", "version: '2026.7'", 1).replace("answer_minutes: 5\n",
                                                                                "answer_minutes: 4\n", 1)
    r = post_form(client, "/console/plans/weather", "/console/plans/weather",
                  {"source": good.replace("\n", "\r\n"), "format": "yaml", "note": "红色应答缩短为 4 分钟"})
    assert r.status_code == 303 and r.headers["location"] == "/console/plans/weather?done=admin_plan_saved"
    page = client.get(r.headers["location"]).text
    assert "预案已保存" in page and "2026.7+r1" in page and "管理员修订版" in page
    red = page.split('id="level-red"')[1].split("</section>")[0]
    assert "<b>4 分钟</b>" in red
    assert _weather_source(page) == good, "the next edit starts from the saved text"
    api = client.get("/responses/plans/weather").json()
    assert api["source"] == "edited" and api["version"] == "2026.7+r1"
    assert api["plan"]["levels"]["red"]["calls"]["answer_minutes"] == 4
    assert "2026.7+r1" in client.get("/console/plans").text


def test_plan_save_without_the_token_is_refused(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "admin1", "admin")
    source = _weather_source(client.get("/console/plans/weather").text)
    r = client.post("/console/plans/weather", data={"source": source, "format": "yaml"}, follow_redirects=False)
    assert r.status_code == 403 and "防伪令牌" in r.text
    assert "管理员修订版" not in client.get("/console/plans/weather").text


def test_plans_in_english(client: TestClient, sqlite_runtime: Runtime) -> None:
    sign_in(client, sqlite_runtime, "duty1", "duty_officer")
    client.cookies.set("jiaoying_lang", "en")
    page = client.get("/console/plans/weather").text
    assert "Chengqu meteorological hazard plan (default)" in page
    assert "Level I response" in page and "Answer within" in page and "Leader on duty".lower() in page.lower()
    assert "应答时限" not in page
