"""A real run turned back into a drill scenario: ``jiaoying drill from-run RUN_ID --out DIR``.

The scenario reproduces what happened, so that it can be run again under another plan ("what if the
deadline had been 3 minutes?") and compared with ``drill compare``:

- the raw payloads that made the warning thread, verbatim (each file checked against the SHA-256 stored
  with it when it arrived), at their received times relative to the scenario's start; a warning typed
  in by the duty officer becomes a ``manual`` event with the body the officer entered;
- each person's real answer delay after their call and the channel they answered by (a person who never
  answered never answers; answers the duty officer recorded keep channel ``phone``), one rule per phone;
- the departments' judgement times and levels, the decision, and each measure's carried-out and
  lifted times (one ``measure_rules`` entry per measure; ``never`` where it was not done);
- the people involved as a contacts file (as they are on record: their duties and numbers), the duty
  shifts the run crossed, and the plan the run snapshotted when it started (``plans/``).

The scenario starts at the first payload's arrival and lasts until the run closed (or until now, for a
run still open), so its report is judged at the same moment as the real one. The virtual clock moves in
whole seconds; answer delays are written to the second.

Reads through the audit report (which reads the run's records and the event log) and the raw payload
store; writes nothing to the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

# the answer channel as the report records it → as a scenario writes it
CHANNEL_OF_ANSWER = {"keypress": "keypress", "sms_reply": "sms", "sms": "sms", "web": "web",
                     "duty_officer": "phone", "phone": "phone"}
MANUAL_EVIDENCE_KEYS = ("entered_by", "entered_at", "identifier")  # added by the system, not typed


class ReplayError(Exception):
    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en
        super().__init__(f"{zh} / {en}")


@dataclass
class Replay:
    """The scenario as files (name → bytes) and what it could not reproduce exactly (Chinese, English)."""

    run_number: str
    files: dict[str, bytes] = field(default_factory=dict)
    gaps: list[tuple[str, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, data in sorted(self.files.items()):
            path = out_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(path)
        return written


def duration_text(delta: dt.timedelta) -> str:
    """A whole-second duration in the scenario's notation: ``0s``, ``4m``, ``2m5s``, ``1h3m``."""
    total = max(0, int(delta.total_seconds()))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    text = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return text or "0s"


def _t(value: Any) -> dt.datetime | None:
    from responses.audit.shape import parse_iso

    return parse_iso(value) if isinstance(value, str) else None


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _ext(fmt: str, body: bytes) -> str:
    head = body.lstrip()[:1]
    if head == b"<":
        return "xml"
    if head in (b"{", b"["):
        return "json"
    return "csv" if fmt in ("hydro", "firms") else "txt"


def _manual_supported() -> bool:
    from responses.drill.scenario import ScenarioEvent

    return "manual" in ScenarioEvent.model_fields


def build_replay(session: Session, run_id: int, *, now: dt.datetime, tz: dt.tzinfo) -> Replay:
    """The scenario reproducing run ``run_id``, as of ``now`` (the end of a run still open)."""
    from responses.audit.builder import build_report
    from responses.runs.models import ResponseRun

    run = session.get(ResponseRun, run_id)
    if run is None:
        raise ReplayError(f"没有编号为 {run_id} 的响应", f"no run with id {run_id}")
    end = _aware(run.closed_at) if run.closed_at else now
    report = build_report(session, now=end, tz=tz, run_ids=[run_id])
    replay = Replay(run.number)
    events, start = _inputs(session, run, replay, tz)
    start = min(start, _aware(run.started_at)).replace(microsecond=0)
    minutes = max(1, math.ceil((end - start).total_seconds() / 60))
    scenario: dict[str, Any] = {
        "name": f"响应 {run.number} 复盘",
        "start": start.astimezone(tz).isoformat(),
        "duration": duration_text(dt.timedelta(minutes=minutes)),
        "contacts": "contacts.csv",
    }
    if _write_plan(run, replay):
        scenario["plans"] = "plans"
    roster = _roster(session, start, end, tz)
    if roster:
        scenario["roster"] = roster
    scenario["events"] = [{"at": duration_text(at - start), **ref} for at, ref in events]
    scenario["behaviour"] = {
        "answers": _answers(report, replay),
        **_consultation(report, replay),
        "measure_rules": _measures(report, replay),
    }
    replay.files["contacts.csv"] = _contacts_csv(session, run.id)
    head = (f"# 响应 {run.number} 的复盘演练脚本（由 jiaoying drill from-run {run_id} 生成）\n"
            f"# Replay of run {run.number}, written by `jiaoying drill from-run {run_id}`.\n"
            "# 输入文件为原始报文原样保存（SHA-256 见 replay.json）/ inputs are the raw payloads, verbatim "
            "(SHA-256 in replay.json)\n")
    body = yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False, default_flow_style=None, width=120)
    replay.files["scenario.yaml"] = (head + body).encode()
    replay.summary = {
        "run_id": run.id, "run_number": run.number, "start": scenario["start"], "end": end.astimezone(tz).isoformat(),
        "kpis": report["kpis"],
        "inputs": [{"at": duration_text(at - start), **ref} for at, ref in events],
        "payloads": replay.summary.get("payloads", []),
        "gaps": [{"zh": zh, "en": en} for zh, en in replay.gaps],
    }
    replay.files["replay.json"] = (json.dumps(replay.summary, ensure_ascii=False, indent=2) + "\n").encode()
    return replay


# ---------------------------------------------------------------------------------------------- inputs


def _inputs(session: Session, run: Any, replay: Replay,
            tz: dt.tzinfo) -> tuple[list[tuple[dt.datetime, dict[str, Any]]], dt.datetime]:
    """Every raw payload that made a version of the run's warning thread, in the order it arrived."""
    from warning.models import Feed, FeedItem, Warning

    rows = session.execute(
        select(Warning, FeedItem, Feed).join(FeedItem, FeedItem.id == Warning.feed_item_id, isouter=True)
        .join(Feed, Feed.id == FeedItem.feed_id, isouter=True)
        .where((Warning.thread_id == run.thread_id) | (Warning.id == run.thread_id))
        .order_by(Warning.received_at, Warning.id)).all()
    events: list[tuple[dt.datetime, dict[str, Any]]] = []
    seen: set[int] = set()
    payloads: list[dict[str, Any]] = []
    first: dt.datetime | None = None
    for w, item, feed in rows:
        received = _aware(item.received_at if item is not None else w.received_at)
        first = received if first is None else min(first, received)
        if item is None or feed is None:
            replay.gaps.append((f"预警 {w.identifier} 没有原始报文记录，未能复现", f"warning {w.identifier} has no "
                                "raw payload on record; it is not reproduced"))
            continue
        if item.id in seen:  # one payload may carry several versions
            continue
        seen.add(item.id)
        body = bytes(item.body)
        digest = hashlib.sha256(body).hexdigest()
        if digest != item.sha256:
            replay.gaps.append((f"报文 {item.id} 仅存有前缀（{item.reason or '截断'}），未能复现",
                                f"payload {item.id} is stored as a prefix only ({item.reason or 'truncated'}); "
                                "not reproduced"))
            continue
        n = len(seen)
        if feed.adapter == "manual":
            ref = _manual_event(body, n, w, replay)
            if ref is None:
                continue
        else:
            name = f"input-{n:02d}-{feed.adapter}.{_ext(feed.adapter, body)}"
            replay.files[name] = body
            ref = {"feed": {"format": feed.adapter, "file": name}}
        payloads.append({"file": next(iter(ref.values()))["file"], "feed_item": item.id, "sha256": digest,
                         "received_at": received.astimezone(tz).isoformat(), "source_url": item.source_url})
        events.append((received, ref))
    if first is None:
        raise ReplayError(f"响应 {run.number} 的预警没有记录", f"run {run.number} has no warning on record")
    if not events:
        raise ReplayError(f"响应 {run.number} 没有可复现的输入", f"run {run.number} has no input to reproduce")
    replay.summary["payloads"] = payloads
    return events, first


def _manual_event(body: bytes, n: int, w: Any, replay: Replay) -> dict[str, Any] | None:
    """A warning typed in by the duty officer: the body they entered (less what the system added)."""
    if not _manual_supported():
        replay.gaps.append((f"人工录入的预警 {w.identifier} 无法写入演练脚本（脚本格式不支持人工录入事件）",
                            f"the manually entered warning {w.identifier} cannot be written: the scenario format "
                            "has no manual event"))
        return None
    typed = {k: v for k, v in json.loads(body).items() if k not in MANUAL_EVIDENCE_KEYS}
    if typed.get("msg_type", "alert") != "alert":
        replay.gaps.append((f"人工录入的{typed.get('msg_type')}（{w.identifier}）在演练中不能复现（只支持发布）",
                            f"the manual {typed.get('msg_type')} ({w.identifier}) cannot be replayed: a drill "
                            "enters alerts only"))
        return None
    name = f"input-{n:02d}-manual.json"
    replay.files[name] = (json.dumps(typed, ensure_ascii=False, indent=2) + "\n").encode()
    return {"manual": {"file": name}}


def _write_plan(run: Any, replay: Replay) -> bool:
    """The plan the run froze when it started, so the replay runs under the same rules."""
    from responses.runs.plans import parse_text

    snapshot = run.plan_snapshot or {}
    if not snapshot:
        replay.gaps.append(("响应没有预案快照，复盘使用内置预案", "the run has no plan snapshot; the replay uses "
                            "the bundled plans"))
        return False
    text = yaml.safe_dump(snapshot, allow_unicode=True, sort_keys=False, width=120)
    res = parse_text(text, f"{run.hazard}.yaml", "yaml")
    if res.plan is None:
        first = res.errors[0] if res.errors else None
        replay.gaps.append((f"预案快照无法还原为预案文件：{first}", f"the plan snapshot cannot be written as a plan "
                            f"file: {first}"))
        return False
    replay.files[f"plans/{run.hazard}.yaml"] = (f"# 响应 {run.number} 启动时的预案快照 / the plan as run "
                                                f"{run.number} froze it\n" + text).encode()
    return True


# ---------------------------------------------------------------------------------------------- people


def _answers(report: dict[str, Any], replay: Replay) -> list[dict[str, Any]]:
    """One rule per phone, in call order; with the role when one phone was called in two roles, and with
    ``call: plan|escalation`` when the person was called for their own area and escalated to as well."""
    rows = sorted(report.get("callouts") or [], key=lambda c: (c.get("called_at") or "", c.get("id") or 0))
    roles_of: dict[str, set[str]] = {}
    calls_of: dict[str, set[str]] = {}
    for c in rows:
        if c.get("phone"):
            roles_of.setdefault(c["phone"], set()).add(c.get("role") or "")
            calls_of.setdefault(c["phone"], set()).add(_call_kind(c))
    rules: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    for c in rows:
        phone = c.get("phone")
        if not phone:
            replay.gaps.append((f"{c.get('person')} 的叫应没有号码，无法逐人复现", f"callout {c.get('id')} has no "
                                "number; it cannot be matched to a person"))
            continue
        role = c.get("role") if len(roles_of[phone]) > 1 else None
        call = _call_kind(c) if len(calls_of[phone]) > 1 else None
        called, answered = _t(c.get("called_at")), _t(c.get("answered_at"))
        if answered is None or called is None:
            rule: dict[str, Any] = {"after": "never"}
        else:
            channel = CHANNEL_OF_ANSWER.get(c.get("answer_channel") or "", "keypress")
            rule = {"after": duration_text(answered - called), "channel": channel}
        key = (phone, role, call)
        if key in rules:
            if rules[key]["after"] != rule["after"]:
                replay.gaps.append((f"{c.get('person')}（{phone}）两次叫应的应答用时不同，复盘统一按第一次",
                                    f"{phone} answered two calls after different delays; the replay uses the first"))
            continue
        match = {"phone": phone, **({"role": role} if role else {}), **({"call": call} if call else {})}
        rules[key] = {"match": match, **rule}
    return [*rules.values(), {"match": {}, "after": "never"}]  # nobody else answers, as nobody else was called


def _call_kind(c: dict[str, Any]) -> str:
    return "escalation" if c.get("reason") == "escalation" or c.get("escalated_from") else "plan"


def _consultation(report: dict[str, Any], replay: Replay) -> dict[str, Any]:
    out: dict[str, Any] = {}
    consultations = report.get("consultations") or []
    if len(consultations) > 1:
        replay.gaps.append(("响应经过多次会商，研判与决策时间按第一次会商复现",
                            "the run had several consultations; judgement and decision times follow the first"))
    judgements: dict[str, dict[str, Any]] = {}
    for c in consultations[:1]:
        opened = _t(c.get("opened_at"))
        if opened is None:
            continue
        for j in c.get("judgements") or []:
            at = _t(j.get("at"))
            dept = j.get("department_code") or j.get("department")
            if at is None or not dept or dept in judgements:
                continue
            judgements[dept] = {"department": dept, "after": duration_text(at - opened), "level": j.get("level")}
        decided = _t(c.get("decided_at"))
        if decided is not None:
            if c.get("decision_level"):
                out["decision"] = {"after": duration_text(decided - opened), "level": c["decision_level"]}
            else:
                replay.gaps.append(("会商决定“无需预警”，演练脚本不能表达，未复现决策",
                                    "the consultation decided 'no warning', which a scenario cannot express"))
    if judgements:
        out["judgements"] = list(judgements.values())
    return out


def _measures(report: dict[str, Any], replay: Replay) -> list[dict[str, Any]]:
    """One rule per measure (kind and its first area), with its own carry-out and lift delays."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    for m in report.get("measures") or []:
        areas = [a for a in m.get("areas") or [] if str(a).isdigit()]
        key = (m.get("kind") or "", areas[0] if areas else None)
        if key in seen:
            replay.gaps.append((f"同类措施 {m.get('title')} 在同一区域有多条，复盘按第一条的时间",
                                f"several {m.get('kind')} measures share their first area; the replay times them "
                                "as the first"))
            continue
        seen.add(key)
        ordered, done = _t(m.get("ordered_at")), _t(m.get("carried_out_at"))
        lift_ordered, lifted = _t(m.get("lift_ordered_at")), _t(m.get("lifted_at"))
        match: dict[str, Any] = {"kind": key[0], **({"area": key[1]} if key[1] else {})}
        out.append({
            "match": match,
            "after": duration_text(done - ordered) if done and ordered else "never",
            "lift_after": duration_text(lifted - lift_ordered) if lifted and lift_ordered else "never",
        })
    return out


def _contacts_csv(session: Session, run_id: int) -> bytes:
    """The people called about the run, with every duty they hold on record, in the import format."""
    from responses.callouts.models import Callout
    from responses.contacts.core import ROLE_ZH, DutyRole
    from responses.contacts.models import Contact, Duty

    ids = sorted(set(session.execute(select(Callout.contact_id).where(Callout.run_id == run_id,
                                                                      Callout.contact_id.is_not(None))).scalars()))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["姓名", "手机", "备用电话", "职务", "村/社区代码", "隐患点", "部门", "双向短信", "备注"])
    for i in range(0, len(ids), 500):
        contacts = session.execute(select(Contact).where(Contact.id.in_(ids[i:i + 500]))
                                   .order_by(Contact.id)).scalars().all()
        for c in contacts:
            duties = session.execute(select(Duty).where(Duty.contact_id == c.id).order_by(Duty.id)).scalars().all()
            for d in duties:
                try:
                    role = ROLE_ZH[DutyRole(d.role)]
                except ValueError:
                    role = d.role
                writer.writerow([c.name, c.phone, c.backup_phone or "", role, d.area_code or "", d.site_id or "",
                                 d.department or "", "是" if c.two_way_sms else "否", c.note or ""])
    return buf.getvalue().encode("utf-8")


def _roster(session: Session, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> list[dict[str, Any]]:
    """The duty shifts the replay's time crosses, with their leader and officers as on record."""
    from responses.contacts.models import Shift
    from responses.contacts.roster_service import members

    out = []
    shifts = session.execute(select(Shift).where(Shift.ends_at > start, Shift.starts_at < end)
                             .order_by(Shift.starts_at, Shift.id)).scalars().all()
    for sh in shifts:
        ms = members(session, sh.id)
        leader = next(({"name": m.name, **({"phone": m.phone} if m.phone else {})} for m in ms if m.role == "leader"),
                      None)
        entry: dict[str, Any] = {"start": _aware(sh.starts_at).astimezone(tz).isoformat(),
                                 "end": _aware(sh.ends_at).astimezone(tz).isoformat(), "label": sh.label or ""}
        if leader:
            entry["leader"] = leader
        officers = [{"name": m.name, **({"phone": m.phone} if m.phone else {})} for m in ms if m.role == "officer"]
        if officers:
            entry["officers"] = officers
        out.append(entry)
    return out
