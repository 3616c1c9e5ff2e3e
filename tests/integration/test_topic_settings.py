"""The catalogue's topic settings, applied for real on a three-node Apache Kafka cluster.

``ensure_topics`` creates topics with three replicas, min.insync.replicas=2, no unclean leader
election and the retention each topic has in production, as the topic's own configuration (not
the broker's defaults); the platform's producer (acks=all) gets no acknowledgement while only
one of the three brokers holds the record; and a dead letter carries the headers the AsyncAPI
document promises.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from jsonschema import Draft202012Validator

from bekal.devtools import apache_kafka
from bekal.devtools.generated import all_consumers
from bekal.shared import contracts
from bekal.shared.db import Database
from bekal.shared.events.catalogue import InmateReleased
from bekal.shared.events.topics import DEAD_LETTER_RETENTION_MS, topic_config
from bekal.shared.messaging.consumer import HandlerContext, Subscriptions
from bekal.shared.messaging.kafka import ensure_topics, make_producer
from bekal.shared.messaging.models import DeadLetter
from bekal.shared.migrations import create_platform_tables
from bekal.shared.settings import Settings
from tests.conftest import BROKERS, start_apache_kafka
from tests.support.db import count
from tests.support.factories import inmate_released
from tests.support.kafka import publish, records_on
from tests.support.runners import start_runner
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]

EVENT_TOPIC = "registry.inmates"
DEAD_LETTER_TOPIC = "training.dlq"
CHECKED = (
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "retention.ms",
    "cleanup.policy",
)
# DescribeConfigs' config_source: set on the topic itself, not inherited from the broker.
TOPIC_CONFIG_SOURCE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apache_kafka.ApacheKafka]:
    """Three combined broker-and-controller nodes for this module (skipped without Java or
    Maven, a failure under CI=true)."""
    if "apache-kafka" not in BROKERS:
        pytest.skip("BEKAL_TEST_BROKERS leaves Apache Kafka out")
    kafka = start_apache_kafka(tmp_path_factory, 3)
    yield kafka
    kafka.stop()


@pytest.fixture
def settings(cluster: apache_kafka.ApacheKafka, make_settings: Any, tmp_path: Path) -> Settings:
    # As on the production cluster: three replicas per topic.
    return make_settings(  # type: ignore[no-any-return]
        "training",
        f"sqlite+aiosqlite:///{tmp_path / 'training.db'}",
        cluster,
        kafka_replication_factor=3,
    )


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await client.start()
    yield client
    await client.close()


async def topic_configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, tuple[str, int]]:
    """name -> (value, source) of the checked configs of ``topic``.

    The admin client asks any node, and a node learns of a new topic from the controller a
    moment after the one that created it: UNKNOWN_TOPIC_OR_PARTITION (3) is asked again,
    for at most 15 s; any other error fails."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, None)]
        )
        (resource,) = response.resources
        error_code, _, _, name, entries = resource[:5]
        if error_code != UNKNOWN_TOPIC_OR_PARTITION or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert error_code == 0 and name == topic
    return {e[0]: (e[1], e[3]) for e in entries if e[0] in CHECKED}


async def test_topics_are_created_with_three_replicas_and_the_catalogue_configs(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    created = await ensure_topics(settings, [EVENT_TOPIC, DEAD_LETTER_TOPIC])
    assert sorted(created) == sorted(settings.topic(t) for t in (EVENT_TOPIC, DEAD_LETTER_TOPIC))

    for topic in await admin.describe_topics(created):
        assert len(topic["partitions"]) == settings.kafka_topic_partitions
        for partition in topic["partitions"]:
            assert len(partition["replicas"]) == 3, partition
            assert sorted(partition["isr"]) == [1, 2, 3], partition

    expected = {
        EVENT_TOPIC: {
            "min.insync.replicas": "2",
            "unclean.leader.election.enable": "false",
            "retention.ms": "-1",
            "cleanup.policy": "delete",
        },
        DEAD_LETTER_TOPIC: {
            "min.insync.replicas": "2",
            "unclean.leader.election.enable": "false",
            "retention.ms": str(DEAD_LETTER_RETENTION_MS),
            "cleanup.policy": "delete",
        },
    }
    for name, wanted in expected.items():
        assert wanted == topic_config(name, 3)  # what the catalogue declares
        described = await topic_configs(admin, settings.topic(name))
        assert {k: v for k, (v, _) in described.items()} == wanted, name
        # On the topic itself: the brokers' own defaults would not survive a broker change.
        assert {k: source for k, (_, source) in described.items()} == dict.fromkeys(
            CHECKED, TOPIC_CONFIG_SOURCE
        ), name


def _poison_subscriptions() -> Subscriptions:
    subs = Subscriptions("training")

    @subs.on(InmateReleased)
    async def on_released(event: InmateReleased, ctx: HandlerContext) -> None:
        raise ValueError("rule broken on purpose")

    return subs


async def test_dead_letters_carry_the_headers_the_asyncapi_document_requires(
    settings: Settings,
) -> None:
    db = Database(settings.database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(create_platform_tables)
    subs = _poison_subscriptions()
    runner, producer = await start_runner(settings, db, subs)
    consumer = runner.consumer
    topic = settings.topic(EVENT_TOPIC)
    ce = [("ce_source", b"/x"), ("ce_specversion", b"1.0"), ("content-type", b"application/json")]
    released_type = InmateReleased.event_type().encode()
    # One record for each reason a record is dead-lettered for.
    for key, value, headers in (
        (b"k1", b"plain bytes", []),  # not_a_cloudevent
        (b"k2", b"{not json", [("ce_id", b"2"), ("ce_type", released_type), *ce]),  # malformed
        (b"k3", b"{}", [("ce_id", b"3"), ("ce_type", b"id.bekal.x.gone.v9"), *ce]),  # unknown
        (b"k4", b'{"participant_id": 1}', [("ce_id", b"4"), ("ce_type", released_type), *ce]),
    ):
        await producer.send_and_wait(topic, key=key, value=value, headers=headers)
    await publish(settings, [inmate_released()])  # handler_failed
    runner.start()
    try:
        await wait_until(lambda: _count_at_least(db, 5), within=60, what="five dead letters")
    finally:
        await runner.stop()
        await consumer.stop()
        await producer.stop()
        await db.dispose()

    doc = contracts.asyncapi(consumer_groups=all_consumers())
    schema = doc["components"]["messages"][contracts.DEAD_LETTER_MESSAGE]["headers"]
    validator = Draft202012Validator(schema)
    dead = await records_on(settings, DEAD_LETTER_TOPIC)
    reasons = set()
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        errors = [e.message for e in validator.iter_errors(headers)]
        assert not errors, f"a dead letter the document does not describe: {errors} {headers}"
        assert headers["dlq_original_topic"] == topic
        assert headers["dlq_consumer_group"] == subs.group_id
        reasons.add(headers["dlq_reason"])
    # The document's reasons are exactly those the consumer gives.
    assert reasons == set(schema["properties"]["dlq_reason"]["enum"])


async def _count_at_least(db: Database, n: int) -> bool:
    return await count(db, DeadLetter) >= n


async def leader_of(admin: AIOKafkaAdminClient, topic: str, partition: int) -> int:
    """The leader of ``partition``, once the broker asked knows the new topic."""
    for _ in range(100):
        (described,) = await admin.describe_topics([topic])
        leaders = [p["leader"] for p in described["partitions"] if p["partition"] == partition]
        if leaders and leaders[0] >= 0:
            return int(leaders[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topic}[{partition}] has no leader")


async def test_acks_all_is_not_acknowledged_while_two_of_three_brokers_are_down(
    cluster: apache_kafka.ApacheKafka, settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    topic = settings.topic(EVENT_TOPIC)
    await ensure_topics(settings, [EVENT_TOPIC])
    survivor = await leader_of(admin, topic, 0)
    others = [n.node_id for n in cluster.members if n.node_id != survivor]
    # The platform's producers, both acks=all: idempotent as in production, and without
    # idempotence as on the embedded broker; and one that asks only the leader (acks=1).
    idempotent = make_producer(settings)
    plain = make_producer(settings.model_copy(update={"kafka_enable_idempotence": False}))
    leader_only = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks=1)
    producers = (idempotent, plain, leader_only)
    for producer in producers:
        await producer.start()
    pending: asyncio.Future[Any] | None = None
    try:
        await idempotent.send_and_wait(topic, b"three copies", key=b"k", partition=0)
        for node_id in others:
            cluster.kill(node_id)
        loop = asyncio.get_running_loop()
        started = loop.time()
        pending = asyncio.ensure_future(
            idempotent.send_and_wait(topic, b"kept until acknowledged", key=b"k", partition=0)
        )
        with pytest.raises(KafkaError) as refused:
            await asyncio.wait_for(
                plain.send_and_wait(topic, b"one copy", key=b"k", partition=0), timeout=60
            )
        waited = loop.time() - started
        # The idempotent producer neither fails nor is acknowledged: it keeps the record and
        # retries (aiokafka never expires an idempotent producer's batches).
        assert not pending.done(), pending
        # The partition's leader is up and takes a record from a producer that asks only for it:
        # what refused the records above is acks=all with one of three replicas.
        await asyncio.wait_for(
            leader_only.send_and_wait(topic, b"leader only", key=b"k", partition=0), timeout=20
        )
        assert not pending.done(), pending
    finally:
        for node_id in others:
            if not cluster.node(node_id).running:
                cluster.restart(node_id)
    try:
        # With the brokers back, the kept record is acknowledged.
        assert pending is not None
        await asyncio.wait_for(pending, timeout=60)
    finally:
        for producer in producers:
            await asyncio.wait_for(producer.stop(), timeout=30)
    print(f"acks=all without idempotence refused after {waited:.1f} s: {refused.value!r}")
    values = [r.value for r in await records_on(settings, EVENT_TOPIC) if r.partition == 0]
    assert values.count(b"three copies") == 1
    assert values.count(b"kept until acknowledged") == 1  # once: the retries were deduplicated
    # The refused record may be there too: the leader had appended it before the timeout, and
    # replicated it once the others returned. A refused acks=all means "not known to be safe",
    # never "not written"; the outbox publishes it again and consumers skip the duplicate.
    print(f"partition 0 after the outage: {values}")
