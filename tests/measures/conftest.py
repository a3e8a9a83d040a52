"""A small region for measure and report tests: one township, three villages, a reservoir site,
responsible people, and an orange flood warning."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from geo.models import Area, HazardSite
from responses.contacts.models import Contact, Duty
from warning.models import Warning

TOWN = "140502001000"
VILLAGES = ["140502001001", "140502001002", "140502001003"]
VILLAGE_NAMES = ["上村", "中村", "下村"]


@dataclass
class Region:
    warning_id: int
    site_id: int
    chief_id: int


def make_region(s: Session, now: dt.datetime, *, hazard: str = "flood", level: str = "orange") -> Region:
    s.add(Area(code="140502000000", name="城区", level="district", parent_code=None, updated_at=now))
    s.add(Area(code=TOWN, name="北街街道", level="township", parent_code="140502000000", updated_at=now))
    for code, name in zip(VILLAGES, VILLAGE_NAMES, strict=True):
        s.add(Area(code=code, name=name, level="village", parent_code=TOWN, updated_at=now))
    site = HazardSite(key="reservoir-1", name="东风水库下游", kind="reservoir_downstream",
                      geometry={"type": "Point", "coordinates": [112.85, 35.5]}, area_code=VILLAGES[1],
                      residents=130, updated_at=now)
    s.add(site)
    chief = Contact(name="王镇长", phone="+8613900000001", created_at=now, updated_at=now)
    s.add(chief)
    s.flush()
    s.add(Duty(contact_id=chief.id, role="township_chief", area_code=TOWN, place=TOWN, created_at=now))
    w = Warning(sender="chengqu-met", identifier="flood-1", msg_type="alert", status="actual", hazard=hazard,
                event="暴雨洪涝", level=level, sent=now, headline="城区气象台发布暴雨橙色预警",
                affected={"villages": VILLAGES, "townships": [TOWN], "sites": [str(site.id)]},
                received_at=now, updated_at=now)
    s.add(w)
    s.flush()
    w.thread_id = w.id
    s.flush()
    return Region(w.id, site.id, chief.id)


STOP_SCHOOL = {"kind": "stop_school", "targets": {"area_levels": ["village"]}, "deadline_minutes": 60,
               "responsible_unit": "区教育局"}
EVACUATION = {"kind": "evacuation", "targets": {"site_kinds": ["reservoir_downstream", "river_section"]},
              "deadline_minutes": 120, "responsible_unit": "各镇（街道）"}


@pytest.fixture
def orange_measures() -> list[dict[str, object]]:
    """The leader's decision for the orange flood: evacuation per the plan, and 停学 for the villages."""
    return [EVACUATION, STOP_SCHOOL]
