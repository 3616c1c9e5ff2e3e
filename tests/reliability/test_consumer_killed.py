"""A consumer process killed with SIGKILL mid-stream and restarted applies every event once.

Training runs as its own process on a real database and reads 10,000 ``inmate.shared`` events
into its replica; it is killed three times (at about 20 %, 50 % and 80 % of the stream) with no
chance to shut down, and started again each time. The effects are counted in its database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

from bekal.shared.broker import EmbeddedBroker
from bekal.shared.settings import Settings
from tests.support.processes import ServiceProcess, metric
from tests.support.sql import query, scalar
from tests.support.streams import StreamProducer, shared_inmate
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

EVENTS = 10_000
KILL_AT = (0.2, 0.5, 0.8)


async def _produce(stream: StreamProducer, facility: uuid.UUID, ids: list[uuid.UUID]) -> None:
    # A live stream: the events keep coming while the consumer is killed and restarted.
    chunk = 500
    for start in range(0, len(ids), chunk):
        await stream.send(
            [
                shared_inmate(i, facility_id=facility, participant_id=ids[i])
                for i in range(start, min(start + chunk, len(ids)))
            ]
        )
        await asyncio.sleep(0.2)


@pytest.mark.timeout(600)
async def test_consumer_killed_three_times_mid_stream_applies_every_event_exactly_once(
    new_database: Callable[[str], Awaitable[str]],
    broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
) -> None:
    url = await new_database("training")
    training = services("training", database_url=url, broker=broker)
    await training.wait_ready()
    facility = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(EVENTS)]

    async def effects() -> int:
        return int(await scalar(url, "SELECT count(*) FROM participants"))

    started = time.monotonic()
    kills: list[tuple[int, float, float]] = []  # effects at the kill, ready after, resumed after
    async with StreamProducer(client_settings(broker)) as stream:
        producing = asyncio.create_task(_produce(stream, facility, ids))
        for share in KILL_AT:
            await wait_until(
                lambda s=share: _at_least(effects, int(EVENTS * s)),  # type: ignore[misc]
                within=300,
                what=f"{share:.0%} of the effects",
            )
            training.kill()
            at_kill = await effects()
            killed = time.monotonic()
            training.start()
            ready = await training.wait_ready()
            await wait_until(lambda n=at_kill: _at_least(effects, n + 1), within=120)  # type: ignore[misc]
            kills.append((at_kill, ready, time.monotonic() - killed))
        await producing
        await wait_until(lambda: _at_least(effects, EVENTS), within=300, what="every effect")
    elapsed = time.monotonic() - started

    rows = await query(url, "SELECT id, full_name FROM participants")
    names = {str(r[0]): r[1] for r in rows}
    expected = {str(p): f"Peserta Uji {i:06d}" for i, p in enumerate(ids)}
    lost = sum(1 for p in expected if p not in names)
    wrong = sum(1 for p, name in expected.items() if names.get(p) not in (None, name))
    inbox = await query(
        url,
        "SELECT count(*), count(DISTINCT event_id) FROM inbox WHERE consumer_group = 'training'",
    )
    inbox_rows, inbox_distinct = inbox[0]
    async with httpx.AsyncClient() as http:
        metrics_text = (await http.get(training.url + "/metrics")).text
    redelivered = metric(metrics_text, "bekal_events_consumed_total", outcome="duplicate")
    print(
        f"\n[consumer SIGKILL x{len(kills)}] events sent {EVENTS}, effects counted {len(rows)}, "
        f"lost {lost}, doubled {len(rows) - (EVENTS - lost)}, wrong content {wrong}, "
        f"inbox rows {inbox_rows} ({inbox_distinct} distinct), "
        f"re-read after the last restart and dropped as duplicates {redelivered:.0f}, "
        f"total {elapsed:.1f} s"
    )
    for n, (at, ready, resumed) in enumerate(kills, 1):
        print(
            f"  kill {n} at {at} effects ({at / EVENTS:.0%}): ready again after {ready:.1f} s, "
            f"applying again {resumed:.1f} s after the kill"
        )
    assert len(kills) == len(KILL_AT)
    assert lost == 0
    assert len(rows) == EVENTS  # no effect for an event that was not sent, none twice
    assert wrong == 0
    assert inbox_rows == inbox_distinct == EVENTS


async def _at_least(effects: Callable[[], Awaitable[int]], n: int) -> bool:
    return await effects() >= n
