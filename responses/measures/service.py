"""Measure orders in the database: create them from a run's plan snapshot, move them through their
states, lift them, sweep the overdue ones, and reach the responsible person. The caller commits.

``sync_run`` is the one entry point that follows the run: it is called after every run change
(start, raise, revision, new areas, closing) and by the sweep, and is idempotent — an active run
gets the orders its current plan entry asks for over its areas (an order no longer asked for after
a downgrade gets a lift order), a closing run gets a lift order for every open measure. So nothing
stays closed or evacuated silently, and a run cannot close while a measure is neither lifted nor
explicitly waived (``close_guard``).

Who is reached: a township's order goes to its chief; a department's order (区教育局, 区公安局交警大队
…) to the department's duty person (a ``department_duty`` in the contact list), the first department
named that has one. An order with nobody to reach is flagged to the duty officer at once, and the
flag clears when someone is assigned. A reply or keypress from the person an order was sent to
acknowledges it and can report progress (``handle_inbound``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from config.errors import ApiError
from config.eventlog import record
from config.settings import load_settings
from geo.models import Area, HazardSite
from responses.callouts import answers as callout_answers
from responses.callouts import service as callout_service
from responses.callouts.core import AnswerChannel, parse_keypress, parse_reply
from responses.contacts.core import DutyRole, departments_named
from responses.contacts.models import Contact, Duty
from responses.contacts.service import known_departments, reachable
from responses.measures import core as rules
from responses.measures.core import MeasureAction, MeasureState, OrderAwaiting, OrderDraft, RunAreas, SiteInfo
from responses.measures.models import MeasureOrder
from responses.messaging import outbox
from responses.messaging import sms as sms_text
from responses.messaging.models import OutboxMessage
from responses.runs import supervision
from responses.runs.core import RunState
from responses.runs.models import ResponseRun, SupervisionFlag
from responses.runs.plans import MEASURE_ZH, MeasureKind, MeasureRule

log = logging.getLogger("jiaoying.measures")

A = MeasureAction
S = MeasureState

# Extra time a lift order gets when the plan gives none: lifting is as urgent as ordering.
DEFAULT_LIFT_MINUTES = 120

SMS_TEMPLATES: dict[str, dict[str, str]] = {
    "measure_order": {
        "full": "【措施指令】{{ person }}：因{{ hazard }}{{ level }}预警，请{{ unit }}在{{ areas }}落实“{{ label }}”，"
                "{{ deadline }}前完成并报告。值班电话{{ duty_phone }}。",
        "short": "【措施】{{ areas }}落实“{{ label }}”，{{ deadline }}前完成并报告。",
    },
    "measure_lift": {
        "full": "【解除指令】{{ person }}：{{ areas }}的“{{ label }}”措施现予解除（{{ reason }}），"
                "请{{ unit }}组织恢复并回报。值班电话{{ duty_phone }}。",
        "short": "【解除】{{ areas }}“{{ label }}”解除，请组织恢复并回报。",
    },
    "measure_voice": {
        "full": "{{ person }}您好，这里是应急值班室。{{ text }}收到请按1。",
        "short": "{{ text }}收到请按1。",
    },
}


class MeasureError(ApiError):
    """A refused measure operation; an API answers it as is (status, code, Chinese and English)."""

    def __init__(self, status: int, code: str, zh: str, en: str, details: Any = None) -> None:
        super().__init__(status, code, zh, en, details)


class MeasuresStillOpen(MeasureError):
    """The run cannot close: these measures are neither lifted nor explicitly waived."""

    def __init__(self, orders: Sequence[MeasureOrder]) -> None:
        items = [{"id": o.id, "label": o.label, "state": o.state, "unit": o.responsible_unit} for o in orders]
        names = "、".join(f"{o.label}（{o.responsible_unit}，{rules.STATE_ZH[S(o.state)]}）" for o in orders)
        super().__init__(409, "measures_open", f"还有 {len(orders)} 项措施未解除或豁免，不能结束响应：{names}",
                         f"{len(orders)} measure(s) neither lifted nor waived; the run cannot close", items)
        self.orders = list(orders)


# Run events after which the measures are brought in line with the run.
FOLLOWED = frozenset({"started", "raised", "areas_extended", "revised_by_decision", "closing", "reactivated"})


@lru_cache(maxsize=1)
def display_zone() -> ZoneInfo:
    """The display zone for texts when the caller has none (run hooks); jobs pass the runtime's."""
    return load_settings().tz


def on_run_event(session: Session, run: ResponseRun, action: str, *, actor: str, now: dt.datetime) -> None:
    """Called by the run service after each run event, in the same transaction."""
    if action in FOLLOWED:
        sync_run(session, run, actor=actor, now=now, tz=display_zone(),
                 reorder_lifted=action in ("raised", "reactivated", "revised_by_decision"))


# ---------------------------------------------------------------------------------------------- queries


def get(session: Session, order_id: int, *, lock: bool = False) -> MeasureOrder | None:
    stmt = select(MeasureOrder).where(MeasureOrder.id == order_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def for_run(session: Session, run_id: int) -> list[MeasureOrder]:
    return list(session.execute(
        select(MeasureOrder).where(MeasureOrder.run_id == run_id).order_by(MeasureOrder.id)).scalars())


def open_measures(session: Session, run_id: int) -> list[MeasureOrder]:
    """Measures of the run that are neither lifted, cancelled nor waived: each one blocks closing."""
    return list(session.execute(
        select(MeasureOrder).where(MeasureOrder.run_id == run_id,
                                   MeasureOrder.state.in_([s.value for s in rules.OPEN]))
        .order_by(MeasureOrder.id)).scalars())


def open_measures_of_runs(session: Session, run_ids: Sequence[int]) -> list[MeasureOrder]:
    """``open_measures`` of several runs in one query.

    The duty board lists the open measures of every open run on each render; one query per run made the
    page's cost grow with the number of runs just when many are open.
    """
    if not run_ids:
        return []
    return list(session.execute(
        select(MeasureOrder).where(MeasureOrder.run_id.in_(list(run_ids)),
                                   MeasureOrder.state.in_([s.value for s in rules.OPEN]))
        .order_by(MeasureOrder.run_id, MeasureOrder.id)).scalars())


def close_guard(session: Session, run: ResponseRun) -> None:
    """Raise ``MeasuresStillOpen`` unless every measure of the run is lifted or explicitly waived."""
    still = open_measures(session, run.id)
    if still:
        raise MeasuresStillOpen(still)


# ---------------------------------------------------------------------------------------------- lookups


def _codes(values: Iterable[Any]) -> list[str]:
    """Area codes from a run's areas, whether plain codes or match hits ({"code": …} / {"id": …})."""
    out: list[str] = []
    for v in values or []:
        if isinstance(v, dict):
            c = v.get("code") or v.get("id")
            if c is not None:
                out.append(str(c))
        else:
            out.append(str(v))
    return sorted(set(out))


def _township_of(code: str) -> str:
    return code[:9] + "000" if len(code) == 12 and code.isdigit() else code


def area_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Names of areas for texts; a code without a known name stands for itself."""
    codes = list(codes)
    names: dict[str, str] = {}
    if codes:
        for code, name in session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all():
            names[str(code)] = str(name)
    return {c: names.get(c, c) for c in codes}


def load_sites(session: Session, site_ids: Iterable[str], villages: Iterable[str]) -> list[SiteInfo]:
    """The hazard sites of the run (by id or key, or lying in its villages) with their evacuation lists."""
    ids, vills = [str(i) for i in site_ids], list(villages)
    cond = []
    int_ids = [int(i) for i in ids if i.isdigit()]
    if int_ids:
        cond.append(HazardSite.id.in_(int_ids))
    if ids:
        cond.append(HazardSite.key.in_(ids))
    if vills:
        cond.append(HazardSite.area_code.in_(vills))
    if not cond:
        return []
    out = []
    for site in session.execute(select(HazardSite).where(or_(*cond)).order_by(HazardSite.id)).scalars():
        area = site.area_code
        out.append(SiteInfo(id=str(site.id), kind=site.kind, name=site.name, village=area,
                            township=_township_of(area) if area else None, residents=site.residents))
    return out


def run_areas(session: Session, run: ResponseRun) -> RunAreas:
    villages = _codes(run.areas.get("villages", []))
    townships = sorted(set(_codes(run.areas.get("townships", []))) | {_township_of(v) for v in villages})
    township_of = {v: _township_of(v) for v in villages}
    return RunAreas(villages=villages, townships=townships, sites=_codes(run.areas.get("sites", [])),
                    township_of=township_of, names=area_names(session, [*villages, *townships]))


def _township_chief(session: Session, township: str, now: dt.datetime) -> Contact | None:
    rows = session.execute(
        select(Contact).join(Duty, Duty.contact_id == Contact.id)
        .where(Duty.role == "township_chief", Duty.area_code == township, Contact.active.is_(True))
        .order_by(Duty.id)).scalars().all()
    for c in rows:
        if (c.active_from is None or c.active_from <= now) and (c.active_to is None or now < c.active_to):
            return c
    return None


def _department_person(session: Session, unit: str, now: dt.datetime) -> Contact | None:
    """The duty person of the first department the unit names that has one reachable now."""
    codes = departments_named(unit, known_departments(session))
    if not codes:
        return None
    rows = session.execute(
        select(Duty, Contact).join(Contact, Duty.contact_id == Contact.id)
        .where(Duty.role == DutyRole.DEPARTMENT_DUTY.value, Duty.department.in_(codes))
        .order_by(Duty.id)).all()
    staffed: dict[str, Contact] = {}
    for d, c in rows:
        if d.department and d.department not in staffed and reachable(c, d, now):
            staffed[d.department] = c
    return next((staffed[code] for code in codes if code in staffed), None)


def _rule_list(run: ResponseRun) -> list[MeasureRule]:
    """The run's measures (the decision's, or its plan entry's); a malformed one is logged, not fatal."""
    out: list[MeasureRule] = []
    for raw in run.measures or []:
        try:
            out.append(MeasureRule.model_validate(raw))
        except ValidationError as exc:
            log.warning("run %s: measure %r is not a plan measure: %s", run.number, raw, exc)
    return out


# ---------------------------------------------------------------------------------------------- events


def _event(session: Session, order: MeasureOrder, action: str, actor: str, now: dt.datetime,
           payload: dict[str, Any] | None = None) -> None:
    record(session, now=now, action=f"measure.{action}", entity_type="measure_order", entity_id=order.id,
           actor=actor, payload={"run_id": order.run_id, "kind": order.kind, "label": order.label,
                                 "state": order.state, "unit": order.responsible_unit, **(payload or {})})


# ---------------------------------------------------------------------------------------------- messages


def _local_hhmm(when: dt.datetime | None, tz: dt.tzinfo) -> str:
    if when is None:
        return ""
    t = when.astimezone(tz)
    return f"{t.month}月{t.day}日{t:%H:%M}"


def send_to_person(session: Session, order: MeasureOrder, purpose: str, *, now: dt.datetime, tz: dt.tzinfo,
                   run: ResponseRun | None = None, duty_phone: str = "", actor: str = "system") -> list[int]:
    """Queue the order (or its lift order) to the responsible person on the run's channels, as callouts are.

    Returns the outbox ids; none (and an event saying so) when nobody with a number is assigned.
    """
    if not order.person_phone:
        _event(session, order, "unreachable", actor, now, {"purpose": purpose,
                                                           "why": "no responsible person with a number"})
        flag_unassigned(session, order, now=now)
        return []
    run = run or session.get(ResponseRun, order.run_id)
    level_zh = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}.get(order.level, order.level)
    hazard_zh = {"weather": "气象", "flood": "洪涝", "earthquake": "地震", "geohazard": "地质灾害",
                 "forest_fire": "森林火险"}.get(run.hazard if run else "", "")
    areas = "、".join(order.area_names or order.site_names or order.area_codes) or "相关区域"
    params = {"person": order.person_name or "责任人", "hazard": hazard_zh, "level": level_zh, "unit":
              order.responsible_unit, "areas": areas, "label": order.label, "deadline": _local_hhmm(
                  order.lift_deadline if purpose == "lift" else order.deadline, tz),
              "reason": order.lift_reason or "险情解除", "duty_phone": duty_phone or "区应急值班室"}
    kind = "measure_lift" if purpose == "lift" else "measure_order"
    params["kind"] = kind  # a template provider picks the registered template by it (voice too)
    seq = int(now.timestamp())
    ids: list[int] = []
    for channel in order.channels or ["sms"]:
        try:
            if channel == "voice":
                text = sms_text.render(kind, params, form="short", templates=SMS_TEMPLATES)
                body = sms_text.render("measure_voice", {**params, "text": text}, form="full", templates=SMS_TEMPLATES)
                template = "measure_voice"
            else:
                composed = sms_text.compose(kind, params, to=order.person_phone, templates=SMS_TEMPLATES)
                body, template = composed.body, kind
            msg = outbox.enqueue(
                session, now=now, channel=channel, to=order.person_phone, body=body, template=template,
                params=params, idempotency_key=f"measure:{order.id}:{purpose}:{channel}:{order.person_phone}:{seq}",
                subject_type="measure_order", subject_id=order.id, actor=actor)
            ids.append(msg.id)
        except (outbox.OutboxError, sms_text.SmsTemplateError) as exc:
            _event(session, order, "message_refused", actor, now, {"purpose": purpose, "channel": channel,
                                                                  "error": str(exc)})
    if ids:
        _event(session, order, f"{purpose}_sent", actor, now, {"messages": ids, "to": order.person_phone})
    return ids


def flag_unassigned(session: Session, order: MeasureOrder, *, now: dt.datetime) -> None:
    """Nobody can be told of this order: flag it to the duty officer at once (once while it stays
    so; after someone was assigned and the order lost them again, a new flag)."""
    kind = supervision.MEASURE_UNASSIGNED
    if supervision.open_flags_for(session, kind, "measure_order", order.id):
        return
    n = len(session.execute(select(SupervisionFlag.id).where(
        SupervisionFlag.kind == kind, SupervisionFlag.subject_type == "measure_order",
        SupervisionFlag.subject_id == str(order.id))).all())
    flag = supervision.raise_flag(session, key=f"{kind}:measure:{order.id}:{n + 1}", kind=kind,
                                  subject_type="measure_order", subject_id=order.id, now=now, due_at=now,
                                  detail={"run_id": order.run_id, "label": order.label,
                                          "unit": order.responsible_unit})
    if flag is None:
        return
    areas = "、".join(order.area_names or order.site_names) or "相关区域"
    notice = supervision.notify_duty_officer(
        session, kind=kind, entity_type="measure_order", entity_id=order.id, now=now,
        subject=f"措施无人可通知：{areas}“{order.label}”（{order.responsible_unit}）没有可联系的责任人，请指派",
        subject_en=f"Measure has nobody to reach: {order.kind} ({order.responsible_unit}); assign a person")
    flag.detail = {**flag.detail, "notice_id": notice.id}


def clear_unassigned(session: Session, order: MeasureOrder, *, reason: str, now: dt.datetime) -> None:
    for flag in supervision.open_flags_for(session, supervision.MEASURE_UNASSIGNED, "measure_order", order.id):
        supervision.clear_flag(session, flag, reason=reason, now=now)


# ---------------------------------------------------------------------------------------------- creating


@dataclass
class SyncResult:
    created: list[MeasureOrder] = field(default_factory=list)
    extended: list[MeasureOrder] = field(default_factory=list)
    lift_ordered: list[MeasureOrder] = field(default_factory=list)


def _base_key(key: str) -> str:
    return key.split("#", 1)[0]


def _create(session: Session, run: ResponseRun, draft: OrderDraft, key: str, names: dict[str, str],
            sites: dict[str, SiteInfo], *, actor: str, now: dt.datetime, tz: dt.tzinfo,
            send: bool = True) -> MeasureOrder:
    if draft.unit_township:
        contact = _township_chief(session, draft.unit_township, now)
    else:
        contact = _department_person(session, draft.responsible_unit, now)
    channels = list((run.entry_snapshot or {}).get("calls", {}).get("channels") or ["sms"])
    order = MeasureOrder(
        run_id=run.id, key=key, kind=draft.kind.value, label=draft.label, level=run.level,
        rule_index=draft.rule_index, area_codes=draft.area_codes,
        area_names=[names.get(c, c) for c in draft.area_codes], site_ids=draft.site_ids,
        site_names=[sites[s].name for s in draft.site_ids if s in sites], site_kinds=draft.site_kinds,
        sectors=draft.sectors, expected=draft.expected, responsible_unit=draft.responsible_unit,
        unit_kind="township" if draft.unit_township else "department", unit_area_code=draft.unit_township,
        contact_id=contact.id if contact else None, person_name=contact.name if contact else None,
        person_phone=contact.phone if contact else None, channels=channels, state=S.ORDERED.value,
        deadline=draft.deadline, ordered_at=now, ordered_by=actor, report={}, overdue=False,
        drill=bool(run.drill), created_at=now, updated_at=now,
    )
    session.add(order)
    session.flush()
    _event(session, order, "ordered", actor, now, {
        "key": key, "areas": order.area_codes, "sites": order.site_ids, "expected": order.expected,
        "deadline": order.deadline.isoformat(), "person": order.person_name, "level": order.level})
    if send:
        send_to_person(session, order, "order", now=now, tz=tz, run=run, actor=actor)
    return order


def sync_run(session: Session, run: ResponseRun, *, actor: str, now: dt.datetime,
             tz: dt.tzinfo = dt.UTC, sites: Sequence[SiteInfo] | None = None,
             reorder_lifted: bool = False) -> SyncResult:
    """Bring the run's measures in line with its state, level and areas. Idempotent.

    ``reorder_lifted``: the danger is back (the run raised or reactivated), so a measure already
    lifted is ordered again; the periodic catch-up never does that by itself.
    """
    result = SyncResult()
    existing = for_run(session, run.id)
    state = RunState(run.state)
    if state is not RunState.ACTIVE:
        reason = run.closing_reason or "响应结束"
        for order in existing:
            if S(order.state) in rules.LIFTABLE:
                order_lift(session, order, reason=f"响应收尾：{reason}", actor=actor, now=now, tz=tz, run=run)
                result.lift_ordered.append(order)
        return result
    areas = run_areas(session, run)
    site_list = list(sites) if sites is not None else load_sites(session, areas.sites, areas.villages)
    areas = replace(areas, sites=[s.id for s in site_list])
    by_id = {s.id: s for s in site_list}
    ruleset = _rule_list(run)
    drafts = rules.plan_orders(ruleset, areas, site_list, now)
    names = dict(areas.names)
    latest: dict[str, MeasureOrder] = {}
    for o in existing:
        latest[_base_key(o.key)] = o  # ordered by id: the newest wins
    for d in drafts:
        prev = latest.get(d.key)
        if prev is not None and rules.is_open(prev.state) and S(prev.state) is not S.LIFTING:
            added = sorted(set(d.area_codes) - set(prev.area_codes))
            added_sites = sorted(set(d.site_ids) - set(prev.site_ids))
            if added or added_sites:
                prev.area_codes = sorted(set(prev.area_codes) | set(added))
                prev.area_names = [names.get(c, c) for c in prev.area_codes]
                prev.site_ids = sorted(set(prev.site_ids) | set(added_sites))
                prev.site_names = [by_id[s].name for s in prev.site_ids if s in by_id]
                if d.expected is not None:
                    prev.expected = d.expected
                prev.updated_at = now
                _event(session, prev, "scope_extended", actor, now, {"added_areas": added,
                                                                     "added_sites": added_sites})
                result.extended.append(prev)
            continue
        if prev is not None and S(prev.state) is S.LIFTING:
            continue  # being lifted: a new order would contradict the lift that is out
        if prev is not None and not (reorder_lifted and S(prev.state) is S.LIFTED):
            continue  # cancelled or waived by a person, or lifted and the danger not back: not ordered again
        n = sum(1 for o in existing if _base_key(o.key) == d.key)
        key = d.key if n == 0 else f"{d.key}#{n + 1}"
        result.created.append(_create(session, run, d, key, names, by_id, actor=actor, now=now, tz=tz))
    # a downgrade or revision that no longer asks for a measure lifts it
    for o in existing:
        if S(o.state) in rules.LIFTABLE and o.rule_index is not None and not rules.still_required(
                ruleset, o.kind, o.label):
            order_lift(session, o, reason="响应调整，不再需要此措施", actor=actor, now=now, tz=tz, run=run)
            result.lift_ordered.append(o)
    return result


def create_manual(session: Session, run: ResponseRun, *, kind: str, label: str | None, area_codes: list[str],
                  site_ids: list[str], responsible_unit: str, deadline_minutes: int, actor: str, now: dt.datetime,
                  tz: dt.tzinfo = dt.UTC, sectors: list[str] | None = None, expected: int | None = None,
                  person_name: str | None = None, person_phone: str | None = None) -> MeasureOrder:
    """A measure the leader orders beyond the plan (a custom kind needs its own label)."""
    if RunState(run.state) is not RunState.ACTIVE:
        raise MeasureError(409, "run_not_active", "响应不在进行中，不能下达新措施", "the run is not active")
    try:
        k = MeasureKind(kind)
    except ValueError:
        raise MeasureError(400, "bad_kind", f"未知措施类型：{kind}", f"unknown measure kind {kind!r}") from None
    if k is MeasureKind.CUSTOM and not (label and label.strip()):
        raise MeasureError(400, "label_required", "其他措施必须填写名称", "a custom measure needs a label")
    if not area_codes and not site_ids:
        raise MeasureError(400, "scope_required", "措施必须指定区域或隐患点", "a measure needs areas or sites")
    draft = OrderDraft(rule_index=-1, kind=k, label=(label or MEASURE_ZH[k]).strip(),
                       responsible_unit=responsible_unit, unit_township=None, area_codes=sorted(set(area_codes)),
                       site_ids=sorted(set(site_ids)), site_kinds=[],
                       sectors=sectors or list(rules.DEFAULT_SECTORS.get(k, [])),
                       deadline=now + dt.timedelta(minutes=deadline_minutes), expected=expected)
    n = len(session.execute(select(MeasureOrder.id).where(MeasureOrder.run_id == run.id)).all())
    sites = {s.id: s for s in load_sites(session, draft.site_ids, [])}
    order = _create(session, run, draft, f"manual:{n + 1}", area_names(session, draft.area_codes), sites,
                    actor=actor, now=now, tz=tz, send=not person_phone)
    order.rule_index = None
    if person_phone:
        assign(session, order, name=person_name, phone=person_phone, actor=actor, now=now, tz=tz, run=run)
    return order


def assign(session: Session, order: MeasureOrder, *, actor: str, now: dt.datetime, tz: dt.tzinfo = dt.UTC,
           contact_id: int | None = None, name: str | None = None, phone: str | None = None,
           run: ResponseRun | None = None) -> MeasureOrder:
    """Name the responsible person (from the contact list, or by name and number) and send them the order."""
    if not rules.is_open(order.state):
        raise MeasureError(409, "measure_final", "措施已结束，不能再指派", "the measure has ended")
    if contact_id is not None:
        c = session.get(Contact, contact_id)
        if c is None:
            raise MeasureError(404, "not_found", f"未找到联系人：{contact_id}", f"contact not found: {contact_id}")
        order.contact_id, order.person_name, order.person_phone = c.id, c.name, c.phone
    else:
        if not phone:
            raise MeasureError(400, "person_required", "请指定联系人或填写姓名和电话",
                               "give a contact id, or a name and a phone number")
        from responses.contacts.core import PhoneError, normalize_phone

        try:
            order.person_phone = normalize_phone(phone)
        except PhoneError as exc:
            raise MeasureError(400, "bad_phone", exc.zh, exc.en) from None
        order.contact_id, order.person_name = None, name
    order.updated_at = now
    _event(session, order, "assigned", actor, now, {"person": order.person_name, "phone": order.person_phone})
    clear_unassigned(session, order, reason="assigned", now=now)
    purpose = "lift" if S(order.state) is S.LIFTING else "order"
    send_to_person(session, order, purpose, now=now, tz=tz, run=run, actor=actor)
    return order


# ---------------------------------------------------------------------------------------------- moving


def _take_report(order: MeasureOrder, figures: dict[str, Any], payload: dict[str, Any], actor: str,
                 now: dt.datetime, via: str | None) -> None:
    """A unit's figures (final or so far): kept on the order, acknowledged, and the 应转尽转 gap in the event."""
    order.report = figures
    order.reported_by = actor
    _acknowledged(order, now, via)
    payload["report"] = figures
    gap = rules.evacuation_gap(order.expected, figures) if order.kind == MeasureKind.EVACUATION else None
    if gap is not None:
        payload["gap"] = gap.as_dict()


def _acknowledged(order: MeasureOrder, now: dt.datetime, via: str | None) -> None:
    """Any word from the unit proves the order reached it: the first one is its acknowledgement."""
    if order.acknowledged_at is None:
        order.acknowledged_at, order.acknowledged_via = now, via


def _lift_acknowledged(order: MeasureOrder, now: dt.datetime, via: str | None) -> None:
    if order.lift_acknowledged_at is None:
        order.lift_acknowledged_at, order.lift_acknowledged_via = now, via


def transition(session: Session, order: MeasureOrder, action: MeasureAction | str, *, actor: str,
               now: dt.datetime, reason: str | None = None, report: dict[str, Any] | None = None,
               via: str | None = None, note: str | None = None, unit: str | None = None,
               tz: dt.tzinfo = dt.UTC, evidence: dict[str, Any] | None = None) -> MeasureOrder:
    """One named step; raises ``IllegalMeasureTransition`` / ``ReportError`` with Chinese and English text.

    ``via`` is how the unit told us (entered by the duty desk, or the reply's channel: ``keypress`` /
    ``sms_reply``); ``evidence`` (the reply as received) goes into the event with it.
    """
    act = MeasureAction(action)
    if act is A.ORDER_LIFT:
        return order_lift(session, order, reason=reason or "", actor=actor, now=now, tz=tz)
    before = order.state
    new = rules.apply(order.state, act, reason)
    payload: dict[str, Any] = {"from": before, "via": via, "note": note, **(evidence or {})}
    if act is A.CARRY_OUT:
        _take_report(order, rules.clean_report(order.kind, report or {}, order.expected), payload, actor, now, via)
        order.carried_out_at = order.carried_out_at or now
        payload["late"] = now > order.deadline
    elif act is A.REPORT_PROGRESS:
        _take_report(order, rules.clean_progress(order.kind, report or {}, order.expected, before=order.report),
                     payload, actor, now, via)
        order.started_at = order.started_at or now
    elif act is A.ACKNOWLEDGE:
        order.acknowledged_at, order.acknowledged_via = now, via
    elif act is A.START:
        order.started_at = now
        _acknowledged(order, now, via)
    elif act is A.ACKNOWLEDGE_LIFT:
        _lift_acknowledged(order, now, via)
    elif act is A.CONFIRM_LIFTED:
        _lift_acknowledged(order, now, via)
        order.lifted_at = now
        order.ended_at = now
        if report:
            order.report = {**order.report, "lift": {k: v for k, v in report.items() if k == "note"}}
    elif act in (A.REJECT, A.CANCEL, A.WAIVE):
        order.reason = reason
        if act is not A.REJECT:
            order.ended_at = now
    elif act is A.REASSIGN:
        if not unit:
            raise MeasureError(400, "unit_required", "改派必须指定新的责任单位", "reassigning needs a new unit")
        payload["unit_before"] = order.responsible_unit
        order.responsible_unit, order.reason = unit, reason
        order.contact_id = order.person_name = order.person_phone = None
    order.state = new.value
    order.updated_at = now
    _event(session, order, act.value, actor, now, {**payload, "reason": reason})
    if act is A.REASSIGN:
        _reach_new_unit(session, order, actor=actor, now=now, tz=tz)
    if S(order.state) in rules.FINAL:
        clear_unassigned(session, order, reason=f"measure {order.state}", now=now)
    return order


def _reach_new_unit(session: Session, order: MeasureOrder, *, actor: str, now: dt.datetime, tz: dt.tzinfo) -> None:
    """A reassigned order goes to the new unit's duty person at once; with none it is flagged."""
    person = _department_person(session, order.responsible_unit, now)
    if person is not None:
        order.unit_kind, order.unit_area_code = "department", None
        order.contact_id, order.person_name, order.person_phone = person.id, person.name, person.phone
        _event(session, order, "assigned", actor, now, {"person": person.name, "phone": person.phone,
                                                        "by": "department_duty"})
        clear_unassigned(session, order, reason="assigned", now=now)
    send_to_person(session, order, "order", now=now, tz=tz, actor=actor)


def order_lift(session: Session, order: MeasureOrder, *, reason: str, actor: str, now: dt.datetime,
               tz: dt.tzinfo = dt.UTC, run: ResponseRun | None = None) -> MeasureOrder:
    """Send the lift order: recorded on the measure, in the event log, and queued to the person."""
    if S(order.state) is S.LIFTING:
        return order  # already out; idempotent for the sync
    new = rules.apply(order.state, A.ORDER_LIFT, reason)
    order.state_before_lift = order.state
    order.state = new.value
    order.lift_ordered_at, order.lift_ordered_by, order.lift_reason = now, actor, reason
    run = run or session.get(ResponseRun, order.run_id)
    minutes = DEFAULT_LIFT_MINUTES
    if run is not None and order.rule_index is not None and order.rule_index >= 0:
        try:
            minutes = int((run.measures or [])[order.rule_index].get("deadline_minutes") or minutes)
        except (IndexError, AttributeError, TypeError, ValueError):
            minutes = DEFAULT_LIFT_MINUTES
    order.lift_deadline = now + dt.timedelta(minutes=minutes)
    order.updated_at = now
    _event(session, order, "lift_ordered", actor, now, {"reason": reason, "from": order.state_before_lift,
                                                        "lift_deadline": order.lift_deadline.isoformat()})
    send_to_person(session, order, "lift", now=now, tz=tz, run=run, actor=actor)
    return order


# ---------------------------------------------------------------------------------------------- replies

SUBJECT = "measure_order"


def _orders_for_number(session: Session, number: str, pointed: int | None) -> list[MeasureOrder]:
    """The open orders sent to this number, and the one the reply's message was about (whatever its state)."""
    cond = (MeasureOrder.person_phone == number) & MeasureOrder.state.in_([st.value for st in rules.OPEN])
    if pointed is not None:
        cond = cond | (MeasureOrder.id == pointed)
    q = select(MeasureOrder).where(cond).order_by(MeasureOrder.id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    return list(session.execute(q).scalars())


def _awaiting(session: Session, orders: Sequence[MeasureOrder], number: str) -> list[OrderAwaiting]:
    """Each order as the reply rule sees it: did its message (and its lift order's) leave for this number?"""
    left: dict[str, list[dt.datetime]] = {}
    ids = [str(o.id) for o in orders]
    if ids:
        for sid, created in session.execute(
                select(OutboxMessage.subject_id, OutboxMessage.created_at)
                .where(OutboxMessage.subject_type == SUBJECT, OutboxMessage.subject_id.in_(ids),
                       OutboxMessage.to_number == number, OutboxMessage.sent_at.is_not(None))).all():
            left.setdefault(str(sid), []).append(created)
    out = []
    for o in orders:
        sent = left.get(str(o.id), [])
        lift_sent = o.lift_ordered_at is not None and any(t >= o.lift_ordered_at for t in sent)
        out.append(OrderAwaiting(o.id, o.kind, S(o.state), reached=bool(sent), lift_reached=lift_sent,
                                 lift_acknowledged=o.lift_acknowledged_at is not None,
                                 mine=o.person_phone == number))
    return out


def handle_inbound(session: Session, answer: Any) -> None:
    """Answer handler for the webhook layer (an ``InboundAnswer``): a keypress or SMS reply answers the
    person's callouts and measure orders by the rule in ``measures.route_reply``; the callout part is
    the callout layer's own handler, so its answers are recorded exactly as before."""
    keypress = answer.kind == "keypress"
    parsed = parse_keypress(answer.text) if keypress else parse_reply(answer.text)
    if parsed is None:
        return
    sid = answer.subject_id or ""
    pointed = int(sid) if answer.subject_type == SUBJECT and sid.isdigit() else None
    if keypress and pointed is None:
        callout_answers.handle_inbound(session, answer)
        return
    number: str = answer.from_number
    orders = _orders_for_number(session, number, pointed)
    route = rules.route_reply(
        keypress=keypress, parsed=parsed, pointed_order=pointed,
        pointed_callout=answer.subject_type == callout_service.SUBJECT,
        callout_waiting=not keypress and callout_answers.has_unanswered(session, number),
        orders=_awaiting(session, orders, number))
    if route.to_callout:
        callout_answers.handle_inbound(session, answer)
    channel = AnswerChannel.KEYPRESS if keypress else AnswerChannel.SMS_REPLY
    now: dt.datetime = answer.received_at
    actor = f"phone:{number}"
    evidence = {"channel": channel.value, "kind": parsed.kind.value, "raw": (answer.text or "")[:200],
                "from_number": number, "inbound_id": answer.inbound_id}
    for o in orders:
        for act in route.steps.get(o.id, ()):
            transition(session, o, act, actor=actor, now=now, via=channel.value, evidence=evidence,
                       report=route.progress if act is A.REPORT_PROGRESS else None)
        if o.id in route.noted:
            _event(session, o, "replied", actor, now, evidence)


# ---------------------------------------------------------------------------------------------- overdue


def sweep_overdue(session: Session, now: dt.datetime, *, limit: int = 500) -> list[MeasureOrder]:
    """Flag measures past their deadline (and lift orders past theirs), once each, with a notice to the
    leader on duty. Safe to run twice: ``overdue_at`` / ``lift_overdue_at`` say it was done."""
    from responses.runs import supervision
    from responses.runs.models import SupervisionFlag

    pending = [s.value for s in rules.PENDING]
    late = list(session.execute(
        select(MeasureOrder).where(MeasureOrder.state.in_(pending), MeasureOrder.overdue_at.is_(None),
                                   MeasureOrder.deadline <= now)
        .order_by(MeasureOrder.deadline, MeasureOrder.id).limit(limit).with_for_update()).scalars())
    late_lift = list(session.execute(
        select(MeasureOrder).where(MeasureOrder.state == S.LIFTING.value, MeasureOrder.lift_overdue_at.is_(None),
                                   MeasureOrder.lift_deadline <= now)
        .order_by(MeasureOrder.lift_deadline, MeasureOrder.id).limit(limit).with_for_update()).scalars())
    flagged: list[MeasureOrder] = []
    for o, lift in [(o, False) for o in late] + [(o, True) for o in late_lift]:
        if lift:
            o.lift_overdue_at = now
        else:
            o.overdue, o.overdue_at = True, now
        o.updated_at = now
        kind = "measure_lift_overdue" if lift else "measure_overdue"
        due = o.lift_deadline if lift else o.deadline
        _event(session, o, "lift_overdue" if lift else "overdue", "rule:measure_deadline", now,
               {"deadline": due.isoformat() if due else None})
        key = f"{kind}:measure:{o.id}"
        if not session.execute(select(SupervisionFlag.id).where(SupervisionFlag.key == key)).first():
            flag = SupervisionFlag(key=key, kind=kind, subject_type="measure_order", subject_id=str(o.id),
                                   due_at=due, raised_at=now, detail={"run_id": o.run_id, "label": o.label,
                                                                      "unit": o.responsible_unit})
            session.add(flag)
            session.flush()
            record(session, now=now, action=f"supervision.{kind}_flagged", entity_type="supervision_flag",
                   entity_id=flag.id, actor="rule:measure_deadline", payload={"key": key, "measure_id": o.id})
        what = "解除令" if lift else "措施"
        areas = "、".join(o.area_names or o.site_names) or "相关区域"
        supervision.notify_leader_on_duty(
            session, kind=kind, subject=f"{what}超时未落实：{areas}“{o.label}”（{o.responsible_unit}）",
            subject_en=f"{'Lift order' if lift else 'Measure'} overdue: {o.kind} ({o.responsible_unit})",
            entity_type="measure_order", entity_id=o.id, now=now)
        flagged.append(o)
    return flagged


def clear_overdue_flags(session: Session, order: MeasureOrder, *, reason: str, now: dt.datetime) -> None:
    from responses.runs.models import SupervisionFlag

    for kind in ("measure_overdue", "measure_lift_overdue"):
        flag = session.execute(select(SupervisionFlag).where(
            SupervisionFlag.key == f"{kind}:measure:{order.id}", SupervisionFlag.cleared_at.is_(None))
        ).scalar_one_or_none()
        if flag is not None:
            flag.cleared_at, flag.cleared_reason = now, reason
            record(session, now=now, action=f"supervision.{kind}_cleared", entity_type="supervision_flag",
                   entity_id=flag.id, actor="rule:measure_deadline", payload={"key": flag.key, "reason": reason})


def view(order: MeasureOrder, now: dt.datetime) -> dict[str, Any]:
    """The order as the console shows it, with the 应转尽转 gap and whether it is late right now."""
    gap = rules.evacuation_gap(order.expected, order.report) if order.kind == MeasureKind.EVACUATION.value else None
    return {
        "id": order.id, "run_id": order.run_id, "kind": order.kind, "label": order.label, "level": order.level,
        "state": order.state, "state_zh": rules.STATE_ZH[S(order.state)],
        "allowed_actions": [a.value for a in rules.allowed_actions(order.state)],
        "area_codes": order.area_codes, "area_names": order.area_names, "site_ids": order.site_ids,
        "site_names": order.site_names, "site_kinds": order.site_kinds, "sectors": order.sectors,
        "expected": order.expected, "responsible_unit": order.responsible_unit, "unit_kind": order.unit_kind,
        "person_name": order.person_name, "person_phone": order.person_phone, "channels": order.channels,
        "deadline": order.deadline, "ordered_at": order.ordered_at, "acknowledged_at": order.acknowledged_at,
        "acknowledged_via": order.acknowledged_via, "lift_acknowledged_via": order.lift_acknowledged_via,
        "started_at": order.started_at, "carried_out_at": order.carried_out_at, "report": order.report,
        "gap": gap.as_dict() if gap and order.report else None,
        "overdue": order.overdue or rules.is_overdue(order.state, order.deadline, now),
        "overdue_at": order.overdue_at, "reason": order.reason,
        "lift_ordered_at": order.lift_ordered_at, "lift_reason": order.lift_reason,
        "lift_deadline": order.lift_deadline, "lift_acknowledged_at": order.lift_acknowledged_at,
        "lifted_at": order.lifted_at, "lift_overdue": order.lift_overdue_at is not None or rules.is_lift_overdue(
            order.state, order.lift_deadline, now),
        "ended_at": order.ended_at, "drill": order.drill,
    }


# ---------------------------------------------------------------------------------------------- notices

AUTHORITY_OF_HAZARD = {
    "flood": "防汛抗旱指挥部",
    "forest_fire": "森林防灭火指挥部",
    "geohazard": "地质灾害防治指挥部",
    "earthquake": "抗震救灾指挥部",
    "weather": "突发事件应急指挥部",
}


def notice_text(session: Session, order: MeasureOrder, which: str, *, now: dt.datetime, tz: ZoneInfo) -> str:
    """The public notice for the order (``order``) or its lifting (``lift``), rendered from the run's data."""
    from responses.measures.notices import NoticeData, NoticeError, render_notice
    from warning.draft import HAZARD_ZH, Hazard, Level
    from warning.models import Warning

    run = session.get(ResponseRun, order.run_id)
    if run is None:
        raise MeasureError(404, "not_found", "未找到响应", "run not found")
    if which == "lift" and not order.lift_ordered_at:
        raise MeasureError(409, "no_lift_order", "该措施尚未下达解除令", "no lift order has been given for it")
    warning = session.get(Warning, run.warning_id)
    district = session.execute(select(Area.name).where(Area.level == "district", Area.context.is_(False))
                               .order_by(Area.id).limit(1)).scalar_one_or_none() or ""
    hazard_zh = HAZARD_ZH[Hazard(run.hazard)] if run.hazard in Hazard._value2member_map_ else run.hazard
    data = NoticeData(
        kind=MeasureKind(order.kind), label=order.label,
        authority=f"{district}{AUTHORITY_OF_HAZARD.get(run.hazard, '突发事件应急指挥部')}",
        plan_title=str((run.plan_snapshot or {}).get("title") or "应急预案"), unit=order.responsible_unit,
        area_names=list(order.area_names), site_names=list(order.site_names),
        issued_at=(order.lift_ordered_at if which == "lift" else order.ordered_at) or now,
        deadline=(order.lift_deadline if which == "lift" else order.deadline) or order.deadline, tz=tz,
        hazard_zh=(warning.event if warning and warning.event else hazard_zh),
        level_zh=Level(order.level).zh if order.level in Level._value2member_map_ else "",
        warning_headline=(warning.headline or "") if warning else "", expected=order.expected,
        lift_reason=order.lift_reason or "",
    )
    try:
        return render_notice(data, which)
    except NoticeError as exc:
        raise MeasureError(422, "notice_incomplete", exc.zh, exc.en) from None
