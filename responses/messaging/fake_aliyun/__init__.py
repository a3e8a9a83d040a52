"""A fake Alibaba Cloud SMS and voice API, so the real SDKs can be tested, demonstrated and drilled against
without an account and without reaching a phone."""
