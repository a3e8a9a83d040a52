"""The notifier interface: whatever carries a message to a phone (Twilio, a domestic gateway, a
test double). The sender only knows this protocol and the two kinds of failure, so adding a
provider never touches the retry or rate-limit logic."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class NotifierError(Exception):
    """A provider refused or could not take a message; ``code`` is the provider's error code."""

    def __init__(self, reason: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.status = status


class TransientError(NotifierError):
    """Worth trying again later: 5xx, 429, timeouts, connection trouble."""

    def __init__(self, reason: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason, code=code, status=status)
        self.retry_after = retry_after


class PermanentError(NotifierError):
    """Trying again cannot help (invalid, unreachable or blocked number, refused content): the
    callout layer moves on to the next channel or number."""


@runtime_checkable
class Notifier(Protocol):
    name: str

    def send_sms(self, to: str, body: str, status_callback_url: str | None, *,
                 from_number: str | None = None, validity_seconds: int | None = None) -> str:
        """Hand one SMS to the provider; returns the provider's id for it."""
        ...

    def place_call(self, to: str, *, twiml_url: str | None = None, twiml: str | None = None,
                   status_callback_url: str | None = None, from_number: str | None = None) -> str:
        """Start one voice call; returns the provider's id for it."""
        ...
