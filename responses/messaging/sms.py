"""SMS text (pure): Chinese templates, segment counting, and no links to mainland numbers.

Chinese text goes out as UCS-2: 70 UTF-16 units fit one SMS, 67 per part once it is split
(the rest carries the concatenation header). Pure GSM-7 text fits 160 / 153, with the extension
characters (``{}[]~^|\\€``) costing two septets. An alert that needs three parts costs three times as
much, arrives out of order on some handsets and is slower, so every kind of text has a short form
that fits one segment. Links in SMS to +86 numbers are banned and get messages blocked: they
are stripped from the text (and reported), never sent. Domestic gateways send pre-registered
templates by id: the ids are configuration, passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

UCS2_SINGLE, UCS2_PART = 70, 67
GSM7_SINGLE, GSM7_PART = 160, 153


@dataclass(frozen=True)
class Segments:
    encoding: str  # gsm7 | ucs2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # capacity of each segment at this length
    remaining: int  # units still free in the last segment


def _units(ch: str, encoding: str) -> int:
    if encoding == "gsm7":
        return 2 if ch in GSM7_EXTENDED else 1
    return 2 if ord(ch) > 0xFFFF else 1  # outside the BMP: a surrogate pair


def count_segments(text: str) -> Segments:
    """How many SMS parts ``text`` takes. A character is never split across parts (an escape
    pair or a surrogate pair moves whole to the next part), as handsets and gateways do."""
    encoding = "gsm7" if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text) else "ucs2"
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    units = sum(_units(c, encoding) for c in text)
    if units <= single:
        return Segments(encoding, units, 1 if text else 0, single, single - units)
    segments, used = 1, 0
    for c in text:
        u = _units(c, encoding)
        if used + u > part:
            segments += 1
            used = 0
        used += u
    return Segments(encoding, units, segments, part, part - used)


_URL = re.compile(
    r"(?i)\b(?:https?://|ftp://|www\.)\S+"
    r"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:cn|com|net|org|gov|edu|info|io|me|cc|top|xyz|site|link|ly|gl)"
    r"(?::\d+)?(?:/\S*)?"
)


def find_links(text: str) -> list[str]:
    return [m.group(0) for m in _URL.finditer(text)]


def strip_links(text: str) -> str:
    cleaned = _URL.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()


def is_mainland(number: str) -> bool:
    return number.startswith("+86")


class SmsTemplateError(ValueError):
    """A template that does not render (unknown kind, missing parameter)."""


# Full and one-segment short forms. Parameters: areas (names joined), level (e.g. 红色), hazard,
# deadline (local HH:MM), duty_phone, person, note, count.
TEMPLATES: dict[str, dict[str, str]] = {
    "callout": {
        "full": "【叫应】{{ person }}：{{ hazard }}{{ level }}预警，涉及{{ areas }}。请立即组织防范，"
                "{{ deadline }}前回复1确认收到，回复2需要支援。值班电话{{ duty_phone }}。",
        "short": "【叫应】{{ hazard }}{{ level }}预警，{{ areas }}，{{ deadline }}前回1收到/2支援。",
    },
    "callout_voice": {
        "full": "{{ person }}您好，这里是应急值班室。{{ hazard }}{{ level }}预警，涉及{{ areas }}。"
                "请立即组织防范。收到请按1，需要支援请按2。",
        "short": "{{ hazard }}{{ level }}预警，{{ areas }}。收到请按1，需要支援请按2。",
    },
    "answer_ack": {
        "full": "【叫应】已收到您的确认（{{ answer }}），时间{{ at }}。如有变化请致电{{ duty_phone }}。",
        "short": "【叫应】已收到您的确认（{{ answer }}）。",
    },
    "escalation": {
        "full": "【叫应】{{ person }}：{{ areas }}的责任人{{ missed }}未在{{ deadline }}前"
                "回应{{ hazard }}{{ level }}预警，请您立即督促落实，回复1确认收到。值班电话{{ duty_phone }}。",
        "short": "【叫应】{{ areas }}未回应{{ level }}预警，请督促落实，回1确认。",
    },
}

TEMPLATE_KINDS = tuple(TEMPLATES)
_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False)


@dataclass(frozen=True)
class SmsText:
    kind: str
    body: str
    form: str  # full | short | truncated
    segments: Segments
    template_id: str | None = None  # the pre-registered domestic template, if configured
    removed_links: list[str] = field(default_factory=list)


def render(kind: str, params: Mapping[str, Any], *, form: str = "full",
           templates: Mapping[str, Mapping[str, str]] | None = None) -> str:
    table = templates or TEMPLATES
    try:
        source = table[kind][form]
    except KeyError:
        raise SmsTemplateError(f"没有此短信模板 / no SMS template {kind!r} ({form})") from None
    try:
        return _env.from_string(source).render(**params).strip()
    except TemplateError as exc:
        raise SmsTemplateError(f"短信模板 {kind} 渲染失败 / template failed: {exc}") from exc


def compose(kind: str, params: Mapping[str, Any], *, to: str, max_segments: int = 1,
            template_ids: Mapping[str, str] | None = None,
            templates: Mapping[str, Mapping[str, str]] | None = None) -> SmsText:
    """The text for one recipient: the full form if it fits ``max_segments``, else the short form,
    else the short form cut to one segment (ending in "…"). Links are removed for +86 numbers."""
    removed: list[str] = []
    clean = dict(params)
    if is_mainland(to):
        for k, v in params.items():
            if isinstance(v, str) and find_links(v):
                removed += find_links(v)
                clean[k] = strip_links(v)
    tid = (template_ids or {}).get(kind)
    text, form = render(kind, clean, form="full", templates=templates), "full"
    if count_segments(text).segments > max_segments:
        text, form = render(kind, clean, form="short", templates=templates), "short"
    if is_mainland(to) and find_links(text):  # a template itself carrying a link: never sent to +86
        removed += find_links(text)
        text = strip_links(text)
    if count_segments(text).segments > max_segments:
        text, form = truncate(text, max_segments), "truncated"
    return SmsText(kind, text, form, count_segments(text), tid, removed)


def truncate(text: str, max_segments: int = 1) -> str:
    """Cut ``text`` to fit ``max_segments`` parts, marking the cut with "…"."""
    if count_segments(text).segments <= max_segments:
        return text
    out = text
    while out and count_segments(out + "…").segments > max_segments:
        out = out[:-1]
    return out + "…"
