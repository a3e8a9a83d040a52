"""Responsible people and the duties they hold (pure): phone numbers, roles, rows of an import.

A village is covered only when someone who answers for it can actually be reached: an active
person with a working number, holding an active duty there. The rules live here, with no database,
so the importer, the API and the coverage report all judge a row the same way.

Area codes follow the national statistical scheme (12 digits: province 2, city 2, county 2,
township 3, village 3), so the township of a village and the county of a township are read from
the code itself: ``140502100201`` → township ``140502100000`` → county ``140502000000``.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class DutyRole(enum.StrEnum):
    VILLAGE_HEAD = "village_head"  # 村（社区）负责人
    GRID_WORKER = "grid_worker"  # 网格员
    TOWNSHIP_CHIEF = "township_chief"  # 镇（街道）负责人
    DISTRICT_LEADER = "district_leader"  # 区领导
    SITE_MONITOR = "site_monitor"  # 隐患点监测员
    DEPARTMENT_DUTY = "department_duty"  # 部门值班人员: reached when a measure is ordered to the department


ROLE_ZH = {
    DutyRole.VILLAGE_HEAD: "村（社区）负责人",
    DutyRole.GRID_WORKER: "网格员",
    DutyRole.TOWNSHIP_CHIEF: "镇（街道）负责人",
    DutyRole.DISTRICT_LEADER: "区领导",
    DutyRole.SITE_MONITOR: "隐患点监测员",
    DutyRole.DEPARTMENT_DUTY: "部门值班人员",
}

# What people write in the 职务 column, mapped to a role.
ROLE_ALIASES: dict[str, DutyRole] = {
    **{r.value: r for r in DutyRole},
    **{v: k for k, v in ROLE_ZH.items()},
    "村长": DutyRole.VILLAGE_HEAD, "村支书": DutyRole.VILLAGE_HEAD, "村主任": DutyRole.VILLAGE_HEAD,
    "村负责人": DutyRole.VILLAGE_HEAD, "社区主任": DutyRole.VILLAGE_HEAD, "社区负责人": DutyRole.VILLAGE_HEAD,
    "社区书记": DutyRole.VILLAGE_HEAD, "村书记": DutyRole.VILLAGE_HEAD,
    "网格员": DutyRole.GRID_WORKER, "网格长": DutyRole.GRID_WORKER,
    "镇长": DutyRole.TOWNSHIP_CHIEF, "乡长": DutyRole.TOWNSHIP_CHIEF, "街道主任": DutyRole.TOWNSHIP_CHIEF,
    "镇负责人": DutyRole.TOWNSHIP_CHIEF, "街道负责人": DutyRole.TOWNSHIP_CHIEF, "镇党委书记": DutyRole.TOWNSHIP_CHIEF,
    "街道书记": DutyRole.TOWNSHIP_CHIEF,
    "区领导": DutyRole.DISTRICT_LEADER, "区长": DutyRole.DISTRICT_LEADER, "副区长": DutyRole.DISTRICT_LEADER,
    "监测员": DutyRole.SITE_MONITOR, "隐患点监测员": DutyRole.SITE_MONITOR, "群测群防员": DutyRole.SITE_MONITOR,
    **dict.fromkeys(("部门值班", "部门值班员", "值班员", "值班人员", "部门负责人", "部门联络员", "联络员"),
                    DutyRole.DEPARTMENT_DUTY),
}

AREA_LEVEL_OF_ROLE = {
    DutyRole.VILLAGE_HEAD: "village",
    DutyRole.GRID_WORKER: "village",
    DutyRole.TOWNSHIP_CHIEF: "township",
    DutyRole.DISTRICT_LEADER: "district",
    DutyRole.SITE_MONITOR: "site",
    DutyRole.DEPARTMENT_DUTY: "department",
}

# Mainland mobile numbers: 1[3-9]x xxxx xxxx. The 12x block is never allocated to subscribers,
# which is why the demo list uses +86 123 0000 xxxx: well-formed, yet reaches nobody.
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CN_RESERVED_DEMO = re.compile(r"^12\d{9}$")
_CN_LANDLINE = re.compile(r"^0\d{9,11}$")  # area code + number, e.g. 0356 xxxxxxx
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_AREA_CODE = re.compile(r"^\d{12}$")


class PhoneError(ValueError):
    def __init__(self, raw: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.raw, self.zh, self.en = raw, zh, en


def normalize_phone(raw: str, *, allow_demo: bool = True) -> str:
    """A number as people write it (``139 0356 1234``, ``0356-2021234``, ``+86…``) → E.164."""
    s = str(raw).strip()
    if not s:
        raise PhoneError(raw, "号码为空", "empty number")
    cleaned = re.sub(r"[\s\-()（）.]", "", s)
    if not cleaned.isascii():  # "\d" and isdigit() take Arabic-Indic or full-width digits no phone network dials
        raise PhoneError(raw, f"号码含非数字字符：{raw}", f"number has non-digits: {raw}")
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if cleaned.startswith("+86"):
        national = cleaned[3:]
    elif cleaned.startswith("+"):
        if not _E164.match(cleaned):
            raise PhoneError(raw, f"号码格式不对：{raw}", f"not an E.164 number: {raw}")
        return cleaned
    elif cleaned.startswith("86") and len(cleaned) == 13:
        national = cleaned[2:]
    else:
        national = cleaned
    if not national.isdigit():
        raise PhoneError(raw, f"号码含非数字字符：{raw}", f"number has non-digits: {raw}")
    if _CN_MOBILE.match(national) or _CN_LANDLINE.match(national):
        if national.startswith("0"):
            national = national[1:]
        return "+86" + national
    if allow_demo and _CN_RESERVED_DEMO.match(national):
        return "+86" + national
    raise PhoneError(raw, f"不是有效的手机或座机号码：{raw}", f"not a valid mainland mobile or landline number: {raw}")


def is_demo_number(e164: str) -> bool:
    return e164.startswith("+8612") and len(e164) == 14


def is_area_code(code: str) -> bool:
    return bool(_AREA_CODE.match(code))


def township_of(code: str) -> str:
    return code[:9] + "000"


def county_of(code: str) -> str:
    return code[:6] + "000000"


def area_level(code: str) -> str:
    """district (county) / township / village, read from the trailing zeros of a 12-digit code."""
    if code[6:] == "000000":
        return "district"
    if code[9:] == "000":
        return "township"
    return "village"


def role_of(text: str) -> DutyRole | None:
    return ROLE_ALIASES.get(text.strip().lower()) or ROLE_ALIASES.get(text.strip())


def active_at(start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime) -> bool:
    return (start is None or start <= now) and (end is None or now < end)


# ---------------------------------------------------------------------------------------------- departments

# How a plan or a person lists several units in one text: "区住建局、区能源局".
_UNIT_SEPARATORS = re.compile(r"[、，,；;/／\s]+")


def departments_named(text: str, departments: Mapping[str, str]) -> list[str]:
    """The department codes a unit text names, in the order it names them (the first one leads).

    ``departments`` maps each department's name and code to its code. A part of the text names a
    department when it is the code or the name, or contains the name: a plan writes "区教育局" or
    "区公安局交警大队" where the register says 教育局 and 公安局, and the longest name contained
    wins, so 交通运输局 is not read as some shorter name inside it. Parts that name no department
    (各镇（街道）, a bureau not in the register) are left out.
    """
    names = sorted((k for k in departments if len(k) >= 2), key=len, reverse=True)
    out: list[str] = []
    for part in _UNIT_SEPARATORS.split(text.strip()):
        if not part:
            continue
        code = departments.get(part) or next((departments[n] for n in names if n in part), None)
        if code is not None and code not in out:
            out.append(code)
    return out


def department_code(text: str, departments: Mapping[str, str]) -> str | None:
    """The one department a duty names ("区教育局", "教育局" or "education"); None when it names none
    or several, because a duty answers for exactly one department."""
    found = departments_named(text, departments)
    return found[0] if len(found) == 1 else None


def place_of(role: DutyRole, area_code: str | None, site: str | None, department: str | None) -> str:
    """The duty's place, which makes (person, role, place) unique: an area code, ``site:<id>`` or
    ``dept:<code>``."""
    if role is DutyRole.DEPARTMENT_DUTY:
        return f"dept:{department}"
    return area_code or f"site:{site}"


# ---------------------------------------------------------------------------------------------- import rows

COLUMN_ALIASES: dict[str, str] = {
    "姓名": "name", "name": "name", "名字": "name",
    "手机": "phone", "手机号": "phone", "手机号码": "phone", "电话": "phone", "phone": "phone", "mobile": "phone",
    "备用电话": "backup_phone", "备用手机": "backup_phone", "座机": "backup_phone", "backup_phone": "backup_phone",
    "职务": "role", "角色": "role", "role": "role",
    "村/社区代码": "area_code", "村社区代码": "area_code", "区域代码": "area_code", "行政区划代码": "area_code",
    "area_code": "area_code", "代码": "area_code",
    "隐患点": "site", "隐患点编号": "site", "site": "site", "site_id": "site",
    "部门": "department", "所属部门": "department", "责任部门": "department", "department": "department",
    "双向短信": "two_way_sms", "可回复短信": "two_way_sms", "two_way_sms": "two_way_sms",
    "开始日期": "active_from", "起始日期": "active_from", "active_from": "active_from",
    "结束日期": "active_to", "截止日期": "active_to", "active_to": "active_to",
    "备注": "note", "note": "note",
}
REQUIRED_COLUMNS = ("name", "phone", "role")
_TRUE = {"是", "y", "yes", "true", "1", "可", "支持", "√"}
_FALSE = {"", "否", "n", "no", "false", "0", "不支持", "×"}


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based line in the file, header = 1
    field: str
    message: str  # zh
    message_en: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message, "message_en": self.message_en}


@dataclass(frozen=True)
class ContactRow:
    """One valid row: a person and one duty they hold."""

    row: int
    name: str
    phone: str
    backup_phone: str | None
    role: DutyRole
    area_code: str | None
    site: str | None
    two_way_sms: bool
    active_from: dt.datetime | None
    active_to: dt.datetime | None
    note: str = ""
    department: str | None = None  # the department's code, for a department duty

    @property
    def person_key(self) -> tuple[str, str]:
        return (self.name, self.phone)

    @property
    def place(self) -> str:
        return place_of(self.role, self.area_code, self.site, self.department)

    @property
    def duty_key(self) -> tuple[str, str, str, str]:
        return (self.name, self.phone, self.role.value, self.place)


@dataclass
class ParsedRows:
    rows: list[ContactRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total: int = 0

    @property
    def bad_rows(self) -> set[int]:
        return {e.row for e in self.errors}


def map_header(header: Iterable[Any]) -> tuple[dict[int, str], list[RowError]]:
    """Column index → field; unknown columns are ignored, missing required ones are errors."""
    mapping: dict[int, str] = {}
    for i, h in enumerate(header):
        key = COLUMN_ALIASES.get(str(h or "").strip()) or COLUMN_ALIASES.get(str(h or "").strip().lower())
        if key and key not in mapping.values():
            mapping[i] = key
    errors = [
        RowError(1, col, f"缺少必需的列“{zh}”", f"missing required column {col!r}")
        for col, zh in (("name", "姓名"), ("phone", "手机"), ("role", "职务"))
        if col not in mapping.values()
    ]
    if not {"area_code", "site", "department"} & set(mapping.values()):
        errors.append(RowError(1, "area_code", "缺少“村/社区代码”（或“区域代码”“隐患点”“部门”）列",
                               "missing an area code (or site, or department) column"))
    return mapping, errors


def _date(value: Any, tz: dt.tzinfo) -> dt.datetime | None:
    if value is None or str(value).strip() == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=tz)
    text = str(value).strip().replace("/", "-").replace(".", "-")
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_rows(records: Iterable[Mapping[str, Any]], *, known_areas: Mapping[str, str] | None,
               known_sites: Mapping[str, str] | None = None, tz: dt.tzinfo = dt.UTC,
               first_row: int = 2, known_departments: Mapping[str, str] | None = None) -> ParsedRows:
    """Validate every row and report every problem; duplicates within the file are errors.

    ``known_areas`` maps area code → level (township, village, district); None skips the check
    (no area register loaded), which the caller reports. ``known_departments`` maps department
    names and codes → code; None keeps a department as written (no register to read it against).
    """
    out = ParsedRows()
    seen: dict[tuple[str, str, str, str], int] = {}
    for offset, rec in enumerate(records):
        rowno = first_row + offset
        if all(_cell(v) == "" for v in rec.values()):
            continue
        out.total += 1
        errs: list[RowError] = []
        name = _cell(rec.get("name"))
        if not name:
            errs.append(RowError(rowno, "name", "姓名为空", "name is empty"))
        phone = backup = None
        try:
            phone = normalize_phone(_cell(rec.get("phone")))
        except PhoneError as exc:
            errs.append(RowError(rowno, "phone", exc.zh, exc.en))
        if _cell(rec.get("backup_phone")):
            try:
                backup = normalize_phone(_cell(rec.get("backup_phone")))
            except PhoneError as exc:
                errs.append(RowError(rowno, "backup_phone", "备用电话：" + exc.zh, "backup: " + exc.en))
        role = role_of(_cell(rec.get("role")))
        if role is None:
            errs.append(RowError(rowno, "role", f"不认识的职务“{_cell(rec.get('role'))}”",
                                 f"unknown role {_cell(rec.get('role'))!r}"))
        area = _cell(rec.get("area_code")) or None
        site = _cell(rec.get("site")) or None
        dept_text = _cell(rec.get("department")) or None
        dept = resolve_department(dept_text, known_departments)
        if role is not None:
            errs.extend(check_place(rowno, role, area, site, known_areas, known_sites, department=dept_text,
                                    known_departments=known_departments))
        two_way_raw = _cell(rec.get("two_way_sms")).lower()
        two_way = False
        if two_way_raw in _TRUE:
            two_way = True
        elif two_way_raw not in _FALSE:
            errs.append(RowError(rowno, "two_way_sms", f"“双向短信”应填 是/否，得到“{two_way_raw}”",
                                 f"two_way_sms must be yes/no, got {two_way_raw!r}"))
        start = end = None
        for fld, zh in (("active_from", "开始日期"), ("active_to", "结束日期")):
            try:
                val = _date(rec.get(fld), tz)
            except ValueError:
                errs.append(RowError(rowno, fld, f"{zh}格式不对（应为 YYYY-MM-DD）", f"{fld} is not a date"))
                continue
            if fld == "active_from":
                start = val
            else:
                end = val
        if start and end and end <= start:
            errs.append(RowError(rowno, "active_to", "结束日期早于开始日期", "active_to is before active_from"))
        if errs or phone is None or role is None:
            out.errors.extend(errs)
            continue
        row = ContactRow(rowno, name, phone, backup if backup != phone else None, role, area, site, two_way,
                         start, end, _cell(rec.get("note")), dept if role is DutyRole.DEPARTMENT_DUTY else None)
        if row.duty_key in seen:
            out.errors.append(RowError(rowno, "row", f"与第 {seen[row.duty_key]} 行重复（同一人、同一职务、同一区域）",
                                       f"duplicate of row {seen[row.duty_key]} (same person, role and area)"))
            continue
        seen[row.duty_key] = rowno
        out.rows.append(row)
    _check_people(out)
    return out


def resolve_department(text: str | None, known: Mapping[str, str] | None) -> str | None:
    """The code a duty's department text stands for; without a register the text is kept as written."""
    if not text:
        return None
    if known is None:
        return text
    return department_code(text, known)


def check_place(rowno: int, role: DutyRole, area: str | None, site: str | None,
                known_areas: Mapping[str, str] | None, known_sites: Mapping[str, str] | None, *,
                department: str | None = None, known_departments: Mapping[str, str] | None = None,
                ) -> list[RowError]:
    """Where a duty is held must fit its role: a village role a village code, a monitor a site, a
    department duty one known department and nothing else (a department answers district-wide)."""
    want = AREA_LEVEL_OF_ROLE[role]
    if want == "department":
        if not department:
            return [RowError(rowno, "department", "部门值班人员需填写“部门”", "a department duty needs a department")]
        if resolve_department(department, known_departments) is None:
            return [RowError(rowno, "department", f"未知部门“{department}”（不在部门列表中，或同时写了几个部门）",
                             f"unknown department {department!r} (not in the list, or several named)")]
        if area or site:
            return [RowError(rowno, "area_code", "部门值班人员不填区域代码或隐患点（部门对全区负责）",
                             "a department duty takes no area code or site (the department answers district-wide)")]
        return []
    if department:
        return [RowError(rowno, "department", f"只有部门值班人员填写“部门”，{ROLE_ZH[role]}不填",
                         f"only a department duty has a department, not a {role.value}")]
    if want == "site":
        if not site:
            return [RowError(rowno, "site", "监测员需填写“隐患点”", "a site monitor needs a site")]
        if known_sites is not None and site not in known_sites:
            return [RowError(rowno, "site", f"未知隐患点“{site}”", f"unknown site {site!r}")]
        return []
    if not area:
        return [RowError(rowno, "area_code", "缺少区域代码", "area code is empty")]
    if not is_area_code(area):
        return [RowError(rowno, "area_code", f"区域代码应为 12 位数字：{area}", f"area code must be 12 digits: {area}")]
    if known_areas is not None and area not in known_areas:
        return [RowError(rowno, "area_code", f"未知区域代码 {area}（不在行政区划中）", f"unknown area code {area}")]
    level = known_areas.get(area) if known_areas is not None else area_level(area)
    if level != want:
        got = _LEVEL_ZH.get(level or "", "其他")
        return [RowError(rowno, "area_code", f"{ROLE_ZH[role]}应对应{_LEVEL_ZH[want]}代码，{area} 是{got}",
                         f"{role.value} needs a {want} code; {area} is a {level}")]
    return []


_LEVEL_ZH = {"district": "区（县）", "township": "镇（街道）", "village": "村（社区）", "grid": "网格"}


def _check_people(parsed: ParsedRows) -> None:
    """One phone number belongs to one person: two names on one number is an error for both."""
    by_phone: dict[str, str] = {}
    clash: list[ContactRow] = []
    for r in parsed.rows:
        other = by_phone.setdefault(r.phone, r.name)
        if other != r.name:
            clash.append(r)
    for r in clash:
        parsed.errors.append(RowError(r.row, "phone", f"号码 {r.phone} 已属于“{by_phone[r.phone]}”",
                                      f"number {r.phone} already belongs to {by_phone[r.phone]!r}"))
    bad = {r.row for r in clash}
    parsed.rows = [r for r in parsed.rows if r.row not in bad]


# ---------------------------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class DutyView:
    """What coverage needs to know about one duty (detached from the database)."""

    contact_id: int
    role: DutyRole
    area_code: str | None
    reachable: bool  # the person is active, the duty is active, a number exists


@dataclass
class Coverage:
    villages_total: int
    uncovered_villages: list[str]  # codes
    townships_without_chief: list[str]
    district_leaders: int

    @property
    def ok(self) -> bool:
        return not self.uncovered_villages and not self.townships_without_chief and self.district_leaders > 0


VILLAGE_ROLES = frozenset({DutyRole.VILLAGE_HEAD, DutyRole.GRID_WORKER})


def coverage(villages: Iterable[str], townships: Iterable[str], duties: Iterable[DutyView]) -> Coverage:
    covered: set[str] = set()
    chiefs: set[str] = set()
    leaders = 0
    for d in duties:
        if not d.reachable:
            continue
        if d.role in VILLAGE_ROLES and d.area_code:
            covered.add(d.area_code)
        elif d.role is DutyRole.TOWNSHIP_CHIEF and d.area_code:
            chiefs.add(d.area_code)
        elif d.role is DutyRole.DISTRICT_LEADER:
            leaders += 1
    vs = sorted(set(villages))
    return Coverage(len(vs), [v for v in vs if v not in covered], sorted(set(townships) - chiefs), leaders)
