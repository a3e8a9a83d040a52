"""Editing and removing one shift through the JSON API: the roster editors' roles, the record kept (an ended
shift is not changed, a shift on duty keeps its start and cannot be removed), overlaps refused in words, and
every change in the event log with what the shift was."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import events_for
from config.runtime import Runtime


def _shift(start: dt.datetime, hours: int, **extra: Any) -> dict[str, Any]:
    return {"starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=hours)).isoformat(), **extra}


def _seed(client: TestClient, headers: dict[str, str], now: dt.datetime) -> dict[str, int]:
    """Ended (-20 h..-8 h), on duty (-8 h..+4 h), next (+4 h..+16 h), later (+16 h..+28 h)."""
    body = {"shifts": [_shift(now - dt.timedelta(hours=20), 12, label="昨夜"),
                       _shift(now - dt.timedelta(hours=8), 12, label="白班", leader={"name": "李带班"},
                              officers=[{"name": "王值班"}]),
                       _shift(now + dt.timedelta(hours=4), 12, label="夜班", officers=[{"name": "赵值班"}]),
                       _shift(now + dt.timedelta(hours=16), 12, label="次日白班")]}
    assert client.post("/responses/roster/shifts", headers=headers, json=body).status_code == 201
    shifts = client.get("/responses/roster/shifts", headers=headers, params={"days": 3}).json()
    return {s["label"]: s["id"] for s in shifts}


def test_an_upcoming_shift_is_edited_and_removed_with_events(
        client: TestClient, login: Callable[..., dict[str, str]], clock: VirtualClock,
        sqlite_runtime: Runtime) -> None:
    officer, viewer = login("duty_officer"), login("viewer")
    now = clock.now()
    ids = _seed(client, officer, now)
    later = now + dt.timedelta(hours=16)
    new = _shift(later + dt.timedelta(hours=1), 10, label="次日白班（调）",
                 leader={"name": "钱带班", "phone": "13800000003"},
                 officers=[{"name": "孙值班"}, {"name": "周值班", "phone": "13800000004"}])
    assert client.put(f"/responses/roster/shifts/{ids['次日白班']}", headers=viewer, json=new).status_code == 403
    r = client.put(f"/responses/roster/shifts/{ids['次日白班']}", headers=officer, json=new)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["label"] == "次日白班（调）" and out["leader"]["name"] == "钱带班"
    assert [o["name"] for o in out["officers"]] == ["孙值班", "周值班"]
    assert dt.datetime.fromisoformat(out["starts_at"]).astimezone(dt.UTC) == (later + dt.timedelta(hours=1))

    assert client.delete(f"/responses/roster/shifts/{ids['夜班']}", headers=viewer).status_code == 403
    assert client.delete(f"/responses/roster/shifts/{ids['夜班']}", headers=officer).status_code == 204
    assert client.delete(f"/responses/roster/shifts/{ids['夜班']}", headers=officer).status_code == 404
    left = {s["label"] for s in client.get("/responses/roster/shifts", headers=officer).json()}
    assert "夜班" not in left and "次日白班（调）" in left
    with session_scope(sqlite_runtime.session_factory) as s:
        updated = [e for e in events_for(s, "shift", ids["次日白班"]) if e.action == "roster.shift_updated"]
        assert len(updated) == 1 and updated[0].payload["before"]["label"] == "次日白班"
        assert updated[0].payload["after"]["members"][0] == {"role": "leader", "name": "钱带班",
                                                             "phone": "13800000003"}
        removed = [e for e in events_for(s, "shift", ids["夜班"]) if e.action == "roster.shift_removed"]
        assert len(removed) == 1 and removed[0].payload["before"]["members"] == [
            {"role": "officer", "name": "赵值班", "phone": None}]


def test_the_record_stays_and_overlaps_are_refused_in_words(
        client: TestClient, login: Callable[..., dict[str, str]], clock: VirtualClock) -> None:
    officer = login("duty_officer")
    now = clock.now()
    ids = _seed(client, officer, now)

    ended = client.put(f"/responses/roster/shifts/{ids['昨夜']}", headers=officer,
                       json=_shift(now - dt.timedelta(hours=20), 12, label="改"))
    assert ended.status_code == 409 and ended.json()["error"]["code"] == "shift_ended"
    assert "已结束" in ended.json()["error"]["message"]
    assert client.delete(f"/responses/roster/shifts/{ids['昨夜']}", headers=officer).status_code == 409

    on = client.delete(f"/responses/roster/shifts/{ids['白班']}", headers=officer)
    assert on.status_code == 409 and on.json()["error"]["code"] == "shift_started"
    assert "修改结束时间" in on.json()["error"]["message"], "the refusal says what to do instead"
    moved = client.put(f"/responses/roster/shifts/{ids['白班']}", headers=officer,
                       json=_shift(now - dt.timedelta(hours=7), 11, label="白班"))
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "shift_started"
    # a shift on duty keeps its start and may end earlier, with other people
    early = client.put(f"/responses/roster/shifts/{ids['白班']}", headers=officer,
                       json=_shift(now - dt.timedelta(hours=8), 10, label="白班", leader={"name": "李带班"},
                                   officers=[{"name": "吴替班"}]))
    assert early.status_code == 200, early.text
    assert [o["name"] for o in early.json()["officers"]] == ["吴替班"]
    past_end = client.put(f"/responses/roster/shifts/{ids['白班']}", headers=officer,
                          json=_shift(now - dt.timedelta(hours=8), 7, label="白班"))
    assert past_end.status_code == 422 and past_end.json()["error"]["code"] == "end_in_past"

    overlap = client.put(f"/responses/roster/shifts/{ids['夜班']}", headers=officer,
                         json=_shift(now + dt.timedelta(hours=4), 14, label="夜班"))
    assert overlap.status_code == 409 and overlap.json()["error"]["code"] == "shift_overlap"
    assert "次日白班" in overlap.json()["error"]["message"] and "重叠" in overlap.json()["error"]["message"]
    assert overlap.json()["error"]["details"]["overlaps"] == [ids["次日白班"]]
    into_past = client.put(f"/responses/roster/shifts/{ids['夜班']}", headers=officer,
                           json=_shift(now - dt.timedelta(hours=1), 2, label="夜班"))
    assert into_past.status_code in (409, 422)
    reversed_ = client.put(f"/responses/roster/shifts/{ids['夜班']}", headers=officer,
                           json={"starts_at": (now + dt.timedelta(hours=9)).isoformat(),
                                 "ends_at": (now + dt.timedelta(hours=5)).isoformat()})
    assert reversed_.status_code == 422
    assert client.put("/responses/roster/shifts/99999", headers=officer,
                      json=_shift(now + dt.timedelta(days=9), 2)).status_code == 404
