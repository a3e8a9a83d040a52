"""Feed adapters: one module per source format, each with a pure ``parse(payload, ctx)``.

``get_parser(fmt)`` is the only lookup other code needs; an unknown format is a ``ParseError``
(reason ``unknown_format``), never a KeyError, so a misconfigured feed is quarantined, not crashed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from warning.draft import ParseError, ParseResult
from warning.feeds.common import CHENGQU_CENTER, ParserContext, Site

FORMATS = ("cap", "usgs", "cenc", "quakeml", "firms", "hydro", "geohazard", "nws")

Parser = Callable[[bytes, ParserContext], ParseResult]


def get_parser(fmt: str) -> Parser:
    if fmt not in FORMATS:
        raise ParseError("unknown_format", f"未知的格式 {fmt!r}；可选 / known formats: {', '.join(FORMATS)}")
    module = importlib.import_module(f"warning.feeds.{fmt}")
    return module.parse


__all__ = ["CHENGQU_CENTER", "FORMATS", "ParserContext", "Parser", "Site", "get_parser"]
