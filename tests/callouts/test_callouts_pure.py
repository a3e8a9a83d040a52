"""Who is called (one callout per person), what an answer means, what a try says."""

from __future__ import annotations

from responses.callouts.core import AnswerKind, DutyRef, call_text, parse_keypress, parse_reply, plan_callouts

TIERS = {"district": ["district_leader"], "township": ["township_chief"], "village": ["village_head", "grid_worker"],
         "site": ["site_monitor"]}


def test_one_callout_per_person_naming_all_their_villages() -> None:
    duties = [
        DutyRef(1, "grid_worker", "140502100201"), DutyRef(1, "grid_worker", "140502100202"),
        DutyRef(2, "village_head", "140502100201"),
        DutyRef(3, "township_chief", "140502100000"), DutyRef(4, "township_chief", "140502001000"),
        DutyRef(5, "district_leader", "140502000000"),
        DutyRef(6, "grid_worker", "140502100299"),  # village not affected
        DutyRef(7, "site_monitor", "site:GH-1"), DutyRef(8, "site_monitor", "site:GH-2"),
        DutyRef(9, "village_head", "140502100202"), DutyRef(9, "township_chief", "140502100000"),  # two tiers
    ]
    areas = {"villages": ["140502100201", "140502100202"], "townships": [], "sites": ["GH-1"]}
    got = {p.contact_id: p for p in plan_callouts(TIERS, areas, duties)}
    assert set(got) == {1, 2, 3, 5, 7, 9}
    assert got[1].places == ["140502100201", "140502100202"] and got[1].tier == "village"
    assert got[3].tier == "township" and got[5].tier == "district" and got[7].places == ["site:GH-1"]
    assert got[9].tier == "village" and got[9].places == ["140502100000", "140502100202"]
    only_village = plan_callouts({"village": ["village_head"]}, areas, duties)
    assert [p.contact_id for p in only_village] == [2, 9]


def test_keypress_and_reply_meanings() -> None:
    assert parse_keypress("1").kind is AnswerKind.RECEIVED  # type: ignore[union-attr]
    assert parse_keypress("2").kind is AnswerKind.NEED_SUPPORT  # type: ignore[union-attr]
    assert parse_keypress("9") is None and parse_keypress("") is None
    assert parse_reply("1").kind is AnswerKind.RECEIVED
    assert parse_reply("收到").kind is AnswerKind.RECEIVED
    assert parse_reply("2").kind is AnswerKind.NEED_SUPPORT
    assert parse_reply("需要支援，路断了").kind is AnswerKind.NEED_SUPPORT
    r = parse_reply("收到，已转移35人")
    assert r.kind is AnswerKind.RECEIVED and r.report == {"evacuated": 35}
    assert parse_reply("1 转移 120 人").report == {"evacuated": 120}
    assert parse_reply("好的").kind is AnswerKind.RECEIVED  # any reply proves receipt


def test_texts_have_no_links_and_say_how_to_answer() -> None:
    names = {"140502100201": "南村"}
    sms = call_text(channel="sms", hazard="geohazard", level="red", event=None, places=["140502100201"],
                    names=names, answer_minutes=5, two_way_sms=True)
    assert "红色地质灾害预警" in sms and "南村" in sms and "回复1" in sms and "http" not in sms
    voice = call_text(channel="voice", hazard="flood", level="orange", event="暴雨", places=["x"], names={},
                      answer_minutes=15, two_way_sms=False, escalated_from="张三（南村）", drill=True)
    assert voice.startswith("【演练】橙色暴雨预警") and "按1" in voice and "张三（南村）未在时限内应答" in voice
    one_way = call_text(channel="sms", hazard="weather", level="blue", event=None, places=["a", "b", "c", "d", "e"],
                        names={}, answer_minutes=60, two_way_sms=False)
    assert "回复" not in one_way and "等5处" in one_way
