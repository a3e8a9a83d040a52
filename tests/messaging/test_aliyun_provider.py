"""Alibaba Cloud as a provider: the choice per channel in settings, the templates and their parameters, the
sender sending each channel through its provider (real SDKs against the fake), the account's rate shared by
every sender, drills that send nothing outside, and the local fake when the provider has no keys."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.runtime import Runtime
from config.settings import Settings
from jiaoying.gateway import local_gateway_settings, with_local_gateway
from responses.messaging import outbox
from responses.messaging.fake_aliyun.server import FakeAliyunServer
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.models import OutboxMessage
from responses.messaging.notifiers.aliyun import SMS_TEMPLATES, template_values
from responses.messaging.notifiers.base import PermanentError
from responses.messaging.ratelimit import SendSlot
from responses.messaging.sender import notifiers_for, sender_for
from responses.messaging.sms import count_segments

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"kind": "callout", "warning": "红色暴雨预警", "areas": "城关镇、东关村", "minutes": "30"}


def bare(**over: Any) -> Settings:
    return Settings(env="test", database={"url": "sqlite://", "auto_upgrade": False}, scheduler={"enabled": False},
                    security={"secret_key": "test-secret-" + "x" * 40}, **over)


# --- settings ------------------------------------------------------------------------------------------

def test_auto_without_any_credentials_is_the_local_fake_twilio_as_before() -> None:
    s = bare()
    assert (s.provider_for("sms"), s.provider_for("voice")) == ("twilio", "twilio")
    assert s.check() == [] and notifiers_for(s) == {}
    settings, gateway = with_local_gateway(s)
    try:
        assert gateway is not None and gateway.aliyun is None and isinstance(gateway.twilio, FakeTwilioServer)
        assert settings.twilio.api_base_url == gateway.url and not settings.aliyun.configured
        assert set(notifiers_for(settings)) == {"twilio"}
    finally:
        gateway.stop()


def test_auto_takes_aliyun_when_it_has_keys_and_channels_can_differ(al: Any) -> None:
    s = al.settings("127.0.0.1:1", sms="auto", voice="auto")
    assert (s.provider_for("sms"), s.provider_for("voice")) == ("aliyun", "aliyun")
    mixed = al.settings("127.0.0.1:1", sms="aliyun", voice="twilio")
    assert (mixed.provider_for("sms"), mixed.provider_for("voice")) == ("aliyun", "twilio")
    assert set(notifiers_for(mixed)) == {"aliyun", "twilio"}
    assert set(notifiers_for(s)) == {"aliyun"}  # Twilio's keys are set too, but no channel uses it


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIAOYING_MESSAGING__SMS_PROVIDER", " Aliyun ")
    monkeypatch.setenv("JIAOYING_MESSAGING__VOICE_PROVIDER", "twilio")
    monkeypatch.setenv("JIAOYING_ALIYUN__ACCESS_KEY_ID", "LTAIenv")
    monkeypatch.setenv("JIAOYING_ALIYUN__ACCESS_KEY_SECRET", "s3cr3t-value")
    monkeypatch.setenv("JIAOYING_ALIYUN__SIGN_NAME", "某某区应急管理局")
    monkeypatch.setenv("JIAOYING_ALIYUN__SMS_TEMPLATES", '{"callout": "SMS_1", "escalation": "SMS_2"}')
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.messaging.sms_provider == "aliyun" and s.provider_for("voice") == "twilio"
    assert s.aliyun.sms_templates == {"callout": "SMS_1", "escalation": "SMS_2"}
    assert s.aliyun.access_key_secret is not None and "s3cr3t-value" not in repr(s.aliyun)
    assert s.check() == []
    monkeypatch.setenv("JIAOYING_MESSAGING__SMS_PROVIDER", "sinch")
    with pytest.raises(ValueError, match="sms_provider"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_check_names_what_is_missing(al: Any) -> None:
    half = bare(aliyun={"access_key_id": "LTAIx"})
    assert any("ACCESS_KEY_SECRET" in p for p in half.check())
    no_sign = al.settings("h:1", sign_name=None, sms_templates={"callout": "SMS_1"})
    problems = " ".join(no_sign.check())
    assert "SIGN_NAME" in problems and "escalation" in problems
    no_voice = al.settings("h:1", tts_templates={}, ivr_start_code=None)
    assert any("callout_voice" in p for p in no_voice.check())
    unknown = al.settings("h:1", sms_templates={"callout": "SMS_1", "escalation": "SMS_2", "callot": "SMS_3"})
    assert any("callot" in p for p in unknown.check())
    assert al.settings("h:1").check() == []


def test_check_config_shows_the_choice_per_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jiaoying.cli import app

    monkeypatch.chdir(tmp_path)
    env = {"JIAOYING_DATABASE__URL": f"sqlite:///{tmp_path}/c.db", "JIAOYING_MESSAGING__VOICE_PROVIDER": "aliyun",
           "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["check-config"], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.output.splitlines()
             if line.count("│") >= 3}
    assert lines["短信 / sms"] == "twilio（auto），本地模拟 / local fake"
    assert lines["语音 / voice"] == "aliyun（aliyun），本地模拟 / local fake"
    assert lines["aliyun"] == "未配置 / not configured"


# --- templates ------------------------------------------------------------------------------------------

def test_a_callout_sms_fits_one_segment_and_carries_no_links() -> None:
    long_areas = "、".join(f"第{i}村（http://x.cn/{i}）" for i in range(9))
    values = template_values(SMS_TEMPLATES["callout"], {**PARAMS, "areas": long_areas}, to="+8613800138000",
                             kind="callout", sign_name="某某区应急管理局", one_segment=True)
    assert all(len(v) <= 35 for v in values.values())
    assert "http" not in values["areas"] and "x.cn" not in values["areas"]
    text = "【某某区应急管理局】" + SMS_TEMPLATES["callout"].render(values)
    assert count_segments(text).segments == 1
    assert values["warning"] == "红色暴雨预警" and values["minutes"] == "30"


def test_missing_parameters_or_templates_are_refused_clearly(fake_aliyun: FakeAliyunServer, al: Any) -> None:
    with pytest.raises(PermanentError) as exc:
        template_values(SMS_TEMPLATES["callout"], {"warning": "红色预警", "areas": " "}, to="+86138", kind="callout")
    assert exc.value.code == "template_params" and "areas" in exc.value.reason and "minutes" in exc.value.reason
    n = al.notifier(fake_aliyun.endpoint, sms_templates={"callout": "SMS_1"})
    with pytest.raises(PermanentError) as exc:
        n.send_sms("+8613800138000", "", None, template="measure_order", params={"areas": "x"})
    assert exc.value.code == "no_template" and "measure_order" in exc.value.reason
    assert fake_aliyun.fake.requests == []  # refused before anything left


# --- the sender -----------------------------------------------------------------------------------------

@pytest.fixture
def fake_tw(tw: Any) -> Any:
    from responses.messaging.fake_twilio.state import FakeConfig

    server = FakeTwilioServer(FakeConfig(accounts={tw.sid: tw.token}, phone_number=tw.from_number))
    server.start()
    yield server
    server.stop()


def _enqueue(factory: Any, now: dt.datetime, rows: list[tuple[str, str, str, dict[str, Any]]]) -> list[int]:
    with session_scope(factory) as s:
        return [outbox.enqueue(s, now=now, channel=ch, to=to, body="正文", template=tpl, params=params,
                               idempotency_key=f"t:{i}").id for i, (ch, to, tpl, params) in enumerate(rows)]


def test_sender_sends_each_channel_through_its_provider(engine: Engine, clock: VirtualClock, al: Any,
                                                        fake_aliyun: FakeAliyunServer, fake_tw: Any) -> None:
    settings = al.settings(fake_aliyun.endpoint, sms="aliyun", voice="twilio", twilio_base_url=fake_tw.url)
    factory = make_session_factory(engine)
    rt = Runtime(settings, engine, factory, clock)
    sms_id, call_id = _enqueue(factory, clock.now(), [("sms", "+8613800138001", "callout_sms", PARAMS),
                                                      ("voice", "+8613800138002", "callout_voice", PARAMS)])
    sender = sender_for(rt)
    assert sender is not None
    try:
        stats = sender.run_once()
    finally:
        sender.close()
    assert stats.sent == 2 and stats.failed == 0
    [sms] = fake_aliyun.fake.sms.values()
    assert sms["out_id"] == str(sms_id) and sms["numbers"] == ["13800138001"]
    assert sms["params"] == {"warning": "红色暴雨预警", "areas": "城关镇、东关村", "minutes": "30"}
    assert len(fake_tw.fake.calls) == 1 and not fake_tw.fake.messages and not fake_aliyun.fake.calls
    with session_scope(factory) as s:
        rows = {m.id: m for m in s.execute(select(OutboxMessage)).scalars()}
        assert (rows[sms_id].provider, rows[sms_id].provider_id, rows[sms_id].state) == ("aliyun", sms["biz_id"],
                                                                                          "sent")
        assert rows[call_id].provider == "twilio" and rows[call_id].provider_id.startswith("CA")


def test_aliyun_failures_retry_or_fail_through_the_sender(engine: Engine, clock: VirtualClock, al: Any,
                                                          fake_aliyun: FakeAliyunServer) -> None:
    fake_aliyun.fake.set_faults(invalid_numbers=["13800000009"], throttled=0.0)
    settings = al.settings(fake_aliyun.endpoint)
    factory = make_session_factory(engine)
    rt = Runtime(settings, engine, factory, clock)
    ids = _enqueue(factory, clock.now(), [("sms", "+8613800000009", "callout_sms", PARAMS),
                                          ("sms", "+8613800000008", "measure_order", {"areas": "x"})])
    sender = sender_for(rt)
    assert sender is not None
    try:
        sender.run_once()
    finally:
        sender.close()
    with session_scope(factory) as s:
        rows = {m.id: m for m in s.execute(select(OutboxMessage)).scalars()}
        assert rows[ids[0]].state == "failed" and rows[ids[0]].error_code == "isv.MOBILE_NUMBER_ILLEGAL"
        assert rows[ids[1]].state == "failed" and rows[ids[1]].error_code == "template_params"


def test_every_sender_shares_the_aliyun_accounts_rate(engine: Engine, clock: VirtualClock, al: Any,
                                                      fake_aliyun: FakeAliyunServer) -> None:
    """Two senders (two processes' worth) on one database, SMS and calls alike: the requests they let go,
    taken together, never exceed the account's limit in any second, and the schedule is booked under the
    access key. (Departures are counted here; arrivals at the fake add the machine's scheduling jitter.)"""
    settings = al.settings(fake_aliyun.endpoint, messages_per_second=5.0)
    factory = make_session_factory(engine)
    rows = [("sms" if i % 2 else "voice", f"+86138000001{i:02d}", "callout_sms" if i % 2 else "callout_voice",
             PARAMS) for i in range(16)]
    _enqueue(factory, clock.now(), rows)
    senders = [sender_for(Runtime(settings, engine, factory, clock)) for _ in range(2)]
    starts: list[float] = []
    lock = threading.Lock()
    for sender in senders:
        assert sender is not None
        notifier = sender.notifiers["aliyun"]

        def timed(fn: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                with lock:
                    starts.append(time.monotonic())
                return fn(*args, **kwargs)
            return call

        notifier.send_sms = timed(notifier.send_sms)  # type: ignore[method-assign]
        notifier.place_call = timed(notifier.place_call)  # type: ignore[method-assign]
    threads = [threading.Thread(target=s.run_once) for s in senders if s is not None]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in senders:
        assert s is not None
        s.close()
    stats = fake_aliyun.fake.stats()
    assert stats["accepted"] == 16 and stats["total_per_account"] == {al.access_key_id: 16}
    assert len(starts) == 16
    starts.sort()
    for begin in starts:
        assert sum(1 for x in starts if begin <= x < begin + 1.0) <= 5
    with session_scope(factory) as s:
        accounts = set(s.execute(select(SendSlot.account)).scalars())
    assert accounts == {f"aliyun:{al.access_key_id}"}


# --- template parameters at enqueue ---------------------------------------------------------------------

def _callouts_kit() -> Any:
    spec = importlib.util.spec_from_file_location("callouts_kit", ROOT / "tests" / "callouts" / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_callouts_store_the_named_values_a_template_needs(session_factory: Any, clock: VirtualClock) -> None:
    from responses.callouts import service as svc
    from responses.runs.models import ResponseRun

    kit = _callouts_kit()
    t0 = clock.now()
    d = kit.build_district(session_factory, t0, townships=1, per_township=2)
    calls = {"answer_minutes": 12, "retries": {"count": 0, "interval_minutes": 3}, "channels": ["sms", "voice"],
             "tiers": {"village": ["village_head"]}, "escalation": ["village", "township"]}
    run_id = kit.make_run(session_factory, t0, villages=d.villages[:1], calls=calls)
    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_id)
        svc.on_run_event(s, run, "started", actor="test", now=t0)
    with session_scope(session_factory) as s:
        [msg] = s.execute(select(OutboxMessage)).scalars().all()
        assert msg.template == "callout_sms"
        assert msg.params["kind"] == "callout" and msg.params["minutes"] == "12"
        assert msg.params["warning"] == "红色地质灾害预警"
        assert msg.params["areas"] and msg.params["areas"] in msg.body
        values = template_values(SMS_TEMPLATES["callout"], msg.params, to=msg.to_number, kind="callout")
        assert json.dumps(values, ensure_ascii=False)


# --- drills and the local fake --------------------------------------------------------------------------

def test_a_drill_with_aliyun_credentials_sends_nothing_outside(fake_aliyun: FakeAliyunServer, al: Any,
                                                               tmp_path: Path) -> None:
    from jiaoying.drill_cli import run_scenario

    settings = al.settings(fake_aliyun.endpoint)  # both channels on Alibaba Cloud, keys set, fake recording
    assert settings.aliyun.configured and settings.provider_for("sms") == "aliyun"
    result = run_scenario(ROOT / "tests" / "drill" / "data" / "escalation.yaml", tmp_path, settings=settings,
                          quiet=True)
    assert result.messages_sent > 0, "the drill's own fake provider got the messages"
    assert fake_aliyun.fake.requests == [] and fake_aliyun.fake.sms == {} and fake_aliyun.fake.calls == {}


def test_aliyun_chosen_without_keys_runs_the_local_fake_aliyun() -> None:
    s = bare(messaging={"sms_provider": "aliyun"}, public_base_url="http://127.0.0.1:9")
    settings, gateway = with_local_gateway(s)
    assert gateway is not None and gateway.aliyun is not None and gateway.twilio is not None
    try:
        al = settings.aliyun
        assert al.configured and al.sms_endpoint == gateway.aliyun.endpoint and al.protocol == "http"
        assert al.push_token is not None
        token = al.push_token.get_secret_value()
        assert gateway.aliyun.fake.config.push_base_url == f"http://127.0.0.1:9/webhooks/aliyun/{token}"
        # the web process of ``serve`` (the fake runs in its sending child) agrees on the push token
        web = local_gateway_settings(s, "http://127.0.0.1:1")
        assert web.aliyun.push_token is not None and web.aliyun.push_token.get_secret_value() == token
        n = notifiers_for(settings)["aliyun"]
        biz = n.send_sms("+8613800138000", "", None, template="callout_sms", params=PARAMS, out_id="1")
        assert biz in gateway.aliyun.fake.sms
    finally:
        gateway.stop()
