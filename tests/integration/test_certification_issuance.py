"""Issuing certificates from real ParticipantCompleted events: exactly one per enrollment.

Redelivery (same event id), re-publication (new event id) and concurrent delivery all end
with one certificate, one number drawn and one CertificateIssued on the topic.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select

from bekal.certification.app import create_app
from bekal.certification.models import Certificate, CertificateCounter
from bekal.certification.services import issue_certificate
from bekal.certification.settings import CertificationSettings
from bekal.certification.signing import CertificateSigner
from bekal.shared.broker import EmbeddedBroker
from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import CompetencyUnit, ParticipantCompleted
from bekal.shared.events.envelope import to_kafka
from bekal.shared.messaging.consumer import StoredRecord
from bekal.shared.messaging.kafka import make_producer
from bekal.shared.messaging.models import DeadLetter, InboxMessage, OutboxMessage
from bekal.shared.migrations import upgrade
from bekal.shared.settings import Settings

pytestmark = pytest.mark.integration

TRAINING_SOURCE = "/industry/training"


def completed(
    *,
    session_id: uuid.UUID | None = None,
    name: str = "Siti Rahmawati",
    end_date: date = date(2024, 9, 7),
) -> ParticipantCompleted:
    return ParticipantCompleted(
        enrollment_id=uuid.uuid4(),
        session_id=session_id or uuid.uuid4(),
        participant_id=uuid.uuid4(),
        participant_name=name,
        program_id=uuid.uuid4(),
        program_code="WUB-BATIK",
        program_title="Bimtek Wirausaha Baru IKM Batik",
        sector="batik",
        partner="Yayasan Batik Indonesia",
        competency_units=[
            CompetencyUnit(code="BTK.01", title="Membatik tulis"),
            CompetencyUnit(code="BTK.02", title="Membatik cap"),
        ],
        hours=40,
        start_date=end_date - timedelta(days=4),
        end_date=end_date,
        attendance_share=1.0,
    )


def certification_settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    broker: EmbeddedBroker,
    tmp_path: Path,
    **overrides: object,
) -> CertificationSettings:
    base = make_settings(
        "certification",
        database_url,
        broker,
        kafka_namespace=f"t{uuid.uuid4().hex[:8]}.",
        **overrides,
    )
    return CertificationSettings(
        **base.model_dump(), certificate_signing_key_file=tmp_path / "keys" / "certificate.pem"
    )


@asynccontextmanager
async def running(
    settings: CertificationSettings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app):
        await asyncio.wait_for(app.state.messaging.ready.wait(), timeout=60)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            yield app, client


async def publish(settings: CertificationSettings, events: list[tuple[Event, str]]) -> None:
    """Publish as the training service would: CloudEvents binary mode, keyed by the enrollment."""
    producer = make_producer(settings)
    await producer.start()
    try:
        for event, event_id in events:
            key, value, headers = to_kafka(event, source=TRAINING_SOURCE, event_id=event_id)
            await producer.send_and_wait(
                settings.topic(event.topic), key=key, value=value, headers=headers
            )
    finally:
        await producer.stop()


async def read_topic(
    settings: CertificationSettings,
    topic: str,
    *,
    at_least: int,
    settle: float = 2.0,
    within: float = 30.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic: waits for ``at_least``, then a little longer for any extra."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"check-{uuid.uuid4()}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    settled_at: float | None = None
    try:
        while loop.time() < deadline:
            got = await consumer.getmany(timeout_ms=300)
            records += [r for rs in got.values() for r in rs]
            if len(records) >= at_least:
                settled_at = settled_at or loop.time() + settle
                if loop.time() >= settled_at:
                    break
    finally:
        await consumer.stop()
    return records


async def count(db: Database, model: type) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def wait_for(predicate: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def as_record(
    settings: CertificationSettings, event: Event, event_id: str, offset: int
) -> StoredRecord:
    key, value, headers = to_kafka(event, source=TRAINING_SOURCE, event_id=event_id)
    return StoredRecord(
        topic=settings.topic(event.topic),
        partition=0,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
    )


async def test_each_enrollment_gets_exactly_one_certificate_however_often_its_completion_arrives(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    first = completed(name="Siti Rahmawati")
    second = completed(session_id=first.session_id, name="Dewi Lestari")
    same_id = str(uuid.uuid4())

    async with running(settings) as (app, _client):
        db: Database = app.state.db
        # Redelivered three times under one id, then re-published under a new id; and one other.
        await publish(
            settings,
            [(first, same_id)] * 3 + [(first, str(uuid.uuid4())), (second, str(uuid.uuid4()))],
        )
        await wait_for(lambda: _equals(count(db, InboxMessage), 3))  # same_id once + 2 new ids
        assert await count(db, Certificate) == 2

        # Two deliveries of a third completion at the same moment (different ids), plus the
        # first of them again, straight through the consumer's own processing path.
        third = completed(session_id=first.session_id, name="Rina Wati")
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        outcomes = await asyncio.gather(
            *(
                app.state.messaging.runner.process(as_record(settings, third, event_id, offset))
                for offset, event_id in enumerate([a, b, a], start=10_000)
            )
        )
        assert sorted(outcomes) == ["duplicate", "handled", "handled"]

        async with db.session() as s:
            certificates = (await s.scalars(select(Certificate))).all()
            counter = await s.get(CertificateCounter, 2024)
        assert await count(db, DeadLetter) == 0
        records = await read_topic(settings, "certification.certificates", at_least=3)

    by_enrollment = {c.enrollment_id: c for c in certificates}
    assert len(certificates) == 3
    assert set(by_enrollment) == {first.enrollment_id, second.enrollment_id, third.enrollment_id}
    # Sequential, no number lost to the duplicates or the race.
    assert sorted(c.number for c in certificates) == [
        "IKMA/2024/000001",
        "IKMA/2024/000002",
        "IKMA/2024/000003",
    ]
    assert counter is not None and counter.last_number == 3
    assert by_enrollment[third.enrollment_id].recipient_name == "Rina Wati"

    assert len(records) == 3, [dict(r.headers)["ce_id"] for r in records]
    assert {dict(r.headers)["ce_type"] for r in records} == {
        b"id.bekal.certification.certificate.issued.v1"
    }
    payloads = [json.loads(r.value) for r in records]
    assert sorted(p["enrollment_id"] for p in payloads) == sorted(str(e) for e in by_enrollment)
    for p, r in zip(payloads, records, strict=True):
        cert = by_enrollment[uuid.UUID(p["enrollment_id"])]
        assert r.key == str(cert.id).encode()
        assert p["number"] == cert.number and p["certificate_id"] == str(cert.id)
        assert p["participant_id"] == str(cert.participant_id)
        assert p["session_id"] == str(first.session_id)
        assert p["issued_on"] == cert.issued_on.isoformat()


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_racing_issue_for_the_same_enrollment_returns_the_first_and_loses_no_number(
    database_url, tmp_path
):
    """The unique constraint's race, made deterministic: B starts while A is uncommitted."""
    await asyncio.to_thread(upgrade, "bekal.certification", database_url)
    db = Database(database_url)
    signer = CertificateSigner.from_key_file(tmp_path / "certificate.pem")
    event = completed()

    async def issue_in_own_transaction(
        e: ParticipantCompleted, event_id: str
    ) -> tuple[Certificate, bool]:
        async with db.session() as s:
            result = await issue_certificate(s, event=e, event_id=event_id, signer=signer)
            await s.commit()
            return result

    try:
        async with db.session() as a:
            cert_a, issued_a = await issue_certificate(
                a, event=event, event_id="e-1", signer=signer
            )
            b = asyncio.create_task(issue_in_own_transaction(event, "e-2"))
            await asyncio.sleep(0.5)
            # B waits on A's locks (PostgreSQL: the counter row; SQLite: the write lock).
            assert not b.done()
            await a.commit()
        cert_b, issued_b = await asyncio.wait_for(b, timeout=30)

        assert issued_a and not issued_b
        assert cert_b.id == cert_a.id and cert_b.number == "IKMA/2024/000001"
        nxt, _ = await issue_in_own_transaction(completed(), "e-3")
        assert nxt.number == "IKMA/2024/000002"
        assert await count(db, Certificate) == 2
        assert await count(db, OutboxMessage) == 2  # one CertificateIssued each, none for B
    finally:
        await db.dispose()


async def test_numbers_restart_each_year_by_the_course_end_date(database_url, tmp_path):
    await asyncio.to_thread(upgrade, "bekal.certification", database_url)
    db = Database(database_url)
    signer = CertificateSigner.from_key_file(tmp_path / "certificate.pem")
    numbers = []
    try:
        for end in (date(2023, 7, 22), date(2024, 9, 7), date(2023, 12, 31), date(2024, 1, 5)):
            async with db.session() as s:
                cert, _ = await issue_certificate(
                    s, event=completed(end_date=end), event_id=str(uuid.uuid4()), signer=signer
                )
                await s.commit()
                numbers.append(cert.number)
    finally:
        await db.dispose()
    assert numbers == [
        "IKMA/2023/000001",
        "IKMA/2024/000001",
        "IKMA/2023/000002",
        "IKMA/2024/000002",
    ]
