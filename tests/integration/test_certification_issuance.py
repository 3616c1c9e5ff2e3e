"""Issuing certificates from real ParticipantCompleted events: exactly one per enrollment.

Redelivery (same event id), re-publication (new event id) and concurrent delivery all end
with one certificate, one number drawn and one CertificateIssued on the topic.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from datetime import date

import pytest
from sqlalchemy import select

from bekal.certification.app import create_app
from bekal.certification.models import (
    Certificate,
    CertificateCounter,
    ErasedCertificate,
    ErasedParticipant,
    StatusEntry,
)
from bekal.certification.services.issuing import issue_certificate
from bekal.certification.services.keys import Issuer
from bekal.certification.settings import CertificationSettings
from bekal.certification.signing import CertificateSigner
from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import ParticipantCompleted
from bekal.shared.events.envelope import to_kafka
from bekal.shared.events.topics import SOURCES
from bekal.shared.messaging.consumer import StoredRecord
from bekal.shared.messaging.models import DeadLetter, InboxMessage, OutboxMessage
from bekal.shared.migrations import upgrade
from tests.support.apps import published, running
from tests.support.certification import certification_settings
from tests.support.db import count
from tests.support.factories import (
    inmate_consent_withdrawn,
    inmate_erased,
    inmates_merged,
    participant_completed,
)
from tests.support.kafka import person_key_published, publish, seal_as_published
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

TRAINING_SOURCE = SOURCES["training"]
PUBLIC_BASE_URL = "https://sertifikat.example.id"


def as_record(
    settings: CertificationSettings, event: Event, event_id: str, offset: int
) -> StoredRecord:
    event = seal_as_published(event, event_id)
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
    first = participant_completed(participant_name="Siti Rahmawati")
    second = participant_completed(session_id=first.session_id, participant_name="Dewi Lestari")
    same_id = str(uuid.uuid4())

    app = create_app(settings)
    async with running(app):
        db: Database = app.state.db
        # Redelivered three times under one id, then re-published under a new id; and one other.
        await publish(
            settings,
            [first] * 3 + [first, second],
            event_ids=[same_id] * 3 + [str(uuid.uuid4()), str(uuid.uuid4())],
        )
        await wait_until(lambda: _equals(count(db, InboxMessage), 3))  # same_id once + 2 new ids
        assert await count(db, Certificate) == 2

        # Two deliveries of a third completion at the same moment (different ids), plus the
        # first of them again, straight through the consumer's own processing path.
        third = participant_completed(session_id=first.session_id, participant_name="Rina Wati")
        await person_key_published(settings, third.participant_id)
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
        records = await published(app, "certification.certificates", at_least=3)

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
    issuer = Issuer(
        signer=CertificateSigner.from_key_file(tmp_path / "certificate.pem"),
        public_base_url=PUBLIC_BASE_URL,
    )
    event = participant_completed()

    async def issue_in_own_transaction(
        e: ParticipantCompleted, event_id: str
    ) -> tuple[Certificate, bool]:
        async with db.session() as s:
            result = await issue_certificate(session=s, event=e, event_id=event_id, issuer=issuer)
            await s.commit()
            return result

    try:
        async with db.session() as a:
            cert_a, issued_a = await issue_certificate(
                session=a, event=event, event_id="e-1", issuer=issuer
            )
            b = asyncio.create_task(issue_in_own_transaction(event, "e-2"))
            await asyncio.sleep(0.5)
            # B waits on A's locks (PostgreSQL: the counter row; SQLite: the write lock).
            assert not b.done()
            await a.commit()
        cert_b, issued_b = await asyncio.wait_for(b, timeout=30)

        assert issued_a and not issued_b
        assert cert_b.id == cert_a.id and cert_b.number == "IKMA/2024/000001"
        nxt, _ = await issue_in_own_transaction(participant_completed(), "e-3")
        assert nxt.number == "IKMA/2024/000002"
        assert await count(db, Certificate) == 2
        assert await count(db, OutboxMessage) == 2  # one CertificateIssued each, none for B
        assert await count(db, StatusEntry) == 2  # B's status list place went back too
    finally:
        await db.dispose()


async def test_numbers_restart_each_year_by_the_course_end_date(database_url, tmp_path):
    await asyncio.to_thread(upgrade, "bekal.certification", database_url)
    db = Database(database_url)
    issuer = Issuer(
        signer=CertificateSigner.from_key_file(tmp_path / "certificate.pem"),
        public_base_url=PUBLIC_BASE_URL,
    )
    numbers = []
    try:
        for end in (date(2023, 7, 22), date(2024, 9, 7), date(2023, 12, 31), date(2024, 1, 5)):
            async with db.session() as s:
                cert, _ = await issue_certificate(
                    session=s,
                    event=participant_completed(end_date=end),
                    event_id=str(uuid.uuid4()),
                    issuer=issuer,
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


async def test_registry_erasure_and_merge_reach_the_certificates(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    erased, withdrawn, merged = (
        participant_completed(participant_name=n) for n in ("Ani", "Budi", "Citra")
    )
    survivor = uuid.uuid4()

    app = create_app(settings)
    async with running(app):
        db: Database = app.state.db
        await publish(settings, [erased, withdrawn, merged])
        await wait_until(lambda: _equals(count(db, Certificate), 3))
        # A completion of the person that had been dead-lettered: its name goes too.
        async with db.session() as s:
            for who in (erased, merged):
                s.add(
                    DeadLetter(
                        consumer_group="certification",
                        topic="training.enrollments",
                        partition=0,
                        offset=1,
                        key=str(who.enrollment_id),
                        headers="{}",
                        # A version 1 completion: its name in the clear.
                        value=json.dumps(
                            {
                                **who.model_dump(mode="json"),
                                "participant_name": who.participant_name,
                            }
                        ),
                        event_id=str(uuid.uuid4()),
                        event_type="enrollment.completed",
                        reason="handler_failed",
                        error="test",
                        attempts=1,
                    )
                )
            # A record that did not parse names the person only in its headers (and the one
            # withdrawing consent only in its key).
            for key, headers in (
                (None, {"ce_subject": str(erased.participant_id)}),
                (str(withdrawn.participant_id), {}),
            ):
                s.add(
                    DeadLetter(
                        consumer_group="certification",
                        topic="training.enrollments",
                        partition=0,
                        offset=2,
                        key=key,
                        headers=json.dumps(headers),
                        value="{not json",
                        event_id=str(uuid.uuid4()),
                        event_type=None,
                        reason="malformed",
                        error="test",
                        attempts=1,
                    )
                )
            await s.commit()
        await publish(
            settings,
            [
                inmate_erased(erased.participant_id),
                inmate_consent_withdrawn(withdrawn.participant_id, withdrawn_on=date(2024, 10, 1)),
                inmates_merged(merged.participant_id, survivor, merged_on=date(2024, 10, 2)),
                # Delivered again: nothing more happens.
                inmate_erased(erased.participant_id),
            ],
        )
        await wait_until(lambda: _equals(count(db, InboxMessage), 7))
        # The erased person's completion delivered again, late, under a new id: nothing comes
        # back (the certificate row is gone, so only the erasure's record can stop it).
        await publish(settings, [erased])
        await wait_until(lambda: _equals(count(db, InboxMessage), 8))
        async with db.session() as s:
            left = (await s.scalars(select(Certificate))).all()
            kept = (await s.scalars(select(ErasedCertificate))).all()
            erased_ids = list(await s.scalars(select(ErasedParticipant.participant_id)))
            dead = list(await s.scalars(select(DeadLetter.value)))
        assert len(dead) == 1 and "Citra" in dead[0]  # only the erased person's went

    assert [(c.recipient_name, c.participant_id) for c in left] == [("Citra", survivor)]
    assert len(kept) == 2 and all(k.content_hash.startswith("sha256:") for k in kept)
    assert erased_ids == [erased.participant_id]  # a consent withdrawal is not final
    assert all(k.status == "valid" for k in kept)
