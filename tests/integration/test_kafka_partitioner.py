"""Every key lands in the partition Apache Kafka's Java producer gives it: a key's events keep
their order only while every producer of a topic, in any language, hashes keys alike."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bekal.devtools import apache_kafka
from bekal.shared.messaging.kafka import make_producer
from tests.conftest import _unavailable

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]

PARTITIONS = 12
JAVA = Path(__file__).parents[1] / "support" / "java" / "KeyPartitions.java"


def java_partitions(keys: list[bytes], partitions: int) -> list[int]:
    """Each key's partition by Kafka's own ``BuiltInPartitioner.partitionForKey``."""
    java = shutil.which("java")
    if java is None:
        _unavailable("Java", "no java on PATH")
    libs = apache_kafka.install()
    classpath = os.pathsep.join(
        str(jar)
        for jar in sorted(libs.glob("*.jar"))
        if jar.name.startswith(("kafka-clients", "slf4j-api"))
    )
    done = subprocess.run(
        [str(java), "-cp", classpath, str(JAVA), str(partitions)],
        input="\n".join(key.hex() for key in keys) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [int(line) for line in done.stdout.split()]


async def test_keys_go_to_the_partitions_kafkas_java_producer_gives_them(
    kafka_node: Any, make_settings: Any, tmp_path: Path
) -> None:
    rng = random.Random(7)
    keys = [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(150)]
    keys += [b"", b"a", b"ab", b"abc"] + [rng.randbytes(rng.randrange(1, 64)) for _ in range(50)]
    expected = await asyncio.to_thread(java_partitions, keys, PARTITIONS)
    assert len(expected) == len(keys)
    assert len(set(expected)) == PARTITIONS  # the keys cover every partition

    settings = make_settings("registry", f"sqlite+aiosqlite:///{tmp_path}/r.db", kafka_node)
    topic = settings.topic("partitioner.check")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = make_producer(settings)
    await producer.start()
    try:
        acks = [await producer.send(topic, key=key, value=b"v") for key in keys]
        written = await asyncio.gather(*acks)
    finally:
        await producer.stop()
    assert [metadata.partition for metadata in written] == expected
