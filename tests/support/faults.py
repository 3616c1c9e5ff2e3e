"""What the fault tests read: the consumer journal, committed and end offsets, partition leaders.

Effects are counted in the consumer journal (``CONSUMER_JOURNAL=true``, see
``bekal.shared.messaging.journal``), where an event applied twice shows as two ``applied``
rows: a table keyed by the event could never hold the double it is meant to catch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from bekal.shared.messaging.kafka import partitions_of
from bekal.shared.settings import Settings
from tests.support.sql import query
from tests.support.waiting import wait_until


@dataclass
class Journal:
    delivered: int  # rows: every time a record reached the handlers
    delivered_events: int
    applied: int  # rows: every committed effect
    applied_events: int

    @property
    def redelivered(self) -> int:
        """Deliveries beyond the first of each event: what a kill or a rebalance forced."""
        return self.delivered - self.delivered_events

    @property
    def doubled(self) -> int:
        """Effects beyond the first of each event: must be none."""
        return self.applied - self.applied_events


async def journal(url: str) -> Journal:
    """The consumer journal in a service's database (all its groups: one, or a reporting
    generation's)."""
    try:
        rows = await query(
            url,
            "SELECT stage, count(*), count(DISTINCT consumer_group || ' ' || event_id) "
            "FROM consumer_journal GROUP BY stage",
        )
    except Exception as exc:  # the table is made on the first delivery
        if "consumer_journal" in str(exc):
            return Journal(0, 0, 0, 0)
        raise
    by = {stage: (int(n), int(d)) for stage, n, d in rows}
    d, de = by.get("delivered", (0, 0))
    a, ae = by.get("applied", (0, 0))
    return Journal(d, de, a, ae)


async def applied_events(url: str) -> int:
    return (await journal(url)).applied_events


async def in_flight(url: str, pid: int) -> int:
    """Records process ``pid`` has taken up and whose effect it has not committed (yet)."""
    rows = await query(
        url,
        "SELECT coalesce(sum(CASE stage WHEN 'delivered' THEN 1 ELSE -1 END), 0) "
        "FROM consumer_journal WHERE pid = :pid",
        pid=pid,
    )
    return int(rows[0][0])


async def offsets(settings: Settings, group: str, topics: list[str]) -> tuple[int, int]:
    """``(committed, end)``: sums over the topics' partitions of ``group``'s committed offsets
    and of the partitions' end offsets. Equal when the group has committed everything."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.topic(group),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, [settings.topic(t) for t in topics])
        ends = await consumer.end_offsets(tps)
        committed = 0
        for tp in tps:
            committed += (await consumer.committed(tp)) or 0
        return committed, sum(ends.values())
    finally:
        await consumer.stop()


async def wait_all_committed(
    settings: Settings, group: str, topics: list[str], *, within: float = 180.0
) -> None:
    """Until ``group`` has committed every record now on ``topics`` (no fixed sleeps)."""

    async def done() -> bool:
        try:
            committed, end = await offsets(settings, group, topics)
        except Exception:  # a broker restarting: ask again
            return False
        return committed == end

    await wait_until(done, within=within, what=f"{group} committing every record")


async def leader_of_busiest_partition(settings: Settings, topic: str) -> tuple[int, int]:
    """``(node id, partition)`` of the leader of the partition of ``topic`` holding most records."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, [settings.topic(topic)])
        ends = await consumer.end_offsets(tps)
        busiest: TopicPartition = max(tps, key=lambda tp: ends[tp])
        leader = consumer._client.cluster.leader_for_partition(busiest)
        assert leader is not None and leader >= 0, f"no leader for {busiest}"
        return int(leader), busiest.partition
    finally:
        await consumer.stop()


async def recovery_seconds(
    count: Callable[[], Awaitable[int]], at_fault: int, *, within: float = 180.0
) -> float:
    """Seconds from now until ``count()`` moves past ``at_fault``: effects flowing again."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await wait_until(lambda: _above(count, at_fault), within=within, what="effects flowing again")
    return loop.time() - started


async def _above(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() > n
