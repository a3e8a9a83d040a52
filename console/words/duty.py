"""Words of the console's duty-room pages: key → (中文, English)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
}
