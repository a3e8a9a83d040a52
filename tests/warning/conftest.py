"""Helpers for the intake tests: a feed in the database, drafts built in code, a CAP document writer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from warning.draft import AreaSpec, Hazard, InfoText, Level, MsgType, Reference, Status, WarningDraft
from warning.models import Feed

UTC = dt.UTC


def no_targets(_session: Session, _areas: list[AreaSpec]) -> dict[str, Any]:
    return {"villages": [], "townships": [], "sites": []}


def make_feed(session: Session, now: dt.datetime, name: str = "test-cap", adapter: str = "cap", **kw: Any) -> Feed:
    feed = Feed(name=name, title=name, adapter=adapter, url=kw.pop("url", None),
                poll_seconds=kw.pop("poll_seconds", 60), headers=kw.pop("headers", {}),
                enabled=True, options={}, created_at=now, updated_at=now, **kw)
    session.add(feed)
    session.flush()
    return feed


def draft(identifier: str, msg_type: str = "alert", *, sent: dt.datetime, refs: tuple[str, ...] = (),
          sender: str = "test@example.org", expires: dt.datetime | None = None, level: Level | None = Level.YELLOW,
          status: Status = Status.ACTUAL, area: AreaSpec | None = None) -> WarningDraft:
    return WarningDraft(
        identifier=identifier, sender=sender, sent=sent, msg_type=MsgType(msg_type), status=status,
        hazard=Hazard.WEATHER, event="暴雨", level=level, expires=expires,
        references=[Reference(sender, r, sent - dt.timedelta(hours=1)) for r in refs],
        infos=[InfoText(language="zh-CN", event="暴雨", headline=f"暴雨预警 {identifier}", description="测试")],
        areas=[area or AreaSpec(description="城区", geocodes=[("GB", "140502000000")])], source_format="cap",
    )


def cap_xml(identifier: str, msg_type: str = "Alert", *, sent: str = "2026-07-20T01:00:00+08:00",
            refs: str | None = None, sender: str = "sx-jc@example.cn", polygon: str | None = None,
            event: str = "暴雨黄色预警", expires: str = "2026-07-21T01:00:00+08:00") -> bytes:
    """A small CAP 1.2 document, for the cases no real sample shows (chains, hostile variants)."""
    ref = f"<references>{refs}</references>" if refs else ""
    poly = f"<polygon>{polygon}</polygon>" if polygon else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{sender}</sender><sent>{sent}</sent>
  <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{ref}
  <info><language>zh-CN</language><category>Met</category><event>{event}</event>
    <urgency>Expected</urgency><severity>Moderate</severity><certainty>Likely</certainty>
    <expires>{expires}</expires><headline>城区气象台发布{event}</headline>
    <area><areaDesc>城区</areaDesc>{poly}<geocode><valueName>GB</valueName><value>140502000000</value></geocode></area>
  </info>
</alert>""".encode()


class IntakeHelpers:
    """Test helpers handed out as a fixture (pytest's importlib mode cannot import a conftest module)."""

    draft = staticmethod(draft)
    make_feed = staticmethod(make_feed)
    no_targets = staticmethod(no_targets)
    cap_xml = staticmethod(cap_xml)


@pytest.fixture
def wh() -> IntakeHelpers:
    return IntakeHelpers()


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def now(clock: VirtualClock) -> dt.datetime:
    return clock.now()


@pytest.fixture
def collected() -> tuple[list[Any], Callable[..., None]]:
    got: list[Any] = []

    def listener(_session: Session, change: Any, _now: dt.datetime) -> None:
        got.append(change)

    return got, listener
