"""Alibaba Cloud's HTTP pushes (HTTP 批量推送模式): what each kind carries, read and built.

The provider POSTs a JSON array to the URL configured in its console, one array per push, possibly
holding many items (it batches receipts). Four kinds matter here:

- ``SmsReport`` (短信发送状态报告): ``phone_number, send_time, report_time, success, err_code, err_msg,
  sms_size, biz_id, out_id``. ``biz_id`` is the ``BizId`` SendSms returned; a batch send shares one
  ``biz_id`` across numbers, so a receipt is matched on ``biz_id`` and the number together.
- ``SmsUp`` (上行短信, a reply): ``phone_number, send_time, content, sign_name, dest_code, sequence_id``.
  It names no message of ours: the reply is matched to the latest SMS sent to that number.
- ``VoiceReport`` (呼叫记录, after the call ended): ``call_id, status_code, status_msg, out_id, caller,
  callee, originate_time, ring_time, start_time, end_time, duration, hangup_direction, dtmf, …``.
- ``VoiceCallReport`` (呼叫中间状态, during the call): ``call_id, status_code, status_time, out_id`` and,
  when ``status_code`` is ``300000`` (a DTMF keypress in an IVR call), ``dtmf``.

Each accepted push is answered ``{"code": 0, "msg": "接收成功"}`` with HTTP 200; anything else (or a
timeout) makes the provider push again after 1, 5 and 10 minutes, so the receiving end must be idempotent.

Where the provider's documentation disagrees with itself the parsers accept both forms: ``sequence_id`` is
a Number in one version of the SmsUp page and a String in the other; ``sms_size`` and ``duration`` are
documented as String but sample payloads show numbers. Unknown fields are kept (the provider adds fields,
e.g. ``smart_status_code``, ``early_media_code``), never refused.

Times are the provider's ``YYYY-MM-DD HH:MM:SS`` in China Standard Time (Asia/Shanghai, no offset written).
The builders (``sms_report``, ``sms_up``, ``voice_report``, ``ivr_keypress``, ``voice_call_status``) make the
body the provider would send, for the local fake provider and for tests; each returns a one-item list, and
a batch is the concatenation of such lists.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

PROVIDER_TZ = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# The one answer the provider takes as "received" (it checks only that ``code`` is a number).
ACK: dict[str, Any] = {"code": 0, "msg": "接收成功"}

# Voice call status codes (呼叫状态码 / 运营商回执错误码), the ones this system acts on.
LISTENED = "200000"  # 用户听完语音: answered
HUNG_UP_EARLY = "200001"  # 用户提前挂机未完整收听: answered, hung up before the end
BUSY = "200002"  # 用户占线
NO_ANSWER = "200003"  # 用户收到呼叫但未接听
INVALID_NUMBER = "200004"  # 用户号码不合法 / 空号
UNREACHABLE = "200005"  # 被叫用户无法接通 (拒接、防骚扰拦截、网络忙…)
OUT_OF_SERVICE_AREA = "200007"  # 不在服务区
KEY_TIMEOUT = "200008"  # 获取按键超时: answered, pressed nothing
POWERED_OFF = "200010"  # 关机
SUSPENDED = "200011"  # 停机
CALL_ENDED = "200100"  # 呼叫结束
CALLING = "200101"  # 开始呼叫 (intermediate)
ANSWERED = "200102"  # 被叫接听 (intermediate)
RINGING = "200201"  # 被叫响铃 (intermediate)
DTMF = "300000"  # DTMF 按键消息 (IVR keypress; ``dtmf`` holds the digits)


def provider_time(value: dt.datetime) -> str:
    """An aware time as the provider writes it: China Standard Time, no offset."""
    if value.tzinfo is None:
        raise ValueError("provider times are built from aware datetimes")
    return value.astimezone(PROVIDER_TZ).strftime(TIME_FORMAT)


def parse_provider_time(value: str | None) -> dt.datetime | None:
    """The provider's time string as an aware datetime; None when absent or not in its format."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=PROVIDER_TZ)
    except ValueError:
        return None


_E164 = re.compile(r"\+\d{8,15}")


def to_e164(phone: str) -> str:
    """A number as the provider writes it (domestic ``1381111xxxx``, ``86…``, ``+86…``) in E.164, as the
    outbox stores numbers. Anything already starting with ``+`` keeps its country code. Not a phone
    number at all (letters, too short or long): ``ValueError``."""
    n = phone.strip().replace(" ", "").replace("-", "")
    if n.startswith("+"):
        out = n
    elif n.startswith("0086"):
        out = "+" + n[2:]
    elif n.startswith("86") and len(n) == 13:
        out = "+" + n
    elif n.startswith("0"):  # a landline with its area code (0351…)
        out = "+86" + n[1:]
    else:
        out = "+86" + n
    if not _E164.fullmatch(out):
        raise ValueError(f"not a phone number: {phone!r}")
    return out


def domestic(phone: str) -> str:
    """The provider's way of writing a Chinese number: no country code."""
    n = phone.strip().replace(" ", "")
    for prefix in ("+86", "0086"):
        if n.startswith(prefix):
            return n[len(prefix):]
    return n


def _text(value: Any) -> Any:
    """Numbers where the documentation says String (or the other way round) become strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]


class _Item(BaseModel):
    # Fields the provider adds later are kept in ``model_extra``, not refused.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class SmsReportItem(_Item):
    """One delivery receipt (SmsReport)."""

    phone_number: Text = Field(min_length=5, max_length=20)
    success: bool
    biz_id: Text = Field(min_length=1, max_length=64)
    out_id: Text | None = Field(default=None, max_length=64)
    err_code: Text | None = Field(default=None, max_length=64)
    err_msg: Text | None = None
    send_time: Text | None = None
    report_time: Text | None = None
    sms_size: Text | None = None


class SmsUpItem(_Item):
    """One reply from a phone (SmsUp). ``sequence_id``: Number in one version of the docs, String in the
    other; both are read as text."""

    phone_number: Text = Field(min_length=5, max_length=20)
    content: Text = Field(max_length=2000)
    send_time: Text | None = None
    sign_name: Text | None = None
    dest_code: Text | None = None
    sequence_id: Text | None = Field(default=None, max_length=64)


class VoiceReportItem(_Item):
    """One call record (VoiceReport), pushed when a call has ended."""

    call_id: Text = Field(min_length=1, max_length=64)
    status_code: Text = Field(min_length=1, max_length=30)
    status_msg: Text | None = None
    out_id: Text | None = Field(default=None, max_length=64)
    caller: Text | None = None
    callee: Text | None = None
    originate_time: Text | None = None
    ring_time: Text | None = None
    start_time: Text | None = None
    end_time: Text | None = None
    duration: Text | None = None
    hangup_direction: Text | None = None
    dtmf: Text | None = None
    smart_status_code: Text | None = None


class VoiceCallReportItem(_Item):
    """One status during a call (VoiceCallReport); ``status_code`` 300000 carries an IVR keypress in ``dtmf``."""

    call_id: Text = Field(min_length=1, max_length=64)
    status_code: Text = Field(min_length=1, max_length=30)
    status_time: Text | None = None
    out_id: Text | None = Field(default=None, max_length=64)
    dtmf: Text | None = Field(default=None, max_length=32)
    smart_status_code: Text | None = None


KINDS: dict[str, type[_Item]] = {
    "sms-report": SmsReportItem,
    "sms-up": SmsUpItem,
    "voice-report": VoiceReportItem,
    "ivr": VoiceCallReportItem,
}


# ------------------------------------------------------------------------------------------ builders


def sms_report(*, phone: str, biz_id: str, out_id: str | None = None, success: bool = True,
               err_code: str | None = None, err_msg: str | None = None, send_time: dt.datetime,
               report_time: dt.datetime | None = None, sms_size: int = 1) -> list[dict[str, Any]]:
    """A delivery receipt as the provider pushes it. A failure without a code gets ``UNDELIVERED``."""
    if err_code is None:
        err_code = "DELIVERED" if success else "UNDELIVERED"
    if err_msg is None:
        err_msg = "用户接收成功" if success else "用户接收失败"
    return [{
        "phone_number": domestic(phone),
        "send_time": provider_time(send_time),
        "report_time": provider_time(report_time or send_time),
        "success": success,
        "err_code": err_code,
        "err_msg": err_msg,
        "sms_size": str(sms_size),
        "biz_id": biz_id,
        "out_id": out_id or "",
    }]


def sms_up(*, phone: str, content: str, send_time: dt.datetime, sequence_id: int | str,
           dest_code: str = "", sign_name: str | None = None) -> list[dict[str, Any]]:
    """A reply from a phone as the provider pushes it."""
    item: dict[str, Any] = {
        "phone_number": domestic(phone),
        "content": content,
        "send_time": provider_time(send_time),
        "dest_code": dest_code,
        "sequence_id": str(sequence_id),
    }
    if sign_name is not None:
        item["sign_name"] = sign_name
    return [item]


def voice_report(*, phone: str, call_id: str, out_id: str | None = None, status_code: str = LISTENED,
                 status_msg: str | None = None, caller: str = "", originate_time: dt.datetime,
                 start_time: dt.datetime | None = None, end_time: dt.datetime | None = None,
                 dtmf: str | None = None) -> list[dict[str, Any]]:
    """A call record (VoiceReport) pushed when the call has ended; ``phone`` is the callee.
    ``start_time`` (answered at) is empty for a call nobody picked up, and so is the duration."""
    answered = start_time is not None
    end = end_time or start_time or originate_time
    duration = int((end - start_time).total_seconds()) if start_time is not None else 0
    item: dict[str, Any] = {
        "call_id": call_id,
        "status_code": status_code,
        "status_msg": status_msg if status_msg is not None else ("执行完成" if answered else "未接通"),
        "out_id": out_id or "",
        "caller": domestic(caller),
        "callee": domestic(phone),
        "originate_time": provider_time(originate_time),
        "ring_time": provider_time(originate_time),
        "start_time": provider_time(start_time) if start_time is not None else "",
        "end_time": provider_time(end),
        "duration": str(max(0, duration)),
        "hangup_direction": "用户",
        "voice_type": "voice",
        "toll_type": "UNKNOWN",
    }
    if dtmf is not None:
        item["dtmf"] = dtmf
    return [item]


def voice_call_status(*, call_id: str, status_code: str, time: dt.datetime, out_id: str | None = None,
                      dtmf: str | None = None) -> list[dict[str, Any]]:
    """A status during the call (VoiceCallReport): calling, ringing, answered, ended, or a keypress."""
    item: dict[str, Any] = {
        "status_code": status_code,
        "status_time": provider_time(time),
        "out_id": out_id or "",
        "call_id": call_id,
    }
    if dtmf is not None:
        item["dtmf"] = dtmf
    return [item]


def ivr_keypress(*, call_id: str, dtmf: str, time: dt.datetime, out_id: str | None = None) -> list[dict[str, Any]]:
    """The key a person pressed in an IVR call (VoiceCallReport with status 300000)."""
    return voice_call_status(call_id=call_id, status_code=DTMF, time=time, out_id=out_id, dtmf=dtmf)


# ------------------------------------------------------------------------------------------ statuses


# Voice status codes onto the status words the outbox already knows (core.PROVIDER_STATUS). The word
# decides what the callout layer does with a failed call, exactly as for the other provider: "busy" and
# "no-answer" say nothing about the number (the next retry slot calls again); "failed" means the number or
# the route is not usable now (invalid, powered off, suspended, out of area, provider fault), so the callout
# fails over to the next channel or number at once.
VOICE_STATUS: dict[str, str] = {
    LISTENED: "completed",
    HUNG_UP_EARLY: "completed",
    KEY_TIMEOUT: "completed",  # the call was answered; no key is an unanswered callout, not a failed call
    CALL_ENDED: "completed",
    "200103": "in-progress",
    ANSWERED: "answered",
    DTMF: "answered",
    CALLING: "initiated",
    RINGING: "ringing",
    BUSY: "busy",
    "200112": "busy",
    NO_ANSWER: "no-answer",
    "200113": "no-answer",
    # 拒接 / 防骚扰拦截 / 网络忙: the person may pick up next time; same as not answering.
    UNREACHABLE: "no-answer",
    "200111": "no-answer",
}


def voice_status(code: str) -> str:
    """The outbox status word for a voice status code; any code not listed is a failed call."""
    return VOICE_STATUS.get(code.strip(), "failed")


def sms_status(item: SmsReportItem) -> str:
    return "delivered" if item.success else "undelivered"
