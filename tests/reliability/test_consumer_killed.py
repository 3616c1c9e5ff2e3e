"""A consumer process killed with SIGKILL mid-stream and restarted applies every event once.

Training runs as its own process on a real database and reads a live stream of at least 10,000
``inmate.shared`` events into its replica; it is killed three times (after 2,000, 5,000 and
8,000 effects, the stream still flowing) with no
chance to shut down, each time while it holds records whose effect it has not committed, and
started again. Effects are counted in the consumer journal (``CONSUMER_JOURNAL=true``), where an
event applied twice would show as two ``applied`` rows: the replica and the inbox are keyed by
the event and could never hold the double.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from bekal.devtools.broker import EmbeddedBroker
from bekal.shared.events.catalogue import InmateShared
from bekal.shared.settings import Settings
from tests.support.faults import (
    applied_events,
    delivered_again_after,
    frozen_holding,
    holding,
    journal,
    recovery_seconds,
    wait_committed_to_log_end,
)
from tests.support.processes import ServiceProcess, metric
from tests.support.sql import query
from tests.support.streams import StreamProducer, shared_inmate
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

EVENTS = 10_000
KILL_AT = (0.2, 0.5, 0.8)


@dataclass
class Kill:
    pid: int
    at: int  # effects when it was killed
    held: int  # records it had taken up and not applied: they must come again
    ready: float  # seconds from the restart to ready
    resumed: float  # seconds from the kill to effects flowing again
    again: int = 0  # of its records, delivered again after it (counted at the end)


async def _produce(
    stream: StreamProducer, facility: uuid.UUID, ids: list[uuid.UUID], kills_done: asyncio.Event
) -> None:
    """A live stream, about 1,250 events a second, that goes on until the kills are over and
    at least EVENTS are sent: events keep coming while the consumer is killed and restarted,
    and it always has records arriving to be killed in the middle of. ``ids`` grows with it."""
    chunk = 250
    while not (kills_done.is_set() and len(ids) >= EVENTS):
        start = len(ids)
        ids.extend(uuid.uuid4() for _ in range(chunk))
        await stream.send(
            [
                shared_inmate(i, facility_id=facility, participant_id=ids[i])
                for i in range(start, start + chunk)
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
    training = services("training", database_url=url, broker=broker, CONSUMER_JOURNAL="true")
    await training.wait_ready()
    settings = client_settings(broker)
    facility = uuid.uuid4()
    ids: list[uuid.UUID] = []  # filled by the stream

    async def effects() -> int:
        return await applied_events(url)

    started = time.monotonic()
    kills: list[Kill] = []
    async with StreamProducer(settings) as stream:
        kills_done = asyncio.Event()
        producing = asyncio.create_task(_produce(stream, facility, ids, kills_done))
        for share in KILL_AT:
            await wait_until(
                lambda s=share: _at_least(effects, int(EVENTS * s)),  # type: ignore[misc]
                within=300,
                what=f"{share:.0%} of the effects",
            )
            # Killed while it holds records whose effect is not committed: they must come again.
            pid = training.pid
            await wait_until(lambda: frozen_holding(training, url), within=120, what="records held")
            training.kill()
            held = await holding(url, pid)  # what it held when it died
            at_kill = await effects()
            killed = time.monotonic()
            training.start()
            ready = await training.wait_ready()
            await recovery_seconds(effects, at_kill, within=120)
            kills.append(Kill(pid, at_kill, held, ready, time.monotonic() - killed))
        kills_done.set()
        await producing
    total = len(ids)
    await wait_until(lambda: _at_least(effects, total), within=300, what="every effect")
    await wait_committed_to_log_end(settings, "training", [InmateShared.topic])
    elapsed = time.monotonic() - started

    j = await journal(url)
    for kill in kills:
        kill.again = await delivered_again_after(url, kill.pid)
    rows = await query(url, "SELECT id, full_name FROM participants")
    names = {str(r[0]): r[1] for r in rows}
    expected = {str(p): f"Peserta Uji {i:06d}" for i, p in enumerate(ids)}
    lost = sum(1 for p in expected if p not in names)
    wrong = sum(1 for p, name in expected.items() if names.get(p) not in (None, name))
    async with httpx.AsyncClient() as http:
        metrics_text = (await http.get(training.url + "/metrics")).text
    dropped = metric(metrics_text, "bekal_events_consumed_total", outcome="duplicate")
    print(
        f"\n[consumer SIGKILL x{len(kills)}] events sent {total}, effects counted {j.applied} "
        f"({j.applied_events} events; participants {len(rows)}), lost {lost}, doubled "
        f"{j.doubled}, wrong content {wrong}, delivered again {j.redelivered} (dropped as "
        f"duplicates after the last restart {dropped:.0f}), total {elapsed:.1f} s"
    )
    for n, k in enumerate(kills, 1):
        print(
            f"  kill {n} at {k.at} effects ({k.at / total:.0%}), holding {k.held} records "
            f"not applied, {k.again} of its records delivered again: ready again after "
            f"{k.ready:.1f} s, applying again {k.resumed:.1f} s after the kill"
        )
    assert len(kills) == len(KILL_AT)
    assert all(k.at < total for k in kills)  # every kill mid-stream
    # The kills forced records to be delivered again: at least those each victim held.
    assert sum(k.held for k in kills) > 0
    assert all(k.again >= k.held for k in kills)
    assert j.redelivered >= sum(k.again for k in kills) > 0
    assert lost == 0
    assert len(rows) == total
    assert wrong == 0
    assert j.applied_events == j.delivered_events == total
    assert j.doubled == 0


async def _at_least(effects: Callable[[], Awaitable[int]], n: int) -> bool:
    return await effects() >= n
