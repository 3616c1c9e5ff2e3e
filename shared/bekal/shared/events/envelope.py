"""CloudEvents 1.0 in Kafka binary content mode: attributes in ``ce_*`` headers, data as JSON."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from bekal.shared.events.base import Event, EventRegistry

CONTENT_TYPE = "application/json"
TRACEPARENT = "traceparent"
TIME = "ce_time"
SPECVERSION = "1.0"
_CONTENT_TYPE_HEADER = CONTENT_TYPE.encode()
_SPECVERSION_HEADER = SPECVERSION.encode()


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
    return encode(
        event_type=event.event_type(),
        subject=event.aggregate_id,
        data=json.dumps(event.data(), ensure_ascii=False).encode(),
        source=source,
        event_id=event_id,
        time=time,
        traceparent=traceparent,
    )


def encode(
    *,
    event_type: str,
    subject: str,
    data: bytes,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Encode an event's JSON ``data``, already validated by its model, in binary content mode.

    The outbox relay sends the payload it stored as it is: parsing it into the model and
    serialising it again would give the same JSON, and cost most of the relay's time per row.

    The headers are written here, not by the SDK's event class and Kafka binding: the same
    bytes in the same order (``ce_id``, ``ce_source``, ``ce_type``, ``ce_subject``, ``ce_time``,
    ``content-type``, ``ce_specversion``; tests/unit/test_shared_events.py compares the two) at
    a sixth of the cost (2.7 against 17.4 us a record), which was a tenth of the relay's time.
    """
    event_id = event_id or new_event_id()
    time = time or datetime.now(UTC)
    if not (source and event_type and subject):  # one test a record; which one, only on failure
        for name, value in (("source", source), ("type", event_type), ("subject", subject)):
            if not value:
                raise ValueError(f"CloudEvents attribute {name!r} must not be empty")
    if time.tzinfo is None:
        raise ValueError("CloudEvents attribute 'time' must be timezone aware")
    stamp = time.isoformat()
    if stamp.endswith("+00:00"):  # as the SDK writes UTC
        stamp = stamp[:-6] + "Z"
    key = subject.encode()
    headers = [
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_subject", key),
        (TIME, stamp.encode()),
        ("content-type", _CONTENT_TYPE_HEADER),
        ("ce_specversion", _SPECVERSION_HEADER),
    ]
    if traceparent:
        headers.append((TRACEPARENT, traceparent.encode()))
    return key, bytes(data), headers


def from_kafka(
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    registry: EventRegistry,
) -> tuple[Event, EventMeta]:
    """Decode and validate a record; raise UnreadableEvent with a reason for anything else.

    The headers are read here, as the CloudEvents SDK's Kafka binding read them (every ``ce_*``
    header an attribute, its name lower-cased; every header value UTF-8, the key too) and with
    the checks its event class would make on the attributes this platform uses: a property test
    in tests/unit/test_shared_events.py compares the two on any headers, good or bad. Through
    the SDK's message, binding and attribute dictionaries, reading the envelope cost about as
    much as validating the data. The event's model parses the data straight from its bytes
    (one step instead of ``json.loads`` and then a validation of the dict), and ``ce_time`` is
    read with the standard library, which takes every RFC 3339 time we write.
    """
    header_map = dict(headers)  # a repeated header: its last value, as the SDK had it
    if "ce_type" not in header_map or "ce_id" not in header_map:
        raise UnreadableEvent("not_a_cloudevent", "missing ce_id or ce_type header")
    attributes: dict[str, str] = {}
    try:
        for name, raw in header_map.items():
            if name == TIME or name == TRACEPARENT:  # the exact names we write: read below
                continue
            text = raw.decode()  # type: ignore[union-attr]  # a value None is malformed too
            lowered = name.lower()
            if lowered.startswith("ce_"):
                if lowered == TIME:
                    _sdk_time(text)
                attributes[lowered[3:]] = text
        if isinstance(key, bytes):
            key.decode()  # the binding read the key as text (the partition key)
        time = _time(header_map.get(TIME))
    except Exception as exc:  # a value not UTF-8, or None, or a time that is no time
        raise UnreadableEvent("malformed", f"{type(exc).__name__}: {exc}") from exc
    if attributes.get("specversion") != SPECVERSION:
        raise UnreadableEvent("malformed", f"not CloudEvents {SPECVERSION}")
    missing = [name for name in ("id", "source", "type") if not attributes.get(name)]
    if missing:
        raise UnreadableEvent("malformed", f"empty or missing attributes: {', '.join(missing)}")
    event_type = attributes["type"]
    cls = registry.get(event_type)
    if cls is None:
        raise UnreadableEvent("unknown_type", f"no event type {event_type!r} in the catalogue")
    if not value:
        raise UnreadableEvent("malformed", "the record has no data")
    try:
        event = cls.model_validate_json(value)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" or not e["loc"] for e in exc.errors()):
            raise UnreadableEvent("malformed", f"data is not a JSON object: {exc}") from exc
        raise UnreadableEvent("invalid_payload", str(exc)) from exc
    trace = header_map.get(TRACEPARENT)
    meta = EventMeta(
        id=attributes["id"],
        type=event_type,
        source=attributes["source"],
        subject=attributes.get("subject"),
        time=time,
        traceparent=trace.decode(errors="replace") if trace else None,
    )
    return event, meta


def _sdk_time(text: str) -> None:
    """A ``ce_time`` header of another case than ours, which the SDK parsed with dateutil: a
    value it could not parse made the record malformed, and still does."""
    from dateutil.parser import isoparse  # type: ignore[import-untyped]  # the SDK's own

    isoparse(text)


def _time(raw: bytes | None) -> datetime | None:
    """``ce_time`` as an aware datetime (RFC 3339 requires the offset)."""
    if raw is None:
        return None
    parsed = datetime.fromisoformat(raw.decode())
    if parsed.tzinfo is None:
        raise ValueError(f"ce_time {raw.decode()!r} has no UTC offset")
    return parsed
