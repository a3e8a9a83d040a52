"""The run pages of the console: the list of responses, one response's callout board, measures and reports.

A red flood warning over one township's three villages starts a run the way the warning engine starts one
(``start_run`` with the hooks of ``jiaoying/wiring.py``): four people are called, an evacuation and a school
closure are ordered, and the initial reports fall due. Every action goes through the page's form and is
checked through the services, not through the HTML alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from console.i18n import MESSAGES
from geo.models import Area, HazardSite
from responses.callouts import board as callout_board
from responses.contacts.models import Contact, Duty
from responses.measures import service as measure_service
from responses.reports import service as report_service
from responses.runs import service as run_service
from responses.runs.core import Trigger
from tests.conftest import make_user
from warning.models import Warning

PASSWORD = "correct-horse-9"
DISTRICT = "140502000000"
TOWN = "140502001000"
VILLAGES = {"140502001001": "上村", "140502001002": "中村", "140502001003": "下村"}


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "every console page carries the CSRF token"
    return found.group(1)


@dataclass
class Run:
    id: int
    warning_id: int
    callouts: dict[str, int]  # person's name → callout id
    evacuation: int
    school: int
    reports: list[int]


def start_red_run(rt: Runtime, *, drill: bool = False, thread: str = "flood-1") -> Run:
    """A district slice (one township, three villages, a reservoir with 130 people on its list), the people
    responsible for it, and a red flood warning that starts a run as the engine would."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        if s.query(Area.id).filter(Area.code == DISTRICT).first() is None:
            s.add(Area(code=DISTRICT, name="城区", level="district", parent_code=None, updated_at=now))
            s.add(Area(code=TOWN, name="北街街道", level="township", parent_code=DISTRICT, updated_at=now))
            for code, name in VILLAGES.items():
                s.add(Area(code=code, name=name, level="village", parent_code=TOWN, updated_at=now))
            s.add(HazardSite(key="reservoir-1", name="东风水库下游", kind="reservoir_downstream",
                             geometry={"type": "Point", "coordinates": [112.85, 35.5]},
                             area_code="140502001002", residents=130, updated_at=now))
            people = [("王镇长", "township_chief", TOWN)] + [
                (f"{name}村长", "village_head", code) for code, name in VILLAGES.items()]
            for i, (name, role, place) in enumerate(people):
                c = Contact(name=name, phone=f"+86138000000{i:02d}", created_at=now, updated_at=now)
                s.add(c)
                s.flush()
                s.add(Duty(contact_id=c.id, role=role, area_code=place, place=place, created_at=now))
        s.flush()
        site_id = s.query(HazardSite.id).scalar()
        w = Warning(sender="chengqu-met", identifier=thread, msg_type="alert",
                    status="exercise" if drill else "actual", drill=drill, hazard="flood", event="暴雨洪涝",
                    level="red", sent=now, headline="城区气象台发布暴雨红色预警",
                    affected={"villages": list(VILLAGES), "townships": [TOWN], "sites": [str(site_id)]},
                    received_at=now, updated_at=now)
        s.add(w)
        s.flush()
        w.thread_id = w.id
        run, created = run_service.start_run(s, warning=w, level="red", areas=w.affected,
                                             trigger=Trigger.AUTOMATIC, actor="system", now=now)
        assert run is not None and created
        board = callout_board.board(s, run.id, now=now)
        measures = {m.kind: m.id for m in measure_service.for_run(s, run.id)}
        reports = [r.id for r in report_service.for_run(s, run.id)]
        return Run(run.id, w.id, {c["name"]: c["id"] for c in board["callouts"]}, measures["evacuation"],
                   measures["stop_school"], reports)


@pytest.fixture
def run(sqlite_runtime: Runtime) -> Run:
    return start_red_run(sqlite_runtime)


@pytest.fixture
def as_role(client: TestClient, sqlite_runtime: Runtime) -> Iterator[Callable[[str], TestClient]]:
    """``as_role("leader")`` → a browser of its own, logged in through the console form as a new user."""
    opened: list[TestClient] = []

    def _login(role: str) -> TestClient:
        name = f"{role}{len(opened) + 1}"
        make_user(sqlite_runtime.session_factory, name, role, "meteorology" if role == "analyst" else None)
        browser = TestClient(client.app)
        opened.append(browser)
        page = browser.get("/login")
        r = browser.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token_of(page.text)},
                         follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", r.text
        return browser

    yield _login
    for browser in opened:
        browser.close()


def post(browser: TestClient, path: str, page: str, **data: str) -> Any:
    """Submit a console form the way the browser does: with the token of the page it sits on."""
    return browser.post(path, data={"csrf_token": token_of(browser.get(page).text), **data}, follow_redirects=False)


def callout_row(rt: Runtime, run_id: int, callout_id: int) -> dict[str, Any]:
    with session_scope(rt.session_factory) as s:
        board = callout_board.board(s, run_id, now=rt.now())
    return next(c for c in board["callouts"] if c["id"] == callout_id)


def measure_view(rt: Runtime, measure_id: int) -> dict[str, Any]:
    with session_scope(rt.session_factory) as s:
        order = measure_service.get(s, measure_id)
        assert order is not None
        return measure_service.view(order, rt.now())


def report_view(rt: Runtime, report_id: int) -> dict[str, Any]:
    with session_scope(rt.session_factory) as s:
        rep = report_service.get(s, report_id)
        assert rep is not None
        return report_service.view(rep, rt.now(), rt.settings.tz)


def element(html: str, testid: str, attr: str, value: int | str) -> str:
    """The opening tag and body of the element marked ``data-testid=testid`` with ``attr=value``."""
    tag = next((m for m in re.finditer(r"<(\w+)(\s[^>]*)>", html)
                if f'data-testid="{testid}"' in m.group(2) and f' {attr}="{value}"' in m.group(2)), None)
    assert tag, f"{testid} {value} is on the page"
    end = html.index(f"</{tag.group(1)}>", tag.end())
    nested = html.count(f"<{tag.group(1)} ", tag.end(), end) + html.count(f"<{tag.group(1)}>", tag.end(), end)
    for _ in range(nested):
        end = html.index(f"</{tag.group(1)}>", end + 1)
    return html[tag.start():end]


def without_attributes(html: str) -> str:
    """The page as read: tags dropped, so codes kept in ``title`` (for hover) do not count as shown."""
    return re.sub(r"<[^>]*>", " ", html)


# ---------------------------------------------------------------------------------------------- the list


def test_the_list_without_runs_says_what_to_do(as_role: Callable[[str], TestClient]) -> None:
    html = as_role("duty_officer").get("/console/runs").text
    assert MESSAGES["runpage.list.open.empty"][0] in html and "红色预警到达后会自动启动响应" in html
    assert MESSAGES["runpage.list.closed.empty"][0] in html


def test_the_list_shows_open_runs_red_first_with_their_totals(
        as_role: Callable[[str], TestClient], sqlite_runtime: Runtime, run: Run, clock: VirtualClock) -> None:
    with session_scope(sqlite_runtime.session_factory) as s:
        w = Warning(sender="x", identifier="blue-1", msg_type="alert", status="actual", hazard="weather",
                    event="大风", level="blue", sent=clock.now(), headline="大风蓝色预警",
                    affected={"villages": [], "townships": [TOWN], "sites": []}, received_at=clock.now(),
                    updated_at=clock.now())
        s.add(w)
        s.flush()
        w.thread_id = w.id
        blue, _ = run_service.start_run(s, warning=w, level="blue", areas=w.affected, trigger=Trigger.DECISION,
                                        actor="user:leader", now=clock.now())
        assert blue is not None
        blue_id = blue.id
    clock.advance(dt.timedelta(minutes=6))  # every call of the red run is past its five-minute deadline
    html = as_role("viewer").get("/console/runs").text
    assert MESSAGES["runpage.list.open.empty"][0] not in html
    red_row = element(html, "run-row", "data-run-id", run.id)
    assert f'href="/console/runs/{run.id}"' in red_row
    assert "红色预警" in red_row and "洪涝灾害" in red_row and "I级响应" in red_row and "响应中" in red_row
    assert "2026-07-20 02:00" in red_row, "started, in Asia/Shanghai"
    cells = re.findall(r'<td class="num[^"]*"[^>]*>(\d+)', red_row)
    assert cells[:4] == ["4", "0", "0", "4"], "four called, none answered, four past their deadline"
    assert "row-overdue" in red_row and "⚠" in red_row
    assert "蓝色预警" in element(html, "run-row", "data-run-id", blue_id)
    assert html.index(f'data-run-id="{run.id}"') < html.index(f'data-run-id="{blue_id}"'), "red first"


# ---------------------------------------------------------------------------------------------- reading a run


def test_the_run_page_names_places_and_links_the_warning_and_the_audit_report(
        as_role: Callable[[str], TestClient], run: Run) -> None:
    html = as_role("duty_officer").get(f"/console/runs/{run.id}").text
    assert f'href="/console/warnings/{run.warning_id}"' in html
    assert f'href="/audit/runs/{run.id}/report.html"' in html and f'href="/audit/runs/{run.id}/report.xlsx"' in html
    assert "红色预警" in html and "I级响应" in html and "响应中" in html and "预案自动启动" in html
    row = element(html, "callout", "data-callout-id", run.callouts["上村村长"])
    assert 'data-state="calling"' in row and "上村" in row and 'title="140502001001"' in row
    assert "叫应中" in row and "村级" in row and "呼叫 1 次" in row and "语音电话" in row
    assert 'data-testid="confirm-callout"' in row and 'name="note"' in row
    summary = element(html, "township-summary", "class", "progress")
    assert "北街街道" in summary
    measure = element(html, "measure", "data-measure-id", run.evacuation)
    assert "转移疏散" in measure and "中村" in measure and "东风水库下游" in measure and "王镇长" in measure
    assert "已下达" in measure and "落实时限" in measure
    school = element(html, "measure", "data-measure-id", run.school)
    assert all(name in school for name in VILLAGES.values())
    report = element(html, "report", "data-report-id", run.reports[0])
    assert "电话初报" in report and "待报送" in report and "2026-07-20 02:30" in report
    shown = without_attributes(html)
    for code in [TOWN, *VILLAGES]:
        assert code not in shown, f"{code}: places are shown by name, the code only on hover"


def test_overdue_callouts_come_first_and_say_so(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime,
                                                 run: Run, clock: VirtualClock) -> None:
    duty = as_role("duty_officer")
    page = f"/console/runs/{run.id}"
    first = run.callouts["上村村长"]
    r = post(duty, f"/console/runs/{run.id}/callouts/{first}/answer", page, note="电话联系上村村长，已收到")
    assert r.status_code == 303
    clock.advance(dt.timedelta(minutes=6))
    html = duty.get(page).text
    ids = [int(i) for i in re.findall(r'data-testid="callout" data-callout-id="(\d+)"', html)]
    assert ids[-1] == first, "the answered one goes last"
    late = element(html, "callout", "data-callout-id", run.callouts["下村村长"])
    assert "runpage-callout-overdue" in late and "⚠ 已超时" in late
    assert "⚠ 已超时" not in element(html, "callout", "data-callout-id", first)


def test_an_unknown_run_is_a_problem_page(as_role: Callable[[str], TestClient]) -> None:
    r = as_role("viewer").get("/console/runs/4242")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "未找到响应" in r.text and 'href="/console/runs"' in r.text


def test_a_drill_run_is_marked_as_a_drill(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime) -> None:
    drill = start_red_run(sqlite_runtime, drill=True, thread="drill-1")
    duty = as_role("duty_officer")
    html = duty.get(f"/console/runs/{drill.id}").text
    assert 'data-testid="drill"' in html and "演练响应" in html
    assert "演练" in element(duty.get("/console/runs").text, "run-row", "data-run-id", drill.id)


def test_a_real_run_is_not_marked_as_a_drill(as_role: Callable[[str], TestClient], run: Run) -> None:
    html = as_role("duty_officer").get(f"/console/runs/{run.id}").text
    assert 'data-testid="drill"' not in html and "演练响应" not in html


def test_the_run_page_in_english(as_role: Callable[[str], TestClient], run: Run) -> None:
    duty = as_role("duty_officer")
    duty.cookies.set("jiaoying_lang", "en")
    html = duty.get(f"/console/runs/{run.id}").text
    assert '<html lang="en">' in html
    for words in ("Call-and-answer board", "Red warning", "Confirm by phone", "Evacuation", "Ordered",
                  "Information reports", "Audit report (HTML)", "Calling", "Level I"):
        assert words in html, words
    assert "叫应看板" not in html and "电话确认" not in html
    assert "Open responses" in duty.get("/console/runs").text


# ---------------------------------------------------------------------------------------------- acting


def test_confirm_by_phone_answers_the_callout_with_the_note(as_role: Callable[[str], TestClient],
                                                            sqlite_runtime: Runtime, run: Run) -> None:
    duty = as_role("duty_officer")
    page = f"/console/runs/{run.id}"
    callout = run.callouts["中村村长"]
    r = post(duty, f"/console/runs/{run.id}/callouts/{callout}/answer", page,
             note="02:03 电话联系中村村长本人，已收到，正在组织转移", kind="need_support")
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/runs/{run.id}?done=runpage_answered#callout-{callout}"
    row = callout_row(sqlite_runtime, run.id, callout)
    assert row["state"] == "answered" and row["answered_at"]
    [answer] = row["answers"]
    assert answer["channel"] == "duty_officer" and answer["kind"] == "need_support"
    assert answer["note"] == "02:03 电话联系中村村长本人，已收到，正在组织转移"
    assert answer["entered_by"] == "user:duty_officer1"
    html = duty.get(r.headers["location"]).text
    assert "✓ " + MESSAGES["done.runpage_answered"][0] in html
    shown = element(html, "callout", "data-callout-id", callout)
    assert 'data-state="answered"' in shown and "正在组织转移" in shown and "需要支援" in shown
    assert 'data-testid="confirm-callout"' not in shown, "an answered callout has nothing left to confirm"


def test_confirm_by_phone_needs_a_note(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime,
                                       run: Run) -> None:
    duty = as_role("duty_officer")
    callout = run.callouts["下村村长"]
    r = post(duty, f"/console/runs/{run.id}/callouts/{callout}/answer", f"/console/runs/{run.id}", note="   ")
    assert r.status_code == 422 and "电话确认必须填写说明" in r.text
    assert f'href="/console/runs/{run.id}"' in r.text, "the problem page leads back to the run"
    assert callout_row(sqlite_runtime, run.id, callout)["state"] == "calling"


def test_a_callout_of_another_run_is_not_found(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime,
                                               run: Run) -> None:
    other = start_red_run(sqlite_runtime, thread="flood-2")
    duty = as_role("duty_officer")
    callout = run.callouts["上村村长"]
    r = post(duty, f"/console/runs/{other.id}/callouts/{callout}/answer", f"/console/runs/{other.id}", note="x")
    assert r.status_code == 404
    assert callout_row(sqlite_runtime, run.id, callout)["state"] == "calling"


def test_a_measure_is_carried_out_then_lifted(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime,
                                              run: Run) -> None:
    duty, leader = as_role("duty_officer"), as_role("leader")
    page = f"/console/runs/{run.id}"
    base = f"/console/runs/{run.id}/measures/{run.evacuation}"
    html = duty.get(page).text
    measure = element(html, "measure", "data-measure-id", run.evacuation)
    assert 'data-state="ordered"' in measure
    assert 'data-action="carry_out"' in measure and 'data-action="acknowledge"' in measure
    assert re.search(r'<form[^>]*/carry_out"[^>]*data-confirm="[^"]+"', measure), "carried out is asked first"
    assert 'data-action="waive"' not in measure and 'data-action="order_lift"' not in measure, "leaders' steps"

    r = post(duty, f"{base}/carry_out", page, figure="abc")
    assert r.status_code == 400 and "已转移人数" in r.text
    r = post(duty, f"{base}/carry_out", page, figure="120", note="剩余10人投亲靠友", via="phone")
    assert r.status_code == 303 and r.headers["location"].endswith(f"done=runpage_measure#measure-{run.evacuation}")
    v = measure_view(sqlite_runtime, run.evacuation)
    assert v["state"] == "carried_out" and v["report"]["people_evacuated"] == 120
    assert v["report"]["note"] == "剩余10人投亲靠友" and v["acknowledged_via"] == "phone"
    shown = element(duty.get(page).text, "measure", "data-measure-id", run.evacuation)
    assert "已落实" in shown and "120" in shown and "尚差 10 人" in shown

    r = post(duty, f"{base}/order_lift", page, reason="雨停，水位回落")
    assert r.status_code == 403, "ordering a lift is the leader's"
    assert measure_view(sqlite_runtime, run.evacuation)["state"] == "carried_out"
    lift = element(leader.get(page).text, "measure", "data-measure-id", run.evacuation)
    assert re.search(r'<form[^>]*/order_lift"[^>]*data-confirm="[^"]+"', lift)
    r = post(leader, f"{base}/order_lift", page, reason="雨停，水位回落")
    assert r.status_code == 303
    v = measure_view(sqlite_runtime, run.evacuation)
    assert v["state"] == "lifting" and v["lift_reason"] == "雨停，水位回落"
    r = post(duty, f"{base}/confirm_lifted", page, note="群众已返回", via="phone")
    assert r.status_code == 303
    assert measure_view(sqlite_runtime, run.evacuation)["state"] == "lifted"
    done = element(duty.get(page).text, "measure", "data-measure-id", run.evacuation)
    assert 'data-state="lifted"' in done and "已解除" in done and "data-action" not in done


def test_waiving_needs_a_reason(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime, run: Run) -> None:
    leader = as_role("leader")
    page = f"/console/runs/{run.id}"
    html = element(leader.get(page).text, "measure", "data-measure-id", run.school)
    waive = re.search(r'<form[^>]*/waive"[^>]*data-confirm="[^"]+".*?</form>', html, re.S)
    assert waive and re.search(r'name="reason"[^>]*required', waive.group(0))
    r = post(leader, f"/console/runs/{run.id}/measures/{run.school}/waive", page, reason="  ")
    assert r.status_code == 409 and "豁免必须填写理由" in r.text
    assert measure_view(sqlite_runtime, run.school)["state"] == "ordered"
    r = post(leader, f"/console/runs/{run.id}/measures/{run.school}/waive", page, reason="暑假期间，学校无学生")
    assert r.status_code == 303
    v = measure_view(sqlite_runtime, run.school)
    assert v["state"] == "waived" and v["reason"] == "暑假期间，学校无学生"


def test_a_step_the_state_does_not_allow_is_refused_in_words(as_role: Callable[[str], TestClient],
                                                             sqlite_runtime: Runtime, run: Run) -> None:
    duty = as_role("duty_officer")
    r = post(duty, f"/console/runs/{run.id}/measures/{run.school}/confirm_lifted", f"/console/runs/{run.id}")
    assert r.status_code == 409 and "不能确认已解除" in r.text and "illegal_transition" in r.text
    r = post(duty, f"/console/runs/{run.id}/measures/{run.school}/fly", f"/console/runs/{run.id}")
    assert r.status_code == 404
    assert measure_view(sqlite_runtime, run.school)["state"] == "ordered"


def test_progress_is_reported_with_a_figure_or_a_note(as_role: Callable[[str], TestClient],
                                                      sqlite_runtime: Runtime, run: Run) -> None:
    duty = as_role("duty_officer")
    page = f"/console/runs/{run.id}"
    r = post(duty, f"/console/runs/{run.id}/measures/{run.evacuation}/report_progress", page, figure="35")
    assert r.status_code == 303
    v = measure_view(sqlite_runtime, run.evacuation)
    assert v["state"] == "in_progress" and v["report"]["people_evacuated"] == 35
    assert "尚差 95 人" in element(duty.get(page).text, "measure", "data-measure-id", run.evacuation)
    r = post(duty, f"/console/runs/{run.id}/measures/{run.school}/report_progress", page, note="已通知3所学校")
    assert r.status_code == 303
    assert measure_view(sqlite_runtime, run.school)["report"]["note"] == "已通知3所学校"
    r = post(duty, f"/console/runs/{run.id}/measures/{run.evacuation}/carry_out", page, figure="130")
    assert r.status_code == 303
    assert "已应转尽转" in element(duty.get(page).text, "measure", "data-measure-id", run.evacuation)


def test_a_report_is_edited_then_marked_sent(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime,
                                             run: Run) -> None:
    duty = as_role("duty_officer")
    page = f"/console/runs/{run.id}"
    report = run.reports[0]
    shown = element(duty.get(page).text, "report", "data-report-id", report)
    assert 'name="text"' in shown and re.search(r'<form[^>]*/sent"[^>]*data-confirm="[^"]+"', shown)
    r = post(duty, f"/console/runs/{run.id}/reports/{report}/text", page, text="   ")
    assert r.status_code == 400 and "报告内容不能为空" in r.text
    text = report_view(sqlite_runtime, report)["draft_text"] + "\n补充：中村已转移120人。"
    r = post(duty, f"/console/runs/{run.id}/reports/{report}/text", page, text=text)
    assert r.status_code == 303 and r.headers["location"].endswith(f"done=runpage_report_text#report-{report}")
    v = report_view(sqlite_runtime, report)
    assert v["state"] == "draft" and v["text"] == text and v["edited"] and v["edited_by"] == "user:duty_officer1"

    r = post(duty, f"/console/runs/{run.id}/reports/{report}/sent", page, via="pigeon")
    assert r.status_code == 422 and report_view(sqlite_runtime, report)["state"] == "draft"
    r = post(duty, f"/console/runs/{run.id}/reports/{report}/sent", page, via="phone", recipient="市应急管理局")
    assert r.status_code == 303
    v = report_view(sqlite_runtime, report)
    assert v["state"] == "sent" and v["sent_via"] == "phone" and v["recipient"] == "市应急管理局"
    html = duty.get(r.headers["location"]).text
    assert "✓ " + MESSAGES["done.runpage_report_sent"][0] in html
    shown = element(html, "report", "data-report-id", report)
    assert "已报送" in shown and "市应急管理局" in shown and 'name="text"' not in shown
    r = post(duty, f"/console/runs/{run.id}/reports/{report}/text", page, text="再改")
    assert r.status_code == 409 and "不能再修改" in r.text


def test_the_leader_closes_the_run_once_every_measure_is_settled(
        as_role: Callable[[str], TestClient], sqlite_runtime: Runtime, run: Run) -> None:
    leader, duty = as_role("leader"), as_role("duty_officer")
    page = f"/console/runs/{run.id}"
    assert 'data-testid="run-closing"' not in duty.get(page).text
    html = leader.get(page).text
    assert re.search(r'<form[^>]*/closing"[^>]*data-testid="run-closing"[^>]*data-confirm="[^"]+"', html)
    r = post(duty, f"/console/runs/{run.id}/closing", page, reason="预警解除")
    assert r.status_code == 403
    r = post(leader, f"/console/runs/{run.id}/closing", page, reason="预警解除")
    assert r.status_code == 303
    with session_scope(sqlite_runtime.session_factory) as s:
        state = run_service.get_run(s, run.id).state  # type: ignore[union-attr]
    assert state == "closing"
    r = post(leader, f"/console/runs/{run.id}/close", page)
    assert r.status_code == 409 and "不能结束响应" in r.text, "measures still open"
    for measure in (run.evacuation, run.school):
        assert measure_view(sqlite_runtime, measure)["state"] == "lifting", "closing lifts every measure"
        r = post(duty, f"/console/runs/{run.id}/measures/{measure}/confirm_lifted", page)
        assert r.status_code == 303
    r = post(leader, f"/console/runs/{run.id}/close", page, note="全部措施已解除")
    assert r.status_code == 303
    html = leader.get("/console/runs").text
    assert MESSAGES["runpage.list.open.empty"][0] in html
    closed = element(html, "closed-runs", "class", "runpage-table")
    assert f'href="/console/runs/{run.id}"' in closed and "已结束" in closed


# ---------------------------------------------------------------------------------------------- refusing


def test_a_viewer_reads_everything_and_changes_nothing(as_role: Callable[[str], TestClient],
                                                        sqlite_runtime: Runtime, run: Run) -> None:
    viewer = as_role("viewer")
    page = f"/console/runs/{run.id}"
    html = viewer.get(page).text
    assert "上村" in html and "转移疏散" in html and "电话初报" in html
    assert f'href="/audit/runs/{run.id}/report.html"' in html, "auditors include the viewer"
    forms = re.findall(r'<form[^>]*action="([^"]+)"', html)
    assert set(forms) == {"/lang", "/logout"}, "no action forms for a viewer"
    assert "data-action=" not in html and "+86138" not in html, "nor phone numbers"
    callout = run.callouts["上村村长"]
    attempts = [
        (f"/console/runs/{run.id}/callouts/{callout}/answer", {"note": "x"}),
        *[(f"/console/runs/{run.id}/measures/{run.evacuation}/{a}", {"reason": "x", "figure": "1"})
          for a in ("acknowledge", "carry_out", "order_lift", "waive")],
        (f"/console/runs/{run.id}/reports/{run.reports[0]}/text", {"text": "x"}),
        (f"/console/runs/{run.id}/reports/{run.reports[0]}/sent", {"via": "phone"}),
        (f"/console/runs/{run.id}/closing", {"reason": "x"}),
        (f"/console/runs/{run.id}/close", {}),
    ]
    for path, data in attempts:
        r = post(viewer, path, page, **data)
        assert r.status_code == 403 and "无权操作" in r.text, path
    assert callout_row(sqlite_runtime, run.id, callout)["state"] == "calling"
    assert measure_view(sqlite_runtime, run.evacuation)["state"] == "ordered"
    assert report_view(sqlite_runtime, run.reports[0])["state"] == "draft"


def test_an_analyst_sees_no_audit_links_and_no_forms(as_role: Callable[[str], TestClient], run: Run) -> None:
    html = as_role("analyst").get(f"/console/runs/{run.id}").text
    assert "/audit/runs/" not in html, "the audit report refuses analysts, so it is not offered"
    assert 'data-testid="confirm-callout"' not in html and "data-action=" not in html


def test_a_form_without_the_token_is_refused(as_role: Callable[[str], TestClient], sqlite_runtime: Runtime,
                                            run: Run) -> None:
    duty = as_role("duty_officer")
    duty.get(f"/console/runs/{run.id}")
    callout = run.callouts["上村村长"]
    r = duty.post(f"/console/runs/{run.id}/callouts/{callout}/answer", data={"note": "已收到"},
                  follow_redirects=False)
    assert r.status_code == 403 and "请求已拒绝" in r.text
    r = duty.post(f"/console/runs/{run.id}/measures/{run.evacuation}/acknowledge",
                  data={"csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert callout_row(sqlite_runtime, run.id, callout)["state"] == "calling"
    assert measure_view(sqlite_runtime, run.evacuation)["state"] == "ordered"


def test_without_a_session_the_pages_send_to_the_login(client: TestClient, run: Run) -> None:
    for path in ("/console/runs", f"/console/runs/{run.id}"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"


def test_the_pages_have_no_inline_script_or_style(as_role: Callable[[str], TestClient], run: Run) -> None:
    leader = as_role("leader")
    for path in ("/console/runs", f"/console/runs/{run.id}"):
        r = leader.get(path)
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "style=" not in r.text and "<script>" not in r.text and not re.search(r"\son\w+=", r.text)
        assert not re.search(r'<script(?![^>]*\ssrc=)', r.text)
    html = leader.get(f"/console/runs/{run.id}").text
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    fields = set(re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', html))
    assert fields and fields <= labels, "every field has its label"
