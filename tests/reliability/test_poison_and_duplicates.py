"""Duplicates, reordering and poison injected into a live stream a consumer process reads.

Duplicates carry the id of an event already applied but another content, so a second effect
would show; reordered events arrive newest first; poison is unreadable JSON, a type the
catalogue does not know, a version it does not know, a payload breaking the catalogue's rules
and a record that is no CloudEvent at all. Each poison record sits just before a good event of
the same key, so on the same partition: that good event being applied shows the stream went on.
Effects are counted in the consumer journal (``CONSUMER_JOURNAL=true``), where a duplicate
applied a second time would show as a second ``applied`` row of its event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from bekal.devtools.broker import EmbeddedBroker
from bekal.shared.events.catalogue import InmateShared
from bekal.shared.events.envelope import to_kafka
from bekal.shared.events.topics import SOURCES, dead_letter_topic
from bekal.shared.settings import Settings
from tests.support.faults import applied_events, journal, wait_committed_to_log_end
from tests.support.kafka import records_on
from tests.support.processes import ServiceProcess
from tests.support.sql import query, scalar
from tests.support.streams import T0, StreamProducer, shared_inmate
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

GOOD = 400
SHARED_TYPE = InmateShared.event_type()


def _poison(kind: str, event: InmateShared) -> tuple[bytes, bytes, list[tuple[str, bytes]], str]:
    """``(key, value, headers, expected dead-letter reason)`` of one poison record."""
    key, value, headers = to_kafka(
        event, source=SOURCES["registry"], event_id=str(uuid.uuid4()), time=T0
    )
    if kind == "bad_json":
        return key, b'{"participant_id": "', headers, "malformed"
    if kind == "unknown_type":
        headers = [
            (k, b"id.bekal.registry.inmate.teleported.v1" if k == "ce_type" else v)
            for k, v in headers
        ]
        return key, value, headers, "unknown_type"
    if kind == "unknown_version":
        headers = [
            (k, SHARED_TYPE[:-1].encode() + b"9" if k == "ce_type" else v) for k, v in headers
        ]
        return key, value, headers, "unknown_type"
    if kind == "rule_broken":
        data = json.loads(value)
        data["birth_year"] = 1850  # the catalogue's rule: born 1900 or later
        return key, json.dumps(data).encode(), headers, "invalid_payload"
    if kind == "no_cloudevent":
        return key, value, [], "not_a_cloudevent"
    raise AssertionError(kind)


POISON = ("bad_json", "unknown_type", "unknown_version", "rule_broken", "no_cloudevent")


@pytest.mark.timeout(300)
async def test_duplicates_change_nothing_poison_is_dead_lettered_and_the_stream_goes_on(
    new_database: Callable[[str], Awaitable[str]],
    broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
) -> None:
    url = await new_database("training")
    training = services("training", database_url=url, broker=broker, CONSUMER_JOURNAL="true")
    await training.wait_ready()
    settings = client_settings(broker)
    facility, moved_to = uuid.uuid4(), uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(GOOD)]
    events = [shared_inmate(i, facility_id=facility, participant_id=p) for i, p in enumerate(ids)]
    half = GOOD // 2
    started = time.monotonic()
    async with StreamProducer(settings) as stream:
        first = await stream.send(events[:half])
        # Duplicates: the ids of events already sent, with another content.
        duplicates = first[:50]
        await stream.send(
            [d.event.model_copy(update={"full_name": "DUPLIKAT"}) for d in duplicates],
            event_ids=[d.event_id for d in duplicates],
            times=[d.time for d in duplicates],
        )
        # Reordering: for 50 people a newer state (another facility) arrives before an older.
        reordered = ids[half : half + 50]
        newer = [
            shared_inmate(half + j, facility_id=moved_to, participant_id=p)
            for j, p in enumerate(reordered)
        ]
        await stream.send(newer, times=[T0 + timedelta(days=1)] * len(newer))
        await stream.send(events[half : half + 50], times=[T0] * 50)
        # Poison, each right before a good event with the same key (same partition).
        expected_reasons: dict[bytes, str] = {}
        for n, kind in enumerate(POISON):
            target = events[half + 50 + n]
            key, value, headers, reason = _poison(kind, target)
            marker = f"poison-{kind}".encode()
            await (await stream.send_raw(target.topic, key, value, [*headers, ("x_test", marker)]))
            expected_reasons[marker] = reason
            await stream.send([target])
        await stream.send(events[half + 50 + len(POISON) :])

    # Every good event once: the first half, the newer states and the rest of the stream.
    good_events = GOOD + len(newer)

    async def effects() -> int:
        return await applied_events(url)

    await wait_until(lambda: _reached(effects, good_events), within=120, what="every good event")
    dlq_topic = dead_letter_topic("training")
    await wait_until(
        lambda: _dead_letters_at_least(settings, dlq_topic, len(POISON)),
        within=60,
        what="the dead letters",
    )

    async def dead_letter_rows() -> int:
        return int(await scalar(url, "SELECT count(*) FROM dead_letters"))

    # The table row follows the record onto the topic.
    await wait_until(
        lambda: _reached(dead_letter_rows, len(POISON)), within=30, what="the dead-letter rows"
    )
    await wait_committed_to_log_end(settings, "training", [InmateShared.topic])
    elapsed = time.monotonic() - started
    j = await journal(url)
    rows = {
        str(r[0]): (r[1], str(r[2]))
        for r in await query(url, "SELECT id, full_name, facility_id FROM participants")
    }
    dead = await records_on(settings, dlq_topic)
    reasons = {
        dict(r.headers).get("x_test", b""): dict(r.headers)["dlq_reason"].decode() for r in dead
    }
    changed_by_duplicate = sum(
        1 for d in duplicates if rows[str(d.event.participant_id)][0] == "DUPLIKAT"
    )
    older_won = sum(1 for p in reordered if rows[str(p)][1] != str(moved_to))
    dead_rows = await dead_letter_rows()
    print(
        f"\n[duplicates, reordering, poison] good events {good_events} (+{len(duplicates)} "
        f"duplicates, {len(reordered)} pairs out of order, {len(POISON)} poison), effects "
        f"counted {j.applied} ({j.applied_events} events; participants {len(rows)}), lost "
        f"{good_events - j.applied_events}, doubled {j.doubled}, delivered again "
        f"{j.redelivered}, changed by a duplicate "
        f"{changed_by_duplicate}, older state winning {older_won}, dead letters on the topic "
        f"{len(dead)} (reasons {sorted(reasons.values())}), in the table {dead_rows}, "
        f"{elapsed:.1f} s"
    )
    assert len(rows) == GOOD
    assert j.applied_events == good_events
    # Each duplicate was taken up (an event already applied, delivered again) and was not
    # applied a second time.
    assert j.redelivered >= len(duplicates)
    assert j.doubled == 0
    assert changed_by_duplicate == 0
    assert older_won == 0
    assert reasons == expected_reasons
    assert len(dead) == len(POISON) == dead_rows
    for record in dead:
        dlq = dict(record.headers)
        assert dlq["dlq_consumer_group"] == b"training"
        assert dlq["dlq_original_topic"] == settings.topic(InmateShared.topic).encode()
        assert dlq["dlq_error"]


async def _reached(effects: Callable[[], Awaitable[int]], n: int) -> bool:
    return await effects() >= n


async def _dead_letters_at_least(settings: Settings, topic: str, n: int) -> bool:
    try:
        return len(await records_on(settings, topic)) >= n
    except AssertionError:  # the topic is made with the consumer; it may not be there yet
        return False
