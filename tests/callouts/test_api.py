"""The callouts and contacts API: board, duty officer's phone-confirmed answer, roles, contacts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from config.database import session_scope
from config.runtime import Runtime
from responses.callouts import service as svc
from responses.runs.models import ResponseRun

CALLS = {"answer_minutes": 5, "retries": {"count": 0, "interval_minutes": 1}, "channels": ["voice", "sms"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township", "leader_on_duty"]}


def test_board_and_phone_confirmed_answer(client: TestClient, login: Any, sqlite_runtime: Runtime,
                                          kit: Any) -> None:
    rt = sqlite_runtime
    t0 = rt.now()
    d = kit.build_district(rt.session_factory, t0, townships=1, per_township=2)
    run_id = kit.make_run(rt.session_factory, t0, villages=d.villages, calls=CALLS)
    with session_scope(rt.session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        ids = [c.id for c in svc.create_run_callouts(s, run, now=t0)]
    officer, viewer = login("duty_officer"), login("viewer")

    board = client.get(f"/callouts/runs/{run_id}/board", headers=viewer).json()
    assert board["total"] == 2 and board["counts"] == {"calling": 2, "overdue": 0}
    row = board["callouts"][0]
    assert row["attempts"][0]["channel"] == "voice" and row["areas"][0]["code"] in d.villages
    assert row["deadline_at"].endswith("+08:00")

    r = client.post(f"/callouts/{ids[0]}/answers", json={"note": "x"}, headers=viewer)
    assert r.status_code == 403
    r = client.post(f"/callouts/{ids[0]}/answers", json={"channel": "duty_officer"}, headers=officer)
    assert r.status_code == 422 and r.json()["error"]["code"] == "note_required"
    r = client.post(f"/callouts/{ids[0]}/answers", json={"channel": "keypress", "note": "x"}, headers=officer)
    assert r.status_code == 422
    r = client.post(f"/callouts/{ids[0]}/answers", headers=officer,
                    json={"channel": "duty_officer", "kind": "received", "note": "电话确认：村长已组织转移",
                          "report": {"evacuated": 40}})
    assert r.status_code == 201 and r.json()["late"] is False and r.json()["state"] == "answered"

    rt.clock.advance(dt.timedelta(minutes=6))  # type: ignore[attr-defined]
    svc.sweep(rt.session_factory, now=rt.now())
    board = client.get(f"/callouts/runs/{run_id}/board", headers=officer).json()
    states = {c["id"]: c for c in board["callouts"]}
    assert states[ids[0]]["answers"][0]["channel"] == "duty_officer"
    assert states[ids[0]]["answers"][0]["report"] == {"evacuated": 40}
    assert states[ids[1]]["state"] == "escalated" and states[ids[1]]["escalations"][0]["step"] == "township"
    esc = [c for c in board["callouts"] if c["reason"] == "escalation"]
    assert len(esc) == 1 and esc[0]["escalated_from"] == [ids[1]]
    late = client.post(f"/callouts/{ids[1]}/answers", headers=officer,
                       json={"channel": "duty_officer", "note": "回电确认"}).json()
    assert late["late"] is True
    assert client.get(f"/callouts/{ids[1]}", headers=viewer).json()["late"] is True
    assert client.get("/callouts/999999", headers=viewer).status_code == 404
    assert client.get("/callouts/runs/999999/board", headers=viewer).status_code == 404


def test_contacts_crud_import_and_coverage(client: TestClient, login: Any) -> None:
    admin, viewer = login("admin"), login("viewer")
    assert client.get("/contacts", headers=viewer).status_code == 403
    body = {"name": "张三", "phone": "139 0000 1111", "two_way_sms": True,
            "duties": [{"role": "grid_worker", "area_code": "140502001001"}]}
    r = client.post("/contacts", json=body, headers=admin)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["phone"] == "+8613900001111"
    assert client.post("/contacts", json=body, headers=admin).status_code == 409
    bad = client.post("/contacts", json={**body, "phone": "12345"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_phone"
    wrong = client.post(f"/contacts/{cid}/duties", json={"role": "township_chief", "area_code": "140502001001"},
                        headers=admin)
    assert wrong.status_code == 422
    ok = client.post(f"/contacts/{cid}/duties", json={"role": "village_head", "area_code": "140502001002"},
                     headers=admin)
    assert ok.status_code == 201 and len(ok.json()["duties"]) == 2
    assert client.patch(f"/contacts/{cid}", json={"active": False}, headers=admin).json()["active"] is False
    assert client.get("/contacts", params={"q": "张"}, headers=admin).json()["total"] == 1

    csv_bad = "姓名,手机,职务,村/社区代码\n李四,13900002222,网格员,140502001003\n王五,1,网格员,140502001004\n"
    r = client.post("/contacts/import", headers=admin, files={"file": ("a.csv", csv_bad.encode(), "text/csv")})
    assert r.status_code == 422 and r.json()["error"]["details"]["errors"][0]["row"] == 3
    r = client.post("/contacts/import", headers=admin, data={"skip_invalid": "true"},
                    files={"file": ("a.csv", csv_bad.encode(), "text/csv")})
    assert r.status_code == 200 and r.json()["contacts_added"] == 1
    cov = client.get("/contacts/coverage", headers=admin).json()
    uncovered = {v["code"] for v in cov["uncovered_villages"]}
    assert "140502001003" not in uncovered and "140502001001" in uncovered  # 张三 is inactive now
