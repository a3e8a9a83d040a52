"""Run an ASGI app (the fake Twilio, or our own app for end-to-end tests) with uvicorn in a
background thread on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn

from responses.messaging.fake_twilio.app import create_fake_app
from responses.messaging.fake_twilio.state import FakeConfig, FakeTwilio


class ThreadedServer:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                                    timeout_keep_alive=30, timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"uvicorn:{self.port}")

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class FakeTwilioServer(ThreadedServer):
    """The fake Twilio in a thread; ``fake`` is its state, readable directly from the test."""

    def __init__(self, config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = FakeTwilio(config)
        super().__init__(create_fake_app(fake=self.fake), host, port)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until the callbacks the fake is still sending have been delivered."""
        handler = self.app.state.handler
        end = time.monotonic() + timeout
        while handler.tasks and time.monotonic() < end:
            time.sleep(0.02)


def start_fake_twilio(config: FakeConfig | None = None, port: int = 0) -> FakeTwilioServer:
    return FakeTwilioServer(config, port=port).start()  # type: ignore[return-value]
