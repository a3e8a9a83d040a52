"""The console's warnings and consultations pages through the app's own client, on SQLite.

Warnings are made as the intake makes them (manual entry through the page, or rows written by the shared
``make_warning`` fixture); consultations are opened and moved on through the pages, and what changed is read
back through the domain services, not from the HTML alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from console.i18n import MESSAGES
from geo.region import seed_default_region
from responses.runs import service as run_service
from tests.conftest import make_user
from tests.console.test_pages import console_login, token_of
from warning import service as warning_service
from warning.consultation import service as cs
from warning.models import Warning

TOWN = "140502001000"  # 东街街道
VILLAGE = "140502001001"  # 建设路社区
OTHER_VILLAGE = "140502002001"

MakeWarning = Callable[..., Warning]


@pytest.fixture
def region(sqlite_runtime: Runtime, clock: VirtualClock) -> None:
    with session_scope(sqlite_runtime.session_factory) as s:
        seed_default_region(s, clock.now())


@pytest.fixture
def as_user(client: TestClient, sqlite_runtime: Runtime) -> Callable[..., TestClient]:
    """``as_user(role, department=None)``: the shared client, logged in through the console as a new user."""
    counter = iter(range(1, 1000))

    def _as(role: str, department: str | None = None) -> TestClient:
        name = f"{role}-{next(counter)}"
        make_user(sqlite_runtime.session_factory, name, role, department)
        client.cookies.clear()
        r = console_login(client, name)
        assert r.status_code == 303, r.text
        return client

    return _as


def post(client: TestClient, path: str, data: dict[str, Any], *, page: str | None = None) -> Any:
    """A form post with the CSRF token of a page the user could have opened."""
    token = token_of(client.get(page or "/console/warnings").text)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def _warning(factory: Any, make_warning: MakeWarning, now: dt.datetime, **kw: Any) -> int:
    with session_scope(factory) as s:
        return make_warning(s, now=now, **kw).id


def _open(factory: Any, warning_id: int, now: dt.datetime, invited: tuple[str, ...] = ("meteorology", "water"),
          minutes: int = 30) -> int:
    with session_scope(factory) as s:
        w = warning_service.get_warning(s, warning_id)
        assert w is not None
        return cs.open_consultation(s, warning=w, invited=list(invited), deadline_minutes=minutes,
                                    reminder_minutes=None, mode="manual", actor="test", now=now).id


def _consultation(factory: Any, cid: int) -> Any:
    with session_scope(factory) as s:
        c = cs.get(s, cid)
        return {"state": c.state, "deadline": c.deadline, "judgements": cs.judgements(s, cid),
                "decisions": cs.decisions(s, cid), "thread_id": c.thread_id}


def _rows(html: str, testid: str) -> list[str]:
    return re.findall(rf'<li class="[^"]*" data-testid="{testid}"[^>]*>(.*?)</li>', html, re.S)


def assert_no_inline_code(html: str) -> None:
    assert "style=" not in html and "<script>" not in html
    assert not re.search(r"\son[a-z]+=", html), "no inline event handlers"


# --------------------------------------------------------------------------- the list and one warning


def test_empty_list_says_what_to_do_and_offers_manual_entry(as_user: Callable[..., TestClient]) -> None:
    client = as_user("duty_officer")
    r = client.get("/console/warnings")
    assert r.status_code == 200
    assert "暂无生效预警" in r.text and "接报登记" in r.text
    assert 'href="/console/warnings/new"' in r.text
    assert MESSAGES["warn.list.empty_recent"][0] in r.text
    assert_no_inline_code(r.text)


def test_list_shows_active_first_with_names_and_codes_on_hover(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, make_warning: MakeWarning,
        clock: VirtualClock, region: None) -> None:
    f = sqlite_runtime.session_factory
    affected = {"villages": [VILLAGE], "townships": [TOWN], "sites": []}
    _warning(f, make_warning, clock.now() - dt.timedelta(hours=5), level="yellow", event="大雾", state="expired",
             affected=affected)
    _warning(f, make_warning, clock.now() - dt.timedelta(hours=1), level="blue", event="大风", affected=affected)
    red = _warning(f, make_warning, clock.now() - dt.timedelta(hours=2), level="red", event="暴雨",
                   affected=affected)
    html = as_user("viewer").get("/console/warnings").text
    rows = _rows(html, "warning-row")
    assert len(rows) == 3
    assert "城区暴雨预警" in rows[0] and "城区大风预警" in rows[1] and "城区大雾预警" in rows[2], \
        "red before blue among the active ones, the ended one last"
    assert "红色预警" in rows[0] and "蓝色预警" in rows[1] and "已过期" in rows[2], "level and state in words"
    assert f'href="/console/warnings/{red}"' in rows[0]
    assert f'<span title="{TOWN}">东街街道</span>' in rows[0], "the township by name, its code on hover"
    assert f">{TOWN}<" not in html, "no code shown as text"
    assert "2026-07-20 00:00" in rows[0], "received time in Asia/Shanghai"
    assert "接报登记" not in html, "a viewer is not offered the manual entry"


def test_detail_shows_versions_places_by_name_and_the_cap_escaped(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, make_warning: MakeWarning,
        clock: VirtualClock, region: None) -> None:
    f = sqlite_runtime.session_factory
    affected = {"villages": [VILLAGE, OTHER_VILLAGE], "townships": [TOWN],
                "sites": [{"id": 7, "name": "白马寺山滑坡隐患点", "kind": "landslide"}]}
    with session_scope(f) as s:
        first = make_warning(s, now=clock.now() - dt.timedelta(hours=1), level="yellow", event="暴雨<b>",
                             affected=affected)
        second = make_warning(s, now=clock.now(), level="orange", event="暴雨<b>", thread=first,
                              msg_type="update", affected=affected)
        first_id, second_id = first.id, second.id
    client = as_user("duty_officer")
    html = client.get(f"/console/warnings/{second_id}").text
    versions = re.findall(r'data-testid="version" data-msg-type="(\w+)"', html)
    assert versions == ["alert", "update"], "the thread, in order"
    assert f'href="/console/warnings/{first_id}"' in html, "the earlier version links to itself"
    assert "黄色预警" in html and "橙色预警" in html
    assert f'<span title="{VILLAGE}">建设路社区</span>' in html
    assert f'<span title="{TOWN}">东街街道</span>' in html
    assert '<span title="#7 · landslide">白马寺山滑坡隐患点</span>' in html
    cap = re.search(r'<pre data-testid="cap-xml">(.*?)</pre>', html, re.S)
    assert cap and "&lt;alert" in cap.group(1) and "<alert" not in cap.group(1), "the XML shown, not parsed"
    assert "urn:oasis:names:tc:emergency:cap:1.2" in cap.group(1)
    assert "城区暴雨&amp;lt;b&amp;gt;预警" in cap.group(1), "XML-escaped by the document, then HTML-escaped"
    assert "<b>" not in html, "a headline is text, never markup"
    assert MESSAGES["warn.no_runs"][0] in html and MESSAGES["warn.no_consultation"][0] in html
    assert 'data-testid="open-consultation-form"' in html, "a duty officer may open a consultation"
    assert_no_inline_code(html)


def test_unknown_warning_is_a_404_page(as_user: Callable[..., TestClient]) -> None:
    client = as_user("viewer")
    for path in ("/console/warnings/999999", "/console/warnings/abc", "/console/consultations/424242"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html")
        assert 'data-testid="problem"' in r.text and "未找到" in r.text


# --------------------------------------------------------------------------- manual entry


def test_manual_entry_creates_a_warning_seen_on_its_page_and_the_board(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, region: None) -> None:
    client = as_user("duty_officer")
    form = client.get("/console/warnings/new")
    assert form.status_code == 200 and 'data-testid="manual-form"' in form.text
    assert f'value="{TOWN}"' in form.text and "东街街道" in form.text and "建设路社区" in form.text
    assert_no_inline_code(form.text)
    r = post(client, "/console/warnings/new", {
        "msg_type": "alert", "channel": "phone", "caller_name": "张三", "caller_unit": "晋城市气象台",
        "caller_phone": "0356-2020000", "source": "晋城市气象台", "sent": "2026-07-20T01:30",
        "hazard": "weather", "event": "暴雨", "level": "orange", "status": "actual",
        "headline": "城区暴雨橙色预警（电话接报）", "description": "未来3小时降雨量将达50毫米以上",
        "expires": "2026-07-20T08:00", "area_codes": [TOWN, VILLAGE]}, page="/console/warnings/new")
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/console/warnings/(\d+)\?done=warn_entered", r.headers["location"])
    assert found, r.headers["location"]
    wid = int(found.group(1))
    with session_scope(sqlite_runtime.session_factory) as s:
        w = warning_service.get_warning(s, wid)
        assert w is not None
        assert w.entry_channel == "phone" and w.entered_by and w.level == "orange" and w.state == "active"
        assert w.sent.replace(tzinfo=dt.UTC) == dt.datetime(2026, 7, 19, 17, 30, tzinfo=dt.UTC), \
            "the datetime-local field is read in Asia/Shanghai"
        assert TOWN in w.affected["townships"]
        assert (w.extra or {}).get("received_from") == "张三（晋城市气象台） 0356-2020000"
    page = client.get(r.headers["location"]).text
    assert "✓ 预警已登记" in page
    assert "城区暴雨橙色预警（电话接报）" in page and "张三（晋城市气象台） 0356-2020000" in page
    assert "电话" in page and "2026-07-20 01:30" in page and "2026-07-20 08:00" in page
    assert f'<span title="{TOWN}">东街街道</span>' in page
    assert "城区暴雨橙色预警（电话接报）" in client.get("/").text, "the board shows it too"
    assert "城区暴雨橙色预警（电话接报）" in client.get("/console/warnings").text


def test_manual_entry_with_bad_input_shows_the_form_again_with_the_values(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, region: None) -> None:
    client = as_user("leader")
    data = {"msg_type": "alert", "channel": "", "caller_name": "李四", "source": "晋城市水文局",
            "hazard": "flood", "event": "洪水", "level": "purple", "headline": "", "sent": "昨天",
            "area_codes": [VILLAGE]}
    r = post(client, "/console/warnings/new", data, page="/console/warnings/new")
    assert r.status_code == 422
    html = r.text
    assert 'data-testid="manual-form"' in html and 'data-testid="form-errors"' in html
    for field in ("channel", "headline", "level", "sent"):
        assert f'data-testid="error-{field}"' in html, field
    assert 'id="err-headline"' in html and 'aria-describedby="err-headline"' in html
    assert 'value="李四"' in html and 'value="晋城市水文局"' in html and 'value="洪水"' in html
    assert 'value="昨天"' in html
    assert re.search(rf'value="{VILLAGE}" checked', html), "the ticked village stays ticked"
    assert re.search(r'<option value="flood" selected>', html)
    with session_scope(sqlite_runtime.session_factory) as s:
        assert warning_service.active_warnings(s) == [], "nothing was stored"
    # an update must name what it replaces: the API's 400, shown on the form
    r = post(client, "/console/warnings/new", {**data, "msg_type": "update", "channel": "fax", "level": "",
                                              "headline": "更新", "sent": ""}, page="/console/warnings/new")
    assert r.status_code == 400 and 'data-testid="error-replaces_warning_id"' in r.text
    assert MESSAGES["warn.err.replaces"][0] in r.text


def test_an_update_entered_from_the_warning_page_joins_its_thread(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, region: None) -> None:
    client = as_user("duty_officer")
    base = {"channel": "messaging", "source": "晋城市气象台", "hazard": "weather", "event": "大风",
            "status": "actual", "area_codes": [TOWN]}
    r = post(client, "/console/warnings/new", {**base, "msg_type": "alert", "level": "blue",
                                              "headline": "城区大风蓝色预警"})
    first = int(r.headers["location"].split("/")[-1].split("?")[0])
    page = client.get(f"/console/warnings/{first}").text
    assert f'href="/console/warnings/new?replaces={first}"' in page
    form = client.get(f"/console/warnings/new?replaces={first}").text
    assert f'name="replaces_warning_id" value="{first}"' in form and 'value="城区大风蓝色预警"' in form
    r = post(client, "/console/warnings/new", {**base, "msg_type": "update", "replaces_warning_id": str(first),
                                              "level": "yellow", "headline": "城区大风黄色预警"})
    assert r.status_code == 303, r.text
    second = int(r.headers["location"].split("/")[-1].split("?")[0])
    html = client.get(f"/console/warnings/{second}").text
    assert re.findall(r'data-testid="version" data-msg-type="(\w+)"', html) == ["alert", "update"]
    with session_scope(sqlite_runtime.session_factory) as s:
        old = warning_service.get_warning(s, first)
        assert old is not None and old.state == "superseded"


def test_a_red_warning_entered_by_hand_starts_its_response(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, region: None) -> None:
    client = as_user("duty_officer")
    r = post(client, "/console/warnings/new", {
        "msg_type": "alert", "channel": "fax", "source": "晋城市气象台", "hazard": "weather", "event": "暴雨",
        "level": "red", "status": "actual", "headline": "城区暴雨红色预警（传真）", "area_codes": [TOWN]})
    assert r.status_code == 303, r.text
    wid = int(r.headers["location"].split("/")[-1].split("?")[0])
    with session_scope(sqlite_runtime.session_factory) as s:
        runs = run_service.runs_for_thread(s, wid)
        assert len(runs) == 1, "the intake's listeners were told, as through the API"
        run_id, number = runs[0].id, runs[0].number
    html = client.get(f"/console/warnings/{wid}").text
    row = _rows(html, "run-link-row")
    assert len(row) == 1 and f'href="/console/runs/{run_id}"' in row[0] and number in row[0]


# --------------------------------------------------------------------------- roles and CSRF


def test_a_viewer_sees_no_forms_and_every_post_is_refused(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, make_warning: MakeWarning,
        clock: VirtualClock) -> None:
    f = sqlite_runtime.session_factory
    wid = _warning(f, make_warning, clock.now(), level="orange")
    cid = _open(f, wid, clock.now())
    client = as_user("viewer")
    for path in (f"/console/warnings/{wid}", f"/console/consultations/{cid}", "/console/warnings"):
        html = client.get(path).text
        assert "<form" in html  # the language switch and logout
        assert not re.search(r'data-testid="[a-z-]*-form"', html), path
        assert "接报登记" not in html
    assert client.get("/console/warnings/new").status_code == 403
    posts = {
        "/console/warnings/new": {"channel": "phone", "source": "x", "hazard": "weather", "event": "x",
                                  "headline": "x"},
        f"/console/warnings/{wid}/consultation": {"departments": ["water"], "deadline_minutes": "30"},
        f"/console/consultations/{cid}/judgement": {"department": "water", "assessed_level": "orange",
                                                    "trend": "rising", "confidence": "high"},
        f"/console/consultations/{cid}/extend": {"minutes": "30"},
        f"/console/consultations/{cid}/decision": {"final_level": "orange"},
        f"/console/consultations/{cid}/dismiss": {"reason": "无需响应"},
    }
    for path, data in posts.items():
        r = post(client, path, data)
        assert r.status_code == 403, path
        assert 'data-testid="forbidden"' in r.text
    got = _consultation(f, cid)
    assert got["state"] == "open" and not got["judgements"] and not got["decisions"]
    with session_scope(f) as s:
        assert len(warning_service.active_warnings(s)) == 1


def test_a_post_without_the_csrf_token_is_refused(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, make_warning: MakeWarning,
        clock: VirtualClock) -> None:
    f = sqlite_runtime.session_factory
    cid = _open(f, _warning(f, make_warning, clock.now(), level="orange"), clock.now())
    client = as_user("leader")
    r = client.post(f"/console/consultations/{cid}/decision", data={"final_level": "orange"},
                    follow_redirects=False)
    assert r.status_code == 403 and "请求已拒绝" in r.text
    r = client.post("/console/warnings/new", data={"channel": "phone", "csrf_token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403
    assert _consultation(f, cid)["state"] == "open"


# --------------------------------------------------------------------------- consultations


def test_a_duty_officer_opens_a_consultation_from_the_warning_page(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, make_warning: MakeWarning,
        clock: VirtualClock) -> None:
    wid = _warning(sqlite_runtime.session_factory, make_warning, clock.now(), level="yellow")
    client = as_user("duty_officer")
    page = client.get(f"/console/warnings/{wid}").text
    assert 'value="meteorology"' in page and "气象局" in page
    r = post(client, f"/console/warnings/{wid}/consultation", {"departments": [], "deadline_minutes": "0"},
             page=f"/console/warnings/{wid}")
    assert r.status_code == 422
    assert 'data-testid="error-departments"' in r.text and 'data-testid="error-deadline_minutes"' in r.text
    r = post(client, f"/console/warnings/{wid}/consultation",
             {"departments": ["meteorology", "water"], "deadline_minutes": "45", "reminder_minutes": "10"},
             page=f"/console/warnings/{wid}")
    assert r.status_code == 303
    cid = int(re.fullmatch(r"/console/consultations/(\d+)\?done=consult_opened", r.headers["location"]).group(1))
    got = _consultation(sqlite_runtime.session_factory, cid)
    assert got["state"] == "open" and got["deadline"].replace(tzinfo=dt.UTC) == clock.now() + dt.timedelta(
        minutes=45)
    html = client.get(r.headers["location"]).text
    assert "✓ 会商已发起" in html and "2026-07-20 02:45" in html
    invited = re.findall(r'data-testid="invited-department" data-department="(\w+)"', html)
    assert invited == ["meteorology", "water"]
    assert "气象局" in html and "水利局" in html and "尚未研判" in html
    assert f'href="/console/warnings/{wid}"' in html
    page = client.get(f"/console/warnings/{wid}").text
    assert f'href="/console/consultations/{cid}"' in page and "研判中" in page
    assert 'data-testid="open-consultation-form"' not in page, "one live consultation per warning"
    listing = client.get("/console/consultations").text
    rows = _rows(listing, "consultation-row")
    assert len(rows) == 1 and "未研判部门：气象局、水利局" in rows[0] and "2026-07-20 02:45" in rows[0]


def test_an_analyst_records_their_departments_judgement(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, make_warning: MakeWarning,
        clock: VirtualClock) -> None:
    f = sqlite_runtime.session_factory
    cid = _open(f, _warning(f, make_warning, clock.now(), level="yellow"), clock.now())
    page = f"/console/consultations/{cid}"
    outsider = as_user("analyst", "教育局")
    html = outsider.get(page).text
    assert 'data-testid="judgement-form"' not in html and 'data-testid="not-invited"' in html
    analyst = as_user("analyst", "水利局")
    html = analyst.get(page).text
    form = re.search(r'<form[^>]*data-testid="judgement-form".*?</form>', html, re.S)
    assert form and 'name="department" value="water"' in form.group(0) and "水利局" in form.group(0)
    assert "meteorology" not in form.group(0), "an analyst judges only for their own department"
    assert 'data-testid="decision-form"' not in html and 'data-testid="extend-form"' not in html
    r = post(analyst, f"{page}/judgement", {"department": "water", "assessed_level": "", "trend": "",
                                            "confidence": "high", "text": "河道水位上涨"}, page=page)
    assert r.status_code == 422 and "河道水位上涨" in r.text
    assert 'data-testid="error-trend"' in r.text and 'data-testid="error-assessed_level"' in r.text
    r = post(analyst, f"{page}/judgement", {"department": "meteorology", "assessed_level": "orange",
                                            "trend": "rising", "confidence": "high"}, page=page)
    assert r.status_code == 403 and "水利局" in r.text, "another department's judgement is refused"
    r = post(analyst, f"{page}/judgement", {"department": "water", "assessed_level": "orange", "trend": "rising",
                                            "confidence": "high", "text": "河道水位上涨", "measures": ["evacuation"]},
             page=page)
    assert r.status_code == 303 and r.headers["location"] == f"{page}?done=consult_judged"
    judgements = _consultation(f, cid)["judgements"]
    assert [(j.department, j.assessed_level, j.trend, j.measures) for j in judgements] == [
        ("water", "orange", "rising", ["evacuation"])]
    html = analyst.get(r.headers["location"]).text
    assert "✓ 研判意见已录入" in html
    entry = re.search(r'data-department="water">(.*?)</li>', html, re.S)
    assert entry and "橙色预警" in entry.group(1) and "河道水位上涨" in entry.group(1) and "转移疏散" in entry.group(1)
    assert "analyst-" in entry.group(1) and "2026-07-20 02:00" in entry.group(1), "who and when"
    # the duty desk may enter a department's judgement taken by phone, choosing the department
    duty = as_user("duty_officer")
    form = re.search(r'<form[^>]*data-testid="judgement-form".*?</form>', duty.get(page).text, re.S)
    assert form and '<option value="meteorology">气象局</option>' in form.group(0)
    r = post(duty, f"{page}/judgement", {"department": "", "assessed_level": "none", "trend": "easing",
                                         "confidence": "medium"}, page=page)
    assert r.status_code == 422 and 'data-testid="error-department"' in r.text
    r = post(duty, f"{page}/judgement", {"department": "meteorology", "assessed_level": "none",
                                         "trend": "easing", "confidence": "medium"}, page=page)
    assert r.status_code == 303
    judged = {j.department: j.assessed_level for j in _consultation(f, cid)["judgements"]}
    assert judged == {"water": "orange", "meteorology": None}, "none: no warning needed"
    assert "无需预警" in duty.get(page).text


def test_the_leader_decides_and_the_run_starts(
        as_user: Callable[..., TestClient], sqlite_runtime: Runtime, make_warning: MakeWarning,
        clock: VirtualClock) -> None:
    f = sqlite_runtime.session_factory
    wid = _warning(f, make_warning, clock.now(), level="orange")
    cid = _open(f, wid, clock.now())
    page = f"/console/consultations/{cid}"
    duty = as_user("duty_officer")
    html = duty.get(page).text
    assert 'data-testid="decision-form"' not in html and 'data-testid="dismiss-form"' not in html
    assert 'data-testid="extend-form"' in html and 'data-testid="judgement-form"' in html
    leader = as_user("leader")
    html = leader.get(page).text
    form = re.search(r'<form[^>]*data-testid="decision-form"[^>]*>', html)
    assert form and "data-confirm=" in form.group(0), "an irreversible step asks first"
    assert re.search(r'<form[^>]*data-testid="dismiss-form"[^>]*data-confirm=', html)
    r = post(leader, f"{page}/decision", {"final_level": ""}, page=page)
    assert r.status_code == 422 and 'data-testid="error-final_level"' in r.text
    r = post(leader, f"{page}/decision", {"final_level": "orange", "reason": "会商结论：启动 II 级响应"}, page=page)
    assert r.status_code == 303 and r.headers["location"] == f"{page}?done=consult_decided"
    got = _consultation(f, cid)
    assert got["state"] == "decided" and [d.final_level for d in got["decisions"]] == ["orange"]
    with session_scope(f) as s:
        runs = run_service.runs_for_thread(s, got["thread_id"])
        assert len(runs) == 1 and runs[0].level == "orange"
        run_id = runs[0].id
    html = leader.get(r.headers["location"]).text
    assert "✓ 决策已作出" in html and "已决策" in html and "会商结论：启动 II 级响应" in html
    assert f'href="/console/runs/{run_id}"' in html
    assert 'data-testid="dismiss-form"' not in html and 'data-testid="judgement-form"' not in html
    assert "修订决策" in html, "a decided consultation may be revised, with a reason"
    assert f'href="/console/runs/{run_id}"' in leader.get(f"/console/warnings/{wid}").text
    # a revision without a reason: the domain refuses, the problem page says why
    r = post(leader, f"{page}/decision", {"final_level": "red"}, page=page)
    assert r.status_code == 409 and 'data-testid="problem"' in r.text
    r = post(leader, f"{page}/decision", {"final_level": "red", "reason": "雨势加大"}, page=page)
    assert r.status_code == 303 and r.headers["location"].endswith("done=consult_revised")
    assert [d.version for d in _consultation(f, cid)["decisions"]] == [1, 2]
    # dismissing what is decided is not a move the workflow has
    r = post(leader, f"{page}/dismiss", {"reason": "无需响应"}, page=page)
    assert r.status_code == 409 and "不能" in r.text


def test_extend_and_dismiss(as_user: Callable[..., TestClient], sqlite_runtime: Runtime,
                            make_warning: MakeWarning, clock: VirtualClock) -> None:
    f = sqlite_runtime.session_factory
    cid = _open(f, _warning(f, make_warning, clock.now(), level="yellow"), clock.now(), minutes=30)
    page = f"/console/consultations/{cid}"
    clock.advance(dt.timedelta(minutes=31))
    duty = as_user("duty_officer")
    html = duty.get(page).text
    assert "⚠ 已超时" in html, "a passed deadline is marked in words"
    listing = duty.get("/console/consultations").text
    assert "row-overdue" in _rows_with_class(listing)
    r = post(duty, f"{page}/extend", {"minutes": "0"}, page=page)
    assert r.status_code == 422 and 'data-testid="error-minutes"' in r.text
    r = post(duty, f"{page}/extend", {"minutes": "60"}, page=page)
    assert r.status_code == 303 and r.headers["location"].endswith("done=consult_extended")
    got = _consultation(f, cid)
    assert got["deadline"].replace(tzinfo=dt.UTC) == clock.now() + dt.timedelta(minutes=60)
    html = duty.get(page).text
    assert "2026-07-20 03:31" in html and "⚠ 已超时" not in html
    leader = as_user("leader")
    r = post(leader, f"{page}/dismiss", {"reason": "   "}, page=page)
    assert r.status_code == 422 and 'data-testid="error-reason"' in r.text
    r = post(leader, f"{page}/dismiss", {"reason": "雨已停，无需响应"}, page=page)
    assert r.status_code == 303 and r.headers["location"].endswith("done=consult_dismissed")
    assert _consultation(f, cid)["state"] == "dismissed"
    html = leader.get(page).text
    assert "已否决" in html and "雨已停，无需响应" in html and 'data-testid="decision-form"' not in html
    listing = leader.get("/console/consultations").text
    assert MESSAGES["consult.list.empty_waiting"][0] in listing
    assert len(_rows(listing, "consultation-row")) == 1, "listed among the recent ones"


def _rows_with_class(html: str) -> str:
    return " ".join(re.findall(r'<li class="([^"]*)" data-testid="consultation-row"', html))


def test_the_consultation_list_is_empty_with_a_hint(as_user: Callable[..., TestClient]) -> None:
    html = as_user("analyst", "气象局").get("/console/consultations").text
    assert MESSAGES["consult.list.empty_waiting"][0] in html and MESSAGES["consult.list.empty_recent"][0] in html
    assert_no_inline_code(html)


# --------------------------------------------------------------------------- language


@pytest.fixture
def english(client: TestClient) -> Iterator[None]:
    client.cookies.set("jiaoying_lang", "en")
    yield
    client.cookies.delete("jiaoying_lang")


def test_the_pages_switch_to_english(as_user: Callable[..., TestClient], sqlite_runtime: Runtime,
                                     make_warning: MakeWarning, clock: VirtualClock, region: None) -> None:
    f = sqlite_runtime.session_factory
    wid = _warning(f, make_warning, clock.now(), level="red",
                   affected={"villages": [VILLAGE], "townships": [TOWN], "sites": []})
    cid = _open(f, wid, clock.now())
    client = as_user("leader")
    client.cookies.set("jiaoying_lang", "en")
    html = client.get("/console/warnings").text
    assert '<html lang="en">' in html and "Active warnings" in html and "Red warning" in html
    assert "Manual entry" in html and "生效预警" not in html
    html = client.get(f"/console/warnings/{wid}").text
    assert "Versions (alert / update / cancel)" in html and "Show the CAP 1.2 XML" in html
    html = client.get(f"/console/consultations/{cid}").text
    assert "Record a judgement" in html and "Meteorological Bureau" in html and "Decide" in html
    html = client.get("/console/warnings/new").text
    assert "Caller&#39;s name" in html and "Issuing agency" in html
    r = post(client, "/console/warnings/new", {"channel": "phone"}, page="/console/warnings/new")
    assert r.status_code == 422 and "Required" in r.text
