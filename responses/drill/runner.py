"""Runs a drill scenario end to end on a virtual clock, then builds its audit report.

The runner plays the *people* of the scenario — the source that sends the feeds, the departments
that judge, the leader who decides and later closes the run, the responsible people who answer and
carry out measures, the duty officers who write the duty log and sign and acknowledge the handover at a
change of shift — and lets the *system* do everything else through its own scheduled jobs, handed
in by the caller (the composition root knows them; this module does not). The clock jumps from one
due moment to the next: the scenario's own times, and the deadlines the system keeps in its tables
(callout next actions, consultation deadlines, measure and report deadlines, outbox retries, warning
expiry), with a bounded step as a safety net. Six virtual hours take seconds, and the same scenario
on a fresh database gives the same report every time.

Nothing leaves: the Twilio settings of the runtime are cleared and the only notifier is the drill's
in-process fake. Every warning the drill feeds in is marked ``exercise``, so every record it causes
carries the drill flag.

A drill whose warning starts no response (expired before it was injected, drawn outside the region,
or at a plan level that waits for a decision nobody takes) is a finding, not a failure: the report
covers every warning thread the drill fed and says why nothing started.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from config.settings import AliyunSettings, MessagingSettings, TwilioSettings
from config.users import find_department
from responses.audit.builder import build_report
from responses.audit.findings import Finding, expired_on_arrival, input_without_warning
from responses.audit.render import write_report
from responses.drill.notifier import drill_notifier
from responses.drill.scenario import AnswerRule, LoadedScenario, Scenario
from responses.messaging.notifiers.fake import FakeNotifier

Job = Callable[[Runtime], object]
Progress = Callable[[dt.datetime, str], None]

ACTOR = "drill"
DUTY_OFFICER = "user:drill-duty-officer"
LEADER = "user:drill-leader"
DRILL_OFFICER = "演练值班员"  # the default shift's duty officer, so a drill's roster has no gap of its own
CHANNELS = {"keypress": "keypress", "sms": "sms_reply", "web": "web", "phone": "duty_officer"}
OPEN_MEASURES = ("ordered", "acknowledged", "in_progress")


class DrillError(Exception):
    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en
        super().__init__(f"{zh} / {en}")


@dataclass(frozen=True)
class ExpiredInput:
    """A warning the scenario injects after its own ``expires``: the system stores it as expired and
    starts nothing, which is rarely what the author of the scenario meant, so the CLI says so."""

    file: str
    identifier: str
    headline: str | None
    expires: dt.datetime
    injected_at: dt.datetime

    def text(self, tz: dt.tzinfo) -> tuple[str, str]:
        """(Chinese, English), times in the display zone."""
        exp, inj = self.expires.astimezone(tz), self.injected_at.astimezone(tz)
        name = f"「{self.headline}」" if self.headline else self.identifier
        return (f"输入 {self.file} 的预警{name}在注入时（{inj:%Y-%m-%d %H:%M}）已过期"
                f"（失效时间 {exp:%Y-%m-%d %H:%M}），系统按已过期处理，不会启动响应",
                f"the warning {self.identifier} in {self.file} had already expired ({exp:%Y-%m-%d %H:%M}) when it "
                f"was injected ({inj:%Y-%m-%d %H:%M}); it is stored as expired and starts no response")


@dataclass
class DrillResult:
    report: dict[str, Any]
    paths: dict[str, Path]
    steps: int
    elapsed_s: float
    notifier: FakeNotifier
    log: list[tuple[str, str]] = field(default_factory=list)  # (ISO time, what happened)
    expired_inputs: list[ExpiredInput] = field(default_factory=list)

    @property
    def messages_sent(self) -> int:
        return len(self.notifier.sent)


# ---------------------------------------------------------------------------------------------- set-up


def make_safe(rt: Runtime, scenario: Scenario) -> FakeNotifier:
    """Cut the runtime off from every real provider and install the drill's fake one."""
    from responses.callouts import service as callout_service
    from responses.messaging import outbox
    from responses.messaging.sender import Sender, SenderConfig

    # every provider's credentials go, and the channel choice with them: nothing here can reach a phone
    rt.settings = rt.settings.model_copy(update={"twilio": TwilioSettings(), "aliyun": AliyunSettings(),
                                                 "messaging": MessagingSettings()})
    old = rt.state.pop("messaging_sender", None)
    if old is not None:
        old.close()
    faults = scenario.behaviour.provider_faults
    notifier = drill_notifier(faults.rate if faults else 0.0, salt=scenario.name)
    rt.state["messaging_notifiers"] = {"twilio": notifier, "aliyun": notifier, "fake": notifier, "drill": notifier}
    # One worker and a fixed seed: the order of sends and the retry back-off are the same on every run.
    rt.state["messaging_sender"] = Sender(rt.session_factory, rt.state["messaging_notifiers"], clock=rt.clock,
                                          config=SenderConfig(concurrency=1, public_base_url=None),
                                          worker_id="drill", seed=0, on_accepted=outbox.accepted_hooks_of(rt.state))
    callout_service.install(rt.state)  # acceptances (at virtual times, so deterministic) start answer windows
    return notifier


def prepare(session: Session, loaded: LoadedScenario, *, now: dt.datetime, tz: dt.tzinfo) -> None:
    """The people of the drill: its contacts (or the region's demo list) and its roster — the scenario's, or
    else one shift with a leader on duty covering the whole drill."""
    from responses.contacts import service as contacts_service
    from responses.contacts.models import Contact, Duty
    from responses.contacts.roster import Person, ShiftSpec
    from responses.contacts.roster_service import on_duty, upsert_shift

    s = loaded.scenario
    if s.plans:
        install_plans(session, loaded.resolve(s.plans), now=now)
    if s.contacts:
        path = loaded.resolve(s.contacts)
        report = contacts_service.import_contacts(session, data=path.read_bytes(), filename=path.name, actor=ACTOR,
                                                  now=now, tz=tz, skip_invalid=False)
        if getattr(report, "status", "applied") == "rejected":
            raise DrillError(f"联系人文件 {s.contacts} 有错误：{report.errors[:3]}",
                             f"contacts file {s.contacts} has errors: {report.errors[:3]}")
    else:
        contacts_service.seed_demo_contacts(session, now=now, tz=tz)
    for shift in s.roster:  # the scenario's own roster, as it would be imported
        upsert_shift(session, ShiftSpec(
            starts_at=shift.start, ends_at=shift.end, label=shift.label,
            leader=Person(shift.leader.name, shift.leader.phone) if shift.leader else None,
            officers=[Person(p.name, p.phone) for p in shift.officers]), roster_id=None, actor=ACTOR, now=now)
    if not s.roster and on_duty(session, now).leader is None:
        leader = session.execute(
            select(Contact).join(Duty, Duty.contact_id == Contact.id).where(Duty.role == "district_leader")
            .order_by(Contact.id).limit(1)).scalar_one_or_none()
        if leader is not None:
            upsert_shift(session, ShiftSpec(starts_at=now - dt.timedelta(hours=1), ends_at=s.end + dt.timedelta(days=1),
                                            leader=Person(leader.name, leader.phone), label="演练值班",
                                            officers=[Person(DRILL_OFFICER)]),
                         roster_id=None, actor=ACTOR, now=now)


def install_plans(session: Session, directory: Path, *, now: dt.datetime) -> list[str]:
    """The scenario's own plans, stored as the plans in force (an admin's edit would be stored the same way),
    so a run started in the drill snapshots them exactly as a real run snapshots an edited plan. Hazards the
    folder leaves out keep the bundled plan. A plan with errors stops the drill before anything runs."""
    from responses.runs.plans import load_dir
    from responses.runs.service import save_plan_document

    found = load_dir(directory, require_all=False)
    if found.errors or not found.plans:
        errors = "; ".join(str(e) for e in found.errors[:5])
        raise DrillError(f"预案目录 {directory.name} 无法使用：{errors or '没有预案文件'}",
                         f"plans folder {directory.name} cannot be used: {errors or 'no plan files'}")
    stored = []
    for hazard, source in sorted(found.sources.items(), key=lambda kv: kv[0].value):
        path = Path(source)
        fmt = path.suffix.lstrip(".").lower()
        _doc, errors = save_plan_document(session, hazard=hazard.value, source=path.read_text(encoding="utf-8"),
                                          fmt="yaml" if fmt == "yml" else fmt, note=f"演练预案 {path.name}",
                                          actor=ACTOR, now=now)
        if errors:
            raise DrillError(f"预案 {path.name} 无法使用：{errors[0]['message']}",
                             f"plan {path.name} cannot be used: {errors[0]['message_en']}")
        stored.append(hazard.value)
    return stored


def _drill_feed(session: Session, fmt: str, now: dt.datetime) -> Any:
    from warning.models import Feed

    name = f"drill-{fmt}"
    feed = session.execute(select(Feed).where(Feed.name == name)).scalar_one_or_none()
    if feed is None:
        feed = Feed(name=name, title=f"演练输入（{fmt}）/ drill input", adapter=fmt, url=None, poll_seconds=0,
                    enabled=False, source="config", created_at=now, updated_at=now)
        session.add(feed)
        session.flush()
    return feed


def _exercise_parser(fmt: str) -> Callable[[bytes, Any], Any]:
    """The format's parser, with every warning it yields marked as an exercise (CAP ``status=Exercise``)."""
    from warning.draft import Status
    from warning.feeds import get_parser

    base = get_parser(fmt)

    def parse(body: bytes, ctx: Any) -> Any:
        result = base(body, ctx)
        result.warnings = [dataclasses.replace(w, status=Status.EXERCISE) for w in result.warnings]
        return result

    return parse


# ---------------------------------------------------------------------------------------------- the people


class Players:
    """The simulated people. Each action happens once, at or after its due time; ``next_due`` says when."""

    def __init__(self, loaded: LoadedScenario, rt: Runtime) -> None:
        self.loaded = loaded
        self.s = loaded.scenario
        self.rt = rt
        self.fed: set[int] = set()
        self.given_up: set[tuple[str, int, str]] = set()  # actions the system refused: tried once, logged once
        self.log: list[tuple[str, str]] = []
        self.rules: dict[int, AnswerRule | None] = {}  # callout id → the scenario rule its person follows
        self.places: dict[int, list[str]] = {}  # contact id → the areas of their duties
        self.dept_codes: dict[str, str] = {}  # department as the scenario names it → its code
        self.expired_inputs: list[ExpiredInput] = []
        self.input_findings: list[Finding] = []  # inputs that produced no warning at all
        self.logged: set[int] = set()  # duty log entries written

    def note(self, now: dt.datetime, text: str) -> None:
        self.log.append((now.astimezone(self.rt.settings.tz).isoformat(timespec="seconds"), text))

    # -- what is due, and when the next thing will be
    def act(self, now: dt.datetime) -> list[dt.datetime]:
        """Do everything due at ``now``; return the future moments something will be due."""
        upcoming: list[dt.datetime] = []
        for i, ev in enumerate(self.s.events):
            at = self.s.start + ev.at
            if i in self.fed:
                continue
            if at <= now:
                self._feed(i, now)
                self.fed.add(i)
            else:
                upcoming.append(at)
        for i, entry in enumerate(self.s.duty_log):
            at = self.s.start + entry.at
            if i in self.logged:
                continue
            if at <= now:
                self._write_log(i, now)
                self.logged.add(i)
            else:
                upcoming.append(at)
        for step in (self._judgements, self._decisions, self._answers, self._measures, self._close_runs,
                     self._handovers):
            with session_scope(self.rt.session_factory) as session:
                upcoming += step(session, now)
        return upcoming

    def _feed(self, i: int, now: dt.datetime) -> None:
        from warning.changes import listeners_of
        from warning.models import Warning
        from warning.service import ingest_payload

        ev = self.s.events[i]
        if ev.manual is not None:
            self._enter_manual(i, now)
            return
        assert ev.feed is not None
        body = self.loaded.resolve(ev.feed.file).read_bytes()
        with session_scope(self.rt.session_factory) as session:
            feed = _drill_feed(session, ev.feed.format, now)
            out = ingest_payload(session, feed=feed, body=body, content_type=None, now=now,
                                 source_url=f"drill:{ev.feed.file}", listeners=listeners_of(self.rt.state),
                                 parser=_exercise_parser(ev.feed.format))
            for wid in out.created:
                w = session.get(Warning, wid)
                if w is not None and w.expires is not None and expired_on_arrival(w):
                    self.expired_inputs.append(ExpiredInput(ev.feed.file, w.identifier, w.headline,
                                                            _aware(w.expires), now))
        self.note(now, f"输入 {ev.feed.file}：{out.state}，新预警 {out.created}")
        if not (out.created or out.duplicates or out.held or out.duplicate_payload):
            # refused, or nothing in it was a warning (a repeated payload is reported by its first copy)
            skipped = "; ".join(str(x.get("reason")) for x in out.skipped if x.get("reason"))
            self.input_findings.append(input_without_warning(file=ev.feed.file, at=now, state=out.state,
                                                             reason=out.reason or skipped or None,
                                                             tz=self.rt.settings.tz))

    def _enter_manual(self, i: int, now: dt.datetime) -> None:
        """The officer on duty types in a warning phoned in (as ``POST /warnings/manual`` does), as an exercise."""
        from warning.changes import listeners_of
        from warning.schemas import ManualWarningIn
        from warning.service import enter_manual

        ev = self.s.events[i]
        assert ev.manual is not None
        data = ManualWarningIn.model_validate_json(self.loaded.resolve(ev.manual.file).read_bytes())
        data = data.model_copy(update={"status": "exercise"})
        try:
            with session_scope(self.rt.session_factory) as session:
                _outcome, w = enter_manual(session, data, username="drill-duty-officer", now=now,
                                           listeners=listeners_of(self.rt.state))
                created = w.id
        except (LookupError, ValueError) as exc:  # e.g. an area the region cannot place: a finding, not a crash
            self.note(now, f"人工录入 {ev.manual.file} 未能保存：{exc}")
            self.input_findings.append(input_without_warning(file=ev.manual.file, at=now, state="rejected",
                                                             reason=str(exc), tz=self.rt.settings.tz))
            return
        self.note(now, f"人工录入 {ev.manual.file}（{data.channel}，{data.received_from}）：预警 {created}")

    def _judgements(self, session: Session, now: dt.datetime) -> list[dt.datetime]:
        from warning.consultation import service as cs
        from warning.consultation.models import Consultation, Judgement

        upcoming: list[dt.datetime] = []
        rules = self.s.behaviour.judgements
        if not rules:
            return upcoming
        open_ = session.execute(select(Consultation).where(Consultation.drill.is_(True),
                                                           Consultation.closed_at.is_(None),
                                                           Consultation.dismissed_at.is_(None))
                                .order_by(Consultation.id)).scalars().all()
        for c in open_:
            done = set(session.execute(select(Judgement.department)
                                       .where(Judgement.consultation_id == c.id)).scalars())
            for rule in rules:
                if rule.department not in self.dept_codes:  # departments do not change during a drill
                    dept = find_department(session, rule.department)
                    self.dept_codes[rule.department] = dept.code if dept else rule.department
                code = self.dept_codes[rule.department]
                if code not in (c.invited or []) or code in done:
                    continue
                due = c.opened_at + rule.after
                if due > now:
                    upcoming.append(due)
                    continue
                if ("judge", c.id, code) in self.given_up:
                    continue
                try:
                    cs.record_judgement(session, c.id, cs.JudgementInput(
                        department=code, assessed_level=rule.level, trend="steady", confidence="high",
                        text="演练模拟研判 / simulated judgement"), actor=f"user:drill-{code}", now=now)
                    self.note(now, f"{rule.department} 研判：{rule.level}")
                except Exception as exc:  # e.g. the consultation was decided meanwhile: the drill records it
                    self.given_up.add(("judge", c.id, code))
                    self.note(now, f"{rule.department} 研判未能记录：{exc}")
                done.add(code)
        return upcoming

    def _decisions(self, session: Session, now: dt.datetime) -> list[dt.datetime]:
        from warning.consultation import service as cs
        from warning.consultation.models import Consultation

        rule = self.s.behaviour.decision
        if rule is None:
            return []
        upcoming: list[dt.datetime] = []
        pending = session.execute(select(Consultation).where(Consultation.drill.is_(True),
                                                             Consultation.decided_at.is_(None),
                                                             Consultation.closed_at.is_(None),
                                                             Consultation.dismissed_at.is_(None))
                                  .order_by(Consultation.id)).scalars().all()
        for c in pending:
            due = c.opened_at + rule.after
            if due > now:
                upcoming.append(due)
                continue
            if ("decide", c.id, "") in self.given_up:
                continue
            try:
                cs.decide(session, c.id, cs.DecisionInput(final_level=rule.level, reason="演练模拟决策"),
                          actor=LEADER, now=now, listeners=cs.decision_listeners_of(self.rt.state))
                self.note(now, f"带班领导决策：{rule.level}")
            except Exception as exc:
                self.given_up.add(("decide", c.id, ""))
                self.note(now, f"决策未能记录：{exc}")
        return upcoming

    def _answers(self, session: Session, now: dt.datetime) -> list[dt.datetime]:
        from responses.callouts.answers import record_answer
        from responses.callouts.core import AnswerChannel, AnswerKind
        from responses.callouts.models import Callout

        upcoming: list[dt.datetime] = []
        if not self.s.behaviour.answers:
            return upcoming
        # Plain columns, not entities: this runs twice a step over every waiting callout, and a person's
        # rule never changes during a drill (so it is worked out once per callout).
        waiting = session.execute(select(Callout.id, Callout.started_at, Callout.contact_id, Callout.areas,
                                         Callout.role, Callout.numbers, Callout.reason)
                                  .where(Callout.drill.is_(True), Callout.answered_at.is_(None),
                                         Callout.state != "cancelled")
                                  .order_by(Callout.id)).tuples().all()
        self._load_places(session, {row[2] for row in waiting if row[2] is not None})
        for cid, started_at, contact_id, areas, role, numbers, reason in waiting:
            if cid not in self.rules:
                places = self.places.get(contact_id, []) if contact_id is not None else []
                self.rules[cid] = self.s.behaviour.answer_rule(areas=places or list(areas or []), role=role,
                                                               phone=(numbers or [None])[0],
                                                               call="escalation" if reason == "escalation" else "plan")
            rule = self.rules[cid]
            if rule is None or rule.after is None:
                continue
            due = _aware(started_at) + rule.after
            if due > now:
                upcoming.append(due)
                continue
            c = session.get(Callout, cid)
            if c is None:
                continue
            if c.attempts and all(a.status in ("failed", "expired") for a in c.attempts):
                continue  # nothing reached them yet; they answer once a try gets through
            record_answer(session, c, now=now, channel=AnswerChannel(CHANNELS[rule.channel]),
                          kind=AnswerKind.RECEIVED,
                          entered_by=DUTY_OFFICER if rule.channel == "phone" else f"person:{c.contact_id}",
                          note="演练模拟应答 / simulated answer")
            self.note(now, f"{c.name} 应答（{rule.channel}）")
        return upcoming

    def _load_places(self, session: Session, contact_ids: set[int]) -> None:
        """The areas each contact answers for (their duties), read once per contact."""
        from responses.contacts.models import Duty

        todo = sorted(contact_ids - self.places.keys())
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            for cid in chunk:
                self.places.setdefault(cid, [])
            for contact_id, place in session.execute(select(Duty.contact_id, Duty.place)
                                                     .where(Duty.contact_id.in_(chunk)).order_by(Duty.id)).tuples():
                self.places[contact_id].append(place)

    def _measures(self, session: Session, now: dt.datetime) -> list[dt.datetime]:
        from responses.measures import service as measure_service
        from responses.measures.models import MeasureOrder

        behaviour = self.s.behaviour
        if behaviour.measures is None and not behaviour.measure_rules:
            return []
        upcoming: list[dt.datetime] = []
        orders = session.execute(select(MeasureOrder).where(MeasureOrder.drill.is_(True),
                                                            MeasureOrder.ended_at.is_(None))
                                 .order_by(MeasureOrder.id)).scalars().all()
        for m in orders:
            if m.state in OPEN_MEASURES:
                action, since = "carry_out", m.ordered_at
            elif m.state == "lifting" and m.lift_ordered_at is not None:
                action, since = "confirm_lifted", m.lift_ordered_at
            else:
                continue
            after = behaviour.measure_after(kind=m.kind, areas=list(m.area_codes or []),
                                            lifting=action == "confirm_lifted")
            if after is None:
                continue
            due = since + after
            if due > now:
                upcoming.append(due)
                continue
            if (action, m.id, m.state) in self.given_up:
                continue
            try:
                measure_service.transition(session, m, action, actor=f"user:drill-{m.unit_kind}", now=now,
                                           report=_measure_report(m) if action == "carry_out" else None,
                                           tz=self.rt.settings.tz)
                self.note(now, f"措施 {m.label}：{action}")
            except Exception as exc:
                self.given_up.add((action, m.id, m.state))
                self.note(now, f"措施 {m.label} 未能{action}：{exc}")
        return upcoming

    def _close_runs(self, session: Session, now: dt.datetime) -> list[dt.datetime]:
        """The leader closes a run once it is closing and every measure is lifted or waived."""
        from responses.measures import service as measure_service
        from responses.runs import service
        from responses.runs.models import ResponseRun

        for run in session.execute(select(ResponseRun).where(ResponseRun.drill.is_(True),
                                                             ResponseRun.state == "closing")).scalars().all():
            try:
                measure_service.close_guard(session, run)
            except Exception:
                continue
            service.close_run(session, run, actor=LEADER, now=now, note="演练：措施均已解除")
            self.note(now, f"响应 {run.number} 结束")
        return []


    def _write_log(self, i: int, now: dt.datetime) -> None:
        """The officer on duty writes the scenario's entry (an officer of the shift, else its leader)."""
        from responses.contacts.roster_service import on_duty
        from responses.duty import service as duty_service

        entry = self.s.duty_log[i]
        with session_scope(self.rt.session_factory) as session:
            duty = on_duty(session, now)
            who = duty.officers[0].name if duty.officers else (duty.leader.name if duty.leader else "值班员")
            duty_service.write_entry(session, kind=entry.kind, text=entry.text, from_name=entry.from_name,
                                     from_unit=entry.from_unit, from_phone=entry.from_phone,
                                     for_handover=entry.for_handover, actor=DUTY_OFFICER, author_name=who, now=now)
        self.note(now, f"值班日志（{who}）：{entry.text}")

    def _handovers(self, session: Session, now: dt.datetime) -> list[dt.datetime]:
        """The outgoing officer signs before the shift ends (drafting it if the scheduler has not yet); the
        incoming one acknowledges after the next shift begins."""
        from responses.contacts.models import Shift
        from responses.duty import handovers
        from responses.duty.service import next_shift, people

        rule = self.s.behaviour.handover
        if rule is None:
            return []
        upcoming: list[dt.datetime] = []
        tz = self.rt.settings.tz
        ending = select(Shift).where(Shift.ends_at > self.s.start).order_by(Shift.starts_at, Shift.id)
        for shift in session.execute(ending).scalars().all():  # shifts that end during (or after) the drill
            h = handovers.for_shift(session, shift.id)
            if rule.sign_before_end is not None and (h is None or h.state == "draft"):
                due = _aware(shift.ends_at) - rule.sign_before_end
                if due > now:
                    upcoming.append(due)
                elif ("sign", shift.id, "") not in self.given_up:
                    leader, officers = people(session, shift)
                    who = officers[0] if officers else (leader or "值班员")
                    try:
                        if h is None:
                            h, _ = handovers.draft(session, shift, actor=DUTY_OFFICER, now=now, tz=tz)
                        handovers.sign(session, h, actor=DUTY_OFFICER, name=who, now=now)
                        self.note(now, f"交班签字：{who}")
                    except Exception as exc:  # e.g. a shift not begun: the drill records it and goes on
                        self.given_up.add(("sign", shift.id, ""))
                        self.note(now, f"交班签字未能完成：{exc}")
            if rule.acknowledge_after_start is not None and h is not None and h.state == "signed":
                nxt = next_shift(session, shift)
                if nxt is None:
                    continue
                due = max(_aware(nxt.starts_at), _aware(h.signed_at or now)) + rule.acknowledge_after_start
                if due > now:
                    upcoming.append(due)
                    continue
                leader, officers = people(session, nxt)
                who = officers[0] if officers else (leader or "值班员")
                handovers.acknowledge(session, h, actor=DUTY_OFFICER, name=who, now=now)
                self.note(now, f"接班确认：{who}")
        return upcoming


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _measure_report(m: Any) -> dict[str, Any]:
    """A plausible carry-out report: the figure the measure's kind requires, and a note."""
    from responses.measures.core import REQUIRED_FIGURE, MeasureKind

    try:
        need = REQUIRED_FIGURE.get(MeasureKind(m.kind))
    except ValueError:
        need = None
    report: dict[str, Any] = {"note": "演练模拟 / simulated"}
    if need:
        report[need] = (m.expected or 0) if need == "people_evacuated" else max(1, len(m.area_codes or []))
    return report


# ---------------------------------------------------------------------------------------------- the clock


def system_due_times(session: Session, now: dt.datetime) -> list[dt.datetime]:
    """The next deadline each domain keeps in its tables (only those after ``now``)."""
    from responses.callouts.models import Callout
    from responses.duty import handovers
    from responses.measures.models import MeasureOrder
    from responses.messaging.models import OutboxMessage
    from responses.reports.models import InfoReport
    from warning.consultation.models import Consultation
    from warning.models import Warning

    queries = [
        select(func.min(Callout.next_action_at)).where(Callout.next_action_at > now),
        select(func.min(Consultation.deadline)).where(Consultation.deadline > now,
                                                      Consultation.closed_at.is_(None)),
        select(func.min(MeasureOrder.deadline)).where(MeasureOrder.deadline > now, MeasureOrder.ended_at.is_(None)),
        select(func.min(MeasureOrder.lift_deadline)).where(MeasureOrder.lift_deadline > now,
                                                           MeasureOrder.ended_at.is_(None)),
        select(func.min(InfoReport.due_at)).where(InfoReport.due_at > now, InfoReport.state == "draft"),
        select(func.min(OutboxMessage.next_try_at)).where(OutboxMessage.next_try_at > now,
                                                          OutboxMessage.state == "queued"),
        select(func.min(Warning.expires)).where(Warning.expires > now, Warning.state == "active"),
        select(func.min(Warning.held_until)).where(Warning.held_until > now, Warning.state == "held"),
    ]
    out = []
    for q in queries:
        v = session.execute(q).scalar()
        if v is not None:
            out.append(v if v.tzinfo else v.replace(tzinfo=dt.UTC))
    duty_due = handovers.next_due(session, now)  # a handover to draft, an unacknowledged one to flag
    if duty_due is not None:
        out.append(duty_due)
    return out


def run_drill(loaded: LoadedScenario, rt: Runtime, jobs: Sequence[Job], *, out_dir: Path | None = None,
              max_step: dt.timedelta = dt.timedelta(minutes=15), progress: Progress | None = None) -> DrillResult:
    """Play the scenario on ``rt`` (a migrated database, a ``VirtualClock``) and write the report."""
    from responses.runs import engine

    started = time.perf_counter()
    s = loaded.scenario
    clock = rt.clock
    if not isinstance(clock, VirtualClock):
        raise DrillError("演练只能在虚拟时钟上运行", "a drill runs on a virtual clock only")
    if clock.now() > s.start:
        raise DrillError("虚拟时钟已过演练开始时间", "the virtual clock is already past the scenario start")
    clock.set(s.start)
    notifier = make_safe(rt, s)
    engine.install(rt.state)
    tz = rt.settings.tz
    with session_scope(rt.session_factory) as session:
        prepare(session, loaded, now=s.start, tz=tz)
    players = Players(loaded, rt)
    steps = 0
    now = s.start
    while True:
        steps += 1
        upcoming = players.act(now)
        for job in jobs:
            _run_job(rt, job)
        if _messages_waiting(rt, now):  # what the jobs queued goes out at the same moment, not a step later
            for job in jobs:
                _run_job(rt, job)
        upcoming += players.act(now)  # people react to what the jobs just did (e.g. a call that went out)
        with session_scope(rt.session_factory) as session:
            upcoming += system_due_times(session, now)
        if progress:
            progress(now, f"第 {steps} 步 / step {steps}")
        if now >= s.end:
            break
        nxt = min([t for t in upcoming if t > now] + [now + max_step, s.end])
        clock.set(nxt)
        now = nxt
    with session_scope(rt.session_factory) as session:
        report = drill_report(session, loaded, players, now=now, tz=tz)
    paths = write_report(report, out_dir) if out_dir is not None else {}
    sender = rt.state.pop("messaging_sender", None)
    if sender is not None:
        sender.close()
    return DrillResult(report, paths, steps, time.perf_counter() - started, notifier, players.log,
                       players.expired_inputs)


def drill_report(session: Session, loaded: LoadedScenario, players: Players, *, now: dt.datetime,
                 tz: dt.tzinfo, summary: bool = True) -> dict[str, Any]:
    """The drill's report: its runs, and every warning thread it fed, whether or not one started."""
    from warning.models import Warning

    threads = sorted(set(session.execute(select(Warning.thread_id).where(Warning.drill.is_(True),
                                                                         Warning.thread_id.is_not(None)))
                         .scalars()))
    return build_report(session, now=now, tz=tz, drill=True,
                        scenario=_scenario_summary(loaded) if summary else None,
                        title=f"{loaded.scenario.name} 时效审计报告", warning_threads=threads,
                        extra_findings=players.input_findings)


def _messages_waiting(rt: Runtime, now: dt.datetime) -> bool:
    from responses.messaging.models import OutboxMessage

    with session_scope(rt.session_factory) as session:
        due = select(OutboxMessage.id).where(OutboxMessage.state == "queued", OutboxMessage.next_try_at <= now)
        return session.execute(due.limit(1)).first() is not None


def _run_job(rt: Runtime, job: Job) -> None:
    try:
        job(rt)
    except Exception as exc:  # one failing job must not stop the drill; the failure is kept for the report
        errors = rt.state.setdefault("drill_job_errors", [])
        errors.append({"at": rt.now().isoformat(), "job": getattr(job, "__name__", str(job)),
                       "error": f"{type(exc).__name__}: {exc}"})


def _scenario_summary(loaded: LoadedScenario) -> dict[str, Any]:
    s = loaded.scenario
    return {
        "name": s.name, "file": loaded.path.name, "start": s.start.isoformat(),
        "duration_s": s.duration.total_seconds(),
        "events": [{"at_s": e.at.total_seconds(), "format": e.kind, "file": e.file} for e in s.events],
    }
