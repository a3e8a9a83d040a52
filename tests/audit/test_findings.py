"""Why a warning started no response: the first rule that holds, in the order the engine meets them."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from responses.audit.findings import CODES, PlanLevel, input_without_warning, no_response_finding

TZ = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=TZ)
YELLOW = PlanLevel("城区气象灾害应急预案（默认）", "Chengqu meteorological hazard plan (default)", "2026.1",
                   "yellow", "III", "before")


def version(**kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "id": 7, "thread_id": 7, "identifier": "W-7", "status": "exercise", "msg_type": "alert", "state": "active",
        "hazard": "weather", "event": "暴雨", "level": "yellow", "headline": "城区暴雨黄色预警",
        "expires": T0 + dt.timedelta(hours=6), "received_at": T0, "area_description": "东街街道",
    }
    return SimpleNamespace(**(base | kw))


def consultation(state: str, **kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**({"id": 3, "state": state, "deadline": T0 + dt.timedelta(hours=1), "closed_at": None,
                               "close_reason": None, "dismiss_reason": None} | kw))


def find(versions: list[SimpleNamespace], *, c: SimpleNamespace | None = None, plan: PlanLevel | None = YELLOW,
         plan_missing: bool = False, outside: bool = False) -> Any:
    return no_response_finding(versions, consultation=c, plan=plan, plan_missing=plan_missing, outside=outside,
                               as_of=T0 + dt.timedelta(hours=2), tz=TZ)


def test_each_cause_has_its_code() -> None:
    assert find([version(status="test")]).code == "not_live"
    stale = version(expires=T0 - dt.timedelta(minutes=10), state="expired", level="red")
    f = find([stale], outside=True)  # expired is said first: the engine never looked further
    assert f.code == "expired_on_arrival" and "01:50" in f.message and "02:00" in f.message
    assert f.details == {"identifier": "W-7", "expires": "2026-07-20T01:50:00+08:00",
                         "received_at": "2026-07-20T02:00:00+08:00"}
    assert find([version(state="held", msg_type="update")]).code == "held"
    assert find([version(level="red")], outside=True).code == "outside_region"
    assert find([version(level=None)]).code == "no_level"
    assert find([version()], plan=None, plan_missing=True).code == "no_plan"


def test_plan_level_that_waits_for_the_leader() -> None:
    waiting = find([version()], c=consultation("deadline_passed"))
    assert waiting.code == "consultation_first_no_decision"
    assert "《城区气象灾害应急预案（默认）》黄色预警（III 级响应）规定先会商后响应" in waiting.message
    assert "须经带班领导决策方可启动响应" in waiting.message and "2026-07-20 04:00" in waiting.message
    assert "only the leader's decision starts a response" in waiting.message_en
    assert waiting.details["consultation_state"] == "deadline_passed"
    dismissed = find([version()], c=consultation("dismissed", dismiss_reason="雨势减弱"))
    assert dismissed.code == "dismissed_by_leader" and "雨势减弱" in dismissed.message
    ended = find([version(state="cancelled")], c=consultation("closed", close_reason="warning cancelled",
                                                              closed_at=T0 + dt.timedelta(minutes=40)))
    assert ended.code == "ended_before_decision" and "预警已解除" in ended.message and "02:40" in ended.message
    assert find([version()]).code == "consultation_first_no_decision"  # no consultation either


def test_a_plan_that_starts_at_once_yet_nothing_started_is_unexplained() -> None:
    blue = PlanLevel("城区气象灾害应急预案（默认）", "", "2026.1", "blue", "IV", "skip")
    f = find([version(level="blue")], plan=blue)
    assert f.code == "no_response_unexplained" and "直接响应" in f.message and "事件日志" in f.message


def test_every_code_has_a_title_and_a_finding_is_plain_json() -> None:
    assert all(zh and en for zh, en in CODES.values())
    f = input_without_warning(file="bad.xml", at=T0, state="quarantined", reason="xml_syntax", tz=TZ)
    assert f.as_dict() == {"code": "input_without_warning", "warning_id": None, "message": f.message,
                           "message_en": f.message_en,
                           "details": {"file": "bad.xml", "at": "2026-07-20T02:00:00+08:00", "state": "quarantined",
                                       "reason": "xml_syntax"}}
    assert f.message.startswith("输入 bad.xml") and "quarantined" in f.message_en
    assert f.code in CODES
