"""Departments hold duties: a contact can be 区教育局's duty person, imported from a contact list
(a 部门 column) or created through the contacts API, stored by the department's code."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from responses.contacts import service as csvc
from responses.contacts.core import DutyRole, department_code, departments_named, map_header, parse_rows
from responses.contacts.models import Contact, Duty

TZ = dt.timezone(dt.timedelta(hours=8))
DEPTS = {"教育局": "education", "education": "education", "公安局": "public_security",
         "public_security": "public_security", "交通运输局": "transport", "transport": "transport",
         "住建局": "housing", "housing": "housing", "能源局": "energy", "energy": "energy"}


@pytest.mark.parametrize(("unit", "want"), [
    ("区教育局", ["education"]),
    ("区公安局交警大队、区交通运输局", ["public_security", "transport"]),  # the first named leads
    ("区住建局、区能源局", ["housing", "energy"]),
    ("各镇（街道）、区文旅局", []),  # townships, and a bureau not in the register
    ("education", ["education"]),
])
def test_unit_texts_name_departments(unit: str, want: list[str]) -> None:
    assert departments_named(unit, DEPTS) == want


def test_a_duty_names_exactly_one_department() -> None:
    assert department_code("区教育局", DEPTS) == "education"
    assert department_code("区住建局、区能源局", DEPTS) is None
    assert department_code("区文旅局", DEPTS) is None


def test_department_rows_need_one_known_department_and_no_place() -> None:
    mapping, errors = map_header(["姓名", "手机", "职务", "部门"])  # a department list needs no area column
    assert errors == [] and sorted(mapping.values()) == ["department", "name", "phone", "role"]
    parsed = parse_rows([
        {"name": "李老师", "phone": "13900000002", "role": "部门值班员", "department": "区教育局"},
        {"name": "赵警官", "phone": "13900000003", "role": "值班人员", "department": ""},
        {"name": "钱科长", "phone": "13900000004", "role": "部门值班", "department": "区文旅局"},
        {"name": "孙科长", "phone": "13900000005", "role": "部门值班", "department": "教育局",
         "area_code": "140502001001"},
        {"name": "周网格", "phone": "13900000006", "role": "网格员", "department": "教育局",
         "area_code": "140502001001"},
    ], known_areas=None, known_departments=DEPTS)
    assert {(e.row, e.field) for e in parsed.errors} == {(3, "department"), (4, "department"), (5, "area_code"),
                                                         (6, "department")}
    [row] = parsed.rows
    assert row.role is DutyRole.DEPARTMENT_DUTY and row.department == "education" and row.place == "dept:education"


def test_import_stores_the_department_by_code(session_factory: sessionmaker[Session], clock: VirtualClock) -> None:
    now = clock.now()
    text = ("姓名,手机,职务,部门,村/社区代码\n"
            "李老师,13900000002,部门值班员,区教育局,\n"
            "赵警官,13900000003,部门值班员,public_security,\n"
            "张三,13900001111,网格员,,140502001001\n")
    with session_scope(session_factory) as s:
        rep = csvc.import_contacts(s, data=text.encode(), filename="duty.csv", actor="t", now=now, tz=TZ)
        assert rep.status == "applied" and rep.errors == [] and rep.duties_added == 3
    with session_scope(session_factory) as s:
        duties = {d.place: d for d in s.execute(select(Duty).where(Duty.role == "department_duty")).scalars()}
        assert sorted(duties) == ["dept:education", "dept:public_security"]
        assert duties["dept:education"].department == "education" and duties["dept:education"].area_code is None
        again = csvc.import_contacts(s, data=text.encode(), filename="duty.csv", actor="t", now=now, tz=TZ)
        assert again.status == "unchanged"  # a department duty is matched like any other on re-import
        teacher = s.execute(select(Contact).where(Contact.phone == "+8613900000002")).scalar_one()
        assert csvc.contact_dict(teacher)["duties"][0]["department"] == "education"


def test_contacts_api_creates_a_department_duty(client: TestClient, login: Any) -> None:
    admin = login("admin")
    body = {"name": "李老师", "phone": "13900000002",
            "duties": [{"role": "department_duty", "department": "区教育局"}]}
    r = client.post("/contacts", json=body, headers=admin)
    assert r.status_code == 201, r.text
    [duty] = r.json()["duties"]
    assert duty["role"] == "department_duty" and duty["department"] == "education" and duty["reachable"]
    cid = r.json()["id"]
    r = client.post(f"/contacts/{cid}/duties", json={"role": "department_duty", "department": "区文旅局"},
                    headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_duty"
    assert "未知部门" in r.json()["error"]["message"]
    r = client.post(f"/contacts/{cid}/duties", json={"role": "department_duty", "department": "education"},
                    headers=admin)
    assert r.status_code == 409  # the same department twice is the same duty
    r = client.post(f"/contacts/{cid}/duties", json={"role": "department_duty", "department": "公安局"},
                    headers=admin)
    assert r.status_code == 201 and sorted(d["department"] for d in r.json()["duties"]) == [
        "education", "public_security"]
