"""Certificates issued a batch at a time: the same certificates as one completion at a time.

The consumer hands consecutive ``ParticipantCompleted`` events of a fetched batch to one
handler, which draws their numbers and status list places and writes their rows together.
Whatever the batch holds (a completion re-sent for an enrollment certified before, two
completions of one enrollment, an erased participant, two years), it must leave what the
one-event handler leaves applied to the same events in order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from structlog.testing import capture_logs

from bekal.certification import domain
from bekal.certification.app import create_app
from bekal.certification.handlers import (
    ISSUER,
    on_participant_completed,
    on_participants_completed,
)
from bekal.certification.models import (
    Certificate,
    CertificateCounter,
    ErasedParticipant,
    StatusEntry,
)
from bekal.certification.services.issuing import issue_certificate, issue_certificates
from bekal.certification.services.keys import Issuer
from bekal.certification.signing import CertificateSigner
from bekal.shared.db import Database
from bekal.shared.events.catalogue import CertificateIssued, ParticipantCompleted
from bekal.shared.events.envelope import EventMeta, to_kafka
from bekal.shared.events.topics import SOURCES
from bekal.shared.logging import new_traceparent, set_traceparent
from bekal.shared.messaging.consumer import (
    BatchContext,
    Delivered,
    HandlerContext,
    StoredRecord,
)
from bekal.shared.messaging.models import InboxMessage, OutboxMessage
from bekal.shared.migrations import upgrade
from tests.support.apps import published, running
from tests.support.certification import certification_settings, verify_with_jwks
from tests.support.factories import participant_completed
from tests.support.kafka import person_key_published, seal_as_published

pytestmark = pytest.mark.integration

PUBLIC_BASE_URL = "https://sertifikat.example.id"
SESSION = uuid.uuid4()
CERTIFIED = participant_completed(
    session_id=SESSION, participant_name="Ani Suryani"
)  # certified before the batch
ERASED = participant_completed(
    participant_name="Budi Hartono"
)  # the person was erased before the batch
A = participant_completed(session_id=SESSION, participant_name="Siti Rahmawati")
B = participant_completed(session_id=SESSION, participant_name="Dewi  Lestari")
C = participant_completed(session_id=SESSION, participant_name="Rina Wati")
OLD = participant_completed(
    participant_name="Eko Saputra", end_date=date(2023, 12, 29)
)  # numbered in 2023


def delivered(event: ParticipantCompleted) -> Delivered[ParticipantCompleted]:
    meta = EventMeta(
        id=str(uuid.uuid4()),
        type=ParticipantCompleted.event_type(),
        source=SOURCES["training"],
        subject=str(event.enrollment_id),
        time=None,
        traceparent=new_traceparent(),
    )
    return Delivered(event, meta)


BATCH = [
    delivered(A),
    delivered(CERTIFIED),  # re-sent under a new id: its certificate exists
    delivered(B),
    delivered(ERASED),  # nothing for an erased person
    delivered(A),  # A's completion again, in the same batch, under a new id
    delivered(OLD),
    delivered(C),
    delivered(OLD),
]


def _issuer(tmp_path: Path) -> Issuer:
    return Issuer(
        signer=CertificateSigner.from_key_file(tmp_path / "certificate.pem"),
        public_base_url=PUBLIC_BASE_URL,
    )


async def _seed(db: Database, issuer: Issuer) -> None:
    """An empty service but for one certificate issued earlier and one erased person."""
    async with db.session() as s:
        for model in (Certificate, CertificateCounter, StatusEntry, ErasedParticipant):
            await s.execute(delete(model))
        await s.execute(delete(OutboxMessage))
        await issue_certificate(session=s, event=CERTIFIED, event_id="earlier", issuer=issuer)
        s.add(ErasedParticipant(participant_id=ERASED.participant_id, erased_on=date(2024, 9, 1)))
        await s.commit()


async def _state(
    db: Database, *, taken_before: int = 0
) -> tuple[list[Certificate], list[OutboxMessage]]:
    async with db.session() as s:
        certificates = list(await s.scalars(select(Certificate).order_by(Certificate.number)))
        outbox = list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)))
        places = await s.scalar(select(func.count()).select_from(StatusEntry))
    # No two certificates share a place, and each place taken belongs to a certificate.
    held = {(c.status_list, c.status_list_index) for c in certificates}
    assert len(held) == len(certificates)
    assert places == taken_before + len(certificates)
    return certificates, outbox


def _facts(certificate: Certificate) -> dict[str, Any]:
    """What must not depend on batching (ids, codes, places and signatures are random)."""
    return {
        "number": certificate.number,
        "revision": certificate.revision,
        "participant_id": certificate.participant_id,
        "recipient_name": certificate.recipient_name,
        "status": certificate.status,
        "source_event_id": certificate.source_event_id,
        "status_list": certificate.status_list,
        "issued_on": certificate.issued_on,
        "signing_kid": certificate.signing_kid,
    }


def _events(outbox: list[OutboxMessage], certificates: list[Certificate]) -> list[tuple[Any, ...]]:
    """The outbox in order: type, the enrollment it is about, the number; keyed by the row."""
    by_id = {str(c.id): c for c in certificates}
    events = []
    for row in outbox:
        payload = json.loads(row.payload)
        assert by_id[row.aggregate_id].enrollment_id == uuid.UUID(payload["enrollment_id"])
        events.append((row.event_type, payload["enrollment_id"], payload["number"]))
    return events


def _assert_signed(certificates: list[Certificate], issuer: Issuer) -> None:
    jwks = {"keys": [issuer.signer.jwk]}
    for c in certificates:
        payload = verify_with_jwks(c.credential_jws, jwks)  # raises if the signature fails
        assert payload["jti"] == f"urn:uuid:{c.id}"
        assert payload["certificateNumber"] == c.number
        status = payload["credentialStatus"]
        assert status["statusListIndex"] == str(c.status_list_index)
        assert status["statusListCredential"].endswith(f"/status-lists/{c.status_list}")


async def test_a_batch_of_completions_issues_what_one_by_one_issues(
    database_url: str, tmp_path: Path
):
    await asyncio.to_thread(upgrade, "bekal.certification", database_url)
    db = Database(database_url)
    issuer = _issuer(tmp_path)
    resources = {ISSUER: issuer}
    try:
        await _seed(db, issuer)
        async with db.session() as s:
            await on_participants_completed(BATCH, BatchContext(s, resources=resources))
            await s.commit()
        together, together_outbox = await _state(db)

        await _seed(db, issuer)
        for item in BATCH:  # as the runner calls it: a transaction each, in the event's trace
            set_traceparent(new_traceparent(item.meta.traceparent))
            try:
                async with db.session() as s:
                    await on_participant_completed(
                        item.event, HandlerContext(s, meta=item.meta, resources=resources)
                    )
                    await s.commit()
            finally:
                set_traceparent(None)
        one_by_one, one_by_one_outbox = await _state(db)
    finally:
        await db.dispose()

    by_enrollment = {c.enrollment_id: _facts(c) for c in together}
    assert by_enrollment == {c.enrollment_id: _facts(c) for c in one_by_one}
    assert {e: f["number"] for e, f in by_enrollment.items()} == {
        CERTIFIED.enrollment_id: "IKMA/2024/000001",
        A.enrollment_id: "IKMA/2024/000002",
        B.enrollment_id: "IKMA/2024/000003",
        OLD.enrollment_id: "IKMA/2023/000001",
        C.enrollment_id: "IKMA/2024/000004",
    }
    # The first completion of each enrollment is the one that issued it.
    assert by_enrollment[A.enrollment_id]["source_event_id"] == BATCH[0].meta.id
    assert by_enrollment[OLD.enrollment_id]["source_event_id"] == BATCH[5].meta.id
    assert by_enrollment[B.enrollment_id]["recipient_name"] == "Dewi Lestari"

    events = _events(together_outbox, together)
    assert events == _events(one_by_one_outbox, one_by_one)
    assert [(t, e) for t, e, _ in events] == [
        (CertificateIssued.event_type(), str(x.enrollment_id)) for x in (CERTIFIED, A, B, OLD, C)
    ]
    # Each follow-up is in the trace of the completion that caused it.
    traces = [row.traceparent.split("-")[1] for row in together_outbox[1:]]
    assert traces == [BATCH[i].meta.traceparent.split("-")[1] for i in (0, 2, 5, 6)]  # type: ignore[union-attr]

    _assert_signed(together, issuer)
    _assert_signed(one_by_one, issuer)


async def test_a_batch_that_fills_the_open_status_list_continues_in_the_next_one(
    database_url: str, tmp_path: Path
):
    """Two places are left before list 1 is half full: two certificates go there, three to
    list 2, as one by one; the places are random, free and distinct."""
    await asyncio.to_thread(upgrade, "bekal.certification", database_url)
    db = Database(database_url)
    issuer = _issuer(tmp_path)
    limit = domain.STATUS_LIST_FILL_LIMIT
    events = [participant_completed(session_id=SESSION) for _ in range(5)]
    splits = []
    try:
        for together in (True, False):
            async with db.session() as s:
                for model in (Certificate, CertificateCounter, StatusEntry):
                    await s.execute(delete(model))
                # The lowest indexes taken: half of every draw in list 1 hits a taken place.
                await s.execute(
                    insert(StatusEntry),
                    [
                        {"status_list": 1, "list_index": i, "revoked": False}
                        for i in range(limit - 2)
                    ],
                )
                await s.commit()
            pairs = [(e, str(uuid.uuid4())) for e in events]
            if together:
                async with db.session() as s:
                    results = await issue_certificates(session=s, completions=pairs, issuer=issuer)
                    await s.commit()
                assert [issued for _, issued in results] == [True] * 5
            else:
                for event, event_id in pairs:
                    async with db.session() as s:
                        await issue_certificate(
                            session=s, event=event, event_id=event_id, issuer=issuer
                        )
                        await s.commit()
            certificates, _ = await _state(db, taken_before=limit - 2)
            splits.append([(c.number, c.status_list) for c in certificates])
            assert all(
                c.status_list_index is not None and c.status_list_index >= limit - 2
                for c in certificates
                if c.status_list == 1
            )
            _assert_signed(certificates, issuer)
    finally:
        await db.dispose()

    assert splits[0] == splits[1]
    assert Counter(status_list for _, status_list in splits[0]) == {1: 2, 2: 3}


async def test_the_consumer_issues_a_fetched_batch_together_in_each_completions_trace(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    first, second, third = (
        participant_completed(session_id=SESSION, participant_name=n)
        for n in ("Ani", "Budi", "Citra")
    )
    ids = [str(uuid.uuid4()) for _ in range(4)]
    traces = {i: new_traceparent() for i in ids}
    # first, the same record again, second, first re-sent under a new id, third.
    sent = [(first, ids[0]), (first, ids[0]), (second, ids[1]), (first, ids[2]), (third, ids[3])]
    records = []
    for person in (first, second, third):
        await person_key_published(settings, person.participant_id)
    for offset, (event, event_id) in enumerate(sent, start=50_000):
        key, value, headers = to_kafka(
            seal_as_published(event, event_id),
            source=SOURCES["training"],
            event_id=event_id,
            traceparent=traces[event_id],
        )
        records.append(
            StoredRecord(
                topic=settings.topic(event.topic),
                partition=0,
                offset=offset,
                key=key,
                value=value,
                headers=headers,
            )
        )

    app = create_app(settings)
    async with running(app):
        db: Database = app.state.db
        runner = app.state.messaging.runner
        with capture_logs() as logs:
            await runner.process_batch(records)
        assert not [e for e in logs if e["event"] == "consumer_batch_one_by_one"], logs
        async with db.session() as s:
            certificates = list(await s.scalars(select(Certificate).order_by(Certificate.number)))
            inbox = set(await s.scalars(select(InboxMessage.event_id)))
            outbox = list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)))
        on_topic = await published(app, "certification.certificates", at_least=3)

    assert [(c.enrollment_id, c.number) for c in certificates] == [
        (first.enrollment_id, "IKMA/2024/000001"),
        (second.enrollment_id, "IKMA/2024/000002"),
        (third.enrollment_id, "IKMA/2024/000003"),
    ]
    assert inbox == set(ids)
    causes = [ids[0], ids[1], ids[3]]
    assert [row.traceparent.split("-")[1] for row in outbox] == [  # type: ignore[union-attr]
        traces[i].split("-")[1] for i in causes
    ]
    assert sorted(json.loads(r.value)["number"] for r in on_topic) == [
        c.number for c in certificates
    ]
    _assert_signed(certificates, app.state.certificate_issuer)
