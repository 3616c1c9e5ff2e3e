"""The event catalogue and the CloudEvents envelope, without a broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, NamedTuple, cast

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import (
    InmateReleased,
    InmateShared,
    ParticipantCompleted,
    ReleaseKind,
)
from bekal.shared.events.envelope import (
    EventMeta,
    UnreadableEvent,
    encode,
    from_kafka,
    to_kafka,
)
from bekal.shared.events.topics import TOPICS
from tests.support.factories import inmate_released


def test_event_types_are_versioned_and_named_after_their_service() -> None:
    assert InmateReleased.event_type() == "id.bekal.registry.inmate.released.v1"
    for cls in catalogue.all():
        service = cls.topic.split(".")[0]
        assert cls.event_type().startswith(f"id.bekal.{service}.")
        assert cls.event_type().endswith(f".v{cls.version}")


def test_every_event_is_on_a_declared_topic_owned_by_its_service() -> None:
    owners = {t.name: t.owner for t in TOPICS}
    for cls in catalogue.all():
        assert cls.topic in owners, cls
        assert owners[cls.topic] == cls.event_type().split(".")[2]


def test_no_event_carries_a_nik_or_offence_field() -> None:
    forbidden = ("nik", "national_id", "offence", "offense", "crime", "sentence", "verdict")
    for cls in catalogue.all():
        for name in cls.model_fields:
            assert not any(word in name.lower() for word in forbidden), f"{cls.__name__}.{name}"


def test_completion_event_names_no_facility() -> None:
    assert not any("facility" in f for f in ParticipantCompleted.model_fields)


def test_binary_mode_roundtrip_keeps_id_key_subject_and_trace() -> None:
    event = inmate_released(release_kind=ReleaseKind.PAROLE)
    when = datetime(2024, 9, 7, 10, 0, tzinfo=UTC)
    key, value, headers = to_kafka(
        event,
        source="/corrections/registry",
        event_id="abc",
        time=when,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    h = dict(headers)
    assert key == str(event.participant_id).encode()
    assert h["ce_id"] == b"abc" and h["ce_specversion"] == b"1.0"
    assert h["ce_type"] == b"id.bekal.registry.inmate.released.v1"
    assert h["ce_subject"] == key
    assert h["content-type"] == b"application/json"
    assert json.loads(value)["release_kind"] == "parole"
    decoded, meta = from_kafka(key, value, headers, catalogue)
    assert decoded == event
    assert meta.id == "abc" and meta.time == when and meta.source == "/corrections/registry"
    assert meta.traceparent and meta.traceparent.startswith("00-0af7651916cd43dd")


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], b"{}", "not_a_cloudevent"),
        (
            [
                ("ce_id", b"1"),
                ("ce_type", b"id.bekal.registry.inmate.gone.v1"),
                ("ce_source", b"/x"),
                ("ce_specversion", b"1.0"),
                ("content-type", b"application/json"),
            ],
            b"{}",
            "unknown_type",
        ),
        (
            [
                ("ce_id", b"1"),
                ("ce_type", b"id.bekal.registry.inmate.released.v1"),
                ("ce_source", b"/x"),
                ("ce_specversion", b"1.0"),
                ("content-type", b"application/json"),
            ],
            b"{oops",
            "malformed",
        ),
        (
            [
                ("ce_id", b"1"),
                ("ce_type", b"id.bekal.registry.inmate.released.v1"),
                ("ce_source", b"/x"),
                ("ce_specversion", b"1.0"),
                ("content-type", b"application/json"),
            ],
            b'{"participant_id": 1}',
            "invalid_payload",
        ),
    ],
)
def test_unreadable_records_are_rejected_with_a_reason(headers, value, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnreadableEvent) as info:
        from_kafka(b"k", value, headers, catalogue)
    assert info.value.reason == reason


def _released_headers(**override: bytes) -> list[tuple[str, bytes]]:
    headers = {
        "ce_id": b"1",
        "ce_type": b"id.bekal.registry.inmate.released.v1",
        "ce_source": b"/corrections/registry",
        "ce_specversion": b"1.0",
        "ce_time": b"2024-09-07T10:00:00Z",
        "content-type": b"application/json",
        **override,
    }
    return list(headers.items())


@pytest.mark.parametrize(
    ("headers", "value"),
    [
        (_released_headers(ce_time=b"yesterday"), None),  # not a time
        (_released_headers(ce_time=b"2024-09-07T10:00:00"), None),  # no UTC offset
        (_released_headers(), b"[1, 2]"),  # JSON, but not an object
        (_released_headers(), b""),  # no data at all
        (_released_headers(), b"\xff\xfe{}"),  # not UTF-8
        (_released_headers(ce_specversion=b"0.3"), None),  # not CloudEvents 1.0
        (_released_headers(ce_source=b""), None),  # a required attribute empty
    ],
    ids=["bad time", "naive time", "array", "empty", "not utf-8", "old version", "no source"],
)
def test_records_the_model_or_the_envelope_cannot_read_are_malformed(headers, value) -> None:  # type: ignore[no-untyped-def]
    if value is None:
        value = json.dumps(inmate_released(release_kind=ReleaseKind.PAROLE).data()).encode()
    with pytest.raises(UnreadableEvent) as info:
        from_kafka(b"k", value, headers, catalogue)
    assert info.value.reason == "malformed"


def test_time_with_an_offset_is_read_as_the_same_instant() -> None:
    event = inmate_released(release_kind=ReleaseKind.PAROLE)
    value = json.dumps(event.data()).encode()
    headers = _released_headers(ce_time=b"2024-09-07T17:00:00.123456+07:00")
    decoded, meta = from_kafka(b"k", value, headers, catalogue)
    assert decoded == event
    assert meta.time == datetime(2024, 9, 7, 10, 0, 0, 123456, tzinfo=UTC)
    assert meta.time.utcoffset() == timezone(timedelta(hours=7)).utcoffset(None)


def test_stored_payload_is_sent_as_it_is_and_reads_as_the_event() -> None:
    """The outbox relay sends the JSON it stored, without parsing and serialising it again."""
    event = inmate_released(release_kind=ReleaseKind.PAROLE)
    payload = json.dumps(event.data(), ensure_ascii=False).encode()
    when = datetime(2024, 9, 7, 10, 0, tzinfo=UTC)
    key, value, headers = encode(
        event_type=event.event_type(),
        subject=event.aggregate_id,
        data=payload,
        source="/corrections/registry",
        event_id="abc",
        time=when,
    )
    assert value == payload
    assert (key, value, headers) == to_kafka(
        event, source="/corrections/registry", event_id="abc", time=when
    )
    decoded, meta = from_kafka(key, value, headers, catalogue)
    assert decoded == event and meta.time == when and meta.subject == event.aggregate_id


def _through_the_sdk(
    *,
    event_type: str,
    subject: str,
    data: bytes,
    source: str,
    event_id: str,
    time: datetime,
    traceparent: str | None,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A record as the CloudEvents SDK's event class and Kafka binding write it (how ``encode``
    wrote it before it wrote the headers itself)."""
    attributes = {
        "id": event_id,
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "partitionkey": subject,
    }
    message = ce_kafka.to_binary(CloudEvent(attributes=attributes, data=data), JSONFormat())
    headers = [(k, v) for k, v in message.headers.items() if k != "ce_partitionkey"]
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    assert isinstance(message.key, str)
    return message.key.encode(), message.value, headers


def _on_the_wire(record: tuple[bytes, bytes, list[tuple[str, bytes]]]) -> bytes:
    """The record batch a producer would send for ``record`` alone."""
    key, value, headers = record
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, timestamp=1_700_000_000_000, key=key, value=value, headers=headers)
    return bytes(builder.build())


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60)
_ZONES = st.one_of(
    st.just(UTC),
    st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(timezone),
)


@given(
    event_type=_TEXT,
    subject=_TEXT,
    data=st.binary(max_size=300),
    source=_TEXT,
    event_id=_TEXT,
    time=st.datetimes(timezones=_ZONES),
    traceparent=st.none() | _TEXT,
)
def test_encoded_record_is_byte_for_byte_what_the_cloudevents_sdk_writes(**attributes) -> None:  # type: ignore[no-untyped-def]
    ours = encode(**attributes)
    assert ours == _through_the_sdk(**attributes)
    assert _on_the_wire(ours) == _on_the_wire(_through_the_sdk(**attributes))


@pytest.mark.parametrize(
    "wrong",
    [{"subject": ""}, {"source": ""}, {"event_type": ""}, {"time": datetime(2024, 9, 7, 10, 0)}],
)
def test_an_event_without_its_attributes_is_not_encoded(wrong) -> None:  # type: ignore[no-untyped-def]
    attributes = {
        "event_type": "id.bekal.registry.inmate.released.v1",
        "subject": "s",
        "data": b"{}",
        "source": "/corrections/registry",
        "time": datetime(2024, 9, 7, 10, 0, tzinfo=UTC),
    }
    with pytest.raises(ValueError, match="must"):
        encode(**{**attributes, **wrong})


def test_producers_cannot_build_an_invalid_event() -> None:
    with pytest.raises(ValidationError):
        InmateShared(
            participant_id=uuid.uuid4(),
            full_name="X",
            sex="Z",
            birth_year=1990,  # type: ignore[arg-type]
            facility_id=uuid.uuid4(),
            admission_date=date(2020, 1, 1),
            expected_release_date=None,
        )


class _Received(NamedTuple):
    attributes: dict[str, Any]
    data: Any


class _DataAsIs(JSONFormat):
    def read_data(
        self, body: bytes, datacontenttype: str | None
    ) -> dict[str, Any] | str | bytes | None:
        return body or None


def _read_through_the_sdk(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> tuple[Any, EventMeta]:
    """A record read as ``from_kafka`` read it through the SDK's Kafka binding (before it
    read the headers itself): the same outcome, or UnreadableEvent with the same reason."""
    header_map = dict(headers)
    if "ce_type" not in header_map or "ce_id" not in header_map:
        raise UnreadableEvent("not_a_cloudevent", "missing")
    try:
        message = ce_kafka.KafkaMessage(
            headers={k: v for k, v in header_map.items() if k not in ("traceparent", "ce_time")},
            key=key,
            value=value or b"",
        )
        attributes, data = cast(
            "_Received",
            ce_kafka.from_binary(message, _DataAsIs(), event_factory=cast(Any, _Received)),
        )
        raw_time = header_map.get("ce_time")
        time = None
        if raw_time is not None:
            time = datetime.fromisoformat(raw_time.decode())
            if time.tzinfo is None:
                raise ValueError("no offset")
    except Exception as exc:
        raise UnreadableEvent("malformed", str(exc)) from exc
    if attributes.get("specversion") != "1.0":
        raise UnreadableEvent("malformed", "version")
    if any(not attributes.get(name) for name in ("id", "source", "type")):
        raise UnreadableEvent("malformed", "missing")
    cls = catalogue.get(attributes["type"])
    if cls is None:
        raise UnreadableEvent("unknown_type", "type")
    if not data:
        raise UnreadableEvent("malformed", "no data")
    try:
        event = cls.model_validate_json(data)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" or not e["loc"] for e in exc.errors()):
            raise UnreadableEvent("malformed", "not an object") from exc
        raise UnreadableEvent("invalid_payload", str(exc)) from exc
    trace = header_map.get("traceparent")
    meta = EventMeta(
        id=attributes["id"],
        type=attributes["type"],
        source=attributes["source"],
        subject=attributes.get("subject"),
        time=time,
        traceparent=trace.decode(errors="replace") if trace else None,
    )
    return event, meta


def _outcome(read: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return ("read", *read(*args))
    except UnreadableEvent as exc:
        return ("unreadable", exc.reason)


_RELEASED = inmate_released(release_kind=ReleaseKind.PAROLE)
_NAMES = st.sampled_from(
    [
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
        "ce_subject",
        "content-type",
        "traceparent",
        "CE_ID",
        "Ce_Type",
        "CE_TIME",
        "Ce_SpecVersion",
        "ce_extension",
        "x-other",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            b"1",
            b"",
            b"1.0",
            b"0.3",
            b"/corrections/registry",
            _RELEASED.event_type().encode(),
            b"id.bekal.registry.inmate.gone.v1",
            b"2024-09-07T10:00:00Z",
            b"2024-09-07T17:00:00.5+07:00",
            b"2024-09-07T10:00:00",
            b"yesterday",
            b"application/json",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"\xff\xfe",
        ]
    ),
    st.binary(max_size=8),
    st.none(),
)
_GOOD = [
    ("ce_id", b"1"),
    ("ce_source", b"/corrections/registry"),
    ("ce_type", _RELEASED.event_type().encode()),
    ("ce_subject", str(_RELEASED.participant_id).encode()),
    ("ce_time", b"2024-09-07T10:00:00Z"),
    ("content-type", b"application/json"),
    ("ce_specversion", b"1.0"),
]


_GOOD_VALUE = json.dumps(_RELEASED.data()).encode()


@settings(max_examples=500)
@given(
    base=st.sampled_from([_GOOD, []]),
    changes=st.lists(st.tuples(st.booleans(), _NAMES, _VALUES), max_size=6),
    key=st.none() | st.sampled_from([b"k", b"\xff"]) | st.binary(max_size=4),
    value=st.sampled_from([_GOOD_VALUE, b"", b"{oops", b"[1]", b'{"participant_id": 1}'])
    | st.binary(max_size=8),
)
@example(base=_GOOD, changes=[], key=b"\xff", value=_GOOD_VALUE)  # a key that is not text
@example(base=_GOOD, changes=[(False, "CE_TIME", b"yesterday")], key=None, value=_GOOD_VALUE)
@example(base=_GOOD, changes=[(False, "x-other", None)], key=None, value=_GOOD_VALUE)
@example(base=_GOOD, changes=[(False, "x-other", b"\xff")], key=None, value=_GOOD_VALUE)
@example(
    base=_GOOD,
    changes=[(False, "ce_id", b"\xff"), (False, "ce_id", b"2")],
    key=None,
    value=_GOOD_VALUE,
)
@example(base=_GOOD, changes=[(False, "CE_ID", b"2")], key=b"k", value=_GOOD_VALUE)
@example(
    base=_GOOD, changes=[(True, "ce_time", b"2024-09-07T10:00:00")], key=None, value=_GOOD_VALUE
)
def test_records_read_as_the_cloudevents_sdk_read_them(base, changes, key, value) -> None:  # type: ignore[no-untyped-def]
    """Any headers, good or bad: the same event and envelope, or the same reason to refuse."""
    headers: list[tuple[str, bytes | None]] = list(base)
    for replace, name, header_value in changes:
        if replace:
            headers = [(n, v) for n, v in headers if n != name]
        headers.append((name, header_value))
    assert _outcome(from_kafka, key, value, headers, catalogue) == _outcome(
        _read_through_the_sdk, key, value, headers
    )
