"""The intake policy (size limit, hold timeout, retries) and the default feed registry, read from
``config/defaults/feeds/feeds.toml`` so a district can change them without touching code."""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

FEEDS_DIR = Path(__file__).resolve().parents[1] / "config" / "defaults" / "feeds"
REGISTRY = FEEDS_DIR / "feeds.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class IntakePolicy:
    max_bytes: int = 5 * 1024 * 1024
    hold_timeout: dt.timedelta = dt.timedelta(hours=3)
    index_links_max: int = 50
    retries: int = 3
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 60.0
    failure_backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 15.0
    evidence_prefix_bytes: int = 65536

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> IntakePolicy:
        kw: dict[str, Any] = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "hold_timeout_minutes" in data:
            kw["hold_timeout"] = dt.timedelta(minutes=float(data["hold_timeout_minutes"]))
        return cls(**kw)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): doubling, capped."""
        return float(min(self.backoff_seconds * (2 ** (attempt - 1)), self.backoff_max_seconds))

    def failure_delay(self, consecutive_failures: int, poll_seconds: int) -> float:
        """How long a failing feed waits before its next poll: its interval, doubling per failure, capped."""
        base = max(poll_seconds, 1)
        return float(min(base * (2 ** max(consecutive_failures - 1, 0)), max(self.failure_backoff_max_seconds, base)))


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def load_policy(path: Path = REGISTRY) -> IntakePolicy:
    return IntakePolicy.from_mapping(dict(_load(path).get("intake", {})))


def default_feeds(path: Path = REGISTRY) -> list[dict[str, Any]]:
    return [dict(f) for f in _load(path).get("feed", [])]


class MissingSecret(Exception):
    """A ``${NAME}`` reference whose environment variable is not set."""


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace ``${NAME}`` with the environment's value; secrets stay out of the database."""
    env = os.environ if environ is None else environ

    def _sub(m: re.Match[str]) -> str:
        if m.group(1) not in env:
            raise MissingSecret(m.group(1))
        return env[m.group(1)]

    return _ENV_REF.sub(_sub, text)
