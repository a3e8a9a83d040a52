"""The sender: claims due outbox rows and hands them to the provider.

Bounded concurrency (a thread pool: provider calls are blocking HTTP), a rate limit per provider
account that every request — retries included — waits for, exponential backoff for 5xx / 429 /
timeouts through ``next_try_at``, and permanent errors turned into failed messages with the
provider's reason. The pipeline keeps claiming while
requests are in flight and writes results in batches, so a slow request never stalls the rest.

The rate limit belongs to the account, not to the process: by default it is booked in the database
(``responses.messaging.ratelimit``), so any number of senders on one database — several
``jiaoying worker`` and the sending child of every ``jiaoying serve`` — together stay under it.
``SenderConfig.shared_rate=False`` keeps it in the process (a token bucket on an injected monotonic
clock), for a sender that is known to be alone. If the database cannot book a slot, the message is
retried later instead of leaving unpaced.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.clock import Clock
from config.database import session_scope
from config.runtime import Runtime
from config.settings import Settings
from responses.messaging import outbox
from responses.messaging.core import backoff, is_stale
from responses.messaging.notifiers.base import Notifier, PermanentError, TransientError
from responses.messaging.ratelimit import SharedRateLimiter

log = logging.getLogger("jiaoying.sender")


class TokenBucket:
    """At most ``rate`` requests per second on average, at most ``burst`` at once.

    ``acquire`` blocks the calling thread until a token is free. The clock and the sleep are
    injected so tests can prove the pacing without waiting.
    """

    def __init__(self, rate: float, burst: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.burst = rate, max(1.0, burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take a token now or book the next one; returns how long the caller must wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        wait_s = self._reserve()
        if wait_s > 0:
            self._sleep(wait_s)
        return wait_s


@dataclass
class SenderConfig:
    concurrency: int = 8
    # The provider's limit in requests/s (None: no limit). The bucket runs at ``rate_headroom`` of
    # it because requests leave evenly but arrive with network jitter: pacing exactly at the limit
    # lets two late-and-early neighbours land in the same provider second.
    rate_per_second: float | None = None
    rate_headroom: float = 0.8
    shared_rate: bool = True  # booked in the database for every sender of the account; False: this process only
    batch: int = 64
    # How long a claim keeps other senders off a row. Short, because the rows of a sender that died wait for it
    # to run out (a red warning's answer window is minutes); long enough for a batch to go out: the claim size
    # is cut so that a batch takes at most a third of the lease at the paced rate (``claim_size``).
    lease: dt.timedelta = dt.timedelta(seconds=30)
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    public_base_url: str | None = None  # status callbacks and TwiML go here; None: no callbacks
    status_callbacks: bool = True
    # A provider's own request limit when it differs from ``rate_per_second`` (e.g. Twilio's and Alibaba Cloud's
    # accounts side by side); None as a value: that provider is not paced.
    provider_rates: dict[str, float | None] = field(default_factory=dict)


@dataclass
class SendStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class Sender:
    """One sender process or thread. Several may run against one database: claims never overlap."""

    def __init__(self, session_factory: sessionmaker[Session], notifiers: Mapping[str, Notifier], *,
                 clock: Clock, config: SenderConfig | None = None, worker_id: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic, seed: int | None = None,
                 on_accepted: Sequence[outbox.AcceptedHook] = (), routes: Mapping[str, str] | None = None) -> None:
        self.factory = session_factory
        # channel -> provider: the settings' choice per channel wins over the row's ``provider`` (which says
        # what was asked for at enqueue); a channel without a route goes by the row
        self.routes = {ch: p for ch, p in (routes or {}).items() if p in notifiers}
        # kept by reference: the runtime's hook list (``outbox.accepted_hooks_of``) may grow later
        self.on_accepted = on_accepted
        self.notifiers = dict(notifiers)
        self.clock = clock
        self.cfg = config or SenderConfig()
        self.worker = worker_id or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.rng = random.Random(seed)
        self.buckets: dict[str, TokenBucket | SharedRateLimiter] = {}
        for name, notifier in self.notifiers.items():
            limit = self.cfg.provider_rates.get(name, self.cfg.rate_per_second)
            if not limit:
                continue
            rate = limit * self.cfg.rate_headroom
            # half of the headroom absorbs threads that wake late, the other half the network's jitter
            max_late = max(0.0, (1.0 / self.cfg.rate_headroom - 1.0) / 2)
            self.buckets[name] = (SharedRateLimiter(session_factory, rate_account(name, notifier), rate,
                                                    max_late=max_late, monotonic=monotonic)
                                  if self.cfg.shared_rate else TokenBucket(rate, 1.0, clock=monotonic))
        self._pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="sender")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # --- one message -------------------------------------------------------------------------
    def callback_url(self, msg_id: int) -> str | None:
        if not (self.cfg.public_base_url and self.cfg.status_callbacks):
            return None
        return f"{self.cfg.public_base_url.rstrip('/')}/twilio/status?m={msg_id}"

    def twiml_url(self, msg_id: int) -> str | None:
        if not self.cfg.public_base_url:
            return None
        return f"{self.cfg.public_base_url.rstrip('/')}/twilio/voice/twiml?m={msg_id}"

    def _send_one(self, c: outbox.Claimed) -> outbox.SendResult:
        provider = self.routes.get(c.channel, c.provider)
        notifier = self.notifiers.get(provider)
        if notifier is None:
            return outbox.SendResult(c.id, self.worker, "failed", error_code="no_provider",
                                     error=f"no notifier configured for provider {provider!r}")
        bucket = self.buckets.get(provider)
        if bucket is not None:
            try:
                bucket.acquire()
            except SQLAlchemyError as exc:  # no slot could be booked: nothing leaves unpaced, try again later
                log.warning("rate limit store unavailable for %s: %s", provider, exc)
                delay = backoff(c.attempts, base=self.cfg.backoff_base, cap=self.cfg.backoff_cap, rng=self.rng)
                return outbox.SendResult(c.id, self.worker, "retry", error_code="rate_store",
                                         error=f"rate limit not booked: {type(exc).__name__}",
                                         next_try_at=self.clock.now() + delay)
        now = self.clock.now()
        if is_stale(c.validity_until, now):
            return outbox.SendResult(c.id, self.worker, "expired", error_code="stale",
                                     error="validity ended before sending")
        validity = None
        if c.validity_until is not None:
            validity = max(1, int((c.validity_until - now).total_seconds()))
        try:
            if getattr(notifier, "templated", False):
                # a template provider (Alibaba Cloud) sends the registered template of the row's kind with its
                # parameters, and carries our message id so its pushes name the message
                extra = {"template": c.template, "params": c.params, "out_id": str(c.id)}
                if c.channel == "sms":
                    pid = notifier.send_sms(c.to, c.body, None, from_number=c.from_number,
                                            validity_seconds=validity, **extra)  # type: ignore[call-arg]
                else:
                    pid = notifier.place_call(c.to, from_number=c.from_number, **extra)  # type: ignore[call-arg]
            elif c.channel == "sms":
                pid = notifier.send_sms(c.to, c.body, self.callback_url(c.id), from_number=c.from_number,
                                        validity_seconds=validity)
            else:
                twiml_url = self.twiml_url(c.id)
                twiml = None if twiml_url else _inline_twiml(c.body)
                pid = notifier.place_call(c.to, twiml_url=twiml_url, twiml=twiml,
                                          status_callback_url=self.callback_url(c.id), from_number=c.from_number)
        except PermanentError as exc:
            return outbox.SendResult(c.id, self.worker, "failed", error_code=exc.code, error=exc.reason)
        except TransientError as exc:
            delay = backoff(c.attempts, base=self.cfg.backoff_base, cap=self.cfg.backoff_cap, rng=self.rng)
            if exc.retry_after:
                delay = max(delay, dt.timedelta(seconds=exc.retry_after))
            return outbox.SendResult(c.id, self.worker, "retry", error_code=exc.code, error=exc.reason,
                                     next_try_at=self.clock.now() + delay)
        except Exception as exc:  # an unexpected bug in a notifier must not kill the sender; retried
            log.exception("notifier %s crashed on message %s", provider, c.id, extra={"message_id": c.id})
            delay = backoff(c.attempts, base=self.cfg.backoff_base, cap=self.cfg.backoff_cap, rng=self.rng)
            return outbox.SendResult(c.id, self.worker, "retry", error_code="crash",
                                     error=f"{type(exc).__name__}: {exc}", next_try_at=self.clock.now() + delay)
        return outbox.SendResult(c.id, self.worker, "sent", provider_id=pid,
                                 provider=provider if provider != c.provider else None)

    # --- the pipeline ------------------------------------------------------------------------
    def _claim(self, n: int) -> list[outbox.Claimed]:
        with session_scope(self.factory) as s:
            return outbox.claim(s, now=self.clock.now(), worker=self.worker, limit=n, lease=self.cfg.lease)

    def _flush(self, results: list[outbox.SendResult], stats: SendStats) -> None:
        if not results:
            return
        with session_scope(self.factory) as s:
            now = self.clock.now()
            outbox.apply_results(s, results, now=now, on_accepted=self.on_accepted)
            outbox.record_sent_batch(s, results, now=now)
        for r in results:
            if r.outcome == "sent":
                stats.sent += 1
            elif r.outcome == "expired":
                stats.expired += 1
            elif r.outcome == "retry":
                stats.retried += 1
            else:
                stats.failed += 1
            if r.error_code:
                stats.errors[r.error_code] = stats.errors.get(r.error_code, 0) + 1
        results.clear()

    def run_once(self, *, max_seconds: float | None = None) -> SendStats:
        """Send everything that is due now, then return; ``max_seconds`` bounds a scheduler tick
        (what is left waits for the next one).

        Requests in flight plus results not yet written never exceed ``concurrency``: if the
        process is killed, at most that many messages were sent without a record and go out twice.
        Claimed rows not yet sent are not lost either: their lease runs out and another sender
        takes them.
        """
        stats = SendStats()
        with session_scope(self.factory) as s:
            stats.expired = len(outbox.expire_stale(s, now=self.clock.now()))
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        cap = self.cfg.concurrency
        buffer: deque[outbox.Claimed] = deque()
        in_flight: set[Future[outbox.SendResult]] = set()
        results: list[outbox.SendResult] = []
        exhausted = False
        while True:
            in_time = deadline is None or time.monotonic() < deadline
            if not buffer and not exhausted and in_time:
                got = self._claim(claim_size(self.cfg))
                stats.claimed += len(got)
                buffer.extend(got)
                exhausted = not got
            while buffer and len(in_flight) + len(results) < cap:
                in_flight.add(self._pool.submit(self._send_one, buffer.popleft()))
            if not in_flight:
                self._flush(results, stats)
                if buffer:
                    continue
                break
            finished, in_flight = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
            results.extend(f.result() for f in finished)
            if len(results) >= max(1, cap // 2) or not in_flight:
                self._flush(results, stats)
        if buffer:  # out of time: hand the unsent claims back now rather than at the end of the lease
            self._release([c.id for c in buffer])
        return stats

    def _release(self, ids: list[int]) -> None:
        with session_scope(self.factory) as s:
            outbox.release(s, ids, worker=self.worker, now=self.clock.now())


def claim_size(cfg: SenderConfig) -> int:
    """Rows to claim at once: the configured batch, but no more than a third of the lease's worth at the paced
    rate, so a claimed row is sent long before its lease could run out and another sender take it too."""
    if not cfg.rate_per_second:
        return cfg.batch
    paced = cfg.rate_per_second * cfg.rate_headroom
    return max(1, min(cfg.batch, int(paced * cfg.lease.total_seconds() / 3)))


def rate_account(provider: str, notifier: Notifier) -> str:
    """The key the provider counts requests by: the provider and its account id when the notifier has one."""
    client = getattr(notifier, "client", None)
    sid = getattr(notifier, "account_sid", None) or getattr(client, "account_sid", None)
    return f"{provider}:{sid}" if isinstance(sid, str) and sid else provider


def _inline_twiml(text: str) -> str:
    from xml.sax.saxutils import escape

    return f'<Response><Say language="zh-CN">{escape(text)}</Say></Response>'


# --- scheduler job ---------------------------------------------------------------------------

def notifiers_from_settings(rt: Runtime) -> dict[str, Notifier]:
    """A notifier for each provider some channel uses (``Settings.provider_for``) and that has credentials."""
    return notifiers_for(rt.settings)


def notifiers_for(settings: Settings) -> dict[str, Notifier]:
    used = {settings.provider_for(ch) for ch in outbox.CHANNELS}
    out: dict[str, Notifier] = {}
    tw = settings.twilio
    if "twilio" in used and tw.configured:
        from responses.messaging.notifiers.twilio import TwilioNotifier

        assert tw.account_sid and tw.auth_token
        out["twilio"] = TwilioNotifier(tw.account_sid, tw.auth_token.get_secret_value(), tw.from_number,
                                       api_base_url=tw.api_base_url, timeout=tw.request_timeout_seconds,
                                       max_connections=max(8, tw.sender_concurrency * 2))
    al = settings.aliyun
    if "aliyun" in used and al.configured:
        from responses.messaging.notifiers.aliyun import AliyunNotifier

        assert al.access_key_id and al.access_key_secret
        out["aliyun"] = AliyunNotifier(
            al.access_key_id, al.access_key_secret.get_secret_value(), sign_name=al.sign_name,
            sms_templates=al.sms_templates, tts_templates=al.tts_templates, ivr_start_code=al.ivr_start_code,
            ivr_ack_code=al.ivr_ack_code, ivr_help_code=al.ivr_help_code, called_show_number=al.called_show_number,
            sms_endpoint=al.sms_endpoint, voice_endpoint=al.voice_endpoint, protocol=al.protocol, region=al.region,
            timeout=al.request_timeout_seconds, max_connections=max(8, al.sender_concurrency * 2))
    return out


def routes_from_settings(rt: Runtime) -> dict[str, str]:
    """channel -> provider, as the settings choose it."""
    return {ch: rt.settings.provider_for(ch) for ch in outbox.CHANNELS}


def sender_config(rt: Runtime, providers: set[str]) -> SenderConfig:
    """The sender's settings for the providers in use: each provider paced at its own account's limit, the
    concurrency and lease of the most demanding one."""
    tw, al = rt.settings.twilio, rt.settings.aliyun
    rates: dict[str, float | None] = {"twilio": tw.messages_per_second, "aliyun": al.messages_per_second}
    timeouts = {"twilio": tw.request_timeout_seconds, "aliyun": al.request_timeout_seconds}
    workers = {"twilio": tw.sender_concurrency, "aliyun": al.sender_concurrency}
    chosen = [p for p in providers if p in rates] or ["twilio"]
    # a request that hangs until its timeout must still end inside the lease
    lease = dt.timedelta(seconds=max(30.0, 3 * max(timeouts[p] for p in chosen)))
    paced = [r for p in chosen if (r := rates[p])]
    return SenderConfig(concurrency=max(workers[p] for p in chosen), rate_per_second=min(paced) if paced else None,
                        provider_rates={p: rates[p] for p in chosen}, public_base_url=rt.settings.public_base_url,
                        lease=lease)


def sender_for(rt: Runtime) -> Sender | None:
    """The runtime's sender, built once from settings (None when no provider is configured)."""
    sender = rt.state.get("messaging_sender")
    if sender is None:
        notifiers = rt.state.get("messaging_notifiers") or notifiers_from_settings(rt)
        if not notifiers:
            return None
        routes = routes_from_settings(rt)
        cfg = sender_config(rt, set(notifiers) & set(routes.values()) or set(notifiers))
        sender = Sender(rt.session_factory, notifiers, clock=rt.clock, config=cfg,
                        on_accepted=outbox.accepted_hooks_of(rt.state), routes=routes)
        rt.state["messaging_sender"] = sender
    return sender  # type: ignore[no-any-return]


def send_due(rt: Runtime) -> SendStats | None:
    """Scheduler job: send what is due, within one tick's time."""
    sender = sender_for(rt)
    if sender is None:
        if not rt.state.get("messaging_warned"):
            log.warning("未配置短信/语音服务商，消息保留在发件箱 / no provider configured; messages stay queued")
            rt.state["messaging_warned"] = True
        return None
    return sender.run_once(max_seconds=max(1.0, rt.settings.scheduler.tick_seconds * 0.8))
