"""Settings, read once from the environment (prefix ``JIAOYING_``, nested with ``__``) and ``.env``.

A placeholder secret is tolerated only in dev mode, so a production deployment cannot start with a
key that is printed in the README.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRET = "dev-only-change-me"


class ConfigError(Exception):
    """A configuration the program cannot run with; the message says how to fix it."""


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///./var/jiaoying.db"
    echo: bool = False
    auto_upgrade: bool = True  # run migrations when the server starts
    busy_timeout_ms: int = 30_000


class TwilioSettings(BaseModel):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = None
    api_base_url: str | None = None  # None = Twilio's own API; tests and the demo point at the local fake
    messages_per_second: float | None = 10.0  # the account's request limit; None = no limit
    sender_concurrency: int = 8
    request_timeout_seconds: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)


# The kinds of text the project sends by SMS and by voice (``responses/messaging/sms.py`` and the measures'
# templates): each needs a template registered with Alibaba Cloud, whose code is configured under that kind.
ALIYUN_SMS_KINDS = ("callout", "escalation", "answer_ack", "measure_order", "measure_lift")
ALIYUN_VOICE_KINDS = ("callout_voice", "measure_voice", "measure_lift_voice")


class AliyunSettings(BaseModel):
    """Alibaba Cloud SMS (dysmsapi) and voice (dyvmsapi) for a deployment in mainland China.

    Domestic SMS goes out only as a registered template under a registered signature (签名), so every kind of
    text has a template code here; the README lists the templates to register. ``push_token`` guards the
    endpoints the provider pushes receipts, replies and keypresses to (those pushes are not signed).
    """

    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    region: str = "cn-hangzhou"
    sms_endpoint: str = "dysmsapi.aliyuncs.com"  # host[:port]; tests and the demo point it at the local fake
    voice_endpoint: str = "dyvmsapi.aliyuncs.com"
    protocol: Literal["https", "http"] = "https"
    sign_name: str | None = None  # the registered SMS signature, e.g. 某某区应急管理局
    sms_templates: dict[str, str] = Field(default_factory=dict)  # kind -> SMS_xxx template code
    tts_templates: dict[str, str] = Field(default_factory=dict)  # kind -> TTS_xxx (voice notification) code
    ivr_start_code: str | None = None  # TTS_xxx read at the start of an interactive call; None: plain TTS calls
    ivr_ack_code: str | None = None  # TTS_xxx played after key 1 (收到)
    ivr_help_code: str | None = None  # TTS_xxx played after key 2 (需要支援)
    called_show_number: str | None = None  # the number the callee sees on voice calls (None: the public pool)
    messages_per_second: float | None = 10.0  # the account's request limit, shared by SMS and voice; None = none
    sender_concurrency: int = 8
    request_timeout_seconds: float = 10.0
    push_token: SecretStr | None = None

    @field_validator("access_key_id", "sign_name", "ivr_start_code", "ivr_ack_code", "ivr_help_code",
                     "called_show_number", mode="before")
    @classmethod
    def _blank_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("access_key_secret", "push_token", mode="before")
    @classmethod
    def _blank_secret(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @property
    def configured(self) -> bool:
        return bool(self.access_key_id and self.access_key_secret)


ProviderChoice = Literal["auto", "twilio", "aliyun"]


class MessagingSettings(BaseModel):
    """Which provider carries each channel. ``auto``: Alibaba Cloud when its credentials are set, else Twilio
    (with the local fake Twilio when Twilio has no credentials either, as always). A channel may be set on its
    own, e.g. SMS by Alibaba Cloud (replies from Chinese numbers come back) and voice by Twilio."""

    sms_provider: ProviderChoice = "auto"
    voice_provider: ProviderChoice = "auto"

    @field_validator("sms_provider", "voice_provider", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v


class SchedulerSettings(BaseModel):
    enabled: bool = True
    tick_seconds: float = 5.0
    # ``jiaoying serve`` runs the sending work (outbox sender, callout sweep, the local fake gateway) in a
    # child process of its own, so a fan-out does not take the interpreter lock and the request threads
    # from the pages the duty room opens during it. False: everything in the server's process.
    sender_process: bool = True
    # Which jobs this process's scheduler runs: ``all``; ``web``, all but the sending ones; ``sending``, only
    # those. ``serve`` sets it for itself and its sending process; split deployments may set it by hand.
    jobs: Literal["all", "web", "sending"] = "all"


class ClusterSettings(BaseModel):
    """Several instances on one PostgreSQL database (see ``jiaoying/leader.py``)."""

    # How often an instance checks that it still holds leadership, or takes it when free. The leader's
    # death is noticed by the others within about this long (its lock is released when its session ends).
    leader_check_seconds: float = Field(2.0, gt=0, le=30)
    # How long an instance starting up waits for another one that is migrating the database.
    startup_lock_seconds: float = Field(600.0, gt=0)


class SecuritySettings(BaseModel):
    secret_key: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    token_minutes: int = 12 * 60
    login_attempts: int = 5  # failed logins per window before refusing
    login_window_seconds: int = 300


class MapSettings(BaseModel):
    """The console map's base layer.

    Without a tile URL the map draws the region's own boundaries and asks nothing of any other server, as a
    duty room without the internet needs. An intranet tile server may be named (``{z}``, ``{x}``, ``{y}`` in
    the URL); Chinese tile servers often draw in GCJ-02, and then ``tile_crs = "gcj02"`` shifts every
    geometry the map shows (stored in WGS84) onto those tiles, so a village outline lies on its streets.
    """

    tile_url: str | None = None
    tile_crs: Literal["wgs84", "gcj02"] = "wgs84"
    tile_attribution: str = ""
    tile_max_zoom: int = Field(18, ge=1, le=22)

    @field_validator("tile_url", mode="before")
    @classmethod
    def _tile_template(cls, v: object) -> object:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        text = str(v).strip()
        if not text.startswith(("http://", "https://", "/")) or text.startswith("//"):
            raise ValueError("地图瓦片地址须以 http://、https:// 或 / 开头 / the tile URL must start with http://, "
                             "https:// or /")
        if not all(part in text for part in ("{z}", "{x}", "{y}")):
            raise ValueError("地图瓦片地址须含 {z}、{x}、{y} / the tile URL needs {z}, {x} and {y}")
        return text

    @field_validator("tile_crs", mode="before")
    @classmethod
    def _datum_name(cls, v: object) -> object:
        return str(v).strip().lower().replace("-", "").replace("_", "") if v is not None else v


class LogSettings(BaseModel):
    """How the processes write their logs (``config/logs.py``): readable ``text`` lines by default, or ``json``,
    one object per line, for a log shipper. Phone numbers are masked in both."""

    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.strip().upper() if isinstance(v, str) else v


class MetricsSettings(BaseModel):
    """``/metrics`` for Prometheus. With a token, a scrape must send ``Authorization: Bearer <token>``; without
    one, only a client on this machine (loopback, not through a proxy) may scrape."""

    token: SecretStr | None = None

    @field_validator("token", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JIAOYING_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["dev", "production", "test"] = "dev"
    public_base_url: str = "http://127.0.0.1:8000"
    display_timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    data_dir: Path = Path("./var")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    aliyun: AliyunSettings = Field(default_factory=AliyunSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    map: MapSettings = Field(default_factory=MapSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        ZoneInfo(v)  # raises for an unknown zone
        return v

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.display_timezone)

    def check(self) -> list[str]:
        """Problems that stop the program from running, each with what to do (zh / en)."""
        problems: list[str] = []
        if self.env == "production" and self.security.secret_key.get_secret_value() == PLACEHOLDER_SECRET:
            problems.append(
                "生产模式下不能使用示例密钥：请设置环境变量 JIAOYING_SECURITY__SECRET_KEY 为至少 32 个随机字符"
                "（例如 python -c 'import secrets; print(secrets.token_urlsafe(48))'）。"
                " / A placeholder secret is refused in production: set JIAOYING_SECURITY__SECRET_KEY to 32+ random"
                " characters."
            )
        elif self.env == "production" and len(self.security.secret_key.get_secret_value()) < 32:
            problems.append(
                "密钥太短：JIAOYING_SECURITY__SECRET_KEY 至少需要 32 个字符。 / The secret key needs 32+ characters."
            )
        if not self.database.url.startswith(("sqlite", "postgresql")):
            problems.append(
                f"不支持的数据库地址 {self.database.url!r}：请使用 sqlite:///路径 或 postgresql+psycopg://…"
                " / Unsupported database URL: use sqlite:///PATH or postgresql+psycopg://…"
            )
        if self.twilio.account_sid and not self.twilio.auth_token:
            problems.append(
                "已设置 Twilio 账号但缺少 JIAOYING_TWILIO__AUTH_TOKEN。 / Twilio account set without an auth token."
            )
        problems += self._aliyun_problems()
        return problems

    def provider_for(self, channel: str) -> Literal["twilio", "aliyun"]:
        """The provider that carries ``channel`` (sms | voice): the explicit choice, else Alibaba Cloud when it
        has credentials, else Twilio (real, or the local fake one when it has none)."""
        choice = self.messaging.sms_provider if channel == "sms" else self.messaging.voice_provider
        if choice != "auto":
            return choice
        return "aliyun" if self.aliyun.configured else "twilio"

    def _aliyun_problems(self) -> list[str]:
        al = self.aliyun
        problems: list[str] = []
        if bool(al.access_key_id) != bool(al.access_key_secret):
            problems.append(
                "阿里云 AccessKey 不完整：JIAOYING_ALIYUN__ACCESS_KEY_ID 与"
                " JIAOYING_ALIYUN__ACCESS_KEY_SECRET 须同时设置。"
                " / Alibaba Cloud needs both an access key id and its secret."
            )
        if not al.configured:
            return problems  # without credentials the local fake stands in; nothing more to check
        if self.provider_for("sms") == "aliyun":
            if not al.sign_name:
                problems.append("阿里云短信需要已备案的签名：请设置 JIAOYING_ALIYUN__SIGN_NAME。"
                                " / Alibaba Cloud SMS needs a registered signature: set JIAOYING_ALIYUN__SIGN_NAME.")
            missing = [k for k in ("callout", "escalation") if k not in al.sms_templates]
            if missing:
                problems.append(
                    f"阿里云短信模板未配置：{', '.join(missing)}（JIAOYING_ALIYUN__SMS_TEMPLATES，JSON，见 README）。"
                    f" / Alibaba Cloud SMS template codes missing for {', '.join(missing)}."
                )
        if self.provider_for("voice") == "aliyun" and "callout_voice" not in al.tts_templates \
                and not al.ivr_start_code:
            problems.append(
                "阿里云语音需要叫应语音模板：请设置 JIAOYING_ALIYUN__TTS_TEMPLATES 的 callout_voice 或"
                " JIAOYING_ALIYUN__IVR_START_CODE。 / Alibaba Cloud voice needs a callout_voice TTS code or an IVR"
                " start code."
            )
        unknown = sorted(set(al.sms_templates) - set(ALIYUN_SMS_KINDS)) + sorted(
            set(al.tts_templates) - set(ALIYUN_VOICE_KINDS))
        if unknown:
            problems.append(f"未知的阿里云模板类别 / unknown Alibaba Cloud template kinds: {', '.join(unknown)}"
                            f"（短信 / SMS: {', '.join(ALIYUN_SMS_KINDS)}；"
                            f"语音 / voice: {', '.join(ALIYUN_VOICE_KINDS)}）")
        return problems

    def require_valid(self) -> None:
        problems = self.check()
        if problems:
            raise ConfigError("\n".join(problems))


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
