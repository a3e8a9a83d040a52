"""An Atom 1.0 feed of the active warnings, each entry linking to its CAP 1.2 document, so a
neighbouring agency's CAP aggregator can follow us the way we follow others. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
_LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


def _sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ATOM_NS}}}{name}", attrs)
    if text is not None:
        el.text = text
    return el


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def atom_feed(warnings: Iterable[Any], *, base_url: str, now: dt.datetime, title: str = "叫应 · 生效中的预警") -> bytes:
    base = base_url.rstrip("/")
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    _sub(feed, "id", f"{base}/warnings/atom")
    _sub(feed, "title", title)
    _sub(feed, "updated", _stamp(now))
    _sub(feed, "link", rel="self", href=f"{base}/warnings/atom", type="application/atom+xml")
    author = _sub(feed, "author")
    _sub(author, "name", "Jiaoying 叫应")
    for w in warnings:
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"urn:jiaoying:warning:{w.sender}:{w.identifier}")
        level = f"[{_LEVEL_ZH.get(w.level, w.level)}] " if w.level else ""
        _sub(entry, "title", f"{level}{w.headline or w.event or w.hazard}")
        _sub(entry, "updated", _stamp(w.updated_at or w.sent))
        _sub(entry, "published", _stamp(w.sent))
        _sub(entry, "link", rel="alternate", type="application/cap+xml", href=f"{base}/warnings/{w.id}/cap")
        _sub(entry, "category", term=w.hazard)
        if w.level:
            _sub(entry, "category", term=w.level, scheme="urn:jiaoying:level")
        texts = list(w.infos or [])
        summary = next((t.get("description") for t in texts if t.get("description")), None)
        if summary:
            _sub(entry, "summary", summary[:1000])
    return bytes(etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True))
