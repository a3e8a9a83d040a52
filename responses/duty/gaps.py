"""Roster gaps (排班缺口): shifts with no duty officer or no leader on duty, and hours no shift covers.

Two audiences, two horizons. Admins, who keep the roster, get a flag (``roster_gap``, through the existing
supervision flags) for every gap in the next seven days, raised once and cleared when the gap is filled or
has passed. The board shows the gaps of the next 24 hours: it calls ``gaps(session, now)`` and renders the
plain rows it gets (Chinese labels, local times), so it needs no rule of its own.

The rule ``shift_without_leader`` (runs' supervision, three days ahead) predates this one and is left as it
is; a leaderless shift therefore carries both flags, the older one for the leader's side.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from responses.contacts import roster_service
from responses.contacts.models import Shift, ShiftMember
from responses.duty import core
from responses.duty.core import GapKind, RosterGap, RosterShift

FLAG_KIND = "roster_gap"


def gaps_between(session: Session, start: dt.datetime, end: dt.datetime) -> list[RosterGap]:
    shifts = roster_service.shifts_between(session, start, end)
    roles: dict[int, set[str]] = {s.id: set() for s in shifts}
    ids = list(roles)
    for i in range(0, len(ids), 500):
        for shift_id, role in session.execute(select(ShiftMember.shift_id, ShiftMember.role)
                                              .where(ShiftMember.shift_id.in_(ids[i:i + 500]))).tuples():
            roles[shift_id].add(role)
    previous_end = session.execute(select(func.max(Shift.ends_at)).where(Shift.ends_at <= start)).scalar()
    next_start = session.execute(select(func.min(Shift.starts_at)).where(Shift.starts_at >= end)).scalar()
    plain = [RosterShift(s.id, s.starts_at, s.ends_at, s.label, "leader" in roles[s.id], "officer" in roles[s.id])
             for s in shifts]
    return core.roster_gaps(plain, start, end, previous_end=_aware(previous_end), next_start=_aware(next_start))


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def gap_view(g: RosterGap, *, now: dt.datetime, tz: ZoneInfo) -> dict[str, Any]:
    """One gap as a page shows it: what is missing, when, in words."""
    start = core.local_text(g.starts_at, tz) if g.starts_at else ""
    end = core.local_text(g.ends_at, tz) if g.ends_at else ""
    if g.kind is GapKind.NO_SHIFT:
        if end:
            zh = f"{start + ' 起' if start else '值班表中此前无班次，'}至 {end} 无人值班"
        else:
            zh = f"{start + ' 起' if start else '现在起'}无人值班（此后未排班）"
        en = f"nobody on duty from {start or 'the start of the roster'} to {end or 'the end of the roster'}"
    else:
        name = f"{g.label}（{start}—{end}）" if g.label else f"{start}—{end}"
        zh = f"{name} {core.GAP_ZH[g.kind]}"
        en = f"{g.label + ' ' if g.label else ''}{start}–{end}: {core.GAP_EN[g.kind]}"
    return {
        "key": g.key, "kind": g.kind.value, "kind_zh": core.GAP_ZH[g.kind], "kind_en": core.GAP_EN[g.kind],
        "shift_id": g.shift_id, "label": g.label, "starts_at": g.starts_at, "ends_at": g.ends_at,
        "starts_local": start, "ends_local": end, "message": zh, "message_en": en,
        "now": g.within(now, now + dt.timedelta(microseconds=1)),
        "within_24h": g.within(now, now + core.BOARD_HORIZON),
    }


def gaps(session: Session, now: dt.datetime, horizon: dt.timedelta = core.BOARD_HORIZON, *,
         tz: ZoneInfo | None = None) -> list[dict[str, Any]]:
    """The gaps between ``now`` and ``now + horizon`` (default 24 hours: the board's), earliest first."""
    from responses.measures.service import display_zone

    zone = tz or display_zone()
    return [gap_view(g, now=now, tz=zone) for g in gaps_between(session, now, now + horizon)]


def sweep(session: Session, now: dt.datetime, tz: ZoneInfo) -> list[int]:
    """Flag each gap of the next ``GAP_FLAG_HORIZON`` to the admins once; clear flags of gaps filled or past."""
    from responses.runs import supervision

    current = gaps_between(session, now, now + core.GAP_FLAG_HORIZON)
    keys = {f"{FLAG_KIND}:{g.key}" for g in current}
    raised: list[int] = []
    for g in current:
        v = gap_view(g, now=now, tz=tz)
        flag = supervision.raise_flag(
            session, key=f"{FLAG_KIND}:{g.key}", kind=FLAG_KIND,
            subject_type="shift" if g.shift_id is not None else "roster",
            subject_id=g.shift_id if g.shift_id is not None else (g.starts_at.isoformat() if g.starts_at else "open"),
            now=now, due_at=g.starts_at if g.starts_at and g.starts_at > now else now,
            detail={"gap": g.kind.value, "gap_zh": v["kind_zh"], "starts_at": _iso(g.starts_at),
                    "ends_at": _iso(g.ends_at),
                    "shift_id": g.shift_id, "label": g.label, "message": v["message"], "message_en": v["message_en"],
                    "to": "admin"})
        if flag is not None:
            raised.append(flag.id)
    for flag in supervision.open_flags(session, FLAG_KIND):
        if flag.key in keys:
            continue
        ends = (flag.detail or {}).get("ends_at")
        passed = bool(ends) and dt.datetime.fromisoformat(str(ends)) <= now
        supervision.clear_flag(session, flag, reason="gap passed" if passed else "gap filled", now=now)
    return raised
