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
        return problems

    def require_valid(self) -> None:
        problems = self.check()
        if problems:
            raise ConfigError("\n".join(problems))


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
