"""A hand-built audit report (the shape the builder produces) for the renderer and KPI tests."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from responses.audit.kpis import compute_kpis
from responses.audit.shape import SCHEMA, iso

TZ = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=TZ)


def at(minutes: float | None) -> str | None:
    return None if minutes is None else iso(T0 + dt.timedelta(minutes=minutes), TZ)


def callout(cid: int, person: str, township: str, called: float, deadline: float, answered: float | None,
            *, tier: str = "village", role: str = "grid_worker", escalated_to: list[int] | None = None,
            escalated_from: int | None = None, channel: str | None = "keypress") -> dict[str, Any]:
    return {
        "id": cid, "run_id": 1, "person": person, "phone": f"+8613900000{cid:03d}", "role": role, "tier": tier,
        "areas": [township[:9] + "201"], "called_at": at(called), "deadline": at(deadline),
        "answered_at": at(answered), "answer_channel": channel if answered is not None else None,
        "late": answered is None or answered > deadline, "attempts": 1 if answered is not None else 3,
        "escalated_to": escalated_to or [], "state": "answered" if answered is not None else "escalated",
        "township": township, "answer_s": None if answered is None else (answered - called) * 60,
        "escalated_from": escalated_from,
    }


def make_report() -> dict[str, Any]:
    callouts = [
        callout(1, "张伟", "140502001000", 1, 6, 2),
        callout(2, "李娜", "140502001000", 1, 6, 4),
        callout(3, "王强", "140502100000", 1, 6, 13),
        callout(4, "赵敏", "140502100000", 1, 6, None, escalated_to=[5]),
        callout(5, "钟镇长", "140502100000", 6, 11, None, tier="township", role="township_chief",
                escalated_to=[6], escalated_from=4),
        callout(6, "带班领导刘", "140502000000", 11, 16, 12, tier="district", role="district_leader",
                escalated_from=5, channel="phone"),
    ]
    report: dict[str, Any] = {
        "schema": SCHEMA, "title": "城区暴雨红色预警演练 时效审计报告", "drill": True, "timezone": "Asia/Shanghai",
        "generated_at": at(360), "as_of": at(360), "scope": {"run_ids": [1], "thread_ids": [10]},
        "scenario": {"name": "城区暴雨红色预警演练"},
        "area_names": {"140502001000": "东街街道", "140502100000": "钟家庄街道", "140502000000": "城区"},
        "event_log": {"ok": True, "checked": 42, "bad_seq": None, "reason": None, "events_in_scope": 40},
        "warnings": [{
            "id": 10, "identifier": "CN-SX-JC-2026-0720-01", "sender": "sx-jc-cq@cma.gov.cn", "hazard": "weather",
            "event": "暴雨", "level": "red", "received_at": at(0), "status": "exercise",
            "versions": [
                {"id": 10, "identifier": "CN-SX-JC-2026-0720-01", "msg_type": "alert", "status": "exercise",
                 "level": "red", "sent": at(-1), "received_at": at(0), "state": "cancelled"},
                {"id": 11, "identifier": "CN-SX-JC-2026-0720-02", "msg_type": "cancel", "status": "exercise",
                 "level": "red", "sent": at(179), "received_at": at(180), "state": "cancelled"},
            ],
            "msg_type": "cancel", "state": "cancelled", "headline": "城区气象台发布暴雨红色预警", "ended_at": at(180),
        }],
        "consultations": [{
            "id": 1, "warning_id": 10, "opened_at": at(0), "deadline": at(30), "decided_at": at(20),
            "decision_level": "red",
            "judgements": [{"department": "气象局", "at": at(5), "level": "red", "late": False}],
            "missing": ["水利局"], "invited": ["气象局", "水利局"], "state": "decided",
        }],
        "runs": [{"id": 1, "warning_id": 10, "level": "red", "trigger": "automatic", "started_at": at(0.5),
                  "closed_at": at(200), "number": "2026-0001", "response_level": "I", "state": "closed"}],
        "callouts": callouts,
        "escalations": [
            {"from_callout": 4, "to_callout": 5, "at": at(6), "from_person": "赵敏", "to_person": "钟镇长",
             "to_role": "township_chief", "reason": "no_answer"},
            {"from_callout": 5, "to_callout": 6, "at": at(11), "from_person": "钟镇长", "to_person": "带班领导刘",
             "to_role": "leader_on_duty", "reason": "no_answer"},
        ],
        "measures": [
            {"id": 1, "run_id": 1, "kind": "closure", "areas": ["140502001201"], "ordered_at": at(20),
             "deadline": at(50), "carried_out_at": at(45), "lifted_at": at(200), "overdue": False,
             "title": "关闭公园", "state": "lifted"},
            {"id": 2, "run_id": 1, "kind": "evacuation", "areas": ["140502100201"], "ordered_at": at(20),
             "deadline": at(50), "carried_out_at": None, "lifted_at": None, "overdue": True,
             "title": "转移低洼地带群众", "state": "ordered"},
        ],
        "reports": [
            {"id": 1, "run_id": 1, "kind": "initial", "due_at": at(30), "sent_at": at(25), "overdue": False},
            {"id": 2, "run_id": 1, "kind": "final", "due_at": at(300), "sent_at": at(320), "overdue": True},
        ],
    }
    report["kpis"] = compute_kpis(report)
    return report


@pytest.fixture
def sample_report() -> dict[str, Any]:
    return make_report()


def make_no_run_report() -> dict[str, Any]:
    """A drill whose one warning had expired before it was injected: a warning, no run, one finding."""
    report: dict[str, Any] = {
        "schema": SCHEMA, "title": "过期预警注入演练 时效审计报告", "drill": True, "timezone": "Asia/Shanghai",
        "generated_at": at(60), "as_of": at(60), "scope": {"run_ids": [], "thread_ids": [1]},
        "scenario": {"name": "过期预警注入演练"}, "area_names": {},
        "event_log": {"ok": True, "checked": 3, "bad_seq": None, "reason": None, "events_in_scope": 2},
        "warnings": [{
            "id": 1, "identifier": "CN-SX-JC-2026-0720-09", "sender": "sx-jc-cq@cma.gov.cn", "hazard": "weather",
            "event": "暴雨", "level": "red", "received_at": at(30), "status": "exercise",
            "versions": [{"id": 1, "identifier": "CN-SX-JC-2026-0720-09", "msg_type": "alert", "status": "exercise",
                          "level": "red", "sent": at(-10), "received_at": at(30), "state": "expired"}],
            "msg_type": "alert", "state": "expired", "headline": "城区气象台发布暴雨红色预警", "ended_at": at(30),
        }],
        "consultations": [], "runs": [], "callouts": [], "escalations": [], "measures": [], "reports": [],
        "events": [],
    }
    report["kpis"] = compute_kpis(report)
    report["findings"] = [{
        "code": "expired_on_arrival", "warning_id": 1,
        "message": "预警「城区气象台发布暴雨红色预警」接收时已过期：失效时间 2026-07-20 02:20，接收（注入）时间 "
                   "2026-07-20 02:30。系统按已过期处理，未启动响应。",
        "message_en": "The warning had already expired on arrival: it expired at 2026-07-20 02:20 and was received "
                      "(injected) at 2026-07-20 02:30. It was stored as expired and started no response.",
        "details": {"expires": at(20), "received_at": at(30)},
    }]
    return report


@pytest.fixture
def no_run_report() -> dict[str, Any]:
    return make_no_run_report()
