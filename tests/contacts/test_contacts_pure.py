"""Pure contact rules: phone numbers, roles, row validation, coverage."""

from __future__ import annotations

import datetime as dt

import pytest

from responses.contacts.core import (
    DutyRole,
    DutyView,
    PhoneError,
    coverage,
    is_demo_number,
    map_header,
    normalize_phone,
    parse_rows,
    role_of,
    township_of,
)

AREAS = {"140502001001": "village", "140502001002": "village", "140502001000": "township",
         "140502000000": "district"}


@pytest.mark.parametrize(("raw", "want"), [
    ("139 0356 1234", "+8613903561234"), ("+86 139-0356-1234", "+8613903561234"), ("8613903561234", "+8613903561234"),
    ("0086 13903561234", "+8613903561234"), ("0356-2021234", "+863562021234"), ("+86 123 0000 0001", "+8612300000001"),
    ("+1 415 555 0100", "+14155550100"),
])
def test_phone_normalized_to_e164(raw: str, want: str) -> None:
    assert normalize_phone(raw) == want


@pytest.mark.parametrize("raw", ["", "12345", "1390356123", "139035612345", "abc", "+86 1x9 0356 1234", "+0123",
                                 "١٣٩٠٣٥٦١٢٣٤", "１３９０３５６１２３４", "+86 139０3561234"])
def test_bad_phones_are_refused_with_reasons(raw: str) -> None:
    with pytest.raises(PhoneError) as exc:
        normalize_phone(raw)
    assert exc.value.zh and exc.value.en


def test_demo_block_only_when_allowed() -> None:
    assert is_demo_number(normalize_phone("12300000001"))
    with pytest.raises(PhoneError):
        normalize_phone("12300000001", allow_demo=False)


def test_roles_and_codes() -> None:
    assert role_of("网格员") is DutyRole.GRID_WORKER and role_of("村长") is DutyRole.VILLAGE_HEAD
    assert role_of("镇（街道）负责人") is DutyRole.TOWNSHIP_CHIEF and role_of("village_head") is DutyRole.VILLAGE_HEAD
    assert role_of("厨师") is None
    assert township_of("140502100201") == "140502100000"


def test_header_needs_name_phone_role_and_a_place() -> None:
    mapping, errors = map_header(["姓名", "手机", "备用电话", "职务", "村/社区代码", "备注", "其他"])
    assert sorted(mapping.values()) == ["area_code", "backup_phone", "name", "note", "phone", "role"]
    assert errors == []
    _, errors = map_header(["名字", "电话"])
    assert {e.field for e in errors} == {"role", "area_code"}


def rec(**kw: str) -> dict[str, str]:
    base = {"name": "张三", "phone": "13900001111", "role": "网格员", "area_code": "140502001001"}
    base.update(kw)
    return base


def test_rows_report_every_problem_with_row_numbers() -> None:
    parsed = parse_rows([
        rec(),
        rec(name="李四", phone="12345"),
        rec(name="王五", phone="13900002222", area_code="140502009999"),
        rec(),  # duplicate of the first
        rec(name="赵六", phone="13900003333", role="村长", area_code="140502001000"),  # township code, village role
        rec(name="钱七", phone="13900001111", area_code="140502001002"),  # another person on the same number
        rec(name="孙八", phone="13900004444", role="司机"),
        {"name": "", "phone": "", "role": "", "area_code": ""},  # blank line: skipped, not an error
        rec(name="周九", phone="13900005555", two_way_sms="也许", active_from="2026-13-01"),
    ], known_areas=AREAS, tz=dt.UTC)
    by_row = {(e.row, e.field) for e in parsed.errors}
    assert by_row == {(3, "phone"), (4, "area_code"), (5, "row"), (6, "area_code"), (7, "phone"), (8, "role"),
                      (10, "two_way_sms"), (10, "active_from")}
    assert [r.row for r in parsed.rows] == [2]
    assert parsed.total == 8


def test_unknown_area_checked_only_when_register_given() -> None:
    parsed = parse_rows([rec(area_code="140599001001")], known_areas=None)
    assert parsed.errors == [] and parsed.rows[0].area_code == "140599001001"


def test_site_monitor_needs_a_site() -> None:
    parsed = parse_rows([{"name": "吴十", "phone": "13900006666", "role": "监测员", "site": ""}], known_areas=AREAS)
    assert parsed.errors[0].field == "site"
    parsed = parse_rows([{"name": "吴十", "phone": "13900006666", "role": "监测员", "site": "GH-01"}],
                        known_areas=AREAS, known_sites={"GH-01"})
    assert parsed.rows[0].site == "GH-01"


def test_coverage_lists_villages_without_reachable_person() -> None:
    duties = [
        DutyView(1, DutyRole.GRID_WORKER, "140502001001", True),
        DutyView(2, DutyRole.VILLAGE_HEAD, "140502001002", False),  # inactive: does not count
        DutyView(3, DutyRole.TOWNSHIP_CHIEF, "140502001000", True),
    ]
    cov = coverage(["140502001001", "140502001002", "140502001003"], ["140502001000", "140502002000"], duties)
    assert cov.uncovered_villages == ["140502001002", "140502001003"]
    assert cov.townships_without_chief == ["140502002000"] and cov.district_leaders == 0 and not cov.ok
