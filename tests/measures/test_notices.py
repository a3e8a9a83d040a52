"""Every default measure kind renders a Chinese order notice and a lift notice from the data."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from responses.measures.notices import NoticeData, NoticeError, render_lift_notice, render_notice, render_order_notice
from responses.runs.plans import MEASURE_ZH, MeasureKind

TZ = ZoneInfo("Asia/Shanghai")
ISSUED = dt.datetime(2026, 7, 19, 18, 5, tzinfo=dt.UTC)  # 02:05 local, next day


def data(kind: MeasureKind, **kw: object) -> NoticeData:
    base: dict[str, object] = dict(
        kind=kind, label=MEASURE_ZH[kind] if kind is not MeasureKind.CUSTOM else "水库河道加密巡查",
        authority="城区防汛抗旱指挥部", plan_title="城区防汛应急预案", unit="北街街道办事处",
        area_names=["上村", "中村", "下村"], issued_at=ISSUED, deadline=ISSUED + dt.timedelta(hours=2), tz=TZ,
        hazard_zh="暴雨洪涝", level_zh="橙色", warning_headline="城区气象台发布暴雨橙色预警",
        warning_sender="城区气象台", site_names=["东风水库下游"], expected=130, lift_reason="预警已解除",
    )
    base.update(kw)
    return NoticeData(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", list(MeasureKind))
def test_every_kind_renders_in_chinese(kind: MeasureKind) -> None:
    text = render_order_notice(data(kind))
    assert text.startswith("城区防汛抗旱指挥部关于")
    assert "上村、中村、下村" in text and "北街街道办事处" in text
    assert "2026年7月20日 02:05" in text  # the local time, after midnight
    assert "2026年7月20日 04:05" in text  # the deadline
    assert "特此通告" in text and "{{" not in text and "None" not in text
    lift = render_lift_notice(data(kind))
    assert "解除" in lift and "上村、中村、下村" in lift and "预警已解除" in lift and "{{" not in lift


def test_kind_specific_wording() -> None:
    assert "停课" in render_order_notice(data(MeasureKind.STOP_SCHOOL))
    assert "停止施工作业" in render_order_notice(data(MeasureKind.STOP_WORK))
    assert "暂停营业" in render_order_notice(data(MeasureKind.STOP_BUSINESS))
    assert "暂停运营" in render_order_notice(data(MeasureKind.STOP_TRANSPORT))
    evac = render_order_notice(data(MeasureKind.EVACUATION))
    assert "应转移 130 人" in evac and "应转尽转" in evac and "东风水库下游" in evac
    assert "禁止车辆和行人通行" in render_order_notice(data(MeasureKind.TRAFFIC_CONTROL))
    assert "恢复通行" in render_lift_notice(data(MeasureKind.TRAFFIC_CONTROL))
    assert "有序返回" in render_lift_notice(data(MeasureKind.EVACUATION))
    assert "水库河道加密巡查" in render_order_notice(data(MeasureKind.CUSTOM))


def test_notice_without_area_is_an_error_not_a_blank() -> None:
    with pytest.raises(NoticeError):
        render_order_notice(data(MeasureKind.CLOSURE, area_names=[], site_names=[]))
    with pytest.raises(NoticeError):
        render_notice(data(MeasureKind.CLOSURE), "bogus")
