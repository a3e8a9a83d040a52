"""``/metrics`` for Prometheus: what a duty room's monitoring must see, read from the database at scrape time.

Every gauge and counter about the work (feeds, outbox, callouts, measures, reports) is computed when it is
scraped, by a handful of aggregate queries on the shared database, so any instance answers the same truth
and nothing kept in a process can drift from it or be lost with it. Counters are counts of rows that only
grow: messages accepted by the provider (``outbox_message.sent_at``) and provider errors (the append-only
``message_status`` history: a request the provider refused or that failed, and a delivery it reported as
failed). Only what belongs to this process is kept in it: how long each scheduled job took and how often it
failed (``run_job`` in ``jiaoying/scheduler.py``), whether this instance is the scheduler's leader, and the
process's own CPU and memory.

The route has its own protection instead of a user login, because a scraper has no account: with
``metrics.token`` set a scrape must send it as a bearer token; without one only a client on this machine may
scrape, and never through a proxy (a proxy on the same host would otherwise make everyone local).
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from config.errors import ApiError, install_error_handlers
from config.runtime import Runtime
from responses.callouts.escalation import CalloutState
from responses.callouts.models import Callout
from responses.measures.core import PENDING, MeasureState
from responses.measures.models import MeasureOrder
from responses.messaging.core import State as MessageState
from responses.messaging.models import MessageStatus, OutboxMessage, ProviderReport
from responses.reports.core import ReportState
from responses.reports.models import InfoReport
from responses.runs.core import RunState
from responses.runs.models import ResponseRun
from warning.models import Feed, FeedItem, FeedItemState

log = logging.getLogger("jiaoying.metrics")

ESCALATION_WINDOW = dt.timedelta(minutes=15)  # "recent" escalations, for the lag gauges
WAITING = (MessageState.QUEUED.value, MessageState.CLAIMED.value)
OPEN_RUNS = (RunState.ACTIVE.value, RunState.CLOSING.value)

# --------------------------------------------------------------------------------------------- this process

JOB_REGISTRY = CollectorRegistry(auto_describe=True)
JOB_SECONDS = Histogram(
    "jiaoying_job_duration_seconds", "一次定时任务的耗时 / time one run of a scheduled job took (this process)",
    ["job"], registry=JOB_REGISTRY, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
JOB_FAILURES = Counter(
    "jiaoying_job_failures", "定时任务失败次数 / scheduled job runs that raised (this process)", ["job"],
    registry=JOB_REGISTRY,
)


def observe_job(name: str, seconds: float, *, failed: bool) -> None:
    """One run of a scheduled job, for ``jiaoying_job_duration_seconds`` and ``jiaoying_job_failures_total``."""
    JOB_SECONDS.labels(name).observe(seconds)
    if failed:
        JOB_FAILURES.labels(name).inc()
    else:
        JOB_FAILURES.labels(name)  # the series exists at 0 from the first run, so rate() and alerts see it


def leader_status(rt: Runtime) -> str:
    """``leader``, ``follower``, or ``unknown`` when this process runs no leader election (no scheduler)."""
    leadership = rt.state.get("leadership")
    if leadership is not None:
        flag = getattr(leadership, "is_leader", None)
        if isinstance(flag, bool):
            return "leader" if flag else "follower"
    flag = rt.state.get("leader")
    if isinstance(flag, bool):
        return "leader" if flag else "follower"
    return "unknown"


# --------------------------------------------------------------------------------------------- the database


def _seconds(later: dt.datetime, earlier: dt.datetime | None) -> float:
    return max(0.0, (later - earlier).total_seconds()) if earlier is not None else 0.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def database_metrics(session: Session, now: dt.datetime) -> Iterator[Metric]:
    """Every gauge and counter about the work, from ten aggregate queries."""
    # feeds: lag since the last success, failures in a row, quarantined payloads
    lag = GaugeMetricFamily("jiaoying_feed_lag_seconds",
                            "距上次成功拉取的秒数 / seconds since the feed's last successful poll (enabled, polled "
                            "feeds; since it was created when it never succeeded)", labels=["feed"])
    errors = GaugeMetricFamily("jiaoying_feed_consecutive_errors", "连续失败次数 / failed polls in a row",
                               labels=["feed"])
    quarantined = GaugeMetricFamily("jiaoying_feed_quarantined", "隔离区中待处理的数据 / payloads waiting in "
                                    "quarantine for the duty officer", labels=["feed"])
    names: dict[int, str] = {}
    for fid, name, enabled, poll, last_ok, created, failures in session.execute(
            select(Feed.id, Feed.name, Feed.enabled, Feed.poll_seconds, Feed.last_success_at, Feed.created_at,
                   Feed.consecutive_failures)):
        names[fid] = name
        if enabled and poll > 0:
            lag.add_metric([name], _seconds(now, last_ok or created))
        errors.add_metric([name], float(failures or 0))
    q_counts = dict(session.execute(select(FeedItem.feed_id, func.count()).where(
        FeedItem.state == FeedItemState.QUARANTINED.value).group_by(FeedItem.feed_id)).all())
    for fid, name in names.items():
        quarantined.add_metric([name], float(q_counts.get(fid, 0)))
    yield from (lag, errors, quarantined)
    total_q = GaugeMetricFamily("jiaoying_quarantine_total", "隔离区数据总数 / payloads in quarantine, all feeds",
                                value=float(sum(q_counts.values())))
    yield total_q

    # outbox: depth and age of what waits, messages by state, the accepted counter
    depth = GaugeMetricFamily("jiaoying_outbox_depth", "发件箱中待发送的消息 / messages waiting to be sent "
                              "(queued or claimed)", labels=["channel"])
    by_state = GaugeMetricFamily("jiaoying_outbox_messages", "发件箱消息（按状态）/ outbox messages by state",
                                 labels=["channel", "state"])
    sent = CounterMetricFamily("jiaoying_messages_sent", "服务商已接收的消息 / messages the provider accepted",
                               labels=["channel"])
    oldest: dt.datetime | None = None
    depth_of: dict[str, int] = {}
    sent_of: dict[str, int] = {}
    for channel, state, n, n_sent, first in session.execute(
            select(OutboxMessage.channel, OutboxMessage.state, func.count(),
                   func.sum(case((OutboxMessage.sent_at.is_not(None), 1), else_=0)),
                   func.min(OutboxMessage.created_at))
            .group_by(OutboxMessage.channel, OutboxMessage.state)):
        by_state.add_metric([channel, state], float(n))
        sent_of[channel] = sent_of.get(channel, 0) + int(n_sent or 0)
        depth_of.setdefault(channel, 0)
        if state in WAITING:
            depth_of[channel] += int(n)
            oldest = first if oldest is None or (first is not None and first < oldest) else oldest
    for channel in ("sms", "voice"):
        depth_of.setdefault(channel, 0)
        sent_of.setdefault(channel, 0)
    for channel, n in sorted(depth_of.items()):
        depth.add_metric([channel], float(n))
    for channel, n in sorted(sent_of.items()):
        sent.add_metric([channel], float(n))
    yield from (depth, by_state, sent)
    yield GaugeMetricFamily("jiaoying_outbox_oldest_age_seconds", "最早一条待发送消息的等待时间 / age of the "
                            "oldest message still waiting (0 when none)", value=_seconds(now, oldest))
    waiting_reports, failed_reports = session.execute(select(
        func.sum(case((ProviderReport.failed_at.is_(None), 1), else_=0)),
        func.sum(case((ProviderReport.failed_at.is_not(None), 1), else_=0)))).one()
    reports = GaugeMetricFamily("jiaoying_provider_reports", "服务商状态回调（待处理 / 无法处理）/ provider status "
                                "callbacks stored and not yet applied, or kept because they could not be",
                                labels=["state"])
    reports.add_metric(["waiting"], float(waiting_reports or 0))
    reports.add_metric(["failed"], float(failed_reports or 0))
    yield reports

    # provider errors: each refused or failed request (the sender's retry or failure) and each failed delivery
    request_errors, delivery_errors = session.execute(select(
        func.sum(case((and_(MessageStatus.source == "sender",
                            MessageStatus.state.in_((MessageState.QUEUED.value, MessageState.FAILED.value))), 1),
                      else_=0)),
        func.sum(case((and_(MessageStatus.source == "callback", MessageStatus.applied.is_(True),
                            MessageStatus.state == MessageState.FAILED.value), 1), else_=0)),
    )).one()
    perr = CounterMetricFamily("jiaoying_provider_errors", "服务商错误 / provider errors: a request refused or "
                               "failed (kind=request), a delivery reported failed (kind=delivery)", labels=["kind"])
    perr.add_metric(["request"], float(request_errors or 0))
    perr.add_metric(["delivery"], float(delivery_errors or 0))
    yield perr

    # callouts of open runs, by state; answer rate per open run
    callouts = GaugeMetricFamily("jiaoying_callouts", "未结束响应中的叫应（按状态）/ callouts of open runs by state",
                                 labels=["state", "drill"])
    rate = GaugeMetricFamily("jiaoying_run_answer_ratio", "已应答比例 / share of a open run's callouts answered",
                             labels=["run", "drill"])
    per_state: dict[tuple[str, str], int] = {(s.value, d): 0 for s in CalloutState for d in ("false", "true")}
    per_run: dict[tuple[str, str], list[int]] = {}
    for number, drill, state, n, answered in session.execute(
            select(ResponseRun.number, ResponseRun.drill, Callout.state, func.count(),
                   func.sum(case((Callout.answered_at.is_not(None), 1), else_=0)))
            .join(ResponseRun, ResponseRun.id == Callout.run_id).where(ResponseRun.state.in_(OPEN_RUNS))
            .group_by(ResponseRun.number, ResponseRun.drill, Callout.state)):
        d = "true" if drill else "false"
        per_state[(state, d)] = per_state.get((state, d), 0) + int(n)
        tally = per_run.setdefault((number, d), [0, 0])
        tally[0] += int(n)
        tally[1] += int(answered or 0)
    for (state, d), n in sorted(per_state.items()):
        callouts.add_metric([state, d], float(n))
    for (number, d), (n, answered) in sorted(per_run.items()):
        rate.add_metric([number, d], answered / n if n else 0.0)
    yield from (callouts, rate)
    open_runs = GaugeMetricFamily("jiaoying_open_runs", "进行中的响应 / response runs active or closing",
                                  labels=["drill"])
    run_counts = dict(session.execute(select(ResponseRun.drill, func.count()).where(
        ResponseRun.state.in_(OPEN_RUNS)).group_by(ResponseRun.drill)).all())
    for drill in (False, True):
        open_runs.add_metric(["true" if drill else "false"], float(run_counts.get(drill, 0)))
    yield open_runs

    # escalation lag: how long after it was due each recent escalation happened; and how far the sweep is behind
    lags = [
        _seconds(at, deadline + dt.timedelta(minutes=(retries or 0) * (interval or 0)))
        for at, deadline, retries, interval in session.execute(
            select(Callout.escalated_at, Callout.deadline_at, Callout.retries_total, Callout.retry_interval_minutes)
            .join(ResponseRun, ResponseRun.id == Callout.run_id)
            .where(ResponseRun.state.in_(OPEN_RUNS), Callout.escalated_at >= now - ESCALATION_WINDOW))
    ]
    yield GaugeMetricFamily("jiaoying_escalation_lag_seconds_max", "近 15 分钟升级的最大滞后 / the largest lag "
                            "from due to escalated in the last 15 minutes", value=max(lags, default=0.0))
    yield GaugeMetricFamily("jiaoying_escalation_lag_seconds_p95", "近 15 分钟升级滞后的 95 分位 / 95th "
                            "percentile of that lag", value=_quantile(lags, 0.95))
    yield GaugeMetricFamily("jiaoying_escalations_recent", "近 15 分钟的升级数 / escalations in the last 15 "
                            "minutes", value=float(len(lags)))
    behind = session.execute(select(func.min(Callout.next_action_at)).where(
        Callout.state == CalloutState.CALLING.value, Callout.next_action_at <= now)).scalar()
    yield GaugeMetricFamily("jiaoying_callouts_sweep_behind_seconds", "最早一个已到期未处理的叫应动作 / how long "
                            "the oldest due callout action (retry, escalation) has waited (0 when none)",
                            value=_seconds(now, behind))

    # overdue measures (and lift orders) and information reports
    pending = [s.value for s in PENDING]
    late, late_lift = session.execute(select(
        func.sum(case((and_(MeasureOrder.state.in_(pending), MeasureOrder.deadline <= now), 1), else_=0)),
        func.sum(case((and_(MeasureOrder.state == MeasureState.LIFTING.value, MeasureOrder.lift_deadline <= now), 1),
                      else_=0)),
    ).where(MeasureOrder.state.in_([*pending, MeasureState.LIFTING.value]))).one()
    measures = GaugeMetricFamily("jiaoying_measures_overdue", "超时未落实的措施 / measures past their deadline "
                                 "(kind=order), lift orders past theirs (kind=lift)", labels=["kind"])
    measures.add_metric(["order"], float(late or 0))
    measures.add_metric(["lift"], float(late_lift or 0))
    yield measures
    reports = session.execute(select(func.count()).select_from(InfoReport).where(
        InfoReport.state == ReportState.DRAFT.value, InfoReport.due_at <= now)).scalar()
    yield GaugeMetricFamily("jiaoying_reports_overdue", "超时未报送的信息报告 / information reports due and not sent",
                            value=float(reports or 0))


class DatabaseCollector(Collector):
    """The metrics of the work, queried at each scrape; a database that does not answer is itself reported
    (``jiaoying_metrics_database_up 0``) and the process's own metrics still go out."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterable[Metric]:
        rt = self._runtime()
        started = time.perf_counter()
        up = 1.0
        metrics: list[Metric] = []
        try:
            factory = rt.read_session_factory or rt.session_factory
            with factory() as session:
                metrics = list(database_metrics(session, rt.now()))
        except Exception:  # the scrape says the database is down instead of failing as a whole
            log.warning("metrics: reading the database failed", exc_info=True)
            up, metrics = 0.0, []
        yield from metrics
        yield GaugeMetricFamily("jiaoying_metrics_database_up", "本次采集能否读取数据库 / whether this scrape could "
                                "read the database", value=up)
        yield GaugeMetricFamily("jiaoying_metrics_scrape_seconds", "本次采集查询数据库的耗时 / time this scrape "
                                "spent reading the database", value=time.perf_counter() - started)
        status = leader_status(rt)
        leader = GaugeMetricFamily("jiaoying_scheduler_leader", "本实例是否为调度主节点（1 是）/ 1 when this "
                                   "instance runs the leader-only jobs; status says leader, follower or unknown",
                                   labels=["status"])
        leader.add_metric([status], 1.0 if status == "leader" else 0.0)
        yield leader


class _JobCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        return JOB_REGISTRY.collect()


def build_registry(runtime: Callable[[], Runtime]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(runtime))
    registry.register(_JobCollector())
    ProcessCollector(registry=registry)
    return registry


# --------------------------------------------------------------------------------------------- the route

_LOOPBACK_ONLY = ("metrics_loopback_only",
                  "未设置采集令牌时，/metrics 只接受本机直接访问（不经代理）。请设置 JIAOYING_METRICS__TOKEN，"
                  "并在采集请求中携带 Authorization: Bearer <令牌>。",
                  "Without a scrape token /metrics answers only clients on this machine, not through a proxy. "
                  "Set JIAOYING_METRICS__TOKEN and send it as Authorization: Bearer <token>.")
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_access(request: Request, token: str | None) -> None:
    """Refuse a scrape without the token (when one is set) or from anywhere but this machine (when none is)."""
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "metrics_token_required", "采集 /metrics 需要正确的令牌（Authorization: Bearer …）",
                           "/metrics needs the scrape token (Authorization: Bearer …)",
                           headers={"WWW-Authenticate": "Bearer"})
        return
    client = request.client.host if request.client else None
    if not _is_loopback(client) or any(h in request.headers for h in _FORWARDED):
        raise ApiError(403, *_LOOPBACK_ONLY)


def registry_of(app: FastAPI) -> CollectorRegistry:
    registry: CollectorRegistry | None = getattr(app.state, "metrics_registry", None)
    if registry is None:
        registry = build_registry(lambda: app.state.runtime)
        app.state.metrics_registry = registry
    return registry


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format; outside the OpenAPI document (a scraper, not an API client, reads it)."""
    settings: Any = request.app.state.settings
    secret = settings.metrics.token
    check_access(request, secret.get_secret_value() if secret is not None else None)
    return Response(generate_latest(registry_of(request.app)), media_type=CONTENT_TYPE_LATEST)


def metrics_app(rt: Runtime) -> FastAPI:
    """``/metrics`` alone, for a ``jiaoying worker`` (which serves no API): the same values and the same
    protection as on ``serve``, with this worker's own job durations, failures and leader flag."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.state.settings, app.state.runtime = rt.settings, rt
    app.include_router(router)
    return app
