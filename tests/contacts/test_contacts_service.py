"""Contact imports and coverage against the real database and the default region."""

from __future__ import annotations

import datetime as dt
import io

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from geo.region import seed_default_region
from responses.contacts import service as csvc
from responses.contacts.models import Contact, ContactImport, Duty

TZ = dt.timezone(dt.timedelta(hours=8))


def xlsx(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_demo_list_covers_the_default_region_and_seeds_once(session_factory: sessionmaker[Session],
                                                            clock: VirtualClock) -> None:
    now = clock.now()
    with session_scope(session_factory) as s:
        seed_default_region(s, now)
        rep = csvc.seed_demo_contacts(s, now=now, tz=TZ)
        assert rep is not None and rep.status == "applied" and rep.errors == [] and rep.area_check == "geo"
        assert rep.contacts_added == 351
    with session_scope(session_factory) as s:
        assert csvc.seed_demo_contacts(s, now=now, tz=TZ) is None  # idempotent
        assert s.execute(select(func.count(Contact.id))).scalar() == 351
        assert all(c.phone.startswith("+861230000") and c.demo for c in s.execute(select(Contact)).scalars())
        cov = csvc.coverage_report(s, now=now)
        assert cov.coverage.villages_total == 170 and cov.coverage.ok
        # nobody left in one village → it is listed by code and name
        village = "140502001001"
        for d in s.execute(select(Duty).where(Duty.area_code == village)).scalars():
            s.get(Contact, d.contact_id).active = False  # type: ignore[union-attr]
    with session_scope(session_factory) as s:
        out = csvc.coverage_report(s, now=now).as_dict()
        assert out["uncovered_villages"] == [{"code": village, "name": "建设路社区"}] and not out["ok"]


def test_xlsx_import_all_or_nothing_then_skip_invalid(session_factory: sessionmaker[Session],
                                                      clock: VirtualClock) -> None:
    now = clock.now()
    data = xlsx([
        ["姓名", "手机", "备用电话", "职务", "村/社区代码", "双向短信", "开始日期"],
        ["张三", 13900001111, "0356-2021234", "网格员", "140502001001", "是", dt.date(2026, 1, 1)],
        ["李四", "1390000", None, "村长", "140502001002", "否", None],
        ["王五", "13900003333", None, "村长", "140502001099", "否", None],  # unknown village
        ["赵六", "13900004444", None, "街道主任", "140502001000", None, None],
    ])
    with session_scope(session_factory) as s:
        seed_default_region(s, now)
        rep = csvc.import_contacts(s, data=data, filename="名单.xlsx", actor="test", now=now, tz=TZ)
        assert rep.status == "rejected" and {(e.row, e.field) for e in rep.errors} == {(3, "phone"), (4, "area_code")}
    with session_scope(session_factory) as s:
        assert s.execute(select(func.count(Contact.id))).scalar() == 0  # nothing changed
        kept = s.execute(select(ContactImport)).scalar_one()
        assert kept.status == "rejected" and kept.raw == data and len(kept.errors) == 2  # kept for inspection
        rep = csvc.import_contacts(s, data=data, filename="名单.xlsx", actor="test", now=now, tz=TZ,
                                   skip_invalid=True)
        assert rep.status == "partial" and rep.contacts_added == 2 and rep.duties_added == 2
    with session_scope(session_factory) as s:
        zhang = s.execute(select(Contact).where(Contact.name == "张三")).scalar_one()
        assert zhang.phone == "+8613900001111" and zhang.backup_phone == "+863562021234" and zhang.two_way_sms
        assert zhang.duties[0].active_from == dt.datetime(2026, 1, 1, tzinfo=TZ)
        again = csvc.import_contacts(s, data=data, filename="名单.xlsx", actor="test", now=now, tz=TZ,
                                     skip_invalid=True)
        assert again.contacts_added == again.duties_added == 0  # same file twice changes nothing
    with session_scope(session_factory) as s:
        assert s.execute(select(func.count(Duty.id))).scalar() == 2


def test_csv_gb18030_and_header_errors(session_factory: sessionmaker[Session], clock: VirtualClock) -> None:
    now = clock.now()
    text = "姓名,手机,职务,区域代码\n张三,13900001111,镇长,140502001000\n"
    with session_scope(session_factory) as s:
        rep = csvc.import_contacts(s, data=text.encode("gb18030"), filename="a.csv", actor="t", now=now, tz=TZ)
        assert rep.status == "applied" and rep.area_check == "format_only"  # no region loaded: form only
        rep = csvc.import_contacts(s, data="名字,电话\nx,y\n".encode(), filename="b.csv", actor="t", now=now, tz=TZ)
        assert rep.status == "rejected" and {e.field for e in rep.errors} == {"role", "area_code"}


def test_a_monitor_named_by_site_key_is_stored_at_the_site_id(session_factory: sessionmaker[Session],
                                                              clock: VirtualClock) -> None:
    """Runs reach sites by id: a monitor imported by the site's key must stand at that id, or nobody calls him."""
    from geo.models import HazardSite
    from responses.callouts.core import run_places

    now = clock.now()
    with session_scope(session_factory) as s:
        seed_default_region(s, now)
        site = s.execute(select(HazardSite).where(HazardSite.key == "demo-geohazard-1")).scalar_one()
        data = ("姓名,手机,职务,隐患点\n王监测,13900002222,监测员,demo-geohazard-1\n"
                f"赵监测,13900003333,监测员,{site.id}\n").encode()
        rep = csvc.import_contacts(s, data=data, filename="monitors.csv", actor="t", now=now, tz=TZ)
        assert rep.status == "applied" and rep.duties_added == 2, rep.as_dict()
        duties = s.execute(select(Duty).where(Duty.role == "site_monitor")).scalars().all()
        assert {d.place for d in duties} == {f"site:{site.id}"} and {d.site_id for d in duties} == {str(site.id)}
        assert {d.place for d in duties} <= run_places({"sites": [site.id]})["site"]  # a run over the site calls both
