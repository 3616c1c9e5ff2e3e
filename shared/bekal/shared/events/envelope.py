"""CloudEvents 1.0 in Kafka binary content mode: attributes in ``ce_*`` headers, data as JSON."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from bekal.shared.events.base import Event, EventRegistry

CONTENT_TYPE = "application/json"
TRACEPARENT = "traceparent"
_FORMAT = JSONFormat()


class UnreadableEvent(Exception):
    """A record that is not a valid event of the catalogue; it goes to the dead-letter topic."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class EventMeta:
    """The envelope's attributes of one received event."""

    id: str
    type: str
    source: str
    subject: str | None
    time: datetime | None
    traceparent: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def new_event_id() -> str:
    return str(uuid.uuid4())


def to_kafka(
    event: Event,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Encode an event as (key, value, headers) in binary content mode."""
    attributes: dict[str, Any] = {
        "id": event_id or new_event_id(),
        "source": source,
        "type": event.event_type(),
        "subject": event.aggregate_id,
        "time": time or datetime.now(UTC),
        "datacontenttype": CONTENT_TYPE,
        "partitionkey": event.aggregate_id,
    }
    message = ce_kafka.to_binary(CloudEvent(attributes=attributes, data=event.data()), _FORMAT)
    headers = [(k, v) for k, v in message.headers.items() if k != "ce_partitionkey"]
    if traceparent:
        headers.append((TRACEPARENT, traceparent.encode()))
    key = message.key.encode() if isinstance(message.key, str) else (message.key or b"")
    return key, message.value, headers


def from_kafka(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...],
    registry: EventRegistry,
) -> tuple[Event, EventMeta]:
    """Decode and validate a record; raise UnreadableEvent with a reason for anything else."""
    header_map = {k: v for k, v in headers}
    if "ce_type" not in header_map or "ce_id" not in header_map:
        raise UnreadableEvent("not_a_cloudevent", "missing ce_id or ce_type header")
    try:
        message = ce_kafka.KafkaMessage(
            headers={k: v for k, v in header_map.items() if k != TRACEPARENT},
            key=key,
            value=value or b"",
        )
        ce = ce_kafka.from_binary(message, _FORMAT)
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableEvent("malformed", str(exc)) from exc
    except Exception as exc:  # the SDK raises its own exception family for bad attributes
        raise UnreadableEvent("malformed", f"{type(exc).__name__}: {exc}") from exc
    event_type = ce.get_type()
    cls = registry.get(event_type)
    if cls is None:
        raise UnreadableEvent("unknown_type", f"no event type {event_type!r} in the catalogue")
    data = ce.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UnreadableEvent("malformed", f"data is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnreadableEvent("malformed", "data is not a JSON object")
    try:
        event = cls.model_validate(data)
    except ValidationError as exc:
        raise UnreadableEvent("invalid_payload", str(exc)) from exc
    trace = header_map.get(TRACEPARENT)
    meta = EventMeta(
        id=ce.get_id(),
        type=event_type,
        source=ce.get_source(),
        subject=ce.get_subject(),
        time=ce.get_time(),
        traceparent=trace.decode(errors="replace") if trace else None,
    )
    return event, meta
