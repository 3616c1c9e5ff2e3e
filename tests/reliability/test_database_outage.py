"""The database away: requests answer 503 problem+json, the consumer commits no offset ahead of
its effects and resumes where it was; nothing is lost.

PostgreSQL is reached through a loopback proxy that the test cuts (existing connections reset,
new ones refused), while a consumer transaction waits inside on a table lock the test holds, so
the cut lands mid-stream whatever the consumer's speed. SQLite has no server to lose; its fair
equivalent is a write lock held by another process for longer than the service's lock timeout
(30 s), so that is what it gets.
Effects are counted in the consumer journal (``CONSUMER_JOURNAL=true``), where an event applied
twice would show as two ``applied`` rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from bekal.devtools.broker import EmbeddedBroker
from bekal.shared.auth import mint_token
from bekal.shared.events.catalogue import InmateShared
from bekal.shared.settings import Settings
from tests.support.faults import applied_events, journal, wait_committed_to_log_end
from tests.support.processes import ServiceProcess
from tests.support.sql import scalar
from tests.support.streams import StreamProducer, committed_total, shared_inmate
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# A first part applied before the outage, then the rest of BEFORE sent while the database is
# being taken away (in the consumer's hands at the cut), then DURING sent while it is away.
FIRST, BEFORE, DURING = 500, 1500, 1000
# Connections to this database other than the one asking.
OTHER_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
# Connections waiting for a lock on the training replica's table.
WAITING_ON_PARTICIPANTS = (
    "SELECT count(DISTINCT pid) FROM pg_locks "
    "WHERE NOT granted AND relation = 'participants'::regclass"
)


def _program(tag: str) -> dict[str, Any]:
    return {
        "code": f"WUB-LOGAM-{tag}",
        "title": "Penumbuhan WUB IKM Logam",
        "sector": "logam",
        "partner": "Balai Besar Logam",
        "days": 5,
        "hours": 40,
        "min_attendance_share": 0.8,
        "competency_units": [{"code": "LGM-01", "title": "Pengelasan dasar"}],
    }


class Outage:
    """What the test saw while the database was away."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, int, str, dict[str, Any]]] = []
        self.committed: list[int] = []

    async def ask(self, http: httpx.AsyncClient, method: str, path: str, **kw: Any) -> None:
        r = await http.request(method, path, **kw)
        body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
        self.answers.append((f"{method} {path}", r.status_code, r.headers["content-type"], body))


async def _run(
    *,
    training: ServiceProcess,
    settings: Settings,
    url: str,
    take_away: Callable[[Callable[[], Awaitable[object]]], Awaitable[None]],
    give_back: Callable[[], Awaitable[None]],
    hold: float,
    label: str,
) -> None:
    """``take_away(send)`` stops the consumer applying anything, calls ``send`` (the rest of
    the first part), and returns once nothing the service began can commit any more: whatever
    the consumer's speed, the outage lands with records fetched and not applied. ``url`` reaches
    the database directly, whatever the service sees."""

    async def effects() -> int:
        return await applied_events(url)

    token = mint_token(
        settings, subject="ikma-admin", ministry="industry", roles=["training_admin"]
    )
    facility = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(BEFORE + DURING)]
    events = [shared_inmate(i, facility_id=facility, participant_id=p) for i, p in enumerate(ids)]
    outage = Outage()
    async with (
        StreamProducer(settings) as stream,
        httpx.AsyncClient(
            base_url=training.url, headers={"Authorization": f"Bearer {token}"}, timeout=90
        ) as http,
    ):
        await stream.send(events[:FIRST])
        await wait_until(lambda: _reached(effects, FIRST), within=120, what="the first part")
        away = time.monotonic()
        await take_away(lambda: stream.send(events[FIRST:BEFORE]))
        at_cut = await effects()
        # The stream goes on while the database is away.
        await stream.send(events[BEFORE:])
        requests = asyncio.gather(
            outage.ask(http, "POST", "/api/v1/programs", json=_program(uuid.uuid4().hex[:6])),
            outage.ask(http, "GET", "/api/v1/participants"),
            outage.ask(http, "GET", "/readyz"),
        )
        while time.monotonic() - away < hold:  # the outage itself, sampled each second
            outage.committed.append(await committed_total(settings, "training", events[0].topic))
            await asyncio.sleep(1.0)
        await requests
        during = await effects()
        await give_back()
        back = time.monotonic()
        await wait_until(lambda: _reached(effects, len(ids)), within=180, what="every effect")
        recovery = time.monotonic() - back
        after = await http.post("/api/v1/programs", json=_program(uuid.uuid4().hex[:6]))
    # Offsets are committed after each batch's effects: wait for the last batch's commit.
    await wait_committed_to_log_end(settings, "training", [InmateShared.topic], within=60)
    final_commit = await committed_total(settings, "training", InmateShared.topic)
    j = await journal(url)
    participants = int(await scalar(url, "SELECT count(*) FROM participants"))
    print(
        f"\n[{label}] away {back - away:.1f} s; events sent {len(ids)} ({DURING} while away), "
        f"effects at the cut {at_cut}, effects while away {during - at_cut}, "
        f"committed offsets while away {min(outage.committed)}..{max(outage.committed)} "
        f"(never above the {at_cut} effects), answers while away "
        f"{[(what, status) for what, status, _, _ in outage.answers]}, "
        f"effects counted {j.applied} ({j.applied_events} events; participants "
        f"{participants}), lost {len(ids) - j.applied_events}, doubled {j.doubled}, delivered "
        f"again {j.redelivered}, recovery (back to every effect) {recovery:.1f} s, committed "
        f"at the end {final_commit}"
    )
    for what, status, content_type, body in outage.answers:
        if what.startswith("GET /readyz"):
            assert status == 503
            continue
        if status == 200:  # only a read may still work (SQLite: readers pass a write lock)
            assert what.startswith("GET"), what
            continue
        assert status == 503, (what, status, body)
        assert content_type == "application/problem+json"
        assert body["type"].endswith("/service-unavailable") and body["status"] == 503
    assert any(status == 503 for what, status, _, _ in outage.answers if "POST" in what)
    # The outage forces no redelivery: the consumer keeps the records it holds and retries
    # them until the database is back, committing no offset meanwhile. Printed, not asserted.
    assert during == at_cut  # nothing written while away
    assert at_cut == FIRST  # the outage hit with the rest of the first part in hand
    # An offset is committed only after the effects of every record before it.
    assert max(outage.committed) <= at_cut
    assert j.applied_events == participants == len(ids)
    assert j.doubled == 0
    assert final_commit == len(ids)
    assert after.status_code == 201, after.text


@pytest.mark.timeout(400)
@pytest.mark.parametrize("new_database", ["postgresql"], indirect=True)
async def test_postgresql_cut_off_answers_503_and_consumer_resumes_where_it_was(
    broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
    new_database: Callable[[str], Awaitable[str]],
) -> None:
    direct = await new_database("training")
    target = make_url(direct)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    via_proxy = target.set(port=proxy.port).render_as_string(hide_password=False)
    training = services("training", database_url=via_proxy, broker=broker, CONSUMER_JOURNAL="true")

    async def cut(send: Callable[[], Awaitable[object]]) -> None:
        # The replica's table locked from outside: the consumer's next transaction waits inside,
        # with its inbox rows written and uncommitted, when the cut comes.
        stall = await asyncpg.connect(target.set(drivername="postgresql").render_as_string(False))
        try:
            async with stall.transaction():
                await stall.execute("LOCK TABLE participants IN EXCLUSIVE MODE")
                await send()
                await wait_until(
                    lambda: _reached(lambda: scalar(direct, WAITING_ON_PARTICIPANTS), 1),
                    within=60,
                    what="the consumer waiting inside its transaction",
                )
                await proxy.cut()
        finally:
            await stall.close()
        # A backend waiting on a lock does not look at its client: let go, and the server drops
        # every connection the service had. The transaction waiting has rolled back (its commit
        # could not reach the server), and none can commit any more.
        await wait_until(
            lambda: _equals(scalar(direct, OTHER_BACKENDS), 0), within=30, what="backends gone"
        )

    try:
        await training.wait_ready()
        await _run(
            training=training,
            settings=client_settings(broker),
            url=direct,
            take_away=cut,
            give_back=proxy.restore,
            hold=12.0,
            label="PostgreSQL cut off",
        )
    finally:
        training.stop()
        await proxy.close()


@pytest.mark.timeout(400)
@pytest.mark.parametrize("new_database", ["sqlite"], indirect=True)
async def test_sqlite_locked_by_another_process_answers_503_and_consumer_resumes_where_it_was(
    broker: EmbeddedBroker,
    services: Callable[..., ServiceProcess],
    client_settings: Callable[[EmbeddedBroker], Settings],
    new_database: Callable[[str], Awaitable[str]],
) -> None:
    url = await new_database("training")
    training = services("training", database_url=url, broker=broker, CONSUMER_JOURNAL="true")
    await training.wait_ready()
    path = make_url(url).database
    assert path
    # No busy timeout of its own: SQLite's busy handler backs off up to 100 ms between tries, so
    # a consumer still writing (a commit of the first part's last batch) could keep the lock from
    # it; asking again at once takes it between the consumer's transactions.
    holder = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)

    def take_lock() -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                holder.execute("BEGIN EXCLUSIVE")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    async def lock(send: Callable[[], Awaitable[object]]) -> None:
        # Granted once no other writer holds the database: none can commit after it. What is
        # sent then reaches a consumer that cannot write.
        await asyncio.to_thread(take_lock)
        await send()

    async def unlock() -> None:
        await asyncio.to_thread(holder.execute, "ROLLBACK")

    try:
        await _run(
            training=training,
            settings=client_settings(broker),
            url=url,
            take_away=lock,
            give_back=unlock,
            hold=36.0,  # longer than the service waits for the lock (30 s)
            label="SQLite locked by another process",
        )
    finally:
        holder.close()


async def _reached(effects: Callable[[], Awaitable[int]], n: int) -> bool:
    return await effects() >= n


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected
