"""A roster of a night and a day shift around 08:00 on 20 July 2026 (Asia/Shanghai), for the duty tests."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from responses.contacts.roster import Person, ShiftSpec
from responses.contacts.roster_service import upsert_shift

TZ = ZoneInfo("Asia/Shanghai")


def local(d: int, h: int, m: int = 0, s: int = 0) -> dt.datetime:
    return dt.datetime(2026, 7, d, h, m, s, tzinfo=TZ)


NIGHT = ("夜班", local(19, 20), local(20, 8), ("张带班", "+8613900000101"), [("李值班", "+8613900000102")])
DAY = ("白班", local(20, 8), local(20, 20), ("赵带班", "+8613900000103"), [("钱值班", "+8613900000104")])


def add_shift(s: Session, label: str, start: dt.datetime, end: dt.datetime, leader: tuple[str, str] | None,
              officers: list[tuple[str, str]], now: dt.datetime) -> int:
    spec = ShiftSpec(starts_at=start, ends_at=end, leader=Person(*leader) if leader else None,
                     officers=[Person(*o) for o in officers], label=label)
    return upsert_shift(s, spec, roster_id=None, actor="user:admin", now=now).id


def add_roster(s: Session, now: dt.datetime) -> tuple[int, int]:
    """(night shift id, day shift id)."""
    return add_shift(s, *NIGHT, now=now), add_shift(s, *DAY, now=now)


