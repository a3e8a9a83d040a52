"""The duty-room pages through the app's own client: the shift on duty, the duty log (write, mark, export
links), the handover (draft, sign by the outgoing officer, acknowledge by the incoming one), the roster form
and the admins' gaps panel; the same roles and shift members as the JSON API, CSRF, Chinese first."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import latest_id
from config.runtime import Runtime
from responses.contacts import roster_service
from responses.contacts.roster import Person, ShiftSpec
from responses.duty import handovers
from responses.duty import service as duty_service
from tests.conftest import make_user
from tests.console.test_pages import console_login, token_of

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _roster(rt: Runtime, now: dt.datetime) -> tuple[int, int]:
    """This shift (out: 王交班) and the next one (in: 赵接班), both with a leader."""
    start = now - dt.timedelta(hours=6)
    mid = now + dt.timedelta(hours=1)
    with session_scope(rt.session_factory) as s:
        out = roster_service.upsert_shift(s, ShiftSpec(start, mid, Person("李带班"), [Person("王交班")], label="白班"),
                                          roster_id=None, actor="test", now=now)
        inc = roster_service.upsert_shift(s, ShiftSpec(mid, mid + dt.timedelta(hours=12), Person("钱带班"),
                                                       [Person("赵接班")], label="夜班"),
                                          roster_id=None, actor="test", now=now)
        return out.id, inc.id


def _login_as(client: TestClient, rt: Runtime, username: str, role: str, display: str | None = None) -> None:
    make_user(rt.session_factory, username, role)
    if display:
        from config.users import User
        with session_scope(rt.session_factory) as s:
            s.query(User).filter(User.username == username).one().display_name = display
    client.cookies.clear()
    r = console_login(client, username)
    assert r.status_code == 303, r.text


def _post(client: TestClient, url: str, data: dict[str, Any], page: str = "/console/duty") -> Any:
    token = token_of(client.get(page).text)
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=False)


@pytest.fixture
def rt(sqlite_runtime: Runtime) -> Runtime:
    return sqlite_runtime


def test_empty_duty_room_says_what_to_do_in_chinese(client: TestClient, rt: Runtime) -> None:
    _login_as(client, rt, "duty1", "duty_officer")
    page = client.get("/console/duty")
    assert page.status_code == 200
    html = page.text
    assert "当前无人在班" in html and "本班次暂无值班日志" in html and "本班次尚无交接班记录" in html
    assert "未来 7 天没有排班" in html
    assert 'data-testid="duty-draft"' not in html, "nothing to draft without a shift on duty"
    assert "style=" not in html and "<script>" not in html
    client.cookies.set("jiaoying_lang", "en")
    en = client.get("/console/duty").text
    assert "Nobody is on duty" in en and "Nothing logged in this shift yet" in en


def test_officer_writes_the_log_marks_an_entry_and_sees_it_in_shanghai_time(client: TestClient, rt: Runtime,
                                                                             clock: VirtualClock) -> None:
    now = clock.now()
    out_id, _ = _roster(rt, now)
    _login_as(client, rt, "duty1", "duty_officer", "王交班")
    page = client.get("/console/duty").text
    assert "李带班" in page and "王交班" in page and "白班" in page
    assert 'data-testid="duty-draft"' in page and "本班次尚无交接班记录" in page
    assert f"/duty/log.xlsx?shift={out_id}" in page and f"/duty/log.html?shift={out_id}" in page

    earlier = (now - dt.timedelta(minutes=30)).astimezone(SHANGHAI)
    r = _post(client, "/console/duty/log", {"kind": "call", "text": "报告河道水位上涨", "from_name": "孙村长",
                                            "from_unit": "东村", "from_phone": "13800000001",
                                            "at": earlier.strftime("%Y-%m-%dT%H:%M")})
    assert r.status_code == 303 and r.headers["location"] == "/console/duty?done=dutyroom_logged"
    r = _post(client, "/console/duty/log", {"kind": "instruction", "text": "加强巡查", "for_handover": "1"})
    assert r.status_code == 303

    with session_scope(rt.session_factory) as s:
        view = duty_service.log_view(s, now=clock.now(), tz=rt.settings.tz)
        written = [e for e in view["entries"] if not e["system"]]
        assert [(e["kind"], e["for_handover"]) for e in written] == [("call", False), ("instruction", True)]
        call = written[0]
        assert call["from_name"] == "孙村长" and call["at"].astimezone(SHANGHAI).strftime("%H:%M") == \
            earlier.strftime("%H:%M")
        call_id = call["id"]

    page = client.get("/console/duty?done=dutyroom_logged").text
    assert "已登记值班日志" in page
    assert earlier.strftime("%Y-%m-%d %H:%M") in page, "shown in Asia/Shanghai"
    assert page.index("报告河道水位上涨") < page.index("加强巡查"), "chronological"
    assert page.count('data-testid="duty-marked"') == 1

    r = _post(client, f"/console/duty/log/{call_id}/handover", {"for_handover": "1"})
    assert r.status_code == 303 and "done=dutyroom_marked" in r.headers["location"]
    with session_scope(rt.session_factory) as s:
        entry = duty_service.get_entry(s, call_id)
        assert entry is not None and entry.for_handover is True
    assert client.get("/console/duty").text.count('data-testid="duty-marked"') == 2


def test_a_refused_entry_shows_the_service_message(client: TestClient, rt: Runtime, clock: VirtualClock) -> None:
    _roster(rt, clock.now())
    _login_as(client, rt, "duty1", "duty_officer")
    future = (clock.now() + dt.timedelta(hours=2)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    r = _post(client, "/console/duty/log", {"kind": "note", "text": "未来的事", "at": future})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert 'href="/console/duty"' in r.text
    r = _post(client, "/console/duty/log", {"kind": "note", "text": "   "})
    assert r.status_code == 422
    with session_scope(rt.session_factory) as s:
        assert [e for e in duty_service.log_view(s, now=clock.now(), tz=rt.settings.tz)["entries"]
                if not e["system"]] == []


def test_viewer_reads_but_may_not_write_and_csrf_is_required(client: TestClient, rt: Runtime,
                                                            clock: VirtualClock) -> None:
    _roster(rt, clock.now())
    _login_as(client, rt, "view1", "viewer")
    page = client.get("/console/duty").text
    assert "李带班" in page
    assert 'action="/console/duty/log"' not in page and 'action="/console/duty/handovers"' not in page
    assert 'action="/console/duty/roster/shifts"' not in page and 'data-testid="duty-gaps"' not in page
    for url in ("/console/duty/log", "/console/duty/handovers", "/console/duty/roster/shifts"):
        r = _post(client, url, {"kind": "note", "text": "x"})
        assert r.status_code == 403, url
        assert "无权操作" in r.text
    _login_as(client, rt, "duty1", "duty_officer")
    r = client.post("/console/duty/log", data={"kind": "note", "text": "无令牌"}, follow_redirects=False)
    assert r.status_code == 403
    with session_scope(rt.session_factory) as s:
        assert not [e for e in duty_service.log_view(s, now=clock.now(), tz=rt.settings.tz)["entries"]
                    if not e["system"]]


def test_handover_drafted_signed_by_the_outgoing_acknowledged_by_the_incoming(
        client: TestClient, rt: Runtime, clock: VirtualClock) -> None:
    out_id, in_id = _roster(rt, clock.now())
    _login_as(client, rt, "wang", "duty_officer", "王交班")
    _post(client, "/console/duty/log", {"kind": "action", "text": "通知东村转移", "for_handover": "1"})
    r = _post(client, "/console/duty/handovers", {})
    assert r.status_code == 303
    m = re.fullmatch(r"/console/duty/handovers/(\d+)\?done=dutyroom_drafted", r.headers["location"])
    assert m, r.headers["location"]
    hid = int(m.group(1))
    again = _post(client, "/console/duty/handovers", {})
    assert again.headers["location"] == f"/console/duty/handovers/{hid}?done=dutyroom_existing", "one per shift"

    page = client.get(f"/console/duty/handovers/{hid}").text
    assert "草稿（待交班签字）" in page and "通知东村转移" in page and "交接班记录" in page
    assert f'action="/console/duty/handovers/{hid}/sign"' in page and "data-confirm=" in page
    assert f'action="/console/duty/handovers/{hid}/ack"' not in page

    # the incoming officer may not sign the outgoing shift's note (the API's rule)
    _login_as(client, rt, "zhao", "duty_officer", "赵接班")
    page = client.get(f"/console/duty/handovers/{hid}").text
    assert f'action="/console/duty/handovers/{hid}/sign"' not in page and "王交班" in page
    r = _post(client, f"/console/duty/handovers/{hid}/sign", {"text": "冒签"}, page=f"/console/duty/handovers/{hid}")
    assert r.status_code == 403 and "只有交班班次的值班人员可以签字" in r.text

    _login_as(client, rt, "wang2", "duty_officer", "王交班")
    r = _post(client, f"/console/duty/handovers/{hid}/sign", {"text": "交接班记录\n东村已转移，注意夜间雨情\n"},
              page=f"/console/duty/handovers/{hid}")
    assert r.status_code == 303 and r.headers["location"].endswith("done=dutyroom_signed")
    r = _post(client, f"/console/duty/handovers/{hid}/sign", {"text": "再签"}, page=f"/console/duty/handovers/{hid}")
    assert r.status_code == 409, "signing twice is refused by the state machine"

    _login_as(client, rt, "zhao2", "duty_officer", "赵接班")
    page = client.get(f"/console/duty/handovers/{hid}").text
    assert "东村已转移，注意夜间雨情" in page and "已签字（待接班确认）" in page
    r = _post(client, f"/console/duty/handovers/{hid}/ack", {"note": "已阅"}, page=f"/console/duty/handovers/{hid}")
    assert r.status_code == 303 and r.headers["location"].endswith("done=dutyroom_acknowledged")
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid)
        assert h is not None and h.state == "acknowledged" and h.acknowledged_by_name == "赵接班"
        assert h.signed_by_name == "王交班" and "注意夜间雨情" in h.text and h.ack_note == "已阅"
        assert h.shift_id == out_id and h.next_shift_id == in_id
    page = client.get(f"/console/duty/handovers/{hid}").text
    assert 'data-testid="handover-acknowledged"' in page and "已确认" in page
    listing = client.get("/console/duty").text
    assert 'data-state="acknowledged"' in listing
    assert 'data-testid="duty-draft"' not in listing, "the shift has its handover: no second draft button"
    client.cookies.set("jiaoying_lang", "en")
    assert "Acknowledged" in client.get(f"/console/duty/handovers/{hid}").text


def test_no_current_shift_refuses_the_draft(client: TestClient, rt: Runtime) -> None:
    _login_as(client, rt, "duty1", "duty_officer")
    r = _post(client, "/console/duty/handovers", {})
    assert r.status_code == 409 and "当前没有在班的班次" in r.text


def test_officer_adds_a_shift_and_admin_sees_the_gaps(client: TestClient, rt: Runtime, clock: VirtualClock) -> None:
    _login_as(client, rt, "duty1", "duty_officer")
    start = (clock.now() + dt.timedelta(hours=2)).astimezone(SHANGHAI).replace(minute=0)
    end = start + dt.timedelta(hours=12)
    r = _post(client, "/console/duty/roster/shifts", {
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"), "ends_at": end.strftime("%Y-%m-%dT%H:%M"),
        "label": "夜班", "leader_name": "", "officers": "周值班 13800000002\n吴值班"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=dutyroom_shift_saved")
    with session_scope(rt.session_factory) as s:
        shifts = roster_service.shifts_between(s, clock.now(), clock.now() + dt.timedelta(days=7))
        assert len(shifts) == 1
        assert shifts[0].starts_at.astimezone(SHANGHAI) == start, "the form's time is Asia/Shanghai"
        leader, officers = duty_service.people(s, shifts[0])
        assert leader is None and officers == ["周值班", "吴值班"]
    bad = _post(client, "/console/duty/roster/shifts", {"starts_at": end.strftime("%Y-%m-%dT%H:%M"),
                                                        "ends_at": start.strftime("%Y-%m-%dT%H:%M")})
    assert bad.status_code == 422
    assert 'data-testid="duty-gaps"' not in client.get("/console/duty").text, "the gaps panel is the admins'"

    _login_as(client, rt, "admin1", "admin")
    page = client.get("/console/duty").text
    assert 'data-testid="duty-gaps"' in page
    assert "班次缺带班领导" in page and 'data-kind="no_leader"' in page
    assert 'data-kind="no_shift"' in page, "the hours before the shift have nobody"
    assert "周值班" in page


def _local(when: dt.datetime) -> str:
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def test_officer_edits_and_removes_a_shift_and_the_record_stays(client: TestClient, rt: Runtime,
                                                                 clock: VirtualClock) -> None:
    now = clock.now()
    out_id, in_id = _roster(rt, now)
    _login_as(client, rt, "viewer1", "viewer")
    page = client.get("/console/duty").text
    assert 'data-testid="duty-shift-edit"' not in page, "a viewer sees the roster, not its edit forms"
    assert _post(client, f"/console/duty/roster/shifts/{in_id}/remove", {}).status_code == 403

    _login_as(client, rt, "duty1", "duty_officer")
    page = client.get("/console/duty").text
    assert f'action="/console/duty/roster/shifts/{in_id}/remove"' in page and "data-confirm=" in page
    assert f'action="/console/duty/roster/shifts/{out_id}/remove"' not in page, "the shift on duty stays"
    start = now + dt.timedelta(hours=1)
    r = _post(client, f"/console/duty/roster/shifts/{in_id}", {
        "starts_at": _local(start), "ends_at": _local(start + dt.timedelta(hours=11)), "label": "夜班（调）",
        "leader_name": "钱带班", "leader_phone": "", "officers": "孙接班 13800000009"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=dutyroom_shift_updated")
    with session_scope(rt.session_factory) as s:
        shift = roster_service.get_shift(s, in_id)
        assert shift is not None and shift.label == "夜班（调）"
        assert duty_service.people(s, shift) == ("钱带班", ["孙接班"])
    # the shift on duty: its start is kept whatever the form sends, its end may change
    r = _post(client, f"/console/duty/roster/shifts/{out_id}", {
        "starts_at": _local(now), "ends_at": _local(now + dt.timedelta(minutes=30)), "label": "白班",
        "leader_name": "李带班", "officers": "王交班"})
    assert r.status_code == 303, r.text
    overlap = _post(client, f"/console/duty/roster/shifts/{out_id}", {
        "ends_at": _local(now + dt.timedelta(hours=3)), "label": "白班", "officers": "王交班"})
    assert overlap.status_code == 409 and "重叠" in overlap.text and "夜班（调）" in overlap.text
    refused = _post(client, f"/console/duty/roster/shifts/{out_id}/remove", {})
    assert refused.status_code == 409 and "不能删除" in refused.text and "修改结束时间" in refused.text
    r = _post(client, f"/console/duty/roster/shifts/{in_id}/remove", {})
    assert r.status_code == 303 and r.headers["location"].endswith("done=dutyroom_shift_removed")
    clock.advance(dt.timedelta(hours=1))
    ended = _post(client, f"/console/duty/roster/shifts/{out_id}", {
        "starts_at": _local(now), "ends_at": _local(now + dt.timedelta(hours=3)), "officers": "王交班"})
    assert ended.status_code == 404 or (ended.status_code == 409 and "已结束" in ended.text)
    client.cookies.set("jiaoying_lang", "en")
    en = _post(client, f"/console/duty/roster/shifts/{out_id}", {
        "starts_at": _local(now), "ends_at": _local(now + dt.timedelta(hours=3)), "officers": "王交班"})
    assert en.status_code == 409 and "has ended" in en.text


def _board_duty_line(html: str) -> str:
    m = re.search(r'<ul class="boardduty".*?</ul>', html, re.S)
    return m.group(0) if m else ""


def test_the_board_shows_gaps_of_the_next_24_hours_only(client: TestClient, rt: Runtime,
                                                         clock: VirtualClock) -> None:
    now = clock.now()
    with session_scope(rt.session_factory) as s:
        # on duty now with both roles; the next shift (in 6 h) has no leader; then nothing until day 3's shift,
        # which has no duty officer
        roster_service.upsert_shift(s, ShiftSpec(now - dt.timedelta(hours=2), now + dt.timedelta(hours=6),
                                                 Person("李带班"), [Person("王值班")], label="白班"),
                                    roster_id=None, actor="test", now=now)
        roster_service.upsert_shift(s, ShiftSpec(now + dt.timedelta(hours=6), now + dt.timedelta(hours=18), None,
                                                 [Person("赵值班")], label="夜班"),
                                    roster_id=None, actor="test", now=now)
        roster_service.upsert_shift(s, ShiftSpec(now + dt.timedelta(days=3), now + dt.timedelta(days=3, hours=12),
                                                 Person("钱带班"), [], label="远期班"),
                                    roster_id=None, actor="test", now=now)
    _login_as(client, rt, "duty1", "duty_officer")
    line = _board_duty_line(client.get("/").text)
    assert 'data-testid="board-gap" data-kind="no_leader"' in line and "夜班" in line
    assert 'data-testid="board-gap" data-kind="no_shift"' in line, "18 h from now nobody is rostered"
    assert "远期班" not in line and "no_officer" not in line, "three days ahead is the duty page's, not the board's"
    assert 'href="/console/duty"' in line
    assert "style=" not in line

    _login_as(client, rt, "admin1", "admin")
    page = client.get("/console/duty").text
    gaps = re.search(r'data-testid="duty-gaps".*?</section>', page, re.S)
    assert gaps and "远期班" in gaps.group(0) and 'data-kind="no_officer"' in gaps.group(0)
    client.cookies.set("jiaoying_lang", "en")
    en = _board_duty_line(client.get("/").text)
    assert "Roster gap" in en and "shift without a leader on duty" in en and "T" not in re.sub(r"<[^>]+>", "", en)


def _board_after_change(client: TestClient, rt: Runtime) -> str:
    """The board as a live page fetches it after a change: with the newest event-log row it was told of (several
    reads within a second share one build, so a plain read may be up to a second old; see console/snapshots.py)."""
    with session_scope(rt.session_factory) as s:
        newest = latest_id(s)
    return client.get("/", headers={"X-Live-Since": str(newest)}).text


def test_the_board_names_a_handover_past_its_deadline_until_acknowledged(client: TestClient, rt: Runtime,
                                                                          clock: VirtualClock) -> None:
    now = clock.now()
    out_id, in_id = _roster(rt, now)  # the change of shift is in an hour
    _login_as(client, rt, "duty1", "duty_officer")
    assert _board_duty_line(client.get("/").text) == "" or "board-handover" not in _board_duty_line(
        client.get("/").text)
    clock.advance(dt.timedelta(minutes=40))
    with session_scope(rt.session_factory) as s:
        done = handovers.sweep(s, clock.now(), rt.settings.tz)
        assert len(done["drafted"]) == 1 and done["flagged"] == []
    line = _board_duty_line(_board_after_change(client, rt))
    row = re.search(r'<li[^>]*data-testid="board-handover".*?</li>', line, re.S)
    assert row and 'data-state="draft"' in row.group(0) and 'data-overdue="false"' in row.group(0)
    assert "待交班签字" in row.group(0), "the current shift's own handover, drafted and not signed"
    clock.advance(dt.timedelta(minutes=55))  # 35 minutes into the next shift: past the 30-minute deadline
    with session_scope(rt.session_factory) as s:
        done = handovers.sweep(s, clock.now(), rt.settings.tz)
        assert len(done["flagged"]) == 1
        h_id = done["flagged"][0]
    line = _board_duty_line(_board_after_change(client, rt))
    assert f'data-handover-id="{h_id}"' in line and 'data-overdue="true"' in line
    assert "交接班未确认" in line and 'data-testid="board-handover-flagged"' in line
    assert f'href="/console/duty/handovers/{h_id}"' in line
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, h_id)
        assert h is not None
        handovers.sign(s, h, actor="user:wang", name="王交班", now=clock.now())
    # as an open page refreshes after a change (static/live.js): asking for the newest row of the event log
    assert 'data-state="signed"' in _board_duty_line(_board_after_change(client, rt)), \
        "signed late: still past the deadline"
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, h_id)
        assert h is not None
        handovers.acknowledge(s, h, actor="user:zhao", name="赵接班", now=clock.now())
    assert "board-handover" not in _board_duty_line(_board_after_change(client, rt))


def test_late_handovers_of_earlier_shifts_are_counted_on_the_board_and_listed_on_the_duty_page(
        client: TestClient, rt: Runtime, clock: VirtualClock) -> None:
    now = clock.now()
    ids = []
    with session_scope(rt.session_factory) as s:
        for i in range(3):  # three earlier shifts, each with a handover nobody signed
            start = now - dt.timedelta(hours=12 - 3 * i)
            shift = roster_service.upsert_shift(s, ShiftSpec(start, start + dt.timedelta(hours=3), Person("李带班"),
                                                             [Person(f"值班{i}")]),
                                                roster_id=None, actor="test", now=now)
            h, _ = handovers.draft(s, shift, actor="test", now=start + dt.timedelta(hours=2), tz=rt.settings.tz)
            ids.append(h.id)
        roster_service.upsert_shift(s, ShiftSpec(now - dt.timedelta(hours=3), now + dt.timedelta(hours=9),
                                                 Person("钱带班"), [Person("赵值班")]),
                                    roster_id=None, actor="test", now=now)
    _login_as(client, rt, "duty1", "duty_officer")
    line = _board_duty_line(client.get("/").text)
    assert line.count('data-testid="board-handover"') == 2, "two rows, the rest counted"
    assert "另有 1 份交接班待处理" in line
    page = client.get("/console/duty").text
    listed = re.findall(r'class="row dutyroom-handover row-overdue"[^>]*data-handover-id="(\d+)"', page)
    assert sorted(int(x) for x in listed) == sorted(ids)
