"""Measure orders (措施) as pure rules: the named-transition table, overdue, the "应转尽转" gap, and
which orders a plan entry asks for over a run's areas and sites.

A measure is followed from the order to its lifting: ``ordered → acknowledged → in_progress →
carried_out``; when the danger has passed a lift order goes out (``lifting``: sent, acknowledged,
then confirmed) and the measure ends ``lifted``. An order that was never acted on can be
``cancelled``; the responsible unit can ``reject`` it (wrong unit, impossible) and the leader then
reassigns, cancels or waives it; the leader can ``waive`` any open measure with a reason. Only
``lifted``, ``cancelled`` and ``waived`` are final: a run may close only when every measure is in
one of them, so nothing stays closed or evacuated silently. Progress on the way (``report_progress``,
e.g. "已转移35人") moves an order to ``in_progress`` and keeps the figures so far, so the 应转尽转 gap
is visible before the order is carried out.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from config.transitions import IllegalTransition, Machine
from responses.callouts.core import ParsedAnswer
from responses.runs.plans import MEASURE_ZH, MeasureKind, MeasureRule


class MeasureState(enum.StrEnum):
    ORDERED = "ordered"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    CARRIED_OUT = "carried_out"
    REJECTED = "rejected"
    LIFTING = "lifting"  # a lift order is out; lift_acknowledged_at / lifted_at follow it
    LIFTED = "lifted"
    CANCELLED = "cancelled"
    WAIVED = "waived"


class MeasureAction(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    START = "start"
    REPORT_PROGRESS = "report_progress"  # figures so far ("已转移35人"), not yet carried out
    CARRY_OUT = "carry_out"  # with a report
    REJECT = "reject"  # by the responsible unit, with a reason
    REASSIGN = "reassign"  # the leader gives a rejected order to another unit
    CANCEL = "cancel"  # withdrawn before anything was done, with a reason
    ORDER_LIFT = "order_lift"  # the run closes, a downgrade, or the leader lifts it alone
    ACKNOWLEDGE_LIFT = "acknowledge_lift"
    CONFIRM_LIFTED = "confirm_lifted"
    WAIVE = "waive"  # the leader, explicitly, with a reason


S = MeasureState
A = MeasureAction

FINAL = frozenset({S.LIFTED, S.CANCELLED, S.WAIVED})
OPEN = frozenset(set(S) - FINAL)
# States in which the deadline to carry the measure out still runs.
PENDING = frozenset({S.ORDERED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.REJECTED})
# States from which something may be in place on the ground and must be lifted, not just cancelled.
LIFTABLE = frozenset({S.ORDERED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.CARRIED_OUT, S.REJECTED})

TRANSITIONS: dict[tuple[MeasureAction, MeasureState], MeasureState] = {
    (A.ACKNOWLEDGE, S.ORDERED): S.ACKNOWLEDGED,
    (A.START, S.ORDERED): S.IN_PROGRESS,
    (A.START, S.ACKNOWLEDGED): S.IN_PROGRESS,
    (A.REPORT_PROGRESS, S.ORDERED): S.IN_PROGRESS,
    (A.REPORT_PROGRESS, S.ACKNOWLEDGED): S.IN_PROGRESS,
    (A.REPORT_PROGRESS, S.IN_PROGRESS): S.IN_PROGRESS,
    (A.CARRY_OUT, S.ORDERED): S.CARRIED_OUT,
    (A.CARRY_OUT, S.ACKNOWLEDGED): S.CARRIED_OUT,
    (A.CARRY_OUT, S.IN_PROGRESS): S.CARRIED_OUT,
    (A.CARRY_OUT, S.CARRIED_OUT): S.CARRIED_OUT,  # a corrected or completed report
    (A.REJECT, S.ORDERED): S.REJECTED,
    (A.REJECT, S.ACKNOWLEDGED): S.REJECTED,
    (A.REASSIGN, S.REJECTED): S.ORDERED,
    (A.CANCEL, S.ORDERED): S.CANCELLED,
    (A.CANCEL, S.ACKNOWLEDGED): S.CANCELLED,
    (A.CANCEL, S.REJECTED): S.CANCELLED,
    **{(A.ORDER_LIFT, s): S.LIFTING for s in LIFTABLE},
    (A.ACKNOWLEDGE_LIFT, S.LIFTING): S.LIFTING,
    (A.CONFIRM_LIFTED, S.LIFTING): S.LIFTED,
    **{(A.WAIVE, s): S.WAIVED for s in OPEN},
}

NEEDS_REASON = frozenset({A.REJECT, A.CANCEL, A.ORDER_LIFT, A.WAIVE, A.REASSIGN})

STATE_ZH = {
    S.ORDERED: "已下达",
    S.ACKNOWLEDGED: "已签收",
    S.IN_PROGRESS: "落实中",
    S.CARRIED_OUT: "已落实",
    S.REJECTED: "被退回",
    S.LIFTING: "解除中",
    S.LIFTED: "已解除",
    S.CANCELLED: "已撤销",
    S.WAIVED: "已豁免",
}

ACTION_ZH = {
    A.ACKNOWLEDGE: "签收",
    A.START: "开始落实",
    A.REPORT_PROGRESS: "报告进展",
    A.CARRY_OUT: "报告落实",
    A.REJECT: "退回",
    A.REASSIGN: "改派",
    A.CANCEL: "撤销",
    A.ORDER_LIFT: "下达解除令",
    A.ACKNOWLEDGE_LIFT: "签收解除令",
    A.CONFIRM_LIFTED: "确认已解除",
    A.WAIVE: "豁免",
}


class IllegalMeasureTransition(IllegalTransition):
    """An action that the order's state does not allow; the message lists what is allowed."""


MACHINE = Machine("措施", "measure", MeasureState, MeasureAction, TRANSITIONS, STATE_ZH, ACTION_ZH,
                  IllegalMeasureTransition)


def allowed_actions(state: MeasureState | str) -> list[MeasureAction]:
    return MACHINE.allowed(state)


def apply(state: MeasureState | str, action: MeasureAction | str, reason: str | None = None) -> MeasureState:
    st, act = MeasureState(state), MeasureAction(action)
    nxt = MACHINE.apply(st, act)
    if act in NEEDS_REASON and not (reason and reason.strip()):
        raise IllegalMeasureTransition(act, st, f"{ACTION_ZH[act]}必须填写理由",
                                       f"{act.value} needs a reason")
    return nxt


def is_open(state: MeasureState | str) -> bool:
    return MeasureState(state) in OPEN


# ---------------------------------------------------------------------------------------------- deadlines


def is_overdue(state: MeasureState | str, deadline: dt.datetime | None, now: dt.datetime) -> bool:
    """Overdue at the deadline itself: a measure due at 10:00 and not carried out at 10:00 is late."""
    return deadline is not None and MeasureState(state) in PENDING and now >= deadline


def is_lift_overdue(state: MeasureState | str, lift_deadline: dt.datetime | None, now: dt.datetime) -> bool:
    return lift_deadline is not None and MeasureState(state) is S.LIFTING and now >= lift_deadline


# ---------------------------------------------------------------------------------------------- reports

REPORT_FIELDS = ("places_closed", "schools_suspended", "roads_controlled", "people_evacuated", "expected")
REPORT_ZH = {
    "places_closed": "关闭场所（处）",
    "schools_suspended": "停课学校（所）",
    "roads_controlled": "管控路段（处）",
    "people_evacuated": "已转移人数",
    "expected": "应转移人数",
    "units_suspended": "停工停业单位（家）",
    "lines_suspended": "停运线路（条）",
}
# The figure that a carried-out report of each kind must give.
REQUIRED_FIGURE = {
    MeasureKind.CLOSURE: "places_closed",
    MeasureKind.EVACUATION: "people_evacuated",
    MeasureKind.STOP_SCHOOL: "schools_suspended",
    MeasureKind.TRAFFIC_CONTROL: "roads_controlled",
    MeasureKind.STOP_WORK: "units_suspended",
    MeasureKind.STOP_BUSINESS: "units_suspended",
    MeasureKind.STOP_TRANSPORT: "lines_suspended",
}
_FIGURES = frozenset(REPORT_ZH)


class ReportError(ValueError):
    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en
        super().__init__(en)


def _figures(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report's figures (whole, non-negative) and note; ``expected`` is the order's, never the reporter's."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key in _FIGURES and key != "expected":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ReportError(f"“{REPORT_ZH[key]}”应为不小于 0 的整数", f"{key} must be a whole number ≥ 0")
            out[key] = value
        elif key == "note":
            out["note"] = str(value)[:2000]
        elif key == "expected":
            continue
        else:
            raise ReportError(f"不认识的报告项：{key}", f"unknown report field: {key}")
    return out


def clean_report(kind: MeasureKind | str, report: Mapping[str, Any], expected: int | None = None) -> dict[str, Any]:
    """A carried-out report: whole non-negative figures, the kind's own figure present, notes kept.

    ``expected`` (the site's evacuation list) is the order's, not the reporter's: it is filled in here.
    """
    k = MeasureKind(kind)
    out = _figures(report)
    need = REQUIRED_FIGURE.get(k)
    if need and need not in out:
        raise ReportError(f"落实报告缺少“{REPORT_ZH[need]}”", f"the report needs {need}")
    if k is MeasureKind.EVACUATION and expected is not None:
        out["expected"] = expected
    return out


def clean_progress(kind: MeasureKind | str, report: Mapping[str, Any], expected: int | None = None,
                   before: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A progress report: figures so far and a note, at least one of them. Figures not given stay as
    ``before`` had them, so "已转移35人" then "已转移50人" reads 50 and nothing else is lost."""
    given = _figures(report)
    if not given:
        raise ReportError("进展报告至少要有一个数字或一段说明", "a progress report needs a figure or a note")
    out = {k: v for k, v in (before or {}).items() if k in _FIGURES or k == "note"}
    out.update(given)
    if MeasureKind(kind) is MeasureKind.EVACUATION and expected is not None:
        out["expected"] = expected
    return out


@dataclass(frozen=True)
class EvacuationGap:
    """应转尽转: who is on the list and not yet out. ``extra`` counts people moved beyond the list."""

    expected: int
    evacuated: int

    @property
    def gap(self) -> int:
        return max(0, self.expected - self.evacuated)

    @property
    def extra(self) -> int:
        return max(0, self.evacuated - self.expected)

    @property
    def complete(self) -> bool:
        return self.gap == 0

    @property
    def zh(self) -> str:
        if self.complete:
            return f"应转移 {self.expected} 人，已转移 {self.evacuated} 人，已应转尽转"
        return f"应转移 {self.expected} 人，已转移 {self.evacuated} 人，尚有 {self.gap} 人未转移"

    def as_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "evacuated": self.evacuated, "gap": self.gap, "extra": self.extra,
                "complete": self.complete, "text": self.zh}


def evacuation_gap(expected: int | None, report: Mapping[str, Any] | None) -> EvacuationGap | None:
    """None when there is no list to measure against (no site residents recorded)."""
    if expected is None:
        return None
    evacuated = int((report or {}).get("people_evacuated") or 0)
    return EvacuationGap(int(expected), evacuated)


# ---------------------------------------------------------------------------------------------- ordering

# Units that mean "each township answers for its own part" (各镇（街道）, 属地镇街 …): one order per township.
_PER_TOWNSHIP = re.compile(r"^(各|属地|所在)")

# What each kind of suspension applies to, when the plan does not say.
DEFAULT_SECTORS: dict[MeasureKind, list[str]] = {
    MeasureKind.CLOSURE: ["public_places"],
    MeasureKind.STOP_WORK: ["construction", "mining", "industry"],
    MeasureKind.STOP_SCHOOL: ["education"],
    MeasureKind.STOP_BUSINESS: ["commerce", "tourism"],
    MeasureKind.STOP_TRANSPORT: ["transport"],
}


def per_township(unit: str) -> bool:
    return bool(_PER_TOWNSHIP.match(unit.strip()))


@dataclass(frozen=True)
class SiteInfo:
    """What ordering needs to know of a hazard site (geo's ``HazardSite``), as plain data."""

    id: str
    kind: str
    name: str
    village: str | None = None
    township: str | None = None
    residents: int | None = None  # 避险转移人数 on the evacuation list


@dataclass(frozen=True)
class RunAreas:
    """The run's areas: village and township codes, site ids, and which township each village is in."""

    villages: Sequence[str] = ()
    townships: Sequence[str] = ()
    sites: Sequence[str] = ()
    district: str | None = None
    township_of: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)  # code → name, for texts


@dataclass
class OrderDraft:
    """One order to create: the service gives it an id, a person and a message."""

    rule_index: int
    kind: MeasureKind
    label: str
    responsible_unit: str
    unit_township: str | None  # set when the unit is a township answering for its own part
    area_codes: list[str]
    site_ids: list[str]
    site_kinds: list[str]
    sectors: list[str]
    deadline: dt.datetime
    expected: int | None  # people on the evacuation lists of the sites in scope

    @property
    def key(self) -> str:
        """Stable identity inside a run: the same rule over the same unit is the same order."""
        return f"{self.rule_index}:{self.kind.value}:{self.unit_township or self.responsible_unit}"


def _township_of_code(code: str, areas: RunAreas) -> str | None:
    if code in areas.townships:
        return code
    return areas.township_of.get(code)


def plan_orders(rules: Iterable[MeasureRule], areas: RunAreas, sites: Iterable[SiteInfo],
                now: dt.datetime) -> list[OrderDraft]:
    """The orders a plan entry's measures call for over these areas and sites.

    Area-level targets take the run's areas of that level; site-kind targets take the run's sites
    of those kinds. A unit that is "each township" gets one order per township; any other unit one
    order for the whole scope. A rule that finds nothing in the run's areas orders nothing.
    """
    site_list = [s for s in sites if not areas.sites or s.id in areas.sites or s.village in areas.villages]
    out: list[OrderDraft] = []
    for idx, rule in enumerate(rules):
        codes: list[str] = []
        for lvl in rule.targets.area_levels:
            if lvl == "village" or lvl == "grid":
                codes.extend(areas.villages)
            elif lvl == "township":
                codes.extend(areas.townships)
            elif lvl == "district" and areas.district:
                codes.append(areas.district)
        codes = sorted(set(codes))
        matched = sorted((s for s in site_list if s.kind in rule.targets.site_kinds), key=lambda s: s.id)
        if not codes and not matched:
            continue
        label = rule.display if rule.kind is MeasureKind.CUSTOM else MEASURE_ZH[rule.kind]
        sectors = list(DEFAULT_SECTORS.get(rule.kind, []))
        deadline = now + dt.timedelta(minutes=rule.deadline_minutes)
        groups: dict[str | None, tuple[list[str], list[SiteInfo]]] = {}
        if per_township(rule.responsible_unit):
            for c in codes:
                groups.setdefault(_township_of_code(c, areas), ([], []))[0].append(c)
            for s in matched:
                groups.setdefault(s.township or (s.village and areas.township_of.get(s.village)), ([], []))[1].append(s)
        else:
            groups[None] = (codes, matched)
        for town, (gcodes, gsites) in sorted(groups.items(), key=lambda kv: kv[0] or ""):
            area_codes = sorted(set(gcodes) | {s.village for s in gsites if s.village})
            residents = [s.residents for s in gsites if s.residents is not None]
            expected = sum(residents) if (rule.kind is MeasureKind.EVACUATION and residents) else None
            unit = rule.responsible_unit
            if town is not None:
                unit = areas.names.get(town, town)
            out.append(OrderDraft(
                rule_index=idx, kind=rule.kind, label=label, responsible_unit=unit, unit_township=town,
                area_codes=area_codes, site_ids=[s.id for s in gsites], site_kinds=list(rule.targets.site_kinds),
                sectors=sectors, deadline=deadline, expected=expected,
            ))
    return out


def still_required(rules: Iterable[MeasureRule], kind: str, label: str) -> bool:
    """After a downgrade or revision: does the new entry still order this kind of measure?"""
    for rule in rules:
        rl = rule.display if rule.kind is MeasureKind.CUSTOM else MEASURE_ZH[rule.kind]
        if rule.kind.value == kind and (rule.kind is not MeasureKind.CUSTOM or rl == label):
            return True
    return False


# ---------------------------------------------------------------------------------------------- replies

# States in which a reported figure is progress on the way (a carried-out order takes a corrected
# report through carry_out, from the duty desk).
PROGRESSING = frozenset({S.ORDERED, S.ACKNOWLEDGED, S.IN_PROGRESS})


@dataclass(frozen=True)
class OrderAwaiting:
    """What routing a reply needs to know of one order sent to the number that replied."""

    id: int
    kind: str
    state: MeasureState
    reached: bool  # a message of the order to this number has left (the provider accepted it)
    lift_reached: bool = False  # the same for its lift order
    lift_acknowledged: bool = False
    mine: bool = True  # the order is (still) this number's: a reassigned order is no longer the old person's


@dataclass(frozen=True)
class ReplyRoute:
    """Where one inbound reply or keypress goes: the callout layer, and/or these orders."""

    to_callout: bool
    steps: dict[int, tuple[MeasureAction, ...]] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)  # the figures report_progress records
    noted: tuple[int, ...] = ()  # orders the reply is recorded on without changing them


def reply_progress(parsed: ParsedAnswer) -> dict[str, Any]:
    """The figures a reply reports, in a report's words ("已转移35人" → people_evacuated 35)."""
    n = parsed.report.get("evacuated")
    return {"people_evacuated": n} if isinstance(n, int) and not isinstance(n, bool) else {}


def _steps(o: OrderAwaiting, *, progress: bool) -> tuple[MeasureAction, ...]:
    if not o.mine:
        return ()
    if o.state is S.LIFTING:
        return (A.ACKNOWLEDGE_LIFT,) if o.lift_reached and not o.lift_acknowledged else ()
    out: list[MeasureAction] = []
    if o.state is S.ORDERED and o.reached:
        out.append(A.ACKNOWLEDGE)
    if progress and o.state in PROGRESSING:
        out.append(A.REPORT_PROGRESS)
    return tuple(out)


def route_reply(*, keypress: bool, parsed: ParsedAnswer, pointed_order: int | None, pointed_callout: bool,
                callout_waiting: bool, orders: Sequence[OrderAwaiting]) -> ReplyRoute:
    """Decide what one reply from a person does, when that person may have callouts and orders open.

    - A keypress is pressed in one call, and a call carries one message: it answers that message
      only — the order the call was about (acknowledged; its lift order acknowledged), or else the
      callout (the callout layer's rule).
    - An SMS reply cannot say which of our messages it answers, and any reply proves the person
      read their phone. So it answers everything of theirs still waiting for a reply: the callout
      layer takes it when that person has an unanswered callout (or the reply's latest message was a
      callout's), and every order sent to them that waits for acknowledgement is acknowledged (a
      lift order waiting, lift-acknowledged). An order whose message has not left yet is not: the
      person cannot have read it, and nobody answers for an order that is no longer theirs.
    - A figure ("已转移35人") is progress on one evacuation order: the one the reply's latest message
      was about when that is an open evacuation, else the newest open evacuation of theirs.
    - A reply that changes nothing is still kept: on the order its latest message was about, else
      by the callout layer (a further answer), so it is never lost.
    """
    by_id = {o.id: o for o in orders}
    if keypress:
        o = by_id.get(pointed_order) if pointed_order is not None else None
        if o is None:  # a call about a callout, or about an order no longer there
            return ReplyRoute(to_callout=pointed_order is None)
        o = replace(o, reached=True, lift_reached=o.state is S.LIFTING)
        steps = _steps(o, progress=False)
        return ReplyRoute(False, {o.id: steps} if steps else {}, noted=() if steps else (o.id,))
    progress = reply_progress(parsed)
    target: int | None = None
    if progress:
        evac = [o for o in orders if o.kind == MeasureKind.EVACUATION.value and o.state in PROGRESSING and o.reached]
        pointed = next((o for o in evac if o.id == pointed_order), None)
        target = pointed.id if pointed else (max(o.id for o in evac) if evac else None)
    steps = {o.id: st for o in orders if (st := _steps(o, progress=o.id == target))}
    noted = (pointed_order,) if pointed_order in by_id and pointed_order not in steps else ()
    to_callout = callout_waiting or pointed_callout or not (steps or noted)
    return ReplyRoute(to_callout, steps, progress if target is not None else {}, noted)
