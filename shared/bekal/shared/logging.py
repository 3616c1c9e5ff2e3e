"""Structured JSON logs carrying the request id, and the event id and trace across Kafka."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from contextvars import ContextVar

import structlog

_traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)


def configure_logging(*, service: str, level: str = "INFO", json: bool = True) -> None:
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service, pid=os.getpid())
    # Libraries' stdlib logs (uvicorn, aiokafka, alembic) at WARNING and up only.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s"
    )


def new_traceparent(parent: str | None = None) -> str:
    """W3C trace context: keep the trace id of a parent, new span id."""
    trace_id = secrets.token_hex(16)
    if parent:
        parts = parent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            trace_id = parts[1]
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def set_traceparent(value: str | None) -> None:
    _traceparent.set(value)
    trace_id = value.split("-")[1] if value and value.count("-") == 3 else None
    structlog.contextvars.bind_contextvars(trace_id=trace_id)


def current_traceparent() -> str | None:
    return _traceparent.get()
