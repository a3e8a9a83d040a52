from __future__ import annotations

import pytest

from responses.messaging.sms import (
    TEMPLATES,
    SmsTemplateError,
    compose,
    count_segments,
    find_links,
    strip_links,
    truncate,
)

PARAMS = {"person": "张三", "hazard": "暴雨", "level": "红色", "deadline": "02:05", "duty_phone": "0356-2020000",
          "answer": "收到", "at": "02:03", "missed": "李四"}


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("", "gsm7", 0),
    ("a" * 160, "gsm7", 1),
    ("a" * 161, "gsm7", 2),
    ("a" * 306, "gsm7", 2),
    ("a" * 307, "gsm7", 3),
    ("中" * 70, "ucs2", 1),
    ("中" * 71, "ucs2", 2),
    ("中" * 134, "ucs2", 2),
    ("中" * 135, "ucs2", 3),
    ("a" * 69 + "中", "ucs2", 1),  # one Chinese character turns the whole message into UCS-2
    ("€" * 80, "gsm7", 1),  # extension characters cost two septets: 160
    ("€" * 81, "gsm7", 2),
])
def test_segment_counting(text: str, encoding: str, segments: int) -> None:
    s = count_segments(text)
    assert (s.encoding, s.segments) == (encoding, segments)


def test_surrogate_pairs_count_two_and_are_not_split() -> None:
    assert count_segments("😀" * 35).segments == 1  # 70 units
    # 33 pairs = 66 units + 1 char = 67 fills a part; one more pair must go whole to the next part
    s = count_segments("中" + "😀" * 34)
    assert s.units == 69 and s.segments == 1
    s = count_segments("中" * 66 + "😀" + "中" * 3)
    assert s.units == 71 and s.segments == 2 and s.remaining == 67 - 5


def test_every_template_has_a_one_segment_form_for_a_long_area_list() -> None:
    areas = "、".join(["北石店镇", "钟家庄街道", "西上庄街道", "东街社区", "西街社区", "南街社区"])
    for kind in TEMPLATES:
        t = compose(kind, {**PARAMS, "areas": areas}, to="+8613800000000")
        assert t.segments.segments == 1, (kind, t.body)
        assert t.segments.encoding == "ucs2"


def test_full_form_when_it_fits() -> None:
    t = compose("answer_ack", {**PARAMS, "areas": "东街社区"}, to="+8613800000000")
    assert t.form == "full" and "0356-2020000" in t.body


def test_links_are_stripped_for_mainland_numbers_only() -> None:
    params = {**PARAMS, "areas": "东街社区 详见 https://example.cn/x?a=1 www.foo.com"}
    cn = compose("callout_voice", params, to="+8613800000000")
    assert not find_links(cn.body)
    assert cn.removed_links == ["https://example.cn/x?a=1", "www.foo.com"]
    us = compose("callout_voice", params, to="+15005550006", max_segments=3)
    assert "https://example.cn/x?a=1" in us.body and not us.removed_links


def test_template_with_a_link_is_never_sent_to_plus86() -> None:
    templates = {"x": {"full": "点击 http://bad.example.com/{{ a }} 确认", "short": "确认"}}
    t = compose("x", {"a": "1"}, to="+8613800000000", templates=templates)
    assert "http" not in t.body and t.removed_links


def test_missing_parameter_and_unknown_kind_are_clear_errors() -> None:
    with pytest.raises(SmsTemplateError):
        compose("callout", {"person": "张三"}, to="+8613800000000")
    with pytest.raises(SmsTemplateError):
        compose("nope", PARAMS, to="+8613800000000")


def test_truncate_fits_and_marks_the_cut() -> None:
    out = truncate("中" * 200, 1)
    assert out.endswith("…") and count_segments(out).segments == 1 and len(out) == 70


def test_domestic_template_id_is_carried() -> None:
    t = compose("callout", {**PARAMS, "areas": "东街"}, to="+8613800000000", template_ids={"callout": "SMS_001"})
    assert t.template_id == "SMS_001"


def test_strip_links_keeps_phone_numbers() -> None:
    assert strip_links("致电 0356-2020000 或 13800000000") == "致电 0356-2020000 或 13800000000"
