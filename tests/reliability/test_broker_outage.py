"""The broker away: requests still succeed, the outbox keeps the events, nothing is lost.

The registry and training run as processes on a broker of their own, which the tests freeze
with SIGSTOP (to its clients it is unreachable; connections hang, as with a dead host).
Effects are counted downstream, in training's replica. The last test freezes the broker under
a consumer that is in the middle of a stream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from bekal.shared.broker import EmbeddedBroker
from bekal.shared.events.catalogue import InmateShared
from bekal.shared.settings import Settings
from tests.support.kafka import records_on
from tests.support.processes import ServiceProcess
from tests.support.registry_client import RegistryClient
from tests.support.sql import scalar
from tests.support.streams import StreamProducer, committed_total, shared_inmate
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

OUTAGE_SECONDS = 30.0


async def _start_pair(
    new_database: Callable[[str], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    broker: EmbeddedBroker,
) -> tuple[ServiceProcess, ServiceProcess, str, str]:
    registry_url = await new_database("registry")
    training_url = await new_database("training")
    registry = services("registry", database_url=registry_url, broker=broker)
    training = services("training", database_url=training_url, broker=broker)
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


@pytest.mark.timeout(400)
async def test_service_killed_with_a_full_outbox_publishes_everything_once_in_effect(
    new_database: Callable[[str], Awaitable[str]],
    own_broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
) -> None:
    settings = client_settings(own_broker)
    registry, _training, registry_url, training_url = await _start_pair(
        new_database, services, own_broker
    )
    async with RegistryClient(registry.url, settings) as api:
        facility = await api.facility()
        own_broker.pause()
        try:
            accepted = 0
            for _ in range(300):
                api.ok(await api.consenting_inmate(facility))
                accepted += 1
            unsent = int(
                await scalar(registry_url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            )
            registry.kill()
        finally:
            own_broker.resume()

    async def effects() -> int:
        return int(
            await scalar(
                training_url,
                "SELECT count(*) FROM participants WHERE facility_id = :f",
                f=str(uuid.UUID(facility)),
            )
        )

    restarted = time.monotonic()
    registry.start()
    # Killed again while the relay drains the backlog: a batch published but not yet marked
    # sent goes out a second time after the next start (the consumer's inbox drops it).
    await wait_until(lambda: _reached(effects, 1), within=120, what="the first effect")
    applied_at_second_kill = await effects()
    registry.kill()
    registry.start()
    await registry.wait_ready()

    await wait_until(lambda: _reached(effects, accepted), within=120, what="every participant")
    recovered = time.monotonic() - restarted
    unsent_sql = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
    await wait_until(
        lambda: _equals(scalar(registry_url, unsent_sql), 0),
        within=60,
        what="outbox drained",
    )
    on_topic, distinct = await _shared_records(settings)
    got = await effects()
    print(
        f"\n[service SIGKILL with a full outbox] requests accepted {accepted}, unsent in the "
        f"outbox at the kill {unsent}, records on the topic {on_topic} ({distinct} distinct, "
        f"{on_topic - distinct} published twice), effects counted {got}, lost {accepted - got}, "
        f"doubled {max(0, got - accepted)}, killed again while draining at {applied_at_second_kill}"
        f" effects, all applied {recovered:.1f} s after the first restart"
    )
    assert unsent > 0  # the kill really found events not yet sent
    assert distinct == accepted
    assert got == accepted


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
    async with RegistryClient(registry.url, settings) as api:
        facility = await api.facility()
        before = 20
        for _ in range(before):
            api.ok(await api.consenting_inmate(facility))
        own_broker.pause()
        paused = time.monotonic()
        during, refused = 0, []
        try:
            while time.monotonic() - paused < OUTAGE_SECONDS:
                r = await api.consenting_inmate(facility)
                if r.status_code == 201:
                    during += 1
                else:
                    refused.append(f"{r.status_code} {r.text[:200]}")
            unsent = int(
                await scalar(registry_url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            )
        finally:
            own_broker.resume()
        resumed = time.monotonic()
        outage = resumed - paused
        after = 20
        for _ in range(after):
            api.ok(await api.consenting_inmate(facility))
    accepted = before + during + after

    async def effects() -> int:
        return int(
            await scalar(
                training_url,
                "SELECT count(*) FROM participants WHERE facility_id = :f",
                f=str(uuid.UUID(facility)),
            )
        )

    await wait_until(lambda: _reached(effects, accepted), within=180, what="every participant")
    recovery = time.monotonic() - resumed
    on_topic, distinct = await _shared_records(settings)
    got = await effects()
    print(
        f"\n[broker frozen {outage:.1f} s] requests during the outage {during + len(refused)} "
        f"(succeeded {during}, failed {len(refused)}), unsent in the outbox at the end of the "
        f"outage {unsent}, events sent in all {accepted}, records on the topic {on_topic} "
        f"({distinct} distinct), effects counted {got}, lost {accepted - got}, doubled "
        f"{max(0, got - accepted)}, recovery (broker back to every effect) {recovery:.1f} s"
    )
    assert refused == []
    assert during > 0 and unsent > 0
    assert distinct == accepted
    assert got == accepted


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
    training = services("training", database_url=url, broker=own_broker)
    await training.wait_ready()
    settings = client_settings(own_broker)
    facility = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(3000)]

    async def effects() -> int:
        return int(await scalar(url, "SELECT count(*) FROM participants"))

    async with StreamProducer(settings) as stream:
        await stream.send(
            [shared_inmate(i, facility_id=facility, participant_id=p) for i, p in enumerate(ids)]
        )
    await wait_until(lambda: _reached(effects, 500), within=120, what="a sixth of the effects")
    own_broker.pause()
    try:
        at_freeze = await effects()
        await asyncio.sleep(OUTAGE_SECONDS / 2)
        during = await effects() - at_freeze
    finally:
        own_broker.resume()
    resumed = time.monotonic()
    await wait_until(lambda: _reached(effects, len(ids)), within=180, what="every effect")
    recovery = time.monotonic() - resumed
    got = await effects()
    committed = await committed_total(settings, "training", InmateShared.topic)
    print(
        f"\n[broker frozen {OUTAGE_SECONDS / 2:.0f} s under a consuming process] events sent "
        f"{len(ids)}, effects at the freeze {at_freeze}, applied while frozen (already fetched) "
        f"{during}, effects counted {got}, lost {len(ids) - got}, doubled "
        f"{max(0, got - len(ids))}, committed at the end {committed}, recovery {recovery:.1f} s"
    )
    assert got == len(ids)
    await wait_until(
        lambda: _equals(committed_total(settings, "training", InmateShared.topic), len(ids)),
        within=60,
        what="every offset committed",
    )
