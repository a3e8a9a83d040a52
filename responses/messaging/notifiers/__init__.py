"""Notifiers: the channels a message leaves through (Twilio, fakes for tests, later a domestic gateway)."""
