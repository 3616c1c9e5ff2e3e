"""Benchmark: the event pipeline against the ceiling of the same machine, optionally profiled.

The same records, the same broker, the same tables:

- raw aiokafka produce (every send in flight, then all acknowledgements) and, for comparison,
  one ``send_and_wait`` at a time; raw aiokafka consume;
- raw asyncpg inserts of the rows a consumer writes for them (the participant and the inbox
  row), with ``executemany`` and with ``COPY``; raw consume-and-insert (a consumer group, one
  transaction per fetched batch, offsets committed after it: the platform's guarantees and
  nothing else);
- the platform's own ``OutboxRelay`` on those rows waiting unsent, and its ``ConsumerRunner``
  with training's handlers on those records, in this process, as a share of the ceiling.

Every platform stage is printed as a share of the raw ceiling on the same broker in the same
run: the relay of raw produce, the consumer of raw consume (the broker alone) and of raw
consume-and-insert (the broker and the database).

Standalone it makes its own broker on free ports, PostgreSQL databases (created and dropped
here) and ``InmateShared`` events; ``national_scale.py`` calls ``measure`` with the events its
registry really wrote. ``--broker`` picks the embedded broker (Tansu, the default), a local
Apache Kafka cluster of ``--nodes`` 1 or 3 (topics with as many replicas, idempotent producers,
as in production), or both, one after the other on the same records.

    .venv/bin/python benchmarks/pipeline.py [--events 90000] [--broker tansu|apache-kafka|both]
        [--nodes 1|3] [--profile] [--rounds 1]

``--profile`` runs the relay and the consumer under cProfile and prints where the time goes.
``--rounds 3`` runs raw consume-and-insert and the consumer in turn three times, then raw
produce and the relay, and prints each round's ratio and their median: this machine's speed
moves by a third within the hour, so one ceiling taken a minute before the stage it divides can
be off by that much.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import math
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    add_broker_arguments,
    broker_settings,
    brokers_wanted,
    create_database,
    drop_database,
    label,
    machine,
    pg_dsn,
    pg_server_version,
    run_tag,
    servers_cpu,
    sqlalchemy_url,
    started_broker,
    table,
)

from bekal.devtools.broker import Broker
from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import InmateShared, PersonKeyPublished, Sex
from bekal.shared.events.personal import PersonKey, SealedFields, key_to_text, sealed, unseal
from bekal.shared.messaging.kafka import partitions_of
from bekal.shared.settings import Settings

Record = Callable[[str, int, float, str], float]


@dataclass(frozen=True)
class Outboxed:
    """An outbox row as the registry writes it for one InmateShared event."""

    event_id: str
    topic: str
    aggregate_id: str
    event_type: str
    payload: str
    traceparent: str | None
    created_at: datetime


# Each synthetic person's data key, by participant id: the registry's person_keys.
KEYS: dict[str, PersonKey] = {}


def synthetic(n: int, *, facilities: int = 530, seed: int = 11) -> list[Outboxed]:
    """``n`` InmateShared outbox rows like the registry's import writes: name and birth year
    sealed with the person's key (``KEYS``)."""
    rnd = random.Random(seed)
    facility_ids = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(facilities)]
    first = ["Siti", "Budi", "Rina", "Agus", "Dewi", "Eko", "Ayu", "Joko", "Sri", "Ahmad"]
    last = ["Aminah", "Santoso", "Wulandari", "Saputra", "Lestari", "Hidayat", "Rahayu"]
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        event = InmateShared(
            participant_id=uuid.UUID(int=rnd.getrandbits(128)),
            full_name=f"{rnd.choice(first)} {rnd.choice(last)}",
            sex=rnd.choice([Sex.FEMALE, Sex.MALE]),
            birth_year=rnd.randrange(1965, 2004),
            facility_id=facility_ids[i % facilities],
            admission_date=date(2020, 1, 1) + timedelta(days=rnd.randrange(0, 1700)),
            expected_release_date=date(2025, 11, 1) + timedelta(days=rnd.randrange(0, 60)),
            facility_code=f"LP-{i % facilities:04d}",
        )
        event_id = str(uuid.uuid4())
        key = KEYS[event.person_id()] = PersonKey.new(event.person_id())
        rows.append(
            Outboxed(
                event_id=event_id,
                topic=event.topic,
                aggregate_id=event.aggregate_id,
                event_type=event.event_type(),
                payload=json.dumps(sealed(event, key, event_id).data(), ensure_ascii=False),
                traceparent=None,
                created_at=now,
            )
        )
    return rows


def settings_for(
    service: str, *, broker: Broker, namespace: str, database: str | None = None
) -> Settings:
    """A service's settings on ``broker`` as production's (idempotence, replicas on Kafka)."""
    return Settings(
        service_name=service,
        environment="test",
        database_url=sqlalchemy_url(database) if database else "",
        kafka_namespace=namespace,
        **broker_settings(broker),
    )


@contextmanager
def profiled(enabled: bool, title: str, out: Path | None):  # type: ignore[no-untyped-def]
    """cProfile around a block (the event loop's other tasks included: that is the cost)."""
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(45)
        print(f"\n===== profile: {title} =====\n{text.getvalue()}", flush=True)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            stats.dump_stats(str(out))


def settled() -> None:
    """Before a timed stage: what exists now is collected, then frozen out of the collector's
    walks, as a served process freezes what its start-up made (``gc.freeze()`` in the
    lifespan). The benchmark holds every record and row for all its stages; without this each
    full collection in the consumer's stage walked them, 350 to 440 ms five times in 17 s, a
    cost no served process has."""
    gc.collect()
    gc.freeze()


async def measure(
    broker: Broker,
    rows: Sequence[Outboxed],
    record: Record,
    *,
    profile: bool = False,
    profile_dir: Path | None = None,
    rounds: int = 1,
) -> dict[str, float]:
    """Every figure of the module docstring, on ``rows``; returns rates by name. With
    ``rounds`` above one, raw consume-and-insert and the consumer run that many times in turn,
    then raw produce and the relay; each round's ratio is printed, and each of those rates
    returned is its median."""
    from aiokafka import AIOKafkaConsumer

    from bekal.shared.events.envelope import to_kafka
    from bekal.shared.messaging.kafka import ensure_topics, make_producer
    from bekal.shared.messaging.outbox import _source
    from bekal.shared.migrations import upgrade

    rates: dict[str, float] = {}
    n = len(rows)
    source = _source("registry")
    records = []
    for r in rows:
        event = InmateShared.model_validate_json(r.payload)
        records.append(to_kafka(event, source=source, event_id=r.event_id, time=r.created_at))
    size = sum(len(v) + len(k or b"") + sum(len(a) + len(b) for a, b in h) for k, v, h in records)
    print(
        f"pipeline on {label(broker)}: {n:,} InmateShared records, "
        f"{size / n:.0f} bytes each on average",
        flush=True,
    )
    bootstrap = broker.bootstrap_servers

    tag = run_tag()
    settings = settings_for("registry", broker=broker, namespace=f"{tag}.")
    topic = settings.topic(InmateShared.topic)
    await ensure_topics(settings, [InmateShared.topic, InmateShared.topic + ".one"])

    # Raw produce: the producer the services use (acks=all, linger 5 ms), all sends in flight.
    rates["raw produce"] = record(
        "ceiling: raw aiokafka produce (all in flight)",
        n,
        await raw_produce(settings, topic, records),
        "events",
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        # What the relay did per row before batching: one send_and_wait at a time.
        sample = records[: min(n, 3000)]
        settled()
        started = time.perf_counter()
        for k, v, h in sample:
            await producer.send_and_wait(topic + ".one", key=k, value=v, headers=h)
        rates["raw send_and_wait"] = record(
            "ceiling: raw aiokafka send_and_wait, one at a time",
            len(sample),
            time.perf_counter() - started,
            "events",
        )
    finally:
        await producer.stop()

    # Raw consume: every partition from the beginning, no group.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        max_poll_records=500,
    )
    await consumer.start()
    try:
        parts = await partitions_of(consumer, [topic])
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got = 0
        settled()
        started = time.perf_counter()
        while got < n:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                got += len(batch)
        rates["raw consume"] = record(
            "ceiling: raw aiokafka consume", got, time.perf_counter() - started, "events"
        )
    finally:
        await consumer.stop()

    # Raw inserts of the same rows into training's own tables (a scratch database).
    scratch = f"{tag}_training"
    await create_database(scratch)
    try:
        await asyncio.to_thread(upgrade, "bekal.training", sqlalchemy_url(scratch))
        now = datetime.now(UTC)
        participants = []
        inbox = []
        for i, (_key, v, h) in enumerate(records):
            ce_id = dict(h)["ce_id"].decode()
            participants.append(participant_row(json.loads(v), ce_id, now))
            inbox.append(("training", ce_id, InmateShared.event_type(), topic, i % 3, i, now))
        conn = await asyncpg.connect(pg_dsn(scratch))
        try:
            settled()
            started = time.perf_counter()
            async with conn.transaction():
                await conn.executemany(INSERT_PARTICIPANT, participants)
                await conn.executemany(INSERT_INBOX, inbox)
            rates["raw executemany"] = record(
                "ceiling: raw asyncpg executemany (participant + inbox row)",
                n,
                time.perf_counter() - started,
                "rows",
            )
            await conn.execute("TRUNCATE participants, inbox")
            settled()
            started = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "participants", records=participants, columns=PARTICIPANT_COLUMNS
                )
                await conn.copy_records_to_table("inbox", records=inbox, columns=INBOX_COLUMNS)
            rates["raw copy"] = record(
                "ceiling: raw asyncpg COPY (participant + inbox row)",
                n,
                time.perf_counter() - started,
                "rows",
            )
            await conn.execute("TRUNCATE participants, inbox")

            # Raw consume-and-insert and the platform's consumer, one after the other, ``rounds``
            # times: each round's ratio compares two stages run a few seconds apart, where the
            # machine's own speed moves by a third within the hour.
            train_settings = settings_for(
                "training", broker=broker, namespace=f"{tag}.", database=scratch
            )
            ring = await person_key_ring(source, train_settings)
            by_round: list[tuple[float, float]] = []
            try:
                for turn in range(1, rounds + 1):
                    suffix = f", round {turn} of {rounds}" if rounds > 1 else ""
                    raw_rate = await raw_consume_insert(
                        conn,
                        bootstrap,
                        topic,
                        f"{tag}.raw{turn}",
                        train_settings.consumer_batch,
                        n,
                        record,
                        suffix,
                    )
                    await conn.execute("TRUNCATE participants, inbox")
                    with profiled(
                        profile and turn == 1,
                        "ConsumerRunner",
                        profile_dir / "consumer.prof" if profile_dir else None,
                    ):
                        platform_rate = await platform_consumer(
                            train_settings, ring, f"bench-training-{turn}", n, record, suffix
                        )
                    await conn.execute("TRUNCATE participants, inbox")
                    by_round.append((raw_rate, platform_rate))
            finally:
                await ring.stop()
            rates["raw consume+insert"], rates["consumer"] = medians(
                "consumer / raw consume+insert", by_round
            )
        finally:
            await conn.close()
    finally:
        await drop_database(scratch)

    # The platform's outbox relay on the same rows, waiting unsent in a fresh registry database;
    # with ``rounds`` above one, raw produce (into a topic of its own) just before each round.
    scratch = f"{tag}_registry"
    await create_database(scratch)
    try:
        await asyncio.to_thread(upgrade, "bekal.registry", sqlalchemy_url(scratch))
        produce_relay: list[tuple[float, float]] = []
        for turn in range(1, rounds + 1):
            suffix = f", round {turn} of {rounds}" if rounds > 1 else ""
            if rounds > 1:
                produce_settings = settings_for(
                    "registry", broker=broker, namespace=f"{tag}.produce{turn}."
                )
                await ensure_topics(produce_settings, [InmateShared.topic])
                raw_rate = record(
                    f"ceiling: raw aiokafka produce (all in flight){suffix}",
                    n,
                    await raw_produce(
                        produce_settings, produce_settings.topic(InmateShared.topic), records
                    ),
                    "events",
                )
            else:
                raw_rate = rates["raw produce"]
            await fill_outbox(scratch, rows)
            relay_settings = settings_for(
                "registry", broker=broker, namespace=f"{tag}.relay{turn}.", database=scratch
            )
            await ensure_topics(relay_settings, [InmateShared.topic])
            with profiled(
                profile and turn == 1,
                "OutboxRelay",
                profile_dir / "relay.prof" if profile_dir else None,
            ):
                elapsed = await platform_relay(relay_settings, n)
            produce_relay.append(
                (
                    raw_rate,
                    record(f"platform: OutboxRelay (in process){suffix}", n, elapsed, "events"),
                )
            )
        rates["raw produce"], rates["relay"] = medians("outbox relay / raw produce", produce_relay)
    finally:
        await drop_database(scratch)
        gc.unfreeze()  # what the stages froze goes back to the collector
    return rates


# Each platform stage against the raw ceiling of the same broker in the same run: the broker
# alone (raw produce, raw consume), then the broker and the database (raw consume+insert).
RATIOS = [
    ("outbox relay / raw produce", "relay", "raw produce"),
    ("consumer / raw consume", "consumer", "raw consume"),
    ("consumer / raw consume+insert", "consumer", "raw consume+insert"),
    ("raw consume+insert / raw consume", "raw consume+insert", "raw consume"),
]
CEILINGS = [
    ("raw produce (all in flight)", "raw produce"),
    ("raw send_and_wait, one at a time", "raw send_and_wait"),
    ("raw consume", "raw consume"),
    ("raw consume+insert", "raw consume+insert"),
    ("platform: OutboxRelay", "relay"),
    ("platform: ConsumerRunner", "consumer"),
]


async def raw_consume_insert(
    conn: asyncpg.Connection,
    bootstrap: str,
    topic: str,
    group_id: str,
    batch_size: int,
    n: int,
    record: Record,
    suffix: str,
) -> float:
    """Raw consume-and-insert: a consumer group, one transaction per fetched batch of the
    platform's batch size, offsets committed after it (its guarantees, nothing else)."""
    from aiokafka import AIOKafkaConsumer

    group = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
    )
    await group.start()
    try:
        got = 0
        settled()
        servers = servers_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        while got < n:
            batches = await group.getmany(timeout_ms=1000, max_records=batch_size)
            for tp, batch in batches.items():
                stamp = datetime.now(UTC)
                p_rows, i_rows = [], []
                for rec in batch:
                    ce_id = dict(rec.headers)["ce_id"].decode()
                    p_rows.append(participant_row(json.loads(rec.value), ce_id, stamp))
                    i_rows.append(
                        (
                            "training",
                            ce_id,
                            InmateShared.event_type(),
                            rec.topic,
                            rec.partition,
                            rec.offset,
                            stamp,
                        )
                    )
                async with conn.transaction():
                    await conn.executemany(INSERT_PARTICIPANT, p_rows)
                    await conn.executemany(INSERT_INBOX, i_rows)
                await group.commit({tp: batch[-1].offset + 1})
                got += len(batch)
        rate = record(
            f"ceiling: raw consume + insert (a transaction per batch, then commit){suffix}",
            got,
            time.perf_counter() - started,
            "events",
        )
        cpu_per_event("raw consume + insert", cpu, got, servers)
        return rate
    finally:
        await group.stop()


async def person_key_ring(source: str, settings: Settings) -> Any:
    """The people's keys on the key topic, read into a started ring (as training does)."""
    from bekal.shared.events.envelope import to_kafka
    from bekal.shared.events.topics import REGISTRY_PERSON_KEYS
    from bekal.shared.messaging.kafka import ensure_topics, make_producer
    from bekal.shared.messaging.person_keys import PersonKeyRing

    await ensure_topics(settings, [REGISTRY_PERSON_KEYS])
    keys_out = make_producer(settings)
    await keys_out.start()
    try:
        sends = []
        for key in KEYS.values():
            k, v, h = to_kafka(
                PersonKeyPublished(participant_id=uuid.UUID(key.kid), key=key_to_text(key.secret)),
                source=source,
            )
            sends.append(
                await keys_out.send(settings.topic(REGISTRY_PERSON_KEYS), key=k, value=v, headers=h)
            )
        await asyncio.gather(*sends)
    finally:
        await keys_out.stop()
    ring = PersonKeyRing(settings)
    await ring.start()
    return ring


async def platform_consumer(
    settings: Settings, ring: Any, group: str, n: int, record: Record, suffix: str
) -> float:
    """The platform's consumer runner with training's handlers, in this process, on the
    records from the beginning (a group of its own)."""
    from bekal.shared.db import Database
    from bekal.shared.messaging.consumer import ConsumerRunner
    from bekal.shared.messaging.kafka import make_consumer, make_producer
    from bekal.training.handlers import subscriptions as training_subscriptions

    db = Database(settings.database_url)
    kafka = make_consumer(settings, group, [InmateShared.topic])
    dlq = make_producer(settings)
    await kafka.start()
    await dlq.start()
    runner = ConsumerRunner(
        subscriptions=training_subscriptions,
        registry=catalogue,
        db=db,
        settings=settings,
        consumer=kafka,
        dlq_producer=dlq,
        person_keys=ring,
    )
    try:
        settled()
        servers = servers_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        runner.start()
        mark, marked = started, 0
        while runner.processed < n:
            if not runner.running:
                raise RuntimeError("the consumer runner stopped")
            await asyncio.sleep(0.05)
            tick = time.perf_counter()
            if tick - mark >= 10:  # the rate as the run goes, to see it change
                rate = (runner.processed - marked) / (tick - mark)
                print(f"    consumer: {runner.processed:,} done, {rate:,.0f}/s", flush=True)
                mark, marked = tick, runner.processed
        elapsed = time.perf_counter() - started
        result = record(
            f"platform: ConsumerRunner + training handler (in process){suffix}",
            runner.processed,
            elapsed,
            "events",
        )
        cpu_per_event("consumer runner", cpu, runner.processed, servers)
        return result
    finally:
        await runner.stop()
        await kafka.stop()
        await dlq.stop()
        await db.dispose()


def medians(name: str, rounds: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The median ceiling and the median stage rate of ``rounds`` (ceiling, stage); with more
    than one round, each round's ratio and their median printed under ``name``."""
    if len(rounds) > 1:
        shares = [stage / ceiling for ceiling, stage in rounds]
        print(
            f"  {name}, round by round: {', '.join(f'{s:.3f}' for s in shares)}; median "
            f"{statistics.median(shares):.3f} (the table below: medians of each rate)",
            flush=True,
        )
    return (
        statistics.median(ceiling for ceiling, _ in rounds),
        statistics.median(stage for _, stage in rounds),
    )


async def raw_produce(
    settings: Settings, topic: str, records: Sequence[tuple[bytes, bytes, Any]]
) -> float:
    """Raw produce with the producer the services use (acks=all, linger 5 ms), every send in
    flight, then every acknowledgement: the seconds it took."""
    from bekal.shared.messaging.kafka import make_producer

    producer = make_producer(settings)
    await producer.start()
    try:
        settled()
        servers = servers_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        acks = [await producer.send(topic, key=k, value=v, headers=h) for k, v, h in records]
        await asyncio.gather(*acks)
        elapsed = time.perf_counter() - started
        cpu_per_event("raw produce", cpu, len(records), servers)
        return elapsed
    finally:
        await producer.stop()


async def fill_outbox(database: str, rows: Sequence[Outboxed]) -> None:
    """The registry database's outbox emptied, then ``rows`` in it, unsent."""
    conn = await asyncpg.connect(pg_dsn(database))
    try:
        await conn.execute("TRUNCATE outbox")
        await conn.copy_records_to_table(
            "outbox",
            records=[
                (
                    r.event_id,
                    r.topic,
                    r.aggregate_id,
                    r.event_type,
                    r.payload,
                    r.traceparent,
                    r.created_at,
                    None,
                    0,
                )
                for r in rows
            ],
            columns=[
                "event_id",
                "topic",
                "aggregate_id",
                "event_type",
                "payload",
                "traceparent",
                "created_at",
                "sent_at",
                "attempts",
            ],
        )
    finally:
        await conn.close()


async def platform_relay(settings: Settings, n: int) -> float:
    """The platform's outbox relay, in this process, until it has published ``n`` rows: the
    seconds it took."""
    from bekal.shared.db import Database
    from bekal.shared.messaging.kafka import make_producer
    from bekal.shared.messaging.outbox import OutboxRelay, backlog

    db = Database(settings.database_url)
    producer = make_producer(settings)
    await producer.start()
    relay = OutboxRelay(db=db, producer=producer, settings=settings)
    try:
        settled()
        servers = servers_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        relay.start()
        # The relay's own count, not a query: polling the table would compete with it.
        while relay.published < n:
            if not relay.running:
                raise RuntimeError("the outbox relay stopped")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu_per_event("outbox relay", cpu, relay.published, servers)
        if await backlog(db):
            raise RuntimeError("the relay counted rows the outbox still holds unsent")
        return elapsed
    finally:
        await relay.stop()
        await producer.stop()
        await db.dispose()


def cpu_per_event(
    stage: str, cpu_before: float, count: int, servers_before: dict[str, float] | None = None
) -> None:
    """This process's CPU time per event since ``cpu_before``: unlike the rate, it does not
    depend on what else the machine runs. With ``servers_before`` (``servers_cpu``), the
    broker's and PostgreSQL's too (other processes: a server process that ended in between is
    not counted)."""
    used = time.process_time() - cpu_before
    per = 1e6 / max(count, 1)
    line = f"    {stage}: {used * per:.0f} us of this process's CPU per event"
    if servers_before is not None:
        now = servers_cpu()
        line += ", " + ", ".join(
            f"{name} {(now[name] - before) * per:.0f}" for name, before in servers_before.items()
        )
    print(line)


def ratio(rates: dict[str, float], a: str, b: str) -> float:
    return rates[a] / rates[b] if a in rates and b in rates and rates[b] else float("nan")


def shown(value: float) -> str:
    """A ratio to three places; ``-`` when one side was not measured."""
    return "-" if math.isnan(value) else f"{value:.3f}"


def ratios(rates: dict[str, float]) -> str:
    return table(
        ["stage / its ceiling", "stage /s", "ceiling /s", "ratio"],
        [
            (name, rates[a], rates[b], shown(ratio(rates, a, b)))
            for name, a, b in RATIOS
            if a in rates and b in rates
        ],
    )


def compare(by_broker: dict[str, dict[str, float]]) -> str:
    """The rates and ratios of each broker side by side (one column a broker)."""
    names = list(by_broker)
    rows: list[list[Any]] = []
    for title, key in CEILINGS:
        rows.append([f"{title} /s", *(by_broker[b].get(key, float("nan")) for b in names)])
    for title, a, b in RATIOS:
        rows.append([f"**{title}**", *(shown(ratio(by_broker[n], a, b)) for n in names)])
    return table(["", *names], rows)


PARTICIPANT_COLUMNS = [
    "id",
    "full_name",
    "sex",
    "birth_year",
    "facility_id",
    "status",
    "admission_date",
    "expected_release_date",
    "as_of",
    "updated_at",
]
INSERT_PARTICIPANT = (
    f"INSERT INTO participants ({', '.join(PARTICIPANT_COLUMNS)}) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
INBOX_COLUMNS = [
    "consumer_group",
    "event_id",
    "event_type",
    "topic",
    "partition",
    "offset",
    "handled_at",
]
INSERT_INBOX = (
    'INSERT INTO inbox (consumer_group, event_id, event_type, topic, partition, "offset", '
    "handled_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


def participant_row(data: dict[str, Any], event_id: str, now: datetime) -> tuple[Any, ...]:
    """The replica row of a share, its sealed fields opened (as a consumer must)."""
    release = data.get("expected_release_date")
    personal = unseal(
        SealedFields.model_validate(data["personal"]), KEYS[data["participant_id"]], event_id
    )
    return (
        data["participant_id"],
        personal["full_name"],
        data["sex"],
        personal["birth_year"],
        data["facility_id"],
        "in_custody",
        date.fromisoformat(data["admission_date"]),
        date.fromisoformat(release) if release else None,
        now,
        now,
    )


def quiet_logs(path: Path) -> None:
    """In-process clients log as the services do (JSON, INFO), to a file instead of the screen."""
    log_file = path.open("w")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=log_file),
    )


def recorder(results: list[tuple[str, int, str, float]]) -> Record:
    """A ``record`` that prints a stage's rate as it is taken and keeps it in ``results``."""

    def record(stage: str, count: int, seconds: float, unit: str) -> float:
        rate = count / seconds if seconds > 0 else float("nan")
        results.append((stage, count, unit, rate))
        print(f"  {stage}: {count:,} {unit} in {seconds:.2f} s = {rate:,.0f}/s", flush=True)
        return rate

    return record


async def main(args: argparse.Namespace) -> None:
    rows = synthetic(args.events)  # the same records on every broker
    runs: dict[str, tuple[list[tuple[str, int, str, float]], dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bekal-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        quiet_logs(tmp / "bench.log")
        print(f"machine: {machine()}; PostgreSQL {await pg_server_version()}", flush=True)
        for kind in brokers_wanted(args):
            results: list[tuple[str, int, str, float]] = []
            record = recorder(results)
            with started_broker(kind, tmp / kind, nodes=args.nodes) as broker:
                print(f"broker: {label(broker)} at {broker.bootstrap_servers}", flush=True)
                rates = await measure(
                    broker,
                    rows,
                    record,
                    profile=args.profile,
                    profile_dir=Path(args.profile_dir) if args.profile_dir else None,
                    rounds=args.rounds,
                )
                runs[label(broker)] = (results, rates)
            print(f"  (done at {machine()})", flush=True)
    for name, (results, rates) in runs.items():
        print()
        print(f"## Pipeline and ceiling on {name} ({args.events:,} events)")
        print()
        print(table(["stage", "count", "unit", "per second"], results))
        print()
        print(ratios(rates))
    if len(runs) > 1:
        print()
        print(f"## Both brokers, same records ({machine()})")
        print()
        print(compare({name: rates for name, (_, rates) in runs.items()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=90_000, help="InmateShared events")
    add_broker_arguments(parser)
    parser.add_argument("--profile", action="store_true", help="cProfile the relay and consumer")
    parser.add_argument("--profile-dir", help="also save the .prof files here")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="each platform stage and its ceiling in turn this many times (median ratio)",
    )
    arguments = parser.parse_args()
    if arguments.rounds < 1:
        parser.error("--rounds must be 1 or more")
    asyncio.run(main(arguments))
