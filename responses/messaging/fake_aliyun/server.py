"""The fake Alibaba Cloud in a background thread, with helpers that drive its control API."""

from __future__ import annotations

import time
from typing import Any

import httpx

from responses.messaging.fake_aliyun.app import create_fake_app
from responses.messaging.fake_aliyun.state import FakeAliyun, FakeConfig
from responses.messaging.fake_twilio.server import ThreadedServer


class FakeAliyunServer(ThreadedServer):
    """``fake`` is its state, readable directly from a test; ``endpoint`` is what the SDK's ``endpoint``
    setting takes (host:port, with protocol http)."""

    def __init__(self, config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = FakeAliyun(config)
        super().__init__(create_fake_app(fake=self.fake), host, port)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(f"{self.url}{path}", json=body, timeout=30.0)
        if resp.status_code >= 400:
            raise RuntimeError(f"fake Alibaba Cloud {path}: {resp.status_code} {resp.text}")
        data: dict[str, Any] = resp.json()
        return data

    def reply(self, from_number: str, text: str) -> dict[str, Any]:
        """A reply SMS (上行短信) from ``from_number``, pushed to Jiaoying now."""
        return self._post("/_fake/reply", {"from": from_number, "text": text})

    def keypress(self, digits: str, *, to: str | None = None, call_id: str | None = None,
                 hangup: bool = True) -> dict[str, Any]:
        """A key pressed in the latest IVR call to ``to`` (or call ``call_id``), pushed now; then the call ends."""
        return self._post("/_fake/keypress", {"to": to, "call_id": call_id, "digits": digits, "hangup": hangup})

    def hangup(self, *, to: str | None = None, call_id: str | None = None, status_code: str | None = None
               ) -> dict[str, Any]:
        return self._post("/_fake/hangup", {"to": to, "call_id": call_id, "status_code": status_code})

    def sms_report(self, *, to: str | None = None, biz_id: str | None = None, success: bool = True,
                   err_code: str | None = None) -> dict[str, Any]:
        return self._post("/_fake/sms-report", {"to": to, "biz_id": biz_id, "success": success,
                                                "err_code": err_code})

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until the pushes the fake is still sending have been delivered."""
        handler = self.app.state.handler
        end = time.monotonic() + timeout
        while handler.tasks and time.monotonic() < end:
            time.sleep(0.02)


def start_fake_aliyun(config: FakeConfig | None = None, port: int = 0) -> FakeAliyunServer:
    return FakeAliyunServer(config, port=port).start()  # type: ignore[return-value]
