"""The whole server as a duty room runs it: uvicorn, the scheduler ticking, the local fake gateway
calling back. A red CAP pushed in must reach every responsible person, and a keypress must come back
as an answer, with no job failing and no request stalled on the database."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import httpx

from config.database import make_engine, make_session_factory, session_scope
from config.settings import Settings
from config.users import User, hash_password
from jiaoying.app import create_app
from jiaoying.cli_common import upgrade_and_seed
from jiaoying.gateway import with_local_gateway
from responses.messaging.fake_twilio.server import ThreadedServer
from tests.live import free_port, push_red_until_delivered, wait_for


def test_red_warning_reaches_everyone_and_a_keypress_answers(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        env="test", public_base_url=f"http://127.0.0.1:{port}",
        database={"url": f"sqlite:///{tmp_path / 'live.db'}"},
        scheduler={"enabled": True, "tick_seconds": 1.0},
        security={"secret_key": "live-" + "k" * 40},
    )
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    with session_scope(make_session_factory(engine)) as s:
        s.add(User(username="duty", display_name="值班员", password_hash=hash_password("duty-pass-123"),
                   role="duty_officer", created_at=dt.datetime.now(dt.UTC)))
    engine.dispose()
    settings, gateway = with_local_gateway(settings)
    assert gateway is not None
    app = create_app(settings)
    server = ThreadedServer(app, port=port).start()
    try:
        with httpx.Client(base_url=settings.public_base_url, timeout=30) as c:
            token = c.post("/auth/token", data={"username": "duty", "password": "duty-pass-123"}).json()
            h = {"Authorization": f"Bearer {token['access_token']}"}
            _run_id, rows, board = push_red_until_delivered(c, h, prefix="live", timeout=90)
            assert len(rows) > 50  # the demo polygon covers dozens of villages
            first = rows[0]["attempts"][0]["number"]
            press = httpx.post(f"{gateway.url}/_fake/keypress", json={"number": first, "digits": "1"}, timeout=30)
            assert press.status_code == 200 and "已确认收到" in press.json()["response"]
            answered = wait_for("the keypress answered", lambda: [row for row in board()["callouts"]
                                                               if row["answers"]])
            assert answered[0]["answers"][0]["channel"] == "keypress"
            assert answered[0]["late"] is False
            t0 = time.monotonic()
            assert c.get("/readyz").status_code == 200
            assert time.monotonic() - t0 < 2.0  # nothing holds the event loop
        errors = app.state.runtime.state.get("job_errors", {})
        assert errors == {}, errors
    finally:
        server.stop()
        gateway.stop()
