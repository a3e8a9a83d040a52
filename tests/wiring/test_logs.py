"""Logs: readable text or one JSON object per line, the request id in every line of a request and echoed to the
caller, run and callout ids where they apply, and no phone number in either format."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from config.logs import bind, mask_phones, new_request_id, setup_logging
from config.runtime import Runtime
from config.settings import Settings
from jiaoying.app import create_app
from tests.live import free_port, wait_for

NUMBER = "+8613812345678"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uv = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
          for n in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for n, (hs, prop) in uv.items():
        logging.getLogger(n).handlers[:] = hs
        logging.getLogger(n).propagate = prop


def configured(fmt: str) -> io.StringIO:
    stream = io.StringIO()
    setup_logging(Settings(env="test", log={"format": fmt}), stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize(("text", "masked"), [
    ("+8613812345678", "+86138****5678"),
    ("call 13812345678 now", "call 138****5678 now"),
    ("8613812345678", "86138****5678"),
    ("138 1234 5678 / 138-1234-5678", "138****5678 / 138****5678"),
    ("to +15005550006, from +8612300000000", "to +150****0006, from +86123****0000"),
    ("号码+8619900001111未接通", "号码+86199****1111未接通"),
])
def test_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_phones(text) == masked


@pytest.mark.parametrize("text", [
    "village 140502001001, township 140502001", "run 2026-0007 at 2026-07-20T02:00:00+08:00",
    "message 12345 took 0.25 s", "epoch 1753000000000", "sha 00000000000000000000000000000001",
])
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_phones(text) == text


def test_json_lines_carry_the_ids_and_mask_numbers_in_message_args_and_traceback(restore_logging: None) -> None:
    stream = configured("json")
    log = logging.getLogger("jiaoying.test")
    log.info("calling %s for run %s", NUMBER, 7, extra={"run_id": 7, "callout_id": 42})
    with bind(run_id=8):
        log.warning("literal %s in the text +8613900001111", "arg")
    try:
        raise ValueError(f"provider refused {NUMBER}")
    except ValueError:
        log.exception("send failed")
    first, second, third = json_lines(stream)
    assert first["message"] == "calling +86138****5678 for run 7"
    assert (first["level"], first["logger"], first["run_id"], first["callout_id"]) == ("INFO", "jiaoying.test", 7, 42)
    assert first["time"].endswith("+00:00") and "request_id" not in first
    assert second["message"] == "literal arg in the text +86139****1111" and second["run_id"] == "8"
    assert "run_id" not in third  # bind() ended with its block
    assert "ValueError: provider refused +86138****5678" in third["exception"]
    assert "13812345678" not in stream.getvalue() and "13900001111" not in stream.getvalue()


def test_text_lines_are_readable_and_masked_too(restore_logging: None) -> None:
    stream = configured("text")
    logging.getLogger("jiaoying.test").info("sms to %s", NUMBER, extra={"callout_id": 3})
    line = stream.getvalue().strip()
    assert line.endswith("INFO jiaoying.test [callout_id=3]: sms to +86138****5678")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_format_setting_reads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIAOYING_LOG__FORMAT", "JSON")
    assert Settings().log.format == "json"
    monkeypatch.setenv("JIAOYING_LOG__FORMAT", "xml")
    with pytest.raises(ValueError, match="format"):
        Settings()


def test_a_request_id_is_given_echoed_and_logged(sqlite_runtime: Runtime, restore_logging: None) -> None:
    stream = configured("json")
    app = create_app(sqlite_runtime.settings, runtime=sqlite_runtime, scheduler=False)

    @app.get("/_test/log")
    def log_something() -> dict[str, str]:  # a sync handler: runs in a worker thread, as most routes do
        logging.getLogger("jiaoying.test").warning("inbound from %s", NUMBER)
        return {"ok": "yes"}

    with TestClient(app) as client:
        fresh = client.get("/_test/log")
        theirs = client.get("/_test/log", headers={"X-Request-ID": "proxy-abc.123"})
        hostile = client.get("/_test/log", headers={"X-Request-ID": "x" * 65})
        refused = client.get("/responses/runs")  # an error answer carries it too
    rid = fresh.headers["x-request-id"]
    assert len(rid) == 32 and theirs.headers["x-request-id"] == "proxy-abc.123"
    assert hostile.headers["x-request-id"] != "x" * 65 and len(hostile.headers["x-request-id"]) == 32
    assert refused.status_code == 401 and refused.headers["x-request-id"]
    lines = [ln for ln in json_lines(stream) if ln["logger"] == "jiaoying.test"]
    assert [ln["request_id"] for ln in lines] == [rid, "proxy-abc.123", hostile.headers["x-request-id"]]
    assert all(ln["message"] == "inbound from +86138****5678" for ln in lines)
    assert new_request_id("has space") != "has space"


def test_serve_writes_json_lines_with_request_ids_and_masked_access_lines(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    env.update({"JIAOYING_ENV": "test", "JIAOYING_DATABASE__URL": f"sqlite:///{tmp_path / 'logs.db'}",
                "JIAOYING_SCHEDULER__ENABLED": "false", "JIAOYING_LOG__FORMAT": "json",
                "JIAOYING_SECURITY__SECRET_KEY": "logs-" + "k" * 40})
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jiaoying", "serve", "--port", str(port)], cwd=tmp_path,
                                env=env, stdout=subprocess.DEVNULL, stderr=out)
        try:
            base = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return proc.poll() is not None  # stop waiting for a server that died
            wait_for("serve answering", up, timeout=90)
            assert proc.poll() is None, log_path.read_text()
            r = httpx.get(f"{base}/healthz", params={"to": NUMBER}, headers={"X-Request-ID": "rid-7"}, timeout=5)
            assert r.headers["x-request-id"] == "rid-7"
            wait_for("the access line", lambda: "rid-7" in log_path.read_text(), timeout=10)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    lines = [json.loads(ln) for ln in log_path.read_text().splitlines() if ln.startswith("{")]
    access = [ln for ln in lines if ln.get("request_id") == "rid-7"]
    assert access and access[0]["logger"] == "uvicorn.access"
    assert '"GET /healthz?to=%2B86138****5678 HTTP/1.1" 200' in access[0]["message"]
    assert "13812345678" not in log_path.read_text()
    assert any(ln["logger"] == "uvicorn.error" for ln in lines)  # start-up lines come through the same handler
