"""Prometheus metrics shared by every service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUEST_SECONDS = Histogram(
    "bekal_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
)
EVENTS_PUBLISHED = Counter(
    "bekal_events_published_total", "Events published from the outbox", ["service", "topic"]
)
EVENTS_CONSUMED = Counter(
    "bekal_events_consumed_total",
    "Events handled by a consumer (duplicates and ignored types included, by outcome)",
    ["service", "group", "topic", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "bekal_events_dead_lettered_total",
    "Records sent to a dead-letter topic",
    ["service", "group", "reason"],
)
OUTBOX_BACKLOG = Gauge("bekal_outbox_backlog", "Outbox rows not yet published", ["service"])
CONSUMER_LAG = Gauge(
    "bekal_consumer_lag",
    "Records behind the end of the partition",
    ["service", "group", "topic", "partition"],
)
LAST_EVENT_APPLIED = Gauge(
    "bekal_consumer_last_event_timestamp_seconds",
    "Time (of the event) of the last event applied by the consumer group",
    ["service", "group"],
)
