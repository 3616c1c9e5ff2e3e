"""Faults on a three-node Apache Kafka cluster, with the production topic settings.

Topics have three replicas and ``min.insync.replicas=2``; producers use ``acks=all`` and
idempotence. The services run as processes on PostgreSQL, with the consumer journal on: every
delivery and every committed effect is appended there, so an event applied twice would show
(the inbox and the replica tables are keyed by the event and never could).

Each test prints its figures: events sent, effects counted, lost, doubled, delivered again,
where the fault hit and how long the platform took to apply events again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from bekal.devtools import apache_kafka
from bekal.shared.events.catalogue import InmateShared
from bekal.shared.settings import Settings
from tests.conftest import (
    BROKERS,
    _create_pg_database,
    _drop_pg_database,
    _pg_url,
    _unavailable,
    start_apache_kafka,
)
from tests.support.faults import (
    applied_events,
    frozen_holding,
    journal,
    leader_of_busiest_partition,
    recovery_seconds,
    wait_committed_to_log_end,
)
from tests.support.kafka import records_on
from tests.support.processes import ServiceProcess, metric
from tests.support.registry_client import RegistryClient
from tests.support.sql import query, scalar
from tests.support.streams import StreamProducer, shared_inmate
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.apache_kafka]

EVENTS = 10_000
# A steady stream of about 1,000 events a second: faults land while it flows.
CHUNK = 100
# What every service on the cluster gets: production replication, the journal to count with.
CLUSTER_ENV = {"KAFKA_REPLICATION_FACTOR": "3", "CONSUMER_JOURNAL": "true"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apache_kafka.ApacheKafka]:
    if "apache-kafka" not in BROKERS:
        pytest.skip("BEKAL_TEST_BROKERS leaves Apache Kafka out")
    c = start_apache_kafka(tmp_path_factory, 3)
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def whole_cluster_after(cluster: apache_kafka.ApacheKafka) -> Iterator[None]:
    """Each test starts on three serving nodes, whatever the one before did to them."""
    yield
    for node in cluster.members:
        if node.running:
            cluster.resume(node.node_id)
        else:
            cluster.restart(node.node_id)


@pytest.fixture
async def pg_database() -> AsyncIterator[Callable[[], Awaitable[str]]]:
    created: list[str] = []

    async def make() -> str:
        try:
            name = await _create_pg_database()
        except Exception as exc:
            _unavailable("PostgreSQL at 127.0.0.1:5432", exc)
        created.append(name)
        return _pg_url(name)

    yield make
    for name in created:
        await _drop_pg_database(name)


@dataclass
class Load:
    """A stream of ``inmate.shared`` straight onto the topic, and registry requests beside it."""

    settings: Settings
    facility: uuid.UUID = field(default_factory=uuid.uuid4)
    ids: list[uuid.UUID] = field(default_factory=lambda: [uuid.uuid4() for _ in range(EVENTS)])
    resent_chunks: int = 0
    accepted: int = 0
    refused: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def stream(self) -> None:
        """Every event once, in chunks; a chunk the cluster did not acknowledge is sent again
        with the same event ids, as the outbox relay would (consumers drop the repeats)."""
        async with StreamProducer(self.settings) as producer:
            for start in range(0, EVENTS, CHUNK):
                chunk = range(start, min(start + CHUNK, EVENTS))
                events = [
                    shared_inmate(i, facility_id=self.facility, participant_id=self.ids[i])
                    for i in chunk
                ]
                ids = [str(self.ids[i]) for i in chunk]
                while True:
                    try:
                        await producer.send(events, event_ids=ids)
                        break
                    except Exception:
                        self.resent_chunks += 1
                        await asyncio.sleep(0.5)
                await asyncio.sleep(0.1)

    async def requests(self, api: RegistryClient, facility: str) -> None:
        """Inmates registered over HTTP until told to stop: none may be refused."""
        while not self.stop.is_set():
            response = await api.consenting_inmate(facility)
            if response.status_code == 201:
                self.accepted += 1
            else:
                self.refused.append(f"{response.status_code} {response.text[:200]}")
            await asyncio.sleep(0.02)


async def _registry_and_training(
    pg_database: Callable[[], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    cluster: apache_kafka.ApacheKafka,
) -> tuple[ServiceProcess, str, ServiceProcess, str]:
    registry_url, training_url = await pg_database(), await pg_database()
    registry = services("registry", database_url=registry_url, broker=cluster, **CLUSTER_ENV)
    await registry.wait_ready()
    training = services("training", database_url=training_url, broker=cluster, **CLUSTER_ENV)
    await training.wait_ready()
    return registry, registry_url, training, training_url


async def _run_with_fault(
    pg_database: Callable[[], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    cluster: apache_kafka.ApacheKafka,
    settings: Settings,
    *,
    name: str,
    at_share: float,
    fault: Callable[[], Awaitable[str]],
) -> None:
    """Registry and training on the cluster; the stream and requests going; ``fault`` when
    ``at_share`` of the stream is applied. Then everything must be there, once."""
    registry, registry_url, _training, training_url = await _registry_and_training(
        pg_database, services, cluster
    )
    load = Load(settings)

    async def effects() -> int:
        return await applied_events(training_url)

    started = time.monotonic()
    async with RegistryClient(registry.url, settings) as api:
        facility = await api.facility()
        streaming = asyncio.create_task(load.stream())
        requesting = asyncio.create_task(load.requests(api, facility))
        await wait_until(
            lambda: _at_least(effects, int(EVENTS * at_share)), within=300, what="the fault point"
        )
        at_fault = await effects()
        fault_started = time.monotonic()
        what = await fault()
        fault_took = time.monotonic() - fault_started
        recovered = await recovery_seconds(effects, await effects())
        await streaming
        load.stop.set()
        await requesting
    await wait_until(
        lambda: _no_unsent(registry_url), within=180, what="the registry's outbox empty"
    )
    await wait_committed_to_log_end(settings, "training", [InmateShared.topic])
    elapsed = time.monotonic() - started

    j = await journal(training_url)
    names = dict(await query(training_url, "SELECT id, full_name FROM participants"))
    names = {str(k): v for k, v in names.items()}
    lost = sum(1 for p in load.ids if str(p) not in names)
    expected = EVENTS + load.accepted
    print(
        f"\n[{name}] {what}; events sent {EVENTS} + {load.accepted} through registry requests "
        f"({len(load.refused)} refused, {load.resent_chunks} chunks sent again), "
        f"effects counted {j.applied} ({j.applied_events} events; participants {len(names)}), "
        f"lost {lost}, doubled {j.doubled}, delivered again {j.redelivered}; fault hit at "
        f"{at_fault} effects ({at_fault / expected:.0%}), fault took {fault_took:.1f} s, "
        f"applying again {recovered:.1f} s after it, total {elapsed:.1f} s"
    )
    assert load.refused == []  # the registry answers whatever the brokers do
    assert at_fault < expected  # mid-stream
    assert lost == 0
    assert len(names) == expected
    assert j.doubled == 0
    assert j.applied_events == j.delivered_events  # everything that arrived was applied


async def _no_unsent(url: str) -> bool:
    return int(await scalar(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")) == 0


async def _at_least(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


@pytest.mark.timeout(900)
async def test_leader_of_busiest_partition_killed_mid_stream_loses_and_doubles_nothing(
    pg_database: Callable[[], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    cluster: apache_kafka.ApacheKafka,
    client_settings: Callable[[apache_kafka.ApacheKafka], Settings],
) -> None:
    settings = client_settings(cluster)

    async def kill_leader() -> str:
        node, partition = await leader_of_busiest_partition(settings, InmateShared.topic)
        cluster.kill(node)
        return f"SIGKILL of node {node}, leader of partition {partition}"

    await _run_with_fault(
        pg_database,
        services,
        cluster,
        settings,
        name="leader SIGKILL",
        at_share=0.3,
        fault=kill_leader,
    )


@pytest.mark.timeout(900)
async def test_rolling_restart_of_all_three_brokers_under_load(
    pg_database: Callable[[], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    cluster: apache_kafka.ApacheKafka,
    client_settings: Callable[[apache_kafka.ApacheKafka], Settings],
) -> None:
    settings = client_settings(cluster)

    async def rolling_restart() -> str:
        took = []
        for node in cluster.members:
            t = time.monotonic()
            await asyncio.to_thread(cluster.restart, node.node_id)  # SIGTERM, start, serving
            took.append(f"{time.monotonic() - t:.0f} s")
        return f"rolling restart of nodes 1-3 ({', '.join(took)} each)"

    await _run_with_fault(
        pg_database,
        services,
        cluster,
        settings,
        name="rolling restart",
        at_share=0.1,
        fault=rolling_restart,
    )


@pytest.mark.timeout(900)
async def test_one_broker_frozen_for_30_seconds_then_thawed(
    pg_database: Callable[[], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    cluster: apache_kafka.ApacheKafka,
    client_settings: Callable[[apache_kafka.ApacheKafka], Settings],
) -> None:
    settings = client_settings(cluster)

    async def freeze() -> str:
        node, partition = await leader_of_busiest_partition(settings, InmateShared.topic)
        cluster.pause(node)
        await asyncio.sleep(30)  # the fault itself: a node that answers nothing for 30 s
        cluster.resume(node)
        return f"SIGSTOP of node {node} (leader of partition {partition}) for 30 s"

    await _run_with_fault(
        pg_database,
        services,
        cluster,
        settings,
        name="broker frozen",
        at_share=0.3,
        fault=freeze,
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("service", ["training", "reporting"])
async def test_replica_killed_and_restarted_mid_stream_in_one_group(
    pg_database: Callable[[], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    cluster: apache_kafka.ApacheKafka,
    client_settings: Callable[[apache_kafka.ApacheKafka], Settings],
    service: str,
    replicas: int,
) -> None:
    """Replicas share a database and a consumer group; one is SIGKILLed while it holds
    records it has not committed, and started again: the group rebalances twice under load."""
    settings = client_settings(cluster)
    url = await pg_database()
    members = []
    for _ in range(replicas):  # one after the other: the first one migrates the database
        member = services(service, database_url=url, broker=cluster, **CLUSTER_ENV)
        await member.wait_ready()
        members.append(member)
    load = Load(settings)

    async def effects() -> int:
        return await applied_events(url)

    victim = members[0]
    started = time.monotonic()
    streaming = asyncio.create_task(load.stream())
    await wait_until(lambda: _at_least(effects, EVENTS // 4), within=300, what="a quarter")
    # Kill it while it holds records whose effect is not committed: they must come again. It is
    # frozen while the journal is read, so what it holds cannot be committed in between.
    await wait_until(lambda: frozen_holding(victim, url), within=120, what="records held")
    victim.kill()
    at_kill = await effects()
    killed = time.monotonic()
    recovered = await recovery_seconds(effects, at_kill)
    victim.start()
    await victim.wait_ready()
    back = time.monotonic() - killed
    await streaming
    await wait_until(lambda: _at_least(effects, EVENTS), within=300, what="every effect")
    await wait_committed_to_log_end(settings, service, [InmateShared.topic])
    elapsed = time.monotonic() - started

    j = await journal(url)
    stored = {str(r[0]) for r in await query(url, "SELECT id FROM participants")}
    lost = sum(1 for p in load.ids if str(p) not in stored)
    async with httpx.AsyncClient() as http:
        duplicates = [
            metric(
                (await http.get(m.url + "/metrics")).text,
                "bekal_events_consumed_total",
                outcome="duplicate",
            )
            for m in members
        ]
    print(
        f"\n[{replicas} {service} replicas, one SIGKILLed] events sent {EVENTS} "
        f"({load.resent_chunks} chunks sent again), effects counted {j.applied} "
        f"({j.applied_events} events), lost {lost}, doubled {j.doubled}, delivered again "
        f"{j.redelivered} (dropped as duplicates since the restart: {sum(duplicates):.0f}); "
        f"killed at {at_kill} effects ({at_kill / EVENTS:.0%}), the others applying again "
        f"{recovered:.1f} s after, the victim back {back:.1f} s after, total {elapsed:.1f} s"
    )
    assert at_kill < EVENTS  # mid-stream
    assert j.redelivered > 0  # the kill forced records to be delivered again
    assert lost == 0
    assert len(stored) == EVENTS
    assert j.applied_events == EVENTS
    assert j.doubled == 0


@pytest.mark.timeout(900)
async def test_relaying_replica_killed_with_a_full_outbox_the_other_publishes_all_in_order(
    pg_database: Callable[[], Awaitable[str]],
    services: Callable[..., ServiceProcess],
    cluster: apache_kafka.ApacheKafka,
    client_settings: Callable[[apache_kafka.ApacheKafka], Settings],
) -> None:
    """Two registry replicas on one database; the cluster unreachable while requests fill
    the outbox; then the replica that is publishing is SIGKILLed mid-way."""
    settings = client_settings(cluster)
    url = await pg_database()
    # Small batches: the outbox drains in many short transactions, so a kill lands mid-way.
    env = {**CLUSTER_ENV, "OUTBOX_BATCH_SIZE": "10"}
    a = services("registry", database_url=url, broker=cluster, **env)
    await a.wait_ready()
    b = services("registry", database_url=url, broker=cluster, **env)
    await b.wait_ready()
    async with RegistryClient(a.url, settings) as api_a, RegistryClient(b.url, settings) as api_b:
        facility = await api_a.facility()
        await wait_until(lambda: _no_unsent(url), within=60, what="the facility published")
        for node in cluster.members:
            cluster.pause(node.node_id)
        try:
            for n in range(800):
                api = api_a if n % 2 else api_b
                api.ok(await api.consenting_inmate(facility))
        finally:
            for node in cluster.members:
                cluster.resume(node.node_id)
    total = int(await scalar(url, "SELECT count(*) FROM outbox"))
    full = int(await scalar(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"))

    async def sent() -> int:
        return total - int(await scalar(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"))

    # The first replica seen to have published, while rows still wait, is killed at once.
    victim: ServiceProcess | None = None
    published: dict[ServiceProcess, float] = {}
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            for p in (a, b):
                text = (await http.get(p.url + "/metrics")).text
                published[p] = metric(text, "bekal_events_published_total")
                if published[p] > 1 and await sent() < total:  # beyond the facility's event
                    victim = p
                    break
    assert victim is not None, "neither replica published within 120 s"
    survivor = b if victim is a else a
    victim.kill()
    at_kill = await sent()
    killed = time.monotonic()
    await wait_until(lambda: _no_unsent(url), within=180, what="the survivor publishing all")
    took = time.monotonic() - killed

    rows = await query(url, "SELECT event_id, topic, aggregate_id FROM outbox ORDER BY seq")
    on_topics: dict[str, list[tuple[int, int, str, str]]] = {}
    for topic in sorted({r[1] for r in rows}):
        for rec in await records_on(settings, topic):
            event_id = dict(rec.headers)["ce_id"].decode()
            on_topics.setdefault(topic, []).append(
                (rec.partition, rec.offset, event_id, (rec.key or b"").decode())
            )
    published_ids = [r[2] for recs in on_topics.values() for r in recs]
    missing = [str(r[0]) for r in rows if str(r[0]) not in set(published_ids)]
    # Order per key: a key's first deliveries, in offset order, follow the outbox's order.
    out_of_order = 0
    for topic, recs in on_topics.items():
        firsts: dict[str, list[str]] = {}
        seen: set[str] = set()
        for _p, _o, event_id, key in sorted(recs):
            if event_id not in seen:
                seen.add(event_id)
                firsts.setdefault(key, []).append(event_id)
        for key, got in firsts.items():
            want = [str(r[0]) for r in rows if r[1] == topic and r[2] == key]
            out_of_order += got != [w for w in want if w in seen]
    print(
        f"\n[relaying replica SIGKILL] outbox {total} rows ({full} waiting when the cluster "
        f"came back), published by the victim {published[victim]:.0f}, killed at "
        f"{at_kill} sent ({at_kill / total:.0%}); records on the topics {len(published_ids)} "
        f"({len(published_ids) - len(set(published_ids))} published twice), missing "
        f"{len(missing)}, keys out of order {out_of_order}; the survivor emptied the outbox "
        f"{took:.1f} s after the kill"
    )
    assert survivor.process is not None and survivor.process.poll() is None
    assert published[victim] > 0  # the victim was relaying
    assert at_kill < total  # mid-way
    assert missing == []
    assert out_of_order == 0
