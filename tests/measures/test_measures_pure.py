"""The measure state machine, overdue rule, report checks, the 应转尽转 gap and plan ordering."""

from __future__ import annotations

import datetime as dt

import pytest

from responses.measures import core as m
from responses.measures.core import MeasureAction as A
from responses.measures.core import MeasureState as S
from responses.runs.plans import MeasureKind, MeasureRule

NOW = dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.UTC)


def test_happy_path_to_lifted() -> None:
    st = S.ORDERED
    for action in (A.ACKNOWLEDGE, A.START, A.CARRY_OUT):
        st = m.apply(st, action)
    assert st is S.CARRIED_OUT
    st = m.apply(st, A.ORDER_LIFT, reason="预警解除")
    assert st is S.LIFTING and m.is_open(st)
    st = m.apply(st, A.ACKNOWLEDGE_LIFT)
    st = m.apply(st, A.CONFIRM_LIFTED)
    assert st is S.LIFTED and not m.is_open(st)


@pytest.mark.parametrize("action", [A.REJECT, A.CANCEL, A.ORDER_LIFT, A.WAIVE])
def test_reason_required(action: A) -> None:
    with pytest.raises(m.IllegalMeasureTransition) as exc:
        m.apply(S.ORDERED, action, reason="  ")
    assert "理由" in exc.value.zh


def test_cannot_cancel_what_is_carried_out_it_must_be_lifted() -> None:
    with pytest.raises(m.IllegalMeasureTransition) as exc:
        m.apply(S.CARRIED_OUT, A.CANCEL, reason="x")
    assert "下达解除令" in exc.value.zh and "order_lift" in exc.value.en


def test_final_states_are_final() -> None:
    for st in m.FINAL:
        assert m.allowed_actions(st) == []
        with pytest.raises(m.IllegalMeasureTransition):
            m.apply(st, A.WAIVE, reason="x")


def test_every_open_state_can_be_waived_or_ends_somewhere() -> None:
    for st in m.OPEN:
        assert A.WAIVE in m.allowed_actions(st)


def test_rejected_can_be_reassigned() -> None:
    st = m.apply(S.ORDERED, A.REJECT, reason="不归我单位负责")
    assert st is S.REJECTED
    assert m.apply(st, A.REASSIGN, reason="改派区教育局") is S.ORDERED


def test_overdue_at_the_deadline_itself() -> None:
    deadline = NOW + dt.timedelta(minutes=60)
    assert not m.is_overdue(S.ORDERED, deadline, deadline - dt.timedelta(seconds=1))
    assert m.is_overdue(S.ORDERED, deadline, deadline)
    assert m.is_overdue(S.IN_PROGRESS, deadline, deadline + dt.timedelta(hours=1))
    assert not m.is_overdue(S.CARRIED_OUT, deadline, deadline + dt.timedelta(hours=1))
    assert not m.is_overdue(S.ORDERED, None, deadline)
    assert m.is_lift_overdue(S.LIFTING, deadline, deadline)
    assert not m.is_lift_overdue(S.LIFTED, deadline, deadline)


def test_gap_shows_who_is_missing() -> None:
    gap = m.evacuation_gap(130, {"people_evacuated": 120})
    assert gap is not None and gap.gap == 10 and not gap.complete
    assert "尚有 10 人未转移" in gap.zh
    done = m.evacuation_gap(130, {"people_evacuated": 133})
    assert done is not None and done.complete and done.extra == 3 and "应转尽转" in done.zh
    assert m.evacuation_gap(None, {"people_evacuated": 5}) is None


def test_report_checks() -> None:
    assert m.clean_report(MeasureKind.EVACUATION, {"people_evacuated": 120, "expected": 999}, 130) == {
        "people_evacuated": 120, "expected": 130}
    with pytest.raises(m.ReportError) as exc:
        m.clean_report(MeasureKind.EVACUATION, {"places_closed": 1})
    assert "已转移人数" in exc.value.zh
    with pytest.raises(m.ReportError):
        m.clean_report(MeasureKind.STOP_SCHOOL, {"schools_suspended": -1})
    with pytest.raises(m.ReportError):
        m.clean_report(MeasureKind.STOP_SCHOOL, {"schools_suspended": True})
    with pytest.raises(m.ReportError):
        m.clean_report(MeasureKind.CLOSURE, {"bogus": 1})
    assert m.clean_report(MeasureKind.CUSTOM, {"note": "已巡查"}) == {"note": "已巡查"}


def _rules() -> list[MeasureRule]:
    return [
        MeasureRule.model_validate({"kind": "evacuation", "targets": {"site_kinds": ["reservoir_downstream"]},
                                    "deadline_minutes": 120, "responsible_unit": "各镇（街道）"}),
        MeasureRule.model_validate({"kind": "stop_school", "targets": {"area_levels": ["village"]},
                                    "deadline_minutes": 60, "responsible_unit": "区教育局"}),
        MeasureRule.model_validate({"kind": "traffic_control", "targets": {"site_kinds": ["underpass"]},
                                    "deadline_minutes": 60, "responsible_unit": "区公安局交警大队"}),
    ]


def test_plan_orders_over_villages_and_sites() -> None:
    areas = m.RunAreas(villages=["v1", "v2", "v3"], townships=["t1", "t2"], sites=["s1"],
                       township_of={"v1": "t1", "v2": "t1", "v3": "t2"}, names={"t1": "北街街道", "t2": "钟家庄街道"})
    sites = [m.SiteInfo("s1", "reservoir_downstream", "某水库下游", village="v2", township="t1", residents=130),
             m.SiteInfo("s9", "reservoir_downstream", "远处水库", village="v9", township="t9", residents=40)]
    drafts = m.plan_orders(_rules(), areas, sites, NOW)
    kinds = [d.kind for d in drafts]
    assert kinds == [MeasureKind.EVACUATION, MeasureKind.STOP_SCHOOL]  # no underpass in the run: no order
    evac, school = drafts
    assert evac.site_ids == ["s1"] and evac.expected == 130 and evac.area_codes == ["v2"]
    assert evac.responsible_unit == "北街街道" and evac.unit_township == "t1"
    assert evac.deadline == NOW + dt.timedelta(minutes=120)
    assert school.area_codes == ["v1", "v2", "v3"] and school.responsible_unit == "区教育局"
    assert school.expected is None and "education" in school.sectors
    assert len({d.key for d in drafts}) == 2


def test_per_township_unit_splits_orders() -> None:
    rule = MeasureRule.model_validate({"kind": "closure", "targets": {"area_levels": ["village"]},
                                       "deadline_minutes": 30, "responsible_unit": "各镇（街道）"})
    areas = m.RunAreas(villages=["v1", "v2", "v3"], township_of={"v1": "t1", "v2": "t1", "v3": "t2"})
    drafts = m.plan_orders([rule], areas, [], NOW)
    assert [(d.unit_township, d.area_codes) for d in drafts] == [("t1", ["v1", "v2"]), ("t2", ["v3"])]


def test_still_required_after_downgrade() -> None:
    rules = _rules()
    assert m.still_required(rules, "evacuation", "转移疏散")
    assert not m.still_required(rules, "stop_work", "停工")
