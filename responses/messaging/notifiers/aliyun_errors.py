"""Alibaba Cloud SMS / voice error codes, sorted by what the sender should do about them.

Three classes, one table (the README quotes it):

* **throttled** — the provider asks us to slow down: retried, no sooner than ``retry_after`` seconds (the
  ``x-acs-retry-after`` header wins when the gateway sends one). ``isv.BUSINESS_LIMIT_CONTROL`` is the per-number
  limit (same signature and template to one number within a minute), so it waits a minute — unless its message
  says the hour's or the day's limit (``触发小时级流控`` / ``触发天级流控``), which is permanent; the API gateway's
  ``Throttling.*`` is the per-account request rate, so a second is enough.
* **transient** — the provider or the path to it failed, or the account needs an operator (balance, switched-off
  product, wrong key): retried with the sender's back-off, so no message is lost while it is fixed. This is how the
  Twilio notifier treats 401/403 too.
* **permanent** — retrying cannot help this message (bad number, number blacklisted, refused template or
  parameters, the hour's or day's limit for that number): the message fails with the provider's reason and the
  callout moves on to the next channel or number, which is worth more than a message an hour late.

A code not in the table is judged by its family: ``isp.*`` (the provider's side) transient, ``Throttling*``
throttled, other ``isv.*`` (the caller's side) permanent; an HTTP error without a known code by its status (5xx
transient, 4xx permanent).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from responses.messaging.notifiers.base import PermanentError, TransientError


class Kind(StrEnum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class ErrorClass:
    kind: Kind
    retry_after: float | None  # seconds, for throttled codes
    zh: str


_T, _R, _P = Kind.THROTTLED, Kind.TRANSIENT, Kind.PERMANENT

TABLE: dict[str, ErrorClass] = {
    # --- throttled: slow down ------------------------------------------------------------------------
    "isv.BUSINESS_LIMIT_CONTROL": ErrorClass(_T, 60.0, "触发号码级流控（同号码分钟级限制），一分钟后再试"),
    "BUSINESS_LIMIT_CONTROL_MINUTE": ErrorClass(_T, 60.0, "号码分钟级流控，一分钟后再试"),
    "isv.BUSINESS_LIMIT_MINUTE": ErrorClass(_T, 60.0, "号码分钟级流控，一分钟后再试"),
    "Throttling": ErrorClass(_T, 1.0, "接口请求过快"),
    "Throttling.User": ErrorClass(_T, 1.0, "账号请求过快"),
    "Throttling.Api": ErrorClass(_T, 1.0, "接口请求过快"),
    "Throttling.Concurrent": ErrorClass(_T, 1.0, "并发请求过多"),
    "isv.VOICE_BUSINESS_LIMIT": ErrorClass(_T, 60.0, "语音号码级流控，一分钟后再试"),
    # --- transient: the provider's trouble, or the account's that an operator fixes --------------------
    "isp.SYSTEM_ERROR": ErrorClass(_R, None, "服务商系统错误"),
    "isp.GATEWAY_ERROR": ErrorClass(_R, None, "服务商网关错误"),
    "isp.UNKNOWN": ErrorClass(_R, None, "服务商未知错误"),
    "InternalError": ErrorClass(_R, None, "服务商内部错误"),
    "ServiceUnavailable": ErrorClass(_R, None, "服务暂不可用"),
    "ServiceUnavailableTemporary": ErrorClass(_R, None, "服务暂不可用"),
    "isv.DATA_NOT_EXIST": ErrorClass(_R, None, "数据暂不存在，稍后再试"),
    "isv.OUT_OF_SERVICE": ErrorClass(_R, None, "账号停机（余额不足），需充值"),
    "isv.AMOUNT_NOT_ENOUGH": ErrorClass(_R, None, "账号余额不足，需充值"),
    "isv.BILLING_DEDUCTION_ERROR": ErrorClass(_R, None, "计费异常"),
    "isv.ACCOUNT_ABNORMAL": ErrorClass(_R, None, "账号异常，需联系服务商"),
    "isv.ACCOUNT_NOT_EXISTS": ErrorClass(_R, None, "账号不存在，检查 AccessKey"),
    "isv.PRODUCT_UN_SUBSCRIPT": ErrorClass(_R, None, "未开通短信/语音服务"),
    "isv.PRODUCT_UNSUBSCRIBE": ErrorClass(_R, None, "未开通短信/语音服务"),
    "isp.RAM_PERMISSION_DENY": ErrorClass(_R, None, "RAM 权限不足"),
    "Forbidden.RAM": ErrorClass(_R, None, "RAM 权限不足"),
    "InvalidAccessKeyId.NotFound": ErrorClass(_R, None, "AccessKey 不存在"),
    "InvalidAccessKeyId.Inactive": ErrorClass(_R, None, "AccessKey 已停用"),
    "SignatureDoesNotMatch": ErrorClass(_R, None, "签名不符（AccessKey Secret 错误或时钟偏差）"),
    "IncompleteSignature": ErrorClass(_R, None, "请求签名不完整"),
    "SignatureNonceUsed": ErrorClass(_R, None, "签名随机数重复"),
    "InvalidTimeStamp.Expired": ErrorClass(_R, None, "请求时间戳过期（检查时钟）"),
    "timeout": ErrorClass(_R, None, "请求超时"),
    "transport": ErrorClass(_R, None, "网络连接失败"),
    # --- permanent: this message cannot go; move to the next channel or number -----------------------
    "isv.MOBILE_NUMBER_ILLEGAL": ErrorClass(_P, None, "手机号码格式错误"),
    "isv.MOBILE_COUNT_OVER_LIMIT": ErrorClass(_P, None, "号码数量超限"),
    "isv.BLACK_KEY_CONTROL_LIMIT": ErrorClass(_P, None, "变量含黑名单关键字"),
    "isv.PARAM_LENGTH_LIMIT": ErrorClass(_P, None, "变量超长"),
    "isv.PARAM_NOT_SUPPORT_URL": ErrorClass(_P, None, "变量不支持链接"),
    "isv.TEMPLATE_PARAMS_ILLEGAL": ErrorClass(_P, None, "模板变量不合法"),
    "isv.TEMPLATE_MISSING_PARAMETERS": ErrorClass(_P, None, "模板变量缺少参数"),
    "isv.INVALID_JSON_PARAM": ErrorClass(_P, None, "模板参数不是合法 JSON"),
    "isv.INVALID_PARAMETERS": ErrorClass(_P, None, "参数异常"),
    "isv.SMS_TEMPLATE_ILLEGAL": ErrorClass(_P, None, "模板不存在或未通过审核"),
    "isv.SMS_SIGNATURE_ILLEGAL": ErrorClass(_P, None, "签名不存在或未通过审核"),
    "isv.SMS_SIGN_NAME_ILLEGAL": ErrorClass(_P, None, "签名不合法"),
    "isv.SMS_CONTENT_CODE_ILLEGAL": ErrorClass(_P, None, "模板不合法"),
    "isv.NOT_SUPPORTED_COUNTRY": ErrorClass(_P, None, "不支持的国家或地区"),
    "isv.COUNTRY_RESTRICTED": ErrorClass(_P, None, "号码所在地区受限"),
    "isv.DAY_LIMIT_CONTROL": ErrorClass(_P, None, "号码当日发送量已达上限"),
    "isv.BUSINESS_LIMIT_HOUR": ErrorClass(_P, None, "号码小时级流控（一小时后才可再发，改用下一渠道）"),
    "isv.BUSINESS_LIMIT_DAY": ErrorClass(_P, None, "号码天级流控（改用下一渠道）"),
    "BUSINESS_LIMIT_CONTROL_PHONE": ErrorClass(_P, None, "号码流控（改用下一渠道）"),
    "isv.EXTEND_CODE_ERROR": ErrorClass(_P, None, "扩展码错误"),
    "isv.DENY_IP_RANGE": ErrorClass(_P, None, "源 IP 被禁止"),
    "isv.CALLED_NUMBER_ILLEGAL": ErrorClass(_P, None, "被叫号码不合法"),
    "isv.CALLER_NUMBER_ILLEGAL": ErrorClass(_P, None, "主叫显示号码不合法"),
    "isv.DISPLAY_NUMBER_ILLEGAL": ErrorClass(_P, None, "主叫显示号码不合法"),
    "isv.TTS_TEMPLATE_ILLEGAL": ErrorClass(_P, None, "语音模板不存在或未通过审核"),
    "isv.VOICE_FILE_ILLEGAL": ErrorClass(_P, None, "语音文件不合法"),
    "isv.BLACKLIST": ErrorClass(_P, None, "号码在黑名单中"),
    "isv.MOBILE_IN_BLACKLIST": ErrorClass(_P, None, "号码在黑名单中"),
    "isv.NUMBER_OFFLINE": ErrorClass(_P, None, "号码停机或空号"),
}


def lookup(code: str | None, status: int | None = None) -> ErrorClass:
    """The class of ``code`` (the table, then the code's family, then the HTTP status)."""
    if code and code in TABLE:
        return TABLE[code]
    if code:
        if code.startswith("Throttling") or code.endswith("LIMIT_CONTROL"):
            return ErrorClass(_T, 1.0, "请求过快")
        if code.startswith("isp."):
            return ErrorClass(_R, None, "服务商错误")
        if code.startswith("isv."):
            return ErrorClass(_P, None, "请求被拒绝")
    if status is not None and (status >= 500 or status == 429):
        return ErrorClass(_T if status == 429 else _R, 1.0 if status == 429 else None, "服务商错误")
    if status is not None and 400 <= status < 500:
        return ErrorClass(_P, None, "请求被拒绝")
    return ErrorClass(_R, None, "未知错误")


def classify(code: str | None, message: str = "", *, status: int | None = None,
             retry_after: float | None = None) -> TransientError | PermanentError:
    """The sender's exception for a provider error; ``retry_after`` (seconds, from the gateway's header)
    overrides the table's wait for a throttled code."""
    cls = lookup(code, status)
    if code == "isv.BUSINESS_LIMIT_CONTROL" and any(w in message for w in ("小时级", "天级", "日级")):
        # the same code carries the hour's and the day's limit for the number, told apart only by the message
        cls = ErrorClass(Kind.PERMANENT, None, "号码小时级/天级流控（改用下一渠道）")
    reason = f"阿里云 {code or status}: {message or cls.zh}（{cls.zh}）"
    if cls.kind is Kind.PERMANENT:
        return PermanentError(reason, code=code, status=status)
    wait = None
    if cls.kind is Kind.THROTTLED:
        wait = retry_after if retry_after and retry_after > 0 else cls.retry_after
    return TransientError(reason, code=code or (str(status) if status else None), status=status, retry_after=wait)
