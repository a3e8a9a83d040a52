"""A hazard-site monitor who does not answer escalates where the site lies: the head of the site's
village, then the chief of its township (the site's area is looked up in the geo register)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from geo.models import HazardSite
from responses.callouts import service as svc
from responses.callouts.core import step_areas
from responses.callouts.models import Callout, Escalation
from responses.runs.models import ResponseRun

CALLS = {"answer_minutes": 5, "retries": {"count": 0, "interval_minutes": 1}, "channels": ["sms"],
         "tiers": {"site": ["site_monitor"]}, "escalation": ["site", "village", "township"]}


def test_step_areas_place_a_site_by_its_area() -> None:
    site_areas = {"7": "140502100201", "GH-7": "140502100201", "8": "140502101000", "9": None}
    assert step_areas("township", ["site:GH-7"], site_areas) == ["140502100000"]
    assert step_areas("village", ["site:7"], site_areas) == ["140502100201"]
    # a site filed under a township has no village step; one with no area has no step at all
    assert step_areas("village", ["site:8"], site_areas) == []
    assert step_areas("township", ["site:8", "site:9"], site_areas) == ["140502101000"]
    # an area place keeps its own township, and a village is not above a village
    assert step_areas("township", ["140502100202"], {}) == ["140502100000"]
    assert step_areas("village", ["140502100202"], {}) == []


def test_site_monitor_escalates_to_the_sites_village_then_township(session_factory: sessionmaker[Session],
                                                                    clock: VirtualClock, kit: Any) -> None:
    t0 = clock.now()
    d = kit.build_district(session_factory, t0, townships=2, per_township=2)
    headless_village = kit.village_code(1, 9)  # in the second township; nobody answers for it
    with session_scope(session_factory) as s:
        site_a = HazardSite(key="GH-A", name="东岭滑坡隐患点", kind="geohazard_point", area_code=d.villages[0],
                            geometry={"type": "Point", "coordinates": [112.85, 35.5]}, updated_at=t0)
        site_b = HazardSite(key="GH-B", name="西沟崩塌隐患点", kind="geohazard_point", area_code=headless_village,
                            geometry={"type": "Point", "coordinates": [112.86, 35.5]}, updated_at=t0)
        s.add_all([site_a, site_b])
        s.flush()
        sites = [str(site_a.id), str(site_b.id)]
        mon_a = kit.add_person(s, t0, "监测员甲", kit.phone(70001), "site_monitor", f"site:{sites[0]}")
        mon_b = kit.add_person(s, t0, "监测员乙", kit.phone(70002), "site_monitor", f"site:{sites[1]}")
        s.flush()
        monitors = {mon_a.id: "a", mon_b.id: "b"}
    run_id = kit.make_run(session_factory, t0, villages=[], sites=sites, calls=CALLS)
    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        made = svc.create_run_callouts(s, run, now=t0)
        assert sorted(c.contact_id for c in made) == sorted(monitors)
        by_site = {monitors[c.contact_id]: c.id for c in made if c.contact_id is not None}

    clock.advance(dt.timedelta(minutes=6))
    svc.sweep(session_factory, now=clock.now())

    with session_scope(session_factory) as s:
        esc = {(e.from_callout_id, e.step): e for e in s.execute(select(Escalation)).scalars()}
        # site A lies in a village with a head: the village step finds that head
        a = esc[(by_site["a"], "village")]
        assert not a.target_missing and len(a.to_callout_ids) == 1
        to_a = s.get(Callout, a.to_callout_ids[0])
        assert to_a is not None and to_a.contact_id == d.heads[d.villages[0]] and to_a.tier == "village"
        assert to_a.area_names == ["东岭滑坡隐患点"] and "监测员甲" in str(to_a.context["escalated_from"])
        # site B's village has nobody: the step is recorded missing, and its township's chief is called
        assert esc[(by_site["b"], "village")].target_missing
        b = esc[(by_site["b"], "township")]
        assert not b.target_missing
        to_b = s.get(Callout, b.to_callout_ids[0])
        assert to_b is not None and to_b.contact_id == d.chiefs[kit.township_code(1)]
        assert {s.get(Callout, by_site[k]).state for k in "ab"} == {"escalated"}  # type: ignore[union-attr]
