"""The board's content (值班台), gathered from the domains' services into plain data for the template.

Ordering is the duty room's: red before orange before yellow before blue, overdue before on time, the
nearest deadline first. Every time is turned into Asia/Shanghai text here, so the template shows no UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from console.i18n import Lang, text
from responses.callouts import board as callout_board
from responses.contacts import roster_service
from responses.contacts import service as contact_service
from responses.duty import gaps as gap_service
from responses.duty import handovers
from responses.measures import service as measure_service
from responses.reports import service as report_service
from responses.runs import service as run_service
from warning import service as warning_service
from warning.consultation import service as consultation_service

LEVEL_RANK = {"red": 0, "orange": 1, "yellow": 2, "blue": 3}
CLOSED_MEASURES = frozenset({"lifted", "cancelled", "waived"})
CALLOUT_KEYS = ("answered", "waiting", "overdue", "escalated", "unanswered", "late")
DUE_SOON = dt.timedelta(minutes=30)
GAPS_SHOWN = 2  # the duty line's rows: it must not push warnings and runs off the first screen
HANDOVERS_SHOWN = 2


def local(when: dt.datetime | None, tz: ZoneInfo, *, with_date: bool = True) -> str:
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def level_key(level: str | None) -> str:
    return level if level in LEVEL_RANK else "none"


@dataclass
class Board:
    now_text: str
    now_iso: str
    leader: str | None
    officers: list[str]
    warnings: list[dict[str, Any]] = field(default_factory=list)
    consultations: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    measures: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    feeds: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)  # the roster's gaps of the next 24 hours
    handovers: list[dict[str, Any]] = field(default_factory=list)  # waiting or past their deadline

    @property
    def shown_gaps(self) -> list[dict[str, Any]]:
        """The first few gaps: the duty line stays one or two lines, the rest is counted and on the duty page."""
        return self.gaps[:GAPS_SHOWN]

    @property
    def shown_handovers(self) -> list[dict[str, Any]]:
        return self.handovers[:HANDOVERS_SHOWN]

    @property
    def counts(self) -> dict[str, int]:
        return {
            "red": sum(1 for w in self.warnings if w["level"] == "red"),
            "warnings": len(self.warnings),
            "consultations": len(self.consultations),
            "runs": len(self.runs),
            "overdue": sum(1 for m in self.measures if m["overdue"]) + sum(1 for r in self.reports if r["overdue"])
            + sum(1 for k in self.consultations if k["overdue"])
            + sum(r["totals"]["overdue"] + r["totals"]["unanswered"] for r in self.runs),
            "quarantined": len(self.quarantined),
        }


def build(session: Session, *, now: dt.datetime, tz: ZoneInfo, lang: Lang) -> Board:
    """The whole board in a fixed number of queries, whatever the number of warnings, runs and callouts.

    Several people read the board at once, most of all during a fan-out, when the server is also busy
    calling everyone: so the domains are asked once per kind of thing (every open run's progress counted by
    the database, their measures, their reports, the judgements, the area names), never once per item.
    """
    duty = roster_service.on_duty(session, now)
    board = Board(
        now_text=local(now, tz), now_iso=now.isoformat(),
        leader=duty.leader.name if duty.leader else None, officers=[m.name for m in duty.officers],
    )
    board.gaps = gap_service.gaps(session, now, tz=tz)
    board.handovers = handovers.board_rows(session, now=now, current_shift_id=duty.shift.id if duty.shift else None,
                                           tz=tz)
    warnings = warning_service.active_warnings(session)
    runs = run_service.open_runs(session)
    progress = callout_board.township_progress_of_runs(session, [r.id for r in runs], now=now)
    totals = callout_board.progress_totals_of_runs(session, [r.id for r in runs], now=now)
    codes = {str(t) for w in warnings for t in (w.affected or {}).get("townships", [])}
    codes |= {t for per in progress.values() for t in per if t}
    names = contact_service.area_names(session, sorted(codes)) if codes else {}
    _warnings(board, warnings, names, tz=tz, lang=lang)
    _consultations(session, board, tz=tz, now=now)
    _runs(session, board, runs, progress, totals, names, now=now, tz=tz)
    _feeds(session, board, tz=tz)
    return board


def _warnings(board: Board, rows: list[Any], names: dict[str, str], *, tz: ZoneInfo, lang: Lang) -> None:
    for w in rows:
        info = (w.infos or [{}])[0] if w.infos else {}
        codes = list((w.affected or {}).get("townships", []))
        board.warnings.append({
            "id": w.id, "level": level_key(w.level), "headline": w.headline or w.event or "",
            "hazard": text(f"hazard.{w.hazard}" if w.hazard else "hazard.none", lang), "event": w.event or "",
            "issuer": info.get("sender_name") or w.sender, "townships": [names.get(c, c) for c in codes],
            "received": local(w.received_at, tz), "expires": local(w.expires, tz), "drill": w.drill,
        })
    # newest first inside a level: a stable sort on the time, then on the level
    board.warnings.sort(key=lambda w: w["received"], reverse=True)
    board.warnings.sort(key=lambda w: LEVEL_RANK.get(w["level"], 9))


def _consultations(session: Session, board: Board, *, tz: ZoneInfo, now: dt.datetime) -> None:
    rows = consultation_service.waiting(session)
    if not rows:
        return
    departments = {code: name for name, code in contact_service.known_departments(session).items()
                   if name != code}
    judged = consultation_service.judged_departments(session, [c.id for c in rows])
    for c in rows:
        missing = [departments.get(d, d) for d in c.invited if d not in judged[c.id]]
        board.consultations.append({
            "id": c.id, "level": level_key(c.level), "state": c.state, "missing": missing,
            "deadline": local(c.deadline, tz), "overdue": now > c.deadline, "drill": c.drill,
            "hazard": c.hazard,
        })
    board.consultations.sort(key=lambda c: (not c["overdue"], LEVEL_RANK.get(c["level"], 9)))


def _runs(session: Session, board: Board, runs: list[Any], progress: dict[int, dict[str, dict[str, int]]],
          people: dict[int, dict[str, int]], names: dict[str, str], *, now: dt.datetime, tz: ZoneInfo) -> None:
    for r in runs:
        per = progress.get(r.id, {})
        # people, not township rows: someone called about two townships is one person past the deadline
        totals = {k: people.get(r.id, {}).get(k, 0) for k in CALLOUT_KEYS}
        townships = [{"code": code, "name": names.get(code, code) if code else "", **counts}
                     for code, counts in sorted(per.items(), key=lambda kv: (kv[0] == "", kv[0]))]
        for t in townships:
            t["trouble"] = t["overdue"] + t["unanswered"] + t["escalated"]
        board.runs.append({
            "id": r.id, "number": r.number, "level": level_key(r.level), "response_level": r.response_level,
            "hazard": r.hazard, "state": r.state, "started": local(r.started_at, tz), "drill": r.drill,
            "townships": townships, "totals": totals,
            "trouble": totals["overdue"] + totals["unanswered"] + totals["escalated"],
        })
    numbers = {r.id: r.number for r in runs}
    for m in measure_service.open_measures_of_runs(session, list(numbers)):
        if m.state in CLOSED_MEASURES:
            continue
        v = measure_service.view(m, now)
        overdue = bool(v["overdue"] or v["lift_overdue"])
        deadline = m.lift_deadline if m.state == "lifting" else m.deadline
        board.measures.append({
            "id": m.id, "run_id": m.run_id, "run": numbers[m.run_id], "label": m.label, "kind": m.kind,
            "state": m.state, "areas": (m.area_names or [])[:6] + (m.site_names or [])[:3],
            "more": max(0, len(m.area_names or []) - 6) + max(0, len(m.site_names or []) - 3),
            "person": m.person_name, "deadline": local(deadline, tz), "overdue": overdue,
            "sort": (not overdue, deadline or now),
        })
    for rep in report_service.drafts_of_runs(session, list(numbers)):
        v = report_service.view(rep, now, tz)
        board.reports.append({
            "id": rep.id, "run_id": rep.run_id, "run": numbers[rep.run_id], "kind": rep.kind, "title": rep.title,
            "due": local(rep.due_at, tz), "overdue": bool(v["overdue"]),
            "soon": not v["overdue"] and rep.due_at - now <= DUE_SOON, "sort": (not v["overdue"], rep.due_at),
        })
    board.runs.sort(key=lambda r: LEVEL_RANK.get(r["level"], 9))
    board.measures.sort(key=lambda m: m["sort"])
    board.reports.sort(key=lambda r: r["sort"])


def _feeds(session: Session, board: Board, *, tz: ZoneInfo) -> None:
    counts = warning_service.quarantine_counts(session)
    feeds = warning_service.all_feeds(session)
    titles = {f.id: f.title or f.name for f in feeds}
    for f in feeds:
        quarantined = counts.get(f.id, 0)
        board.feeds.append({
            "name": f.name, "title": f.title or f.name, "enabled": f.enabled,
            "healthy": f.enabled and f.consecutive_failures == 0 and not quarantined,
            "failures": f.consecutive_failures, "quarantined": quarantined,
            "last_success": local(f.last_success_at, tz), "error": f.last_error or "",
        })
    board.feeds.sort(key=lambda f: (f["healthy"], not f["enabled"], f["name"]))
    for item in warning_service.quarantined_items(session, limit=20):
        board.quarantined.append({
            "id": item.id, "feed": titles.get(item.feed_id, str(item.feed_id)), "reason": item.reason or "",
            "detail": (item.detail or "")[:200], "received": local(item.received_at, tz),
        })
