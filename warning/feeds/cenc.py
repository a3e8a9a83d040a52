"""China Earthquake Networks Center (中国地震台网中心) JSON, the ``speedsearch`` shape:
``{"shuju": [{"CATA_ID", "O_TIME", "EPI_LAT", "EPI_LON", "EPI_DEPTH", "M", "LOCATION_C", "NEW_DID", ...}],
"jieguo": ..., "num": ...}``. ``O_TIME`` is Beijing time (UTC+8) without an offset; ``AUTO_FLAG`` "M"
means reviewed (正式), "A" automatic (自动). Each event goes through the earthquake rule in
``warning.feeds.quake``. A single event object, or a bare list of them, is accepted too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from warning.draft import ParseError, ParseResult
from warning.feeds.common import ParserContext, load_json
from warning.feeds.quake import QuakeEvent, as_object, evaluate_all

SENDER = "www.ceic.ac.cn"
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


def _time(value: Any, name: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        t = dt.datetime.fromisoformat(str(value).strip().replace("/", "-"))
    except ValueError:
        raise ParseError("bad_time", f"{name}={value!r:.40}") from None
    return t if t.tzinfo else t.replace(tzinfo=BEIJING)


def _event(row: dict[str, Any]) -> QuakeEvent:
    try:
        origin = _time(row.get("O_TIME"), "O_TIME")
        if origin is None:
            raise ParseError("missing_field", "O_TIME")
        event_id = str(row.get("NEW_DID") or row.get("CATA_ID") or row.get("id") or "").strip()
        if not event_id:
            raise ParseError("missing_field", "CATA_ID / NEW_DID")
        depth = row.get("EPI_DEPTH")
        return QuakeEvent(
            source="cenc", sender=SENDER, event_id=event_id, origin=origin,
            updated=_time(row.get("SAVE_TIME"), "SAVE_TIME") or origin,
            lat=float(row["EPI_LAT"]), lon=float(row["EPI_LON"]),
            depth_km=float(depth) if depth not in (None, "") else None,
            magnitude=float(row["M"]), mag_type="M", place=row.get("LOCATION_C") or None,
            status={"M": "正式/reviewed", "A": "自动/automatic"}.get(str(row.get("AUTO_FLAG")), row.get("AUTO_FLAG")),
        )
    except KeyError as exc:
        raise ParseError("missing_field", f"CENC 事件缺少 / event lacks {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ParseError("bad_field", f"CENC 事件字段无效 / bad event field: {exc}") from None


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    doc = load_json(payload, allow_empty=False)
    if isinstance(doc, dict) and isinstance(doc.get("shuju"), list):
        rows = doc["shuju"]
    elif isinstance(doc, dict) and "EPI_LAT" in doc:
        rows = [doc]
    elif isinstance(doc, list):
        rows = doc
    else:
        raise ParseError("unknown_format", "不是中国地震台网 JSON / not CENC JSON (no 'shuju')")
    return evaluate_all((_event(as_object(row, "事件", "an event")) for row in rows), ctx,
                        none_zh="没有地震事件", none_en="no earthquake events")
