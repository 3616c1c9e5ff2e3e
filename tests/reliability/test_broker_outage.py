"""The broker away: requests still succeed, the outbox keeps the events, nothing is lost.

The registry and training run as processes on a broker of their own, which the tests freeze
with SIGSTOP (to its clients it is unreachable; connections hang, as with a dead host).
Effects are counted downstream, in training's consumer journal (``CONSUMER_JOURNAL=true``),
where an event applied twice would show as two ``applied`` rows; the replica is checked for
content beside it. The last test freezes the broker under a consumer that is in the middle of
a stream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from bekal.devtools.broker import EmbeddedBroker
from bekal.shared.events.catalogue import FacilityRegistered, InmateShared
from bekal.shared.settings import Settings
from tests.support.faults import journal, wait_committed_to_log_end
from tests.support.kafka import records_on
from tests.support.processes import ServiceProcess
from tests.support.registry_client import RegistryClient
from tests.support.sql import scalar
from tests.support.streams import StreamProducer, committed_total, shared_inmate
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

OUTAGE_SECONDS = 30.0
UNSENT = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"


async def _start_pair(
    new_database: Callable[[str], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    broker: EmbeddedBroker,
    **registry_env: str,
) -> tuple[ServiceProcess, ServiceProcess, str, str]:
    registry_url = await new_database("registry")
    training_url = await new_database("training")
    registry = services("registry", database_url=registry_url, broker=broker, **registry_env)
    training = services(
        "training", database_url=training_url, broker=broker, CONSUMER_JOURNAL="true"
    )
    await registry.wait_ready()
    await training.wait_ready()
    return registry, training, registry_url, training_url


async def _shared_records(settings: Settings) -> tuple[int, int]:
    """``(records, distinct event ids)`` of ``inmate.shared`` on the registry's topic."""
    records = await records_on(settings, InmateShared.topic)
    ids = [
        dict(r.headers).get("ce_id")
        for r in records
        if dict(r.headers).get("ce_type") == InmateShared.event_type().encode()
    ]
    return len(ids), len(set(ids))


async def _participants(url: str, facility: str) -> int:
    return int(
        await scalar(
            url,
            "SELECT count(*) FROM participants WHERE facility_id = :f",
            f=str(uuid.UUID(facility)),
        )
    )


async def _all_committed(settings: Settings) -> None:
    await wait_committed_to_log_end(
        settings, "training", [InmateShared.topic, FacilityRegistered.topic]
    )


@pytest.mark.timeout(400)
async def test_service_killed_with_a_full_outbox_publishes_everything_once_in_effect(
    new_database: Callable[[str], Awaitable[str]],
    own_broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
) -> None:
    settings = client_settings(own_broker)
    # Small batches: the backlog drains in many short steps, so the second kill lands mid-way.
    registry, _training, registry_url, training_url = await _start_pair(
        new_database, services, own_broker, OUTBOX_BATCH_SIZE="10"
    )
    async with RegistryClient(registry.url, settings) as api:
        facility = await api.facility()
        own_broker.pause()
        try:
            accepted = 0
            for _ in range(300):
                api.ok(await api.consenting_inmate(facility))
                accepted += 1
            unsent = int(await scalar(registry_url, UNSENT))
            registry.kill()
        finally:
            own_broker.resume()
    total = int(await scalar(registry_url, "SELECT count(*) FROM outbox"))
    topic = settings.topic(InmateShared.topic)

    async def effects() -> int:
        return (await journal(training_url, topic)).applied_events

    async def sent() -> int:
        return total - int(await scalar(registry_url, UNSENT))

    restarted = time.monotonic()
    registry.start()
    # Killed again while the relay drains the backlog: a batch published but not yet marked
    # sent goes out a second time after the next start (the consumer's inbox drops it).
    await wait_until(lambda: _reached(sent, total - unsent + 1), within=120, what="draining")
    registry.kill()
    sent_at_second_kill = await sent()
    applied_at_second_kill = await effects()
    registry.start()
    await registry.wait_ready()

    await wait_until(lambda: _reached(effects, accepted), within=120, what="every participant")
    recovered = time.monotonic() - restarted
    await wait_until(
        lambda: _equals(scalar(registry_url, UNSENT), 0), within=60, what="outbox drained"
    )
    await _all_committed(settings)
    on_topic, distinct = await _shared_records(settings)
    j = await journal(training_url, topic)
    participants = await _participants(training_url, facility)
    print(
        f"\n[service SIGKILL with a full outbox] requests accepted {accepted}, unsent in the "
        f"outbox at the kill {unsent}, records on the topic {on_topic} ({distinct} distinct, "
        f"{on_topic - distinct} published twice), effects counted {j.applied} ({j.applied_events}"
        f" events; participants {participants}), lost {accepted - j.applied_events}, doubled "
        f"{j.doubled}, delivered again {j.redelivered}; killed again while draining at "
        f"{sent_at_second_kill} of {total} sent ({sent_at_second_kill / total:.0%}), "
        f"{applied_at_second_kill} effects, all applied {recovered:.1f} s after the first restart"
    )
    assert unsent > 0  # the kill really found events not yet sent
    assert sent_at_second_kill < total  # the second kill landed mid-way through the backlog
    assert applied_at_second_kill < accepted
    assert distinct == accepted
    # Every event on the topic reached the consumer; one published twice came twice.
    assert j.delivered_events == distinct and j.redelivered >= on_topic - distinct
    assert j.applied_events == participants == accepted
    assert j.doubled == 0


@pytest.mark.timeout(400)
async def test_broker_unreachable_for_30_s_requests_succeed_and_every_event_arrives_after(
    new_database: Callable[[str], Awaitable[str]],
    own_broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
) -> None:
    settings = client_settings(own_broker)
    registry, _training, registry_url, training_url = await _start_pair(
        new_database, services, own_broker
    )
    topic = settings.topic(InmateShared.topic)

    async def effects() -> int:
        return (await journal(training_url, topic)).applied_events

    async with RegistryClient(registry.url, settings) as api:
        facility = await api.facility()
        before = 20
        for _ in range(before):
            api.ok(await api.consenting_inmate(facility))
        own_broker.pause()
        paused = time.monotonic()
        at_pause = await effects()
        during, refused = 0, []
        try:
            while time.monotonic() - paused < OUTAGE_SECONDS:  # the outage itself
                r = await api.consenting_inmate(facility)
                if r.status_code == 201:
                    during += 1
                else:
                    refused.append(f"{r.status_code} {r.text[:200]}")
            unsent = int(await scalar(registry_url, UNSENT))
        finally:
            own_broker.resume()
        resumed = time.monotonic()
        outage = resumed - paused
        after = 20
        for _ in range(after):
            api.ok(await api.consenting_inmate(facility))
    accepted = before + during + after

    await wait_until(lambda: _reached(effects, accepted), within=180, what="every participant")
    recovery = time.monotonic() - resumed
    await _all_committed(settings)
    on_topic, distinct = await _shared_records(settings)
    j = await journal(training_url, topic)
    participants = await _participants(training_url, facility)
    # The freeze stops the relay, not the consumer, which has nothing to read meanwhile: it
    # forces no redelivery. A batch the relay published and did not hear acknowledged before
    # the freeze goes out again after it, and reaches the consumer twice.
    print(
        f"\n[broker frozen {outage:.1f} s] requests during the outage {during + len(refused)} "
        f"(succeeded {during}, failed {len(refused)}), unsent in the outbox at the end of the "
        f"outage {unsent}, events sent in all {accepted}, records on the topic {on_topic} "
        f"({distinct} distinct), effects at the freeze {at_pause}, effects counted {j.applied} "
        f"({j.applied_events} events; participants {participants}), lost "
        f"{accepted - j.applied_events}, doubled {j.doubled}, delivered again {j.redelivered}, "
        f"recovery (broker back to every effect) {recovery:.1f} s"
    )
    assert refused == []
    assert during > 0 and unsent > 0
    assert at_pause < accepted  # the outage hit mid-stream
    assert distinct == accepted
    assert j.delivered_events == distinct and j.redelivered >= on_topic - distinct
    assert j.applied_events == participants == accepted
    assert j.doubled == 0


async def _reached(effects: Callable[[], Awaitable[int]], n: int) -> bool:
    return await effects() >= n


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


@pytest.mark.timeout(300)
async def test_broker_frozen_while_a_consumer_is_mid_stream_loses_nothing(
    new_database: Callable[[str], Awaitable[str]],
    own_broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
) -> None:
    url = await new_database("training")
    training = services("training", database_url=url, broker=own_broker, CONSUMER_JOURNAL="true")
    await training.wait_ready()
    settings = client_settings(own_broker)
    facility = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(3000)]

    async def effects() -> int:
        return (await journal(url)).applied_events

    async with StreamProducer(settings) as stream:
        await stream.send(
            [shared_inmate(i, facility_id=facility, participant_id=p) for i, p in enumerate(ids)]
        )
    await wait_until(lambda: _reached(effects, 500), within=120, what="a sixth of the effects")
    own_broker.pause()
    try:
        at_freeze = await effects()
        await asyncio.sleep(OUTAGE_SECONDS / 2)  # the fault itself: a broker answering nothing
        during = await effects() - at_freeze
    finally:
        own_broker.resume()
    resumed = time.monotonic()
    await wait_until(lambda: _reached(effects, len(ids)), within=180, what="every effect")
    recovery = time.monotonic() - resumed
    await wait_committed_to_log_end(settings, "training", [InmateShared.topic], within=60)
    j = await journal(url)
    committed = await committed_total(settings, "training", InmateShared.topic)
    participants = int(await scalar(url, "SELECT count(*) FROM participants"))
    print(
        f"\n[broker frozen {OUTAGE_SECONDS / 2:.0f} s under a consuming process] events sent "
        f"{len(ids)}, effects at the freeze {at_freeze} ({at_freeze / len(ids):.0%}), applied "
        f"while frozen (already fetched) {during}, effects counted {j.applied} "
        f"({j.applied_events} events; participants {participants}), lost "
        f"{len(ids) - j.applied_events}, doubled {j.doubled}, delivered again {j.redelivered}, "
        f"committed at the end {committed}, recovery {recovery:.1f} s"
    )
    # The freeze does not force a redelivery (none on either database when this was
    # written): what the consumer had fetched it applies while frozen, its offsets are
    # committed after the thaw and the group does not rebalance. Printed, not asserted.
    assert at_freeze < len(ids)  # the freeze hit mid-stream
    assert j.applied_events == participants == len(ids)
    assert j.doubled == 0
    assert committed == len(ids)
