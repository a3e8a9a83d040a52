"""Call-and-answer fixtures: a synthetic district of contacts, a run with a frozen plan, the roster."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from config.database import session_scope
from responses.contacts.models import Contact, Duty, Shift, ShiftMember
from responses.runs.models import ResponseRun
from responses.runs.plans import entry_from_snapshot
from responses.runs.service import default_plans
from warning.draft import Hazard

LEADER_PHONE = "+8613999990000"


def phone(i: int) -> str:
    return f"+86138{i:08d}"


def village_code(t: int, v: int) -> str:
    return f"1405021{t:02d}{200 + v:03d}"


def township_code(t: int) -> str:
    return f"1405021{t:02d}000"


def add_person(s: Session, now: dt.datetime, name: str, number: str, role: str, place: str,
               two_way: bool = False, backup: str | None = None) -> Contact:
    c = Contact(name=name, phone=number, backup_phone=backup, two_way_sms=two_way, active=True, created_at=now,
                updated_at=now, duties=[])
    c.duties.append(Duty(role=role, area_code=None if place.startswith("site:") else place,
                         site_id=place.removeprefix("site:") if place.startswith("site:") else None, place=place,
                         created_at=now))
    s.add(c)
    return c


@dataclass
class District:
    villages: list[str]
    townships: list[str]
    heads: dict[str, int]  # village → contact id
    chiefs: dict[str, int]  # township → contact id


def build_district(factory: sessionmaker[Session], now: dt.datetime, *, townships: int, per_township: int,
                   two_way_every: int = 2) -> District:
    d = District([], [], {}, {})
    with session_scope(factory) as s:
        n = 0
        for t in range(townships):
            tc = township_code(t)
            d.townships.append(tc)
            chief = add_person(s, now, f"镇长{t:02d}", phone(90000 + t), "township_chief", tc)
            s.flush()
            d.chiefs[tc] = chief.id
            for v in range(per_township):
                vc = village_code(t, v)
                d.villages.append(vc)
                n += 1
                head = add_person(s, now, f"村长{n:03d}", phone(n), "village_head", vc, two_way=n % two_way_every == 0)
                s.flush()
                d.heads[vc] = head.id
        add_person(s, now, "区领导甲", phone(99000), "district_leader", "140502000000")
        s.add(Shift(starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=23), label="test",
                    note="", created_at=now, updated_at=now))
        s.flush()
        shift_id = s.query(Shift.id).scalar()
        s.add(ShiftMember(shift_id=shift_id, role="leader", name="带班领导乙", phone=LEADER_PHONE))
    return d


def make_run(factory: sessionmaker[Session], now: dt.datetime, *, villages: list[str], level: str = "red",
             calls: dict[str, Any] | None = None, townships: list[str] | None = None,
             sites: list[str] | None = None) -> int:
    """A run as the runs layer starts it, with the default geohazard plan frozen; ``calls`` overrides
    the entry's call rules (the test's local rule)."""
    plan = default_plans()[Hazard.GEOHAZARD]
    snap = plan.model_dump(mode="json")
    entry = dict(snap["levels"][level])
    if calls:
        entry["calls"] = {**entry["calls"], **calls}
        snap["levels"][level] = entry
    entry_from_snapshot(snap, level)  # still a valid entry
    with session_scope(factory) as s:
        run = ResponseRun(number=f"T-{now.timestamp():.0f}", thread_id=1, open_thread_id=1, warning_id=1,
                          hazard="geohazard", level=level, response_level=entry["response_level"],
                          areas={"villages": villages, "townships": townships or [], "sites": sites or []}, measures=[],
                          trigger="automatic", plan_version=plan.version, plan_snapshot=snap, entry_snapshot=entry,
                          state="active", drill=False, started_at=now, started_by="test", updated_at=now)
        s.add(run)
        s.flush()
        return run.id


@pytest.fixture
def small_district(session_factory: sessionmaker[Session], clock: Any) -> District:
    return build_district(session_factory, clock.now(), townships=2, per_township=3)


class Kit:
    """The helpers above, for test modules (importlib mode cannot import this conftest)."""

    LEADER_PHONE = LEADER_PHONE
    build_district = staticmethod(build_district)
    make_run = staticmethod(make_run)
    add_person = staticmethod(add_person)
    phone = staticmethod(phone)
    village_code = staticmethod(village_code)
    township_code = staticmethod(township_code)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
