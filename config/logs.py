"""Log lines a duty room can ship and search: readable text by default, one JSON object per line on request
(``JIAOYING_LOG__FORMAT=json``), and never a person's phone number in either.

Ids that tie a line to what it was about — the HTTP request, the response run, the callout — come from
context variables (set by the request-id middleware, or by ``bind`` around a piece of work) or from
``extra={"run_id": ...}`` on the call itself, so a line written deep in a service carries the request it
served without every function passing the id along.

Numbers are masked by a filter on the handlers, on the formatted message, its arguments and any traceback:
``+8613812345678`` → ``+86138****5678``, ``13812345678`` → ``138****5678``. Enough is kept to tell two
numbers of one log apart and to find the person in the contact list by the last four digits, not enough to
call them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from config.settings import Settings

# Ids a line may carry; each is a context variable and may also be given per call through ``extra``.
CONTEXT_IDS = ("request_id", "run_id", "callout_id", "message_id")
_VARS: dict[str, ContextVar[str | None]] = {name: ContextVar(f"jiaoying_{name}", default=None) for name in CONTEXT_IDS}
request_id_var = _VARS["request_id"]

# E.164 (a plus and 8 to 15 digits), and Chinese mobile numbers written without it (11 digits from 13x to 19x,
# perhaps with an 86 prefix and spaces or dashes between the groups).
_E164 = re.compile(r"(?<![0-9+])\+([0-9][0-9 -]{6,18}[0-9])(?![0-9])")
_CN_MOBILE = re.compile(r"(?<![0-9+])((?:86)?1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})(?![0-9])")


def _mask_e164(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(1))
    if not 8 <= len(digits) <= 15:
        return m.group(0)
    return "+" + digits[:-8] + "****" + digits[-4:]


# The secret a provider push carries in its URL path (responses/messaging/aliyun_webhooks.py): an access log
# line would otherwise hold it.
_PUSH_TOKEN = re.compile(r"(/webhooks/aliyun/)[^/\s?\"']+")


def mask_phones(text: str) -> str:
    """The text with every phone number's middle four digits hidden (and any push token in a URL)."""
    if text and "/webhooks/aliyun/" in text:
        text = _PUSH_TOKEN.sub(r"\1***", text)
    if not text or not any(ch.isdigit() for ch in text):
        return text
    text = _E164.sub(_mask_e164, text)
    return _CN_MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class MaskPhones(logging.Filter):
    """Masks numbers in the message (after its arguments are merged in) and in the traceback text.

    The message is formatted here, once, so an argument that is itself a number (``log.info("to %s", to)``)
    is masked as surely as a literal; the record then carries the masked text and no arguments.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's own error to report; leave the record as it is
            return True
        record.msg, record.args = mask_phones(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phones(record.stack_info)
        return True


class ContextIds(logging.Filter):
    """Copies the ids in context onto the record, unless the call gave its own through ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


@contextmanager
def bind(**ids: object) -> Iterator[None]:
    """Lines logged inside carry these ids (``run_id``, ``callout_id``, ``message_id``, ``request_id``)."""
    unknown = set(ids) - set(CONTEXT_IDS)
    if unknown:
        raise ValueError(f"unknown log ids: {sorted(unknown)}; known: {CONTEXT_IDS}")
    tokens = [(_VARS[k], _VARS[k].set(None if v is None else str(v))) for k, v in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id(offered: str | None = None) -> str:
    """The caller's own id when it is a sane token (a proxy's, so its log and ours match), else a fresh one."""
    if offered and _REQUEST_ID_OK.match(offered):
        return offered
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the ids that apply, and the
    traceback when there is one."""

    def __init__(self, *, process_label: str | None = None) -> None:
        super().__init__()
        self.process_label = process_label

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_IDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value if isinstance(value, int | str) else str(value)
        doc["process"] = record.process
        if self.process_label:
            doc["role"] = self.process_label
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The readable default; the ids that apply follow the logger's name in brackets."""

    def __init__(self, *, process_label: str | None = None) -> None:
        label = f"[{process_label} %(process)d] " if process_label else ""
        super().__init__(f"%(asctime)s {label}%(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{n}={getattr(record, n)}" for n in CONTEXT_IDS if getattr(record, n, None) is not None]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def make_handler(fmt: str, stream: TextIO | None = None, *, process_label: str | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(process_label=process_label) if fmt == "json"
                         else TextFormatter(process_label=process_label))
    handler.addFilter(ContextIds())
    handler.addFilter(MaskPhones())
    return handler


_QUIET: Mapping[str, int] = {"apscheduler": logging.WARNING, "httpx": logging.WARNING, "httpcore": logging.WARNING}


def setup_logging(settings: Settings, *, process_label: str | None = None, stream: TextIO | None = None) -> None:
    """The root logger writes through one handler in the configured format; uvicorn's loggers go through it too
    (start uvicorn with ``log_config=None``), so access lines are masked and carry the request id."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(settings.log.format, stream, process_label=process_label))
    root.setLevel(settings.log.level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)


class RequestIdMiddleware:
    """Gives every HTTP request an id — the caller's ``X-Request-ID`` when sane, else a fresh one — for the log
    lines written while serving it, and returns it in ``X-Request-ID`` so a duty officer's report of a failed
    page can be matched to the server's log. Plain ASGI, so streamed answers (the console's live updates) are
    passed through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
        rid = new_request_id(offered)
        token = request_id_var.set(rid)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
