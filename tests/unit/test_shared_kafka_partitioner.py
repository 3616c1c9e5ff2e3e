"""The producers' partitioner gives every key the partition Kafka's own clients give it: the
order of a key's events holds only while every producer of a topic agrees on it."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from bekal.shared.messaging.kafka import partition_for_key

# Apache Kafka's own test vectors for its key hash (UtilsTest.testMurmur2): the hash as Java's
# signed 32-bit int.
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_kafkas_test_vectors_give_their_partitions() -> None:
    for key, signed in KAFKA_MURMUR2.items():
        for n in (1, 3, 7, 12, 100):
            # Utils.toPositive(murmur2(key)) % numPartitions, as BuiltInPartitioner does.
            expected = (signed & 0x7FFFFFFF) % n
            assert partition_for_key(key, list(range(n)), []) == expected, (key, n)


@given(key=st.binary(max_size=200), n=st.integers(min_value=1, max_value=300))
def test_a_key_goes_where_aiokafkas_default_partitioner_sends_it(key: bytes, n: int) -> None:
    partitions = list(range(n))
    available = partitions[: max(1, n // 2)]  # a key's partition ignores who has a leader
    assert partition_for_key(key, partitions, available) == DefaultPartitioner()(
        key, partitions, available
    )


def test_the_partition_is_the_same_however_many_leaders_are_up() -> None:
    partitions = list(range(12))
    keys = [random.randbytes(16) for _ in range(200)]
    everywhere = [partition_for_key(k, partitions, partitions) for k in keys]
    assert [partition_for_key(k, partitions, [0]) for k in keys] == everywhere
    assert len(set(everywhere)) > 6  # the keys are spread, not all in one partition


def test_a_record_without_a_key_goes_to_a_partition_with_a_leader() -> None:
    partitions = list(range(12))
    chosen = {partition_for_key(None, partitions, [3, 7]) for _ in range(200)}
    assert chosen == {3, 7}
    # With no leader known anywhere, any partition of the topic.
    assert {partition_for_key(None, partitions, []) for _ in range(500)} == set(partitions)
