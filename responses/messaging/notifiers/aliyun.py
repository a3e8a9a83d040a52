"""Alibaba Cloud SMS (dysmsapi) and voice (dyvmsapi) through the official SDKs.

Domestic SMS goes out only as a registered template (模板) under a registered signature (签名): the message's
text is not sent, its kind (the outbox row's ``template``) picks the template code from settings and its
``params`` fill the template's variables. ``SMS_TEMPLATES`` / ``VOICE_TEMPLATES`` below are the texts to
register (the README prints them from here), with the variables each one takes. Every variable is clipped to
the provider's length limit, links are removed from variables sent to +86 numbers (they get messages blocked),
and a callout SMS is shortened (areas first) until signature and text fit one 70-character segment.

Voice: a callout with an IVR start code configured becomes an interactive call (IvrCall: the call is read,
key 1 = 收到, key 2 = 需要支援, the keypress comes back in the IVR report); anything else a text-to-speech call
notification (SingleCallByTts). ``OutId`` carries the outbox message id in every request, so the provider's
receipts and keypress reports name the message they belong to.

Errors are sorted by ``aliyun_errors`` into the sender's ``TransientError`` (with ``retry_after`` when
throttled) and ``PermanentError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client as SmsClient
from alibabacloud_dyvmsapi20170525 import models as vms_models
from alibabacloud_dyvmsapi20170525.client import Client as VmsClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ThrottlingException
from darabonba.exceptions import ResponseException, UnretryableException
from darabonba.runtime import RuntimeOptions

from responses.messaging.notifiers.aliyun_errors import classify
from responses.messaging.notifiers.base import PermanentError, TransientError
from responses.messaging.sms import UCS2_SINGLE, count_segments, find_links, is_mainland, strip_links

log = logging.getLogger("jiaoying.aliyun")

PARAM_LIMIT = 35  # characters per variable (the provider's limit for "其他" variables of a notification template)
NUMBER_LIMIT = 6  # digits for numeric variables (minutes)
NUMERIC_PARAMS = frozenset({"minutes"})


@dataclass(frozen=True)
class TemplateSpec:
    text: str  # the template text to register (variables as ${name})
    params: tuple[str, ...]
    note: str = ""

    def render(self, values: Mapping[str, str]) -> str:
        out = self.text
        for p in self.params:
            out = out.replace("${" + p + "}", values.get(p, ""))
        return out


SMS_TEMPLATES: dict[str, TemplateSpec] = {
    "callout": TemplateSpec("${warning}：请立即组织${areas}做好防范。收到请回复1，需要支援回复2，${minutes}分钟内。",
                            ("warning", "areas", "minutes"), "叫应短信（可回复）"),
    "escalation": TemplateSpec("${warning}：${missed}未在时限内应答，请立即督促并组织${areas}做好防范。收到请回复1。",
                               ("warning", "missed", "areas"), "升级叫应短信（督促）"),
    "answer_ack": TemplateSpec("已收到您的确认（${answer}），如有变化请致电值班室。", ("answer",), "回复确认"),
    "measure_order": TemplateSpec("${areas}：请${unit}落实“${label}”措施，${deadline}前完成并报告。",
                                  ("areas", "unit", "label", "deadline"), "措施指令"),
    "measure_lift": TemplateSpec("${areas}的“${label}”措施现予解除（${reason}），请组织恢复并回报。",
                                 ("areas", "label", "reason"), "措施解除"),
}

VOICE_TEMPLATES: dict[str, TemplateSpec] = {
    "callout_voice": TemplateSpec("这里是应急值班室。${warning}：请立即组织${areas}做好防范。收到请按1，需要支援请按2。"
                                  "请在${minutes}分钟内应答。", ("warning", "areas", "minutes"),
                                  "叫应语音（文本转语音通知，亦作 IVR 开场）"),
    "measure_voice": TemplateSpec("这里是应急值班室。${areas}：请${unit}落实“${label}”措施，${deadline}前完成并报告。"
                                  "收到请按1。", ("areas", "unit", "label", "deadline"), "措施指令语音"),
    "measure_lift_voice": TemplateSpec("这里是应急值班室。${areas}的“${label}”措施现予解除（${reason}），"
                                       "请组织恢复并回报。收到请按1。", ("areas", "label", "reason"), "措施解除语音"),
}
IVR_START = VOICE_TEMPLATES["callout_voice"]  # the IVR start code takes the callout voice variables
IVR_REPLIES = {"1": "收到", "2": "需要支援"}


def sms_kind(template: str | None, params: Mapping[str, Any]) -> str | None:
    """The Alibaba Cloud SMS template kind of an outbox row (``callout_sms`` is a callout or an escalation)."""
    if template in (None, "callout_sms", "callout"):
        if template is None and "kind" not in params:
            return None
        return "escalation" if params.get("kind") == "escalation" or params.get("missed") else "callout"
    return template


def voice_kind(template: str | None, params: Mapping[str, Any]) -> str | None:
    if template in ("callout_voice", "callout"):
        return "callout_voice"
    if template and template.startswith("measure"):
        return "measure_lift_voice" if params.get("kind") == "measure_lift" else "measure_voice"
    return template


def _clip(name: str, value: Any, to: str) -> str:
    text = "" if value is None else str(value).strip()
    if is_mainland(to) and find_links(text):
        text = strip_links(text)
    limit = NUMBER_LIMIT if name in NUMERIC_PARAMS else PARAM_LIMIT
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def template_values(spec: TemplateSpec, params: Mapping[str, Any], *, to: str, kind: str,
                    sign_name: str | None = None, one_segment: bool = False) -> dict[str, str]:
    """The variables of ``spec`` from ``params``: clipped, links removed; a missing or empty one refused
    (the provider rejects empty variables). With ``one_segment`` the longest text variables are shortened until
    【signature】 + text fits one SMS."""
    values: dict[str, str] = {}
    missing = []
    for p in spec.params:
        v = _clip(p, params.get(p), to)
        if not v:
            missing.append(p)
        values[p] = v
    if missing:
        raise PermanentError(f"阿里云模板 {kind} 缺少参数 / template {kind} lacks parameters: {', '.join(missing)}",
                             code="template_params")
    if one_segment:
        prefix = f"【{sign_name}】" if sign_name else ""
        while count_segments(prefix + spec.render(values)).units > UCS2_SINGLE:
            longest = max((p for p in spec.params if p not in NUMERIC_PARAMS), key=lambda p: len(values[p]))
            if len(values[longest]) <= 4:
                break
            values[longest] = values[longest][:-2] + "…"
    return values


class AliyunNotifier:
    """The Notifier protocol on Alibaba Cloud. ``templated``: the sender passes each message's template kind,
    parameters and id (``out_id``)."""

    name = "aliyun"
    templated = True

    def __init__(self, access_key_id: str, access_key_secret: str, *, sign_name: str | None,
                 sms_templates: Mapping[str, str], tts_templates: Mapping[str, str],
                 ivr_start_code: str | None = None, ivr_ack_code: str | None = None,
                 ivr_help_code: str | None = None, called_show_number: str | None = None,
                 sms_endpoint: str = "dysmsapi.aliyuncs.com", voice_endpoint: str = "dyvmsapi.aliyuncs.com",
                 protocol: str = "https", region: str = "cn-hangzhou", timeout: float = 10.0,
                 max_connections: int = 32) -> None:
        self.account_sid = access_key_id  # the rate-limit key (``sender.rate_account``)
        self.sign_name = sign_name
        self.sms_templates = dict(sms_templates)
        self.tts_templates = dict(tts_templates)
        self.ivr_start_code, self.ivr_ack_code, self.ivr_help_code = ivr_start_code, ivr_ack_code, ivr_help_code
        self.called_show_number = called_show_number
        ms = max(1, int(timeout * 1000))

        def config(endpoint: str) -> open_api_models.Config:
            return open_api_models.Config(access_key_id=access_key_id, access_key_secret=access_key_secret,
                                          endpoint=endpoint, protocol=protocol, region_id=region,
                                          read_timeout=ms, connect_timeout=min(ms, 5000),
                                          max_idle_conns=max_connections)

        self.sms = SmsClient(config(sms_endpoint))
        self.vms = VmsClient(config(voice_endpoint))
        self.runtime = RuntimeOptions(read_timeout=ms, connect_timeout=min(ms, 5000), max_idle_conns=max_connections)

    # --- plumbing ----------------------------------------------------------------------------------------
    def _call(self, fn: Any, request: Any, id_field: str) -> str:
        try:
            resp = fn(request, self.runtime)
        except ThrottlingException as exc:
            wait = exc.retry_after / 1000 if getattr(exc, "retry_after", None) else None
            raise classify(exc.code, _message(exc), status=exc.status_code, retry_after=wait) from exc
        except ResponseException as exc:
            raise classify(exc.code, _message(exc), status=getattr(exc, "status_code", None)) from exc
        except UnretryableException as exc:
            inner = getattr(exc, "inner_exception", None)
            name = type(inner).__name__ if inner is not None else "unknown"
            code = "timeout" if "timeout" in name.lower() or "timed out" in str(inner).lower() else "transport"
            raise TransientError(f"阿里云请求失败 / request failed: {name}: {inner}", code=code) from exc
        body = resp.body
        code = getattr(body, "code", None)
        if code != "OK":  # business errors come back as HTTP 200 with a Code
            raise classify(code, getattr(body, "message", "") or "", status=resp.status_code)
        pid = getattr(body, id_field, None)
        if not pid:
            raise TransientError(f"阿里云应答缺少 {id_field} / answer without {id_field}", code="no_id")
        return str(pid)

    # --- SMS -----------------------------------------------------------------------------------------
    def send_sms(self, to: str, body: str, status_callback_url: str | None, *, from_number: str | None = None,
                 validity_seconds: int | None = None, template: str | None = None,
                 params: Mapping[str, Any] | None = None, out_id: str | None = None) -> str:
        params = params or {}
        kind = sms_kind(template, params)
        code = self.sms_templates.get(kind or "")
        spec = SMS_TEMPLATES.get(kind or "")
        if kind is None or code is None or spec is None:
            raise PermanentError(f"没有为 {kind or template!r} 配置阿里云短信模板 / no Alibaba Cloud SMS template "
                                 f"configured for {kind or template!r} (JIAOYING_ALIYUN__SMS_TEMPLATES)",
                                 code="no_template")
        if not self.sign_name:
            raise PermanentError("未配置短信签名 / no SMS signature (JIAOYING_ALIYUN__SIGN_NAME)", code="no_sign")
        values = template_values(spec, params, to=to, kind=kind, sign_name=self.sign_name, one_segment=True)
        req = sms_models.SendSmsRequest(phone_numbers=domestic(to), sign_name=self.sign_name, template_code=code,
                                        template_param=json.dumps(values, ensure_ascii=False), out_id=out_id)
        return self._call(self.sms.send_sms_with_options, req, "biz_id")

    # --- voice ---------------------------------------------------------------------------------------
    def place_call(self, to: str, *, twiml_url: str | None = None, twiml: str | None = None,
                   status_callback_url: str | None = None, from_number: str | None = None,
                   template: str | None = None, params: Mapping[str, Any] | None = None,
                   out_id: str | None = None) -> str:
        params = params or {}
        kind = voice_kind(template, params) or ""
        show = from_number if from_number and not from_number.startswith("+") else self.called_show_number
        if kind == "callout_voice" and self.ivr_start_code:
            values = template_values(IVR_START, _ivr_params(params), to=to, kind="ivr")
            menu = [vms_models.IvrCallRequestMenuKeyMap(key=key, code=code or self.ivr_start_code)
                    for key, code in (("1", self.ivr_ack_code), ("2", self.ivr_help_code))]
            req = vms_models.IvrCallRequest(called_number=domestic(to), called_show_number=show,
                                            start_code=self.ivr_start_code,
                                            start_tts_params=json.dumps(values, ensure_ascii=False),
                                            menu_key_map=menu, out_id=out_id, play_times=2, timeout=10000)
            return self._call(self.vms.ivr_call_with_options, req, "call_id")
        code = self.tts_templates.get(kind)
        spec = VOICE_TEMPLATES.get(kind)
        if code is None or spec is None:
            raise PermanentError(f"没有为 {kind or template!r} 配置阿里云语音模板 / no Alibaba Cloud TTS template "
                                 f"configured for {kind or template!r} (JIAOYING_ALIYUN__TTS_TEMPLATES)",
                                 code="no_template")
        values = template_values(spec, _ivr_params(params) if kind == "callout_voice" else params, to=to, kind=kind)
        req = vms_models.SingleCallByTtsRequest(called_number=domestic(to), called_show_number=show, tts_code=code,
                                                tts_param=json.dumps(values, ensure_ascii=False), out_id=out_id,
                                                play_times=2)
        return self._call(self.vms.single_call_by_tts_with_options, req, "call_id")

    def close(self) -> None:
        """The SDK keeps pooled sessions per endpoint for the process; nothing of ours to close."""


def _ivr_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The callout voice variables; an escalation says whom it escalates in the warning variable."""
    out = dict(params)
    if params.get("missed"):
        out["warning"] = f"{params.get('warning', '')}（{params['missed']}未应答，请督促）"
    return out


def domestic(number: str) -> str:
    """The provider takes mainland numbers without +86 (others with their country code, no +)."""
    n = number.strip()
    if n.startswith("+86"):
        return n[3:]
    return n.lstrip("+")


def _message(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        return str(data.get("Message") or data.get("message") or exc)
    return str(getattr(exc, "message", exc))
