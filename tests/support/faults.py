"""What the fault tests read: the consumer journal, committed and end offsets, partition leaders.

Effects are counted in the consumer journal (``CONSUMER_JOURNAL=true``, see
``bekal.shared.messaging.journal``), where an event applied twice shows as two ``applied``
rows: a table keyed by the event could never hold the double it is meant to catch.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from bekal.shared.messaging.kafka import partitions_of
from bekal.shared.settings import Settings
from tests.support.processes import ServiceProcess
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


async def journal(url: str, topic: str | None = None) -> Journal:
    """The consumer journal in a service's database (all its groups: one, or a reporting
    generation's), of every topic or of ``topic`` (its full, namespaced name) only."""
    where, params = ("WHERE topic = :topic ", {"topic": topic}) if topic else ("", {})
    try:
        rows = await query(
            url,
            "SELECT stage, count(*), count(DISTINCT consumer_group || ' ' || event_id) "
            f"FROM consumer_journal {where}GROUP BY stage",
            **params,
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


async def delivered_again_after(url: str, pid: int) -> int:
    """Events process ``pid`` took up that a later process took up again: what killing it
    forced (records it held uncommitted, or applied without committing their offsets)."""
    rows = await query(
        url,
        "SELECT count(DISTINCT a.event_id) FROM consumer_journal a WHERE a.pid = :pid "
        "AND a.stage = 'delivered' AND EXISTS (SELECT 1 FROM consumer_journal b "
        "WHERE b.consumer_group = a.consumer_group AND b.event_id = a.event_id "
        "AND b.stage = 'delivered' AND b.pid <> a.pid AND b.id > a.id)",
        pid=pid,
    )
    return int(rows[0][0])


async def holding(url: str, pid: int) -> int:
    """Events process ``pid`` took up whose effect nobody has committed (records it dropped
    as duplicates, applied before by another process, are not counted). Killing ``pid`` while
    this is above zero forces those records to be delivered again."""
    rows = await query(
        url,
        "SELECT count(DISTINCT d.event_id) FROM consumer_journal d WHERE d.pid = :pid "
        "AND d.stage = 'delivered' AND NOT EXISTS (SELECT 1 FROM consumer_journal a "
        "WHERE a.consumer_group = d.consumer_group AND a.event_id = d.event_id "
        "AND a.stage = 'applied')",
        pid=pid,
    )
    return int(rows[0][0])


async def log_ends(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    """Each partition's true end: one past its last record, found by reading its last batch.

    Tansu answers ListOffsets (latest) with one past the first offset of a partition's last
    batch, so a batch of several records at the end of a partition leaves ``end_offsets``
    short of the records there; reading from that offset returns the whole batch."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, [settings.topic(t) for t in topics])
        consumer.assign(tps)
        reported = await consumer.end_offsets(tps)
        out: dict[TopicPartition, int] = {}
        for tp in tps:
            out[tp] = reported[tp]
            if reported[tp] == 0:
                continue
            consumer.seek(tp, reported[tp] - 1)
            for _ in range(20):
                batch = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
                if batch:
                    out[tp] = max(reported[tp], batch[-1].offset + 1)
                    break
            else:
                raise AssertionError(f"{tp}: no record at {reported[tp] - 1} in 10 s")
        return out
    finally:
        await consumer.stop()


async def wait_committed_to_log_end(
    settings: Settings, group: str, topics: list[str], *, within: float = 180.0
) -> None:
    """Until ``group`` has committed, on every partition of ``topics``, every record there
    when this was called (ends from ``log_ends``: right on Tansu too). No fixed sleeps."""
    ends = await log_ends(settings, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.topic(group),
        enable_auto_commit=False,
    )

    async def done() -> bool:
        try:
            for tp, end in ends.items():
                if ((await consumer.committed(tp)) or 0) < end:
                    return False
        except Exception:  # a broker restarting: ask again
            return False
        return True

    await consumer.start()
    try:
        await wait_until(done, within=within, what=f"{group} committing every record")
    finally:
        await consumer.stop()


async def frozen_holding(process: ServiceProcess, url: str) -> bool:
    """Freeze ``process``; if it holds uncommitted records, leave it frozen (for a SIGKILL
    that must force their redelivery) and say so; otherwise thaw it. Frozen while the journal
    is read, it cannot commit what it holds in between."""
    assert process.process is not None
    process.process.send_signal(signal.SIGSTOP)
    if await holding(url, process.pid) > 0:
        return True
    process.process.send_signal(signal.SIGCONT)
    await asyncio.sleep(0.05)  # let it take up its next records
    return False
