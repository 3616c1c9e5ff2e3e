"""Replay with switch-over: the running service rebuilds its projections into a new generation.

A live reporting service consumes a history (with a re-issued certificate, a merge and an
erasure). A rebuild fills generation 1 while generation 0 keeps answering, then the service
switches reads and its consumer over, without a restart. A second rebuild runs while events are
published: each appears exactly once. A third gives tables identical to the second. A second
replica of the service follows each switch-over by itself. Targets, set by hand, survive every
rebuild. On SQLite and PostgreSQL (the service's database).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from bekal.reporting import generations
from bekal.reporting.app import create_app
from bekal.reporting.generations import (
    PROJECTION_MODELS,
    drop_database,
    generation_location,
    generation_url,
)
from bekal.reporting.models import ProjectionGeneration
from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import CompetencyUnit, ParticipantEnrolled, Sex
from bekal.shared.events.envelope import to_kafka
from bekal.shared.events.topics import SOURCES
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
    TANGERANG,
    certificate_issued,
    certificate_reissued,
    certificate_superseded,
    facility_registered,
    facility_updated,
    inmate_erased,
    inmate_shared,
    inmates_merged,
    participant_completed,
    participant_enrolled,
    program_published,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

F1, P1, S1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PEOPLE = [uuid.uuid4() for _ in range(6)]
ENROLMENTS = [uuid.uuid4() for _ in range(6)]
CERTS = [uuid.uuid4() for _ in range(6)]
UNITS = [CompetencyUnit(code="U1", title="Unit")]


def history() -> list[Event]:
    facility = facility_registered(TANGERANG, facility_id=F1, name="LPP Tangerang")
    program = program_published(program_id=P1, title="Batik", partner=None, competency_units=UNITS)
    session = session_scheduled(
        program,
        facility,
        session_id=S1,
        start_date=date(2024, 9, 2),
        end_date=date(2024, 9, 6),
        capacity=30,
    )
    events: list[Event] = [
        facility,
        facility_updated(facility, name="LPP Kelas IIA Tangerang"),
        program,
        session,
    ]
    certificates = []
    for n, (person, enrolment, cert) in enumerate(zip(PEOPLE, ENROLMENTS, CERTS, strict=True)):
        enrolled = participant_enrolled(
            session, person, enrollment_id=enrolment, enrolled_on=date(2024, 8, 30)
        )
        done = participant_completed(
            enrolled,
            program,
            participant_name="Nama",
            program_code="WUB",
            start_date=date(2024, 9, 2),
            end_date=date(2024, 9, 6),
        )
        certificates.append(
            certificate_issued(
                done, certificate_id=cert, number=f"IKMA/2024/{n:06d}", issued_on=date(2024, 9, 9)
            )
        )
        events += [
            inmate_shared(
                participant_id=person,
                full_name="Nama",
                sex=Sex.FEMALE,
                birth_year=1990 + n,
                facility_id=F1,
                admission_date=date(2023, 1, 1),
                expected_release_date=None,
            ),
            enrolled,
            done,
            certificates[-1],
        ]
    reissued = certificate_reissued(
        certificates[0], number="IKMA/2024/000100", issued_on=date(2024, 9, 20)
    )
    events += [
        reissued,
        certificate_superseded(certificates[0], reissued),
        inmates_merged(PEOPLE[1], PEOPLE[2], merged_on=date(2024, 10, 1)),
        inmate_erased(PEOPLE[3]),
    ]
    return events


async def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection row, in primary-key order, as plain values."""
    db = Database(url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        async with db.session() as s:
            for model in PROJECTION_MODELS:
                table: Any = model.__table__
                rows = (
                    await s.execute(select(*table.columns).order_by(*table.primary_key.columns))
                ).all()
                out[table.name] = [tuple(r) for r in rows]
        return out
    finally:
        await db.dispose()


def _same(one: dict[str, list[tuple[Any, ...]]], two: dict[str, list[tuple[Any, ...]]]) -> None:
    """Identical tables; otherwise say which rows differ."""
    for table in one:
        only_one = set(one[table]) - set(two[table])
        only_two = set(two[table]) - set(one[table])
        assert one[table] == two[table], (
            table,
            sorted(map(str, only_one)),
            sorted(map(str, only_two)),
        )


async def _applied(db: Database, n: int) -> None:
    async def done() -> bool:
        return await count(db, InboxMessage) >= n

    await wait_until(done, within=60, what=f"{n} events applied")


async def _status(client: httpx.AsyncClient, operator: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/v1/admin/projections", headers=operator)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _switched(client: httpx.AsyncClient, operator: dict[str, str], number: int) -> None:
    async def done() -> bool:
        status = await _status(client, operator)
        generation = next(g for g in status["data"] if g["number"] == number)
        assert generation["status"] != "failed", generation["error"]
        return bool(status["live"] == number)

    await wait_until(done, within=120, what=f"generation {number} live")


def _late_enrolment() -> ParticipantEnrolled:
    return participant_enrolled(S1, enrolled_on=date(2024, 9, 1))


async def test_rebuild_switches_the_running_service_over_without_losing_or_doubling_an_event(
    database_url: str, broker, make_settings
):
    settings = make_settings("reporting", database_url, broker)
    events = history()
    app = create_app(settings)
    # A second replica, in the same consumer group: it follows each switch-over by itself.
    other = create_app(settings)
    try:
        async with running(app) as client, running(other) as other_client:
            admin = bearer(settings, ministry="industry", roles=["training_admin"])
            operator = bearer(settings, ministry="industry", roles=["operator"])
            await publish(settings, events)
            await _applied(app.state.db, len(events))
            response = await client.put("/api/v1/targets/2024", headers=admin, json={"annual": 12})
            assert response.status_code == 200
            params = {"group_by": "sex"}
            before = (await client.get("/api/v1/indicators", headers=admin, params=params)).json()
            assert before["totals"]["enrolled"] == 6 and before["totals"]["certified"] == 6

            # Rebuild 1: generation 0 answers, with the same numbers, until the switch-over.
            response = await client.post("/api/v1/admin/projections/rebuild", headers=operator)
            assert response.status_code == 202
            assert response.json()["live"] == 0 and response.json()["building"] == 1
            again = await client.post("/api/v1/admin/projections/rebuild", headers=operator)
            assert again.status_code == 409
            assert again.json()["type"].endswith("rebuild-running")
            seen: list[tuple[int, dict[str, Any]]] = []
            while (status := await _status(client, operator))["building"] is not None:
                assert status["live"] == 0
                response = await client.get("/api/v1/indicators", headers=admin, params=params)
                seen.append((response.status_code, response.json()))
            assert all(s == (200, before) for s in seen)
            await _switched(client, operator, 1)
            gen1 = next(g for g in status["data"] if g["number"] == 1)
            assert gen1["records_done"] == gen1["records_total"] == len(events)
            assert app.state.projections.live.number == 1
            url1 = generation_url(database_url, generation_location(database_url, 1))
            _same(await dump(url1), await dump(database_url))

            # Reads now come from generation 1: emptying generation 0 changes no number.
            response = await client.delete("/api/v1/admin/projections/0", headers=operator)
            assert response.status_code == 200 and response.json()["status"] == "dropped"
            assert (await dump(database_url))["enrollments"] == []
            after = (await client.get("/api/v1/indicators", headers=admin, params=params)).json()
            assert after == before
            live = await client.delete("/api/v1/admin/projections/1", headers=operator)
            assert live.status_code == 409

            # Rebuild 2 while events are published: each appears exactly once in generation 2.
            response = await client.post("/api/v1/admin/projections/rebuild", headers=operator)
            assert response.status_code == 202
            late: list[Event] = []
            while (await _status(client, operator))["building"] is not None:
                late.append(_late_enrolment())
                await publish(settings, late[-1:])
            assert late, "no event was published while generation 2 was being built"
            await _switched(client, operator, 2)
            late.append(_late_enrolment())  # and one after the switch-over
            await publish(settings, late[-1:])
            gen2 = app.state.projections.live.db
            await _applied(gen2, len(events) + len(late))
            body = (await client.get("/api/v1/indicators", headers=admin)).json()
            assert body["totals"]["enrolled"] == 6 + len(late)
            await asyncio.sleep(0.5)  # a second look: nothing more was applied after that
            assert await count(gen2, InboxMessage) == len(events) + len(late)
            url2 = generation_url(database_url, generation_location(database_url, 2))
            assert len((await dump(url2))["enrollments"]) == 6 + len(late)

            # Rebuild 3 gives exactly generation 2's tables.
            response = await client.post("/api/v1/admin/projections/rebuild", headers=operator)
            assert response.status_code == 202
            await _switched(client, operator, 3)
            url3 = generation_url(database_url, generation_location(database_url, 3))
            _same(await dump(url3), await dump(url2))
            # The erased person is anonymous in the rebuild too (one anonymous row); the merged
            # one is filed under P3.
            three = await dump(url3)
            assert str(PEOPLE[3]) not in repr(three["enrollments"] + three["participants"])
            assert len(three["participants"]) == 5

            # Targets are not projections: every rebuild kept them, and their edit is audited.
            targets = (await client.get("/api/v1/targets", headers=admin)).json()["data"]
            assert [(t["year"], t["annual"], t["cumulative"]) for t in targets] == [
                (2017, 5000, None),
                (2019, None, 20000),
                (2024, 12, None),
            ]
            progress = (await client.get("/api/v1/targets/progress", headers=admin)).json()
            assert next(r for r in progress["data"] if r["year"] == 2024)["target_annual"] == 12

            async def followed() -> bool:
                return bool(other.state.projections.live.number == 3)

            await wait_until(followed, within=30, what="the other replica on generation 3")
            for c in (client, other_client):
                body = (await c.get("/api/v1/indicators", headers=admin, params=params)).json()
                assert body["totals"]["enrolled"] == 6 + len(late)
            status = await _status(client, operator)
            assert [g["status"] for g in status["data"]] == [
                "dropped",
                "retired",
                "retired",
                "live",
            ]

            # A rebuild whose replica crashed stays "building": none starts on any replica
            # until the operator drops it.
            async with app.state.db.session() as s:
                s.add(ProjectionGeneration(number=9, location="crashed", status="building"))
                await s.commit()
            response = await other_client.post(
                "/api/v1/admin/projections/rebuild", headers=operator
            )
            assert response.status_code == 409
            response = await client.delete("/api/v1/admin/projections/9", headers=operator)
            assert response.status_code == 200 and response.json()["status"] == "dropped"

            # An erasure after the switch-overs reaches the retired generations too.
            await publish(settings, [inmate_erased(PEOPLE[4])])
            url1 = generation_url(database_url, generation_location(database_url, 1))

            async def erased_everywhere() -> bool:
                for url in (url1, url2, url3):
                    people = (await dump(url))["participants"]
                    if str(PEOPLE[4]) in repr(people):
                        return False
                return True

            await wait_until(erased_everywhere, within=60, what="erased in retired generations")

        # Restarted, the service reads the live generation named in its control table, whether
        # or not its consumer has joined the group yet. (On the embedded broker a group whose
        # two members left one after the other may keep a new member rejoining without an
        # assignment for minutes; reads do not wait for it.)
        restarted = create_app(settings)
        async with running(restarted, consuming=False) as client:
            assert restarted.state.projections.live.number == 3
            body = (await client.get("/api/v1/indicators", headers=admin)).json()
            assert body["totals"]["enrolled"] == 6 + len(late)
    finally:
        for n in (1, 2, 3):
            await drop_database(database_url, generation_location(database_url, n))


async def test_a_partition_that_moves_before_its_replica_follows_the_switch_over_loses_nothing(
    database_url: str, broker: Any, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One replica switches over to generation 1; the other, until it follows, applies what
    its partitions receive to generation 0 and commits past it. If that replica stops (a
    rolling update, a missed heartbeat) before it follows, its partitions move to the replica
    already on generation 1, which must not start from offsets committed for generation 0:
    everything after the switch-over reaches generation 1, whoever read it first."""
    monkeypatch.setattr(generations, "WATCH_SECONDS", 3600.0)  # the other never follows
    settings = make_settings("reporting", database_url, broker)
    events = history()
    app, other = create_app(settings), create_app(settings)
    late = [_late_enrolment() for _ in range(24)]
    try:
        async with running(app) as client:
            operator = bearer(settings, ministry="industry", roles=["operator"])
            async with running(other):
                topic = settings.topic(ParticipantEnrolled.topic)

                async def both_read_enrolments() -> bool:
                    return all(
                        any(
                            tp.topic == topic
                            for tp in a.state.messaging.runner.consumer.assignment()
                        )
                        for a in (app, other)
                    )

                await wait_until(both_read_enrolments, within=60, what="a partition each")
                await publish(settings, events)
                await _applied(app.state.db, len(events))
                response = await client.post("/api/v1/admin/projections/rebuild", headers=operator)
                assert response.status_code == 202
                await _switched(client, operator, 1)
                await publish(settings, late)
                gen0, gen1 = app.state.db, app.state.projections.live.db

                async def all_read() -> bool:
                    return await count(gen0, InboxMessage) + await count(gen1, InboxMessage) >= (
                        2 * len(events) + len(late)
                    )

                await wait_until(all_read, within=60, what="the late events read by either")
                assert await count(gen0, InboxMessage) > len(events), "the other read none"
                assert other.state.projections.live.number == 0
            # The other replica has gone: its partitions are this one's now.
            await _applied(gen1, len(events) + len(late))
            admin = bearer(settings, ministry="industry", roles=["training_admin"])
            body = (await client.get("/api/v1/indicators", headers=admin)).json()
            assert body["totals"]["enrolled"] == 6 + len(late)
    finally:
        await drop_database(database_url, generation_location(database_url, 1))


async def test_a_rebuild_holds_every_event_of_a_large_batch_the_live_consumer_applied(
    broker: Any, make_settings: Any, tmp_path: Any
) -> None:
    """Many enrolments land in one partition in one producer batch, more than one fetch
    hands over; the live consumer applies and commits them all. A rebuild must hold them all
    too: on Tansu 0.6 the reported end of the partition is the batch's first offset + 1, and a
    replay that stopped there left most of the batch out of the new generation, which the live
    consumer, already past it, never re-read."""
    settings = make_settings("reporting", f"sqlite+aiosqlite:///{tmp_path}/reporting.db", broker)
    app = create_app(settings)
    n = 1200
    enrolments = [participant_enrolled(S1, enrolled_on=date(2024, 9, 1)) for _ in range(n)]
    async with running(app) as client:
        operator = bearer(settings, ministry="industry", roles=["operator"])
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=broker.idempotent,
            linger_ms=200,
            max_batch_size=4 * 1024 * 1024,
            max_request_size=8 * 1024 * 1024,
        )
        await producer.start()
        try:
            topic = settings.topic(ParticipantEnrolled.topic)
            acks = []
            for event in enrolments:
                key, value, headers = to_kafka(event, source=SOURCES["training"])
                acks.append(
                    await producer.send(topic, key=key, value=value, headers=headers, partition=0)
                )
            await asyncio.gather(*acks)
        finally:
            await producer.stop()
        await _applied(app.state.db, n)
        response = await client.post("/api/v1/admin/projections/rebuild", headers=operator)
        assert response.status_code == 202
        await _switched(client, operator, 1)
        assert await count(app.state.projections.live.db, InboxMessage) == n
