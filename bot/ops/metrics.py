"""Prometheus metrics. One registry per Runtime, so tests and the demo can run several bots in one process."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, OutboxMessage

LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter(
            "confbot_polls",
            "Canvas polls by unit kind and result",
            ["kind", "result"],
            registry=self.registry,
        )
        self.throttles = Counter(
            "confbot_canvas_throttles", "Canvas throttle answers (403/429)", registry=self.registry
        )
        self.alerts = Counter(
            "confbot_slack_messages",
            "Slack messages sent or edited, by event",
            ["event"],
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "confbot_slack_errors", "Slack API failures by error", ["error"], registry=self.registry
        )
        self.alert_latency = Histogram(
            "confbot_alert_latency_seconds",
            "Conference start (Canvas started_at) to the alert accepted by Slack",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "confbot_outbox_pending", "Outbox messages waiting to be sent", registry=self.registry
        )
        self.poll_lag = Gauge(
            "confbot_poll_lag_seconds",
            "how late this replica's most overdue poll unit is (or its bucket lease heartbeat)",
            registry=self.registry,
        )
        self.missing_scopes = Counter(
            "confbot_canvas_missing_scope",
            "Canvas calls or authorizations refused for a scope the developer key does not grant, by scope",
            ["scope"],
            registry=self.registry,
        )
        self.poll_concurrency = Gauge(
            "confbot_poll_concurrency_limit",
            "Canvas polls allowed in flight now: Little's law (units / interval x measured hold time x "
            "headroom), at most POLL_CONCURRENCY, halved by Canvas throttles",
            registry=self.registry,
        )
        self.linked_users = Gauge(
            "confbot_linked_users", "Linked users that are polled", registry=self.registry
        )

    def poll_result(self, kind: str, result: str, count: int = 1) -> None:
        """`count` polls of `kind` ended with `result` (counted per written batch, not per poll)."""
        self.polls.labels(kind=kind, result=result).inc(count)
        if result == "Throttled":
            self.throttles.inc(count)

    def missing_scope(self, scope: str) -> None:
        """Canvas refused a call or an authorization for `scope` (see bot/ops/scope_alarm.py)."""
        self.missing_scopes.labels(scope=scope).inc()

    async def render(self, sessions: SessionFactory, now: datetime, poll_lag: float | None = None) -> bytes:
        """Refresh the database gauges (cheap aggregate queries) and render the text format; `poll_lag` is
        this replica's, from its in-memory schedule (issue 14)."""
        async with sessions() as session:
            pending = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
            )
            linked = await session.scalar(
                select(func.count()).select_from(LinkedUser).where(LinkedUser.needs_relink.is_(False))
            )
        self.outbox_depth.set(pending or 0)
        self.linked_users.set(linked or 0)
        self.poll_lag.set(max(poll_lag or 0.0, 0.0))
        return generate_latest(self.registry)
