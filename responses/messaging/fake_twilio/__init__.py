"""A Twilio-compatible fake server: used by tests, the demo and drills instead of the real API."""

from responses.messaging.fake_twilio.app import create_fake_app
from responses.messaging.fake_twilio.server import FakeTwilioServer, ThreadedServer, start_fake_twilio
from responses.messaging.fake_twilio.state import FakeConfig, FakeTwilio, Faults

__all__ = [
    "FakeConfig", "FakeTwilio", "FakeTwilioServer", "Faults", "ThreadedServer", "create_fake_app", "start_fake_twilio",
]
