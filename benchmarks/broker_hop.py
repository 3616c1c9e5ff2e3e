"""Benchmark: one hop's latency, from a record sent to the same record in a consumer's hands.

A trickle of records (``--records``, one every ``--every`` seconds, as releases and
withdrawals arrive on a working day), sent with the platform's producer and read by the
platform's group consumer (``make_producer`` and ``make_consumer``, the services' settings),
once for each ``--waits`` value of ``CONSUMER_FETCH_MAX_WAIT_MS``. Prints p50, p90 and the
longest hop of each, on the embedded broker (Tansu), a local Apache Kafka, or both.

    .venv/bin/python benchmarks/broker_hop.py [--broker tansu|apache-kafka|both] [--nodes 1|3]
        [--records 60] [--every 0.137] [--waits 500,250,100]

Tansu answers a fetch only when its wait runs out, even when records arrive meanwhile; Apache
Kafka answers as soon as one arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    add_broker_arguments,
    broker_settings,
    brokers_wanted,
    label,
    machine,
    percentile,
    started_broker,
    table,
)

from bekal.devtools.broker import Broker
from bekal.shared.messaging.kafka import ensure_topics, make_consumer, make_producer
from bekal.shared.settings import Settings

TOPIC = "hop"


async def hops(broker: Broker, wait_ms: int, args: argparse.Namespace) -> list[float]:
    """Seconds from each record's send to its arrival in the consumer's hands."""
    settings = Settings(
        service_name="bench",
        environment="test",
        kafka_namespace=f"hop-{uuid.uuid4().hex[:8]}.",
        consumer_fetch_max_wait_ms=wait_ms,
        **broker_settings(broker),
    )
    await ensure_topics(settings, [TOPIC])
    consumer = make_consumer(settings, "hop", [TOPIC])
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    arrived: list[float] = []
    try:
        for _ in range(600):  # joined the group (30 s at most)
            if consumer.assignment():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # past the first fetches of an empty topic

        async def read() -> None:
            while len(arrived) < args.records:
                batches = await consumer.getmany(timeout_ms=1000)
                now = time.time()
                arrived.extend(now - float(r.value.decode()) for rs in batches.values() for r in rs)

        reading = asyncio.create_task(read())
        for n in range(args.records):
            value = str(time.time()).encode()
            await producer.send_and_wait(settings.topic(TOPIC), value, key=str(n).encode())
            await asyncio.sleep(args.every)
        await asyncio.wait_for(reading, timeout=60)
    finally:
        await producer.stop()
        await consumer.stop()
    return arrived


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}", flush=True)
    waits = [int(w) for w in args.waits.split(",")]
    rows = []
    for kind in brokers_wanted(args):
        with (
            tempfile.TemporaryDirectory(prefix="bekal-hop-") as tmp,
            started_broker(kind, Path(tmp), nodes=args.nodes) as broker,
        ):
            for wait_ms in waits:
                seconds = await hops(broker, wait_ms, args)
                ms = [s * 1000 for s in seconds]
                rows.append(
                    (
                        label(broker),
                        wait_ms,
                        len(ms),
                        f"{percentile(ms, 50):.0f}",
                        f"{percentile(ms, 90):.0f}",
                        f"{max(ms):.0f}",
                    )
                )
                print(f"  {rows[-1]}", flush=True)
    print()
    print(f"## One hop, sent to read ({machine()})")
    print()
    print(
        table(
            ["broker", "CONSUMER_FETCH_MAX_WAIT_MS", "records", "p50 ms", "p90 ms", "max ms"], rows
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_broker_arguments(parser)
    parser.add_argument("--records", type=int, default=60)
    parser.add_argument("--every", type=float, default=0.137, help="seconds between records")
    parser.add_argument("--waits", default="500,250,100", help="fetch waits to compare, in ms")
    asyncio.run(main(parser.parse_args()))
