"""The duty API through the app: the exact routes, who may write (the duty desk; a viewer reads and gets 403),
who may sign and acknowledge (the shifts' members), the error shape on bad input, and the exports."""

from __future__ import annotations

import io
from collections.abc import Callable

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from tests.duty.helpers import add_shift, local

Login = Callable[..., dict[str, str]]


def _roster(rt: Runtime, officer: str, incoming: str) -> tuple[int, int]:
    with session_scope(rt.session_factory) as s:
        night = add_shift(s, "夜班", local(19, 20), local(20, 8), ("张带班", "+8613900000101"),
                          [(officer, "+8613900000102")], now=rt.now())
        day = add_shift(s, "白班", local(20, 8), local(20, 20), ("赵带班", "+8613900000103"),
                        [(incoming, "+8613900000104")], now=rt.now())
    return night, day


def _set(rt: Runtime, when: object) -> None:
    assert isinstance(rt.clock, VirtualClock)
    rt.clock.set(when)  # type: ignore[arg-type]


def test_the_log_routes(client: TestClient, sqlite_runtime: Runtime, login: Login) -> None:
    _set(sqlite_runtime, local(20, 7))
    assert client.get("/duty/log").status_code == 401
    officer, viewer, analyst = login("duty_officer"), login("viewer"), login("analyst", "水利局")
    client.cookies.clear()  # logging in also sets the console's cookie; each request below names its user
    night, _day = _roster(sqlite_runtime, "duty_officer1", "duty_officer9")
    body = {"kind": "call", "text": "建设路积水 40 厘米", "from_name": "刘主任", "from_unit": "东街街道",
            "from_phone": "0356-2021234", "at": "2026-07-19T23:10:00+08:00", "for_handover": True}
    refused = client.post("/duty/log", json=body, headers=viewer)
    assert refused.status_code == 403 and "viewer" not in refused.json()["error"]["details"]["allowed"]
    r = client.post("/duty/log", json=body, headers=officer)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert (entry["kind_zh"], entry["source"], entry["shift_id"], entry["at_local"]) == (
        "来电", "duty_officer1", night, "2026-07-19 23:10")
    assert entry["text"] == "东街街道，刘主任，0356-2021234来电：建设路积水 40 厘米"
    note = client.post("/duty/log", json={"kind": "note", "text": "交班前检查电台"}, headers=officer).json()
    assert note["for_handover"] is False and note["at"].startswith("2026-07-19T23:00:00")  # now, in UTC
    marked = client.post(f"/duty/log/{note['id']}/handover", json={"for_handover": True}, headers=officer)
    assert marked.status_code == 200 and marked.json()["for_handover"] is True
    for who in (viewer, analyst, officer):  # everyone logged in reads
        view = client.get("/duty/log", headers=who)
        assert view.status_code == 200, view.text
        doc = view.json()
        assert doc["shift"]["id"] == night and [e["id"] for e in doc["entries"]] == [entry["id"], note["id"]]
        assert doc["from"].startswith("2026-07-19T12:00:00") and doc["to"].startswith("2026-07-20T00:00:00")
    by_day = client.get("/duty/log", params={"day": "2026-07-19"}, headers=viewer).json()
    assert by_day["day"] == "2026-07-19" and by_day["shift"] is None and len(by_day["entries"]) == 1
    window = client.get("/duty/log", params={"from": "2026-07-20T06:00:00+08:00", "to": "2026-07-20T08:00:00+08:00"},
                        headers=viewer).json()
    assert [e["id"] for e in window["entries"]] == [note["id"]]

    # bad input: the one error shape, never a crash
    cases = [
        ("post", "/duty/log", {"json": {**body, "at": "2026-07-19T19:00:00+08:00"}}, 422, "time_out_of_range"),
        ("post", "/duty/log", {"json": {**body, "at": "2026-07-21T00:00:00+08:00"}}, 422, "time_out_of_range"),
        ("post", "/duty/log", {"json": {**body, "at": "2026-07-20T00:00:00"}}, 422, "validation_error"),  # naive
        ("post", "/duty/log", {"json": {**body, "run_id": 424242}}, 404, "not_found"),
        ("post", "/duty/log", {"json": {**body, "kind": "warning"}}, 422, "validation_error"),
        ("post", "/duty/log", {"json": {**body, "text": "   "}}, 422, "empty_text"),
        ("post", "/duty/log/424242/handover", {"json": {"for_handover": True}}, 404, "not_found"),
        ("get", "/duty/log", {"params": {"shift": 424242}}, 404, "not_found"),
        ("get", "/duty/log", {"params": {"shift": night, "day": "2026-07-19"}}, 422, "bad_window"),
        ("get", "/duty/log", {"params": {"from": "2026-07-20T00:00:00+08:00"}}, 422, "bad_window"),
        ("get", "/duty/log", {"params": {"from": "2026-07-20T00:00:00+08:00", "to": "2026-09-20T00:00:00+08:00"}},
         422, "bad_window"),
        ("get", "/duty/log", {"params": {"from": "9999-12-31T23:59:59-23:59", "to": "9999-12-31T23:59:59+23:59"}},
         422, "bad_window"),
        ("get", "/duty/log", {"params": {"day": "0001-01-01"}}, 422, "bad_window"),
        ("get", "/duty/log.xlsx", {"params": {"day": "2026-13-01"}}, 422, "validation_error"),
    ]
    for method, url, kwargs, status, code in cases:
        r = client.request(method.upper(), url, headers=officer, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == status, (url, kwargs, r.text)
        err = r.json()["error"]
        assert err["code"] == code and err["message"] and err["message_en"], (url, kwargs, err)


def test_the_log_exports(client: TestClient, sqlite_runtime: Runtime, login: Login) -> None:
    _set(sqlite_runtime, local(20, 7))
    officer, viewer = login("duty_officer"), login("viewer")
    night, _ = _roster(sqlite_runtime, "duty_officer1", "x")
    client.post("/duty/log", json={"kind": "instruction", "text": "全力做好转移", "from_name": "王区长",
                                   "for_handover": True}, headers=officer)
    client.post("/duty/log", json={"kind": "action", "text": "已通知东街街道 <b>加强</b> 巡查"}, headers=officer)
    x = client.get("/duty/log.xlsx", params={"shift": night}, headers=viewer)
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in x.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(x.content))["值班日志"]
    rows = list(ws.iter_rows(values_only=True))
    header = rows.index(("时间", "类型", "内容", "来源/记录人", "交接"))
    assert rows[0][0] == "值班日志 2026-07-19 20:00 至 2026-07-20 08:00（夜班）"
    assert rows[header + 1:] == [
        ("2026-07-20 07:00", "领导批示", "王区长批示：全力做好转移", "duty_officer1", "是"),
        ("2026-07-20 07:00", "处置", "已通知东街街道 <b>加强</b> 巡查", "duty_officer1", None),
    ]
    h = client.get("/duty/log.html", params={"day": "2026-07-20"}, headers=viewer)
    assert h.status_code == 200 and h.headers["content-type"].startswith("text/html")
    page = h.text
    assert "<th>时间</th><th>类型</th><th>内容</th><th>来源/记录人</th><th>交接</th>" in page
    assert "王区长批示：全力做好转移" in page and "&lt;b&gt;加强&lt;/b&gt;" in page and "<script" not in page
    empty = client.get("/duty/log.html", params={"day": "2026-07-18"}, headers=viewer).text
    assert "本时段没有值班记录" in empty


def test_handover_routes_and_who_may_sign_and_acknowledge(client: TestClient, sqlite_runtime: Runtime,
                                                         login: Login) -> None:
    rt = sqlite_runtime
    _set(rt, local(20, 7, 30))
    outgoing, incoming, stranger = login("duty_officer"), login("duty_officer"), login("duty_officer")
    viewer = login("viewer")
    night, day = _roster(rt, "duty_officer1", "duty_officer2")
    assert client.post("/duty/handovers", headers=viewer).status_code == 403
    created = client.post("/duty/handovers", headers=outgoing)
    assert created.status_code == 201, created.text
    h = created.json()
    assert (h["shift_id"], h["next_shift_id"], h["state"], h["ack_due_local"]) == (
        night, day, "draft", "2026-07-20 08:30")
    assert h["text"].startswith("交接班记录") and h["allowed_actions"] == ["redraft", "sign"]
    again = client.post("/duty/handovers", json={}, headers=stranger)
    assert again.status_code == 200 and again.json()["id"] == h["id"]  # one per shift: the existing one
    redrafted = client.post("/duty/handovers", json={"redraft": True}, headers=outgoing)
    assert redrafted.status_code == 200 and redrafted.json()["drafted_at"] == h["drafted_at"]  # same clock
    assert client.get(f"/duty/handovers/{h['id']}", headers=viewer).json()["id"] == h["id"]
    assert [x["id"] for x in client.get("/duty/handovers", params={"shift": day}, headers=viewer).json()] == [h["id"]]
    assert client.get("/duty/handovers", params={"state": "signed"}, headers=viewer).json() == []

    # only the outgoing shift's members sign, only the incoming shift's acknowledge
    refused = client.post(f"/duty/handovers/{h['id']}/sign", headers=stranger)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_shift_member"
    assert refused.json()["error"]["details"]["allowed"] == ["张带班", "duty_officer1"]
    early = client.post(f"/duty/handovers/{h['id']}/ack", headers=incoming)
    assert early.status_code == 409 and early.json()["error"]["code"] == "illegal_transition"
    signed = client.post(f"/duty/handovers/{h['id']}/sign", json={"text": h["text"] + "另：电台已检查。"},
                         headers=outgoing)
    assert signed.status_code == 200, signed.text
    assert (signed.json()["state"], signed.json()["signed_by_name"], signed.json()["edited"]) == (
        "signed", "duty_officer1", True)
    assert client.post(f"/duty/handovers/{h['id']}/sign", headers=outgoing).status_code == 409
    assert client.post(f"/duty/handovers/{h['id']}/ack", headers=outgoing).status_code == 403
    _set(rt, local(20, 8, 5))
    acked = client.post(f"/duty/handovers/{h['id']}/ack", json={"note": "已阅"}, headers=incoming)
    assert acked.status_code == 200, acked.text
    a = acked.json()
    assert (a["state"], a["acknowledged_by_name"], a["acknowledged_local"], a["late"], a["ack_note"]) == (
        "acknowledged", "duty_officer2", "2026-07-20 08:05", False, "已阅")
    for url in ("/duty/handovers/424242", "/duty/handovers/424242/sign", "/duty/handovers/424242/ack"):
        r = client.request("GET" if url.endswith("242") else "POST", url, headers=outgoing)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", url
    assert client.post("/duty/handovers", json={"shift": 424242}, headers=outgoing).status_code == 404
    # the handover steps are system entries of the two shifts' logs
    texts = [e["text"] for e in client.get("/duty/log", params={"shift": day}, headers=viewer).json()["entries"]]
    assert texts == ["接班确认：duty_officer2"]


def test_drafting_with_nobody_on_duty_and_gaps(client: TestClient, sqlite_runtime: Runtime, login: Login) -> None:
    _set(sqlite_runtime, local(20, 7, 30))
    officer, viewer = login("duty_officer"), login("viewer")
    r = client.post("/duty/handovers", headers=officer)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_current_shift"
    [gap] = client.get("/duty/gaps", headers=viewer).json()
    assert (gap["kind"], gap["starts_at"], gap["ends_at"], gap["now"]) == ("no_shift", None, None, True)
    with session_scope(sqlite_runtime.session_factory) as s:
        add_shift(s, "全天", local(20, 0), local(21, 0), None, [("duty_officer1", "+8613900000102")],
                  now=sqlite_runtime.now())
    got = client.get("/duty/gaps", params={"hours": 48}, headers=viewer).json()
    assert [(g["kind"], g["kind_zh"]) for g in got] == [
        ("no_leader", "班次缺带班领导"), ("no_shift", "无人值班（未排班）")]
    # a shift that lists only an officer: its members sign; nobody listed next: any duty-desk user acknowledges
    h = client.post("/duty/handovers", headers=officer).json()
    assert h["next_shift_id"] is None
    assert client.post(f"/duty/handovers/{h['id']}/sign", headers=officer).status_code == 200
    other = login("leader")
    assert client.post(f"/duty/handovers/{h['id']}/ack", headers=other).status_code == 200
    assert client.get("/duty/gaps", params={"hours": 0}, headers=viewer).status_code == 422
