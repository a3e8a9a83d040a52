"""Who is called for a run, what they are told, and what their answer means (pure).

One person answering for several villages gets ONE callout naming them all; a person with duties
on several tiers is called once, on the lowest tier (the one nearest the ground), and the
escalation ladder climbs from there. Answers are read leniently — a basic phone's reply is
whatever the person typed — but any reply at all proves the message reached them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from responses.callouts.escalation import RANK_OF_TIER
from responses.contacts.core import area_level, is_area_code, township_of


class AnswerChannel(enum.StrEnum):
    KEYPRESS = "keypress"  # voice call, a digit pressed
    SMS_REPLY = "sms_reply"  # where the number supports two-way SMS
    WEB = "web"  # a confirmation page, for channels that allow links
    DUTY_OFFICER = "duty_officer"  # 电话确认: the duty officer phoned and enters it with a note


ANSWER_CHANNEL_ZH = {
    AnswerChannel.KEYPRESS: "语音按键",
    AnswerChannel.SMS_REPLY: "短信回复",
    AnswerChannel.WEB: "网页确认",
    AnswerChannel.DUTY_OFFICER: "电话确认（值班员录入）",
}


class AnswerKind(enum.StrEnum):
    RECEIVED = "received"  # 1 = 收到
    NEED_SUPPORT = "need_support"  # 2 = 需要支援


ANSWER_KIND_ZH = {AnswerKind.RECEIVED: "收到", AnswerKind.NEED_SUPPORT: "需要支援"}

# Which duty role sits on which tier of a plan's call list.
TIER_OF_ROLE = {
    "site_monitor": "site",
    "village_head": "village",
    "grid_worker": "village",
    "township_chief": "township",
    "district_leader": "district",
}


@dataclass(frozen=True)
class DutyRef:
    """One active duty of a reachable person."""

    contact_id: int
    role: str
    place: str  # area code or site:<id>


@dataclass
class PlannedCallout:
    contact_id: int
    role: str
    tier: str
    places: list[str] = field(default_factory=list)

    @property
    def rank(self) -> int:
        return RANK_OF_TIER[self.tier]


def run_places(areas: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """The places a run's areas make callable on each tier: the townships of affected villages are
    affected too, and sites are named ``site:<id>``."""
    villages = {str(v) for v in areas.get("villages") or []}
    townships = {str(t) for t in areas.get("townships") or []} | {township_of(v) for v in villages}
    sites = {f"site:{s}" for s in areas.get("sites") or []}
    return {"village": villages, "township": townships, "site": sites}


def plan_callouts(tiers: Mapping[str, Sequence[str]], areas: Mapping[str, Sequence[str]],
                  duties: Iterable[DutyRef]) -> list[PlannedCallout]:
    """Group the duties the plan's tiers call into one callout per person (sorted, deterministic)."""
    places = run_places(areas)
    wanted_roles = {(tier, role) for tier, roles in tiers.items() for role in roles}
    by_person: dict[int, PlannedCallout] = {}
    for d in duties:
        tier = TIER_OF_ROLE.get(d.role)
        if tier is None or (tier, d.role) not in wanted_roles:
            continue
        if tier != "district" and d.place not in places[tier]:
            continue
        pc = by_person.get(d.contact_id)
        if pc is None:
            pc = by_person[d.contact_id] = PlannedCallout(d.contact_id, d.role, tier)
        elif RANK_OF_TIER[tier] < pc.rank:
            pc.tier, pc.role = tier, d.role
        if d.place not in pc.places:
            pc.places.append(d.place)
    out = sorted(by_person.values(), key=lambda p: (p.rank, p.contact_id))
    for p in out:
        p.places.sort()
    return out


def site_of(place: str) -> str | None:
    """The site id in a ``site:<id>`` place; None for an area code."""
    return place.removeprefix("site:") if place.startswith("site:") else None


def step_areas(step: str, places: Iterable[str], site_areas: Mapping[str, str | None]) -> list[str]:
    """The area codes whose people answer at ladder step ``step`` for a callout about ``places``.

    A site stands where the geo register puts it (``site_areas``: site id or key → its village or
    township code), so a monitor who does not answer escalates to the village head of the site's
    village, then to the chief of its township, as the plan's ladder ``[site, village, township]``
    says. An area place is already a village or a township: only the township above it is a step
    up (the village step is the same rank as a village).
    """
    out: set[str] = set()
    for p in places:
        site = site_of(p)
        code = site_areas.get(site) if site is not None else p
        if not code or not is_area_code(code):
            continue
        level = area_level(code)
        if step == "township" and level in ("village", "township"):
            out.add(township_of(code))
        elif step == "village" and site is not None and level == "village":
            out.add(code)
    return sorted(out)


# ---------------------------------------------------------------------------------------------- answers

_SUPPORT = re.compile(r"(^|\D)2(\D|$)|支援|求助|帮助|救援|需要人|help", re.IGNORECASE)
_NUMBER_OF_PEOPLE = re.compile(r"(?:转移|撤离|疏散|evacuated?)\D{0,4}(\d{1,6})\s*(?:人|名|people)?", re.IGNORECASE)
_BARE_COUNT = re.compile(r"(\d{1,6})\s*(?:人|名)")


@dataclass(frozen=True)
class ParsedAnswer:
    kind: AnswerKind
    report: dict[str, Any]


def parse_keypress(digits: str) -> ParsedAnswer | None:
    """1 = 收到, 2 = 需要支援; anything else is not an answer (the call asks again)."""
    d = (digits or "").strip()[:1]
    if d == "1":
        return ParsedAnswer(AnswerKind.RECEIVED, {})
    if d == "2":
        return ParsedAnswer(AnswerKind.NEED_SUPPORT, {})
    return None


def parse_reply(text: str) -> ParsedAnswer:
    """An SMS reply. Any reply proves receipt; "2", 支援 or 求助 asks for support; "转移35人"
    reports the people evacuated."""
    t = (text or "").strip()
    report: dict[str, Any] = {}
    m = _NUMBER_OF_PEOPLE.search(t) or _BARE_COUNT.search(t)
    if m:
        report["evacuated"] = int(m.group(1))
    body_for_kind = _NUMBER_OF_PEOPLE.sub(" ", t) if m else t
    kind = AnswerKind.NEED_SUPPORT if _SUPPORT.search(body_for_kind) else AnswerKind.RECEIVED
    return ParsedAnswer(kind, report)


# ---------------------------------------------------------------------------------------------- texts

_LEVEL_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
_HAZARD_ZH = {"weather": "气象灾害", "flood": "洪涝灾害", "earthquake": "地震", "geohazard": "地质灾害",
              "forest_fire": "森林火灾"}


def place_names(places: Sequence[str], names: Mapping[str, str], limit: int = 4) -> str:
    shown = [names.get(p, p.removeprefix("site:")) for p in places[:limit]]
    more = f"等{len(places)}处" if len(places) > limit else ""
    return "、".join(shown) + more


def call_text(*, channel: str, hazard: str, level: str, event: str | None, places: Sequence[str],
              names: Mapping[str, str], answer_minutes: int, two_way_sms: bool, escalated_from: str = "",
              drill: bool = False) -> str:
    """The words of one try. No links (China bans them in SMS); short enough for few segments."""
    prefix = "【演练】" if drill else ""
    what = f"{_LEVEL_ZH.get(level, level)}{event or _HAZARD_ZH.get(hazard, hazard)}预警"
    where = place_names(places, names)
    if escalated_from:
        body = f"{prefix}{what}：{escalated_from}未在时限内应答，请立即督促并组织{where}做好防范。"
    else:
        body = f"{prefix}{what}：请立即组织{where}做好防范。"
    if channel == "voice":
        return body + f"收到请按1，需要支援请按2。请在{answer_minutes}分钟内应答。"
    if two_way_sms:
        return body + f"收到请回复1，需要支援回复2，{answer_minutes}分钟内。"
    return body + f"请{answer_minutes}分钟内接听语音电话按键确认，或致电区应急值班室。"
