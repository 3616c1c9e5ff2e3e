"""Certification follows training's corrections after completion, through the real broker.

A pass corrected into a fail revokes the certificate (cause ``outcome_corrected``); a fail
corrected into a pass issues one (again); a duplicate enrolment folded away by a registry merge
loses its certificate (cause ``enrollment_merged``). Deliveries again change nothing.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import select

from bekal.certification.app import create_app
from bekal.certification.models import Certificate, StatusEntry
from bekal.certification.services.corrections import TRAINING_CORRECTION_ACTOR
from bekal.certification.services.revocation import revoke_certificate
from bekal.shared.db import Database
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CertificateReissued,
    CertificateRevocationCause,
    CertificateRevocationKind,
    CertificateRevoked,
    EnrollmentOutcome,
    EnrollmentWithdrawn,
    NotCompletedReason,
    OutcomeCorrected,
    ParticipantCompleted,
    WithdrawalReason,
)
from bekal.shared.messaging.models import DeadLetter, InboxMessage
from tests.support.apps import published, running
from tests.support.certification import certification_settings
from tests.support.db import count
from tests.support.factories import (
    enrollment_withdrawn,
    outcome_corrected,
    participant_completed,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CORRECTED_ON = date(2024, 9, 20)


def corrected(
    done: ParticipantCompleted, outcome: EnrollmentOutcome, *, reason: str
) -> OutcomeCorrected:
    failed = outcome is EnrollmentOutcome.NOT_COMPLETED
    return outcome_corrected(
        done,
        outcome,
        not_completed_reason=NotCompletedReason.ATTENDANCE_BELOW_MINIMUM if failed else None,
        attendance_share=0.6 if failed else 0.8,
        reason=reason,
        corrected_on=CORRECTED_ON,
    )


async def certificates_of(db: Database, enrollment_id: uuid.UUID) -> list[Certificate]:
    async with db.session() as s:
        rows = await s.scalars(
            select(Certificate)
            .where(Certificate.enrollment_id == enrollment_id)
            .order_by(Certificate.revision)
        )
        return list(rows.all())


async def revoked_bit(db: Database, certificate: Certificate) -> bool:
    async with db.session() as s:
        entry = await s.get(StatusEntry, (certificate.status_list, certificate.status_list_index))
        assert entry is not None
        return entry.revoked


async def test_a_pass_corrected_to_a_fail_revokes_and_a_fail_corrected_to_a_pass_issues_again(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    siti = participant_completed(participant_name="Siti Rahmawati")
    app = create_app(settings)
    async with running(app):
        db: Database = app.state.db

        async def handled(n: int) -> None:
            async def enough() -> bool:
                return await count(db, InboxMessage) >= n

            await wait_until(enough, what=f"{n} events handled")

        await publish(settings, [siti])
        await handled(1)
        [first] = await certificates_of(db, siti.enrollment_id)
        assert first.status == "valid"

        # Pass -> fail: revoked, the status list bit set, the reason says why in Bahasa Indonesia.
        fail = corrected(siti, EnrollmentOutcome.NOT_COMPLETED, reason="Absensi hari ke-3 salah")
        await publish(settings, [fail])
        await handled(2)
        [first] = await certificates_of(db, siti.enrollment_id)
        assert first.status == "revoked" and first.revoked_by == TRAINING_CORRECTION_ACTOR
        assert first.revocation_reason is not None
        assert "dikoreksi menjadi tidak lulus" in first.revocation_reason
        assert "kehadiran di bawah batas minimum" in first.revocation_reason
        assert "Absensi hari ke-3 salah" in first.revocation_reason
        assert await revoked_bit(db, first)

        # The same correction again (another event id), and the old completion replayed: the
        # certificate stays revoked and nothing new is issued.
        await publish(settings, [fail, siti])
        await handled(4)
        assert [c.status for c in await certificates_of(db, siti.enrollment_id)] == ["revoked"]

        # Fail -> pass, as training publishes it: the correction, then a completion. One new
        # revision under a new number; a second delivery of both changes nothing.
        passed = corrected(siti, EnrollmentOutcome.COMPLETED, reason="Absensi dipulihkan")
        await publish(settings, [passed, siti])
        await handled(6)
        await publish(settings, [passed, siti])
        await handled(8)
        old, new = await certificates_of(db, siti.enrollment_id)
        assert (old.status, new.status) == ("revoked", "valid")
        assert new.revision == 2 and new.replaces_id == old.id and old.replaced_by_id == new.id
        assert new.number != old.number and new.recipient_name == "Siti Rahmawati"
        assert not await revoked_bit(db, new)

        # Failed at completion (no certificate), corrected to a pass: the completion that
        # follows issues the first certificate, once.
        dewi = participant_completed(session_id=siti.session_id, participant_name="Dewi Lestari")
        late = corrected(dewi, EnrollmentOutcome.COMPLETED, reason="Penilaian BTK.02 dikoreksi")
        await publish(settings, [late, dewi, late, dewi])
        await handled(12)
        [dewis] = await certificates_of(db, dewi.enrollment_id)
        assert dewis.status == "valid" and dewis.revision == 1

        assert await count(db, DeadLetter) == 0
        records = await published(app, "certification.certificates", at_least=5)

    events = [r.event for r in records]
    revoked = [e for e in events if isinstance(e, CertificateRevoked)]
    assert [(e.number, e.kind, e.cause) for e in revoked] == [
        (
            old.number,
            CertificateRevocationKind.REVOKED,
            CertificateRevocationCause.OUTCOME_CORRECTED,
        )
    ]
    reissued = [e for e in events if isinstance(e, CertificateReissued)]
    assert [(e.number, e.replaces_number) for e in reissued] == [(new.number, old.number)]
    issued = [e for e in events if isinstance(e, CertificateIssued)]
    assert sorted(e.number for e in issued) == sorted([old.number, dewis.number])


async def test_a_certificate_revoked_by_staff_is_not_brought_back_by_a_correction(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    rina = participant_completed(participant_name="Rina Wati")
    app = create_app(settings)
    async with running(app):
        db: Database = app.state.db
        await publish(settings, [rina])

        async def issued() -> bool:
            return len(await certificates_of(db, rina.enrollment_id)) == 1

        await wait_until(issued, what="certificate issued")
        [certificate] = await certificates_of(db, rina.enrollment_id)
        async with db.session() as s, s.begin():
            await revoke_certificate(
                session=s,
                certificate_id=certificate.id,
                reason="Dokumen palsu",
                revoked_by="petugas",
            )
        await publish(
            settings,
            [
                corrected(rina, EnrollmentOutcome.NOT_COMPLETED, reason="x"),
                corrected(rina, EnrollmentOutcome.COMPLETED, reason="y"),
                rina,
            ],
        )

        async def all_handled() -> bool:
            return await count(db, InboxMessage) >= 4

        await wait_until(all_handled, what="corrections handled")
        [after] = await certificates_of(db, rina.enrollment_id)
        assert (after.status, after.revoked_by, after.revocation_reason) == (
            "revoked",
            "petugas",
            "Dokumen palsu",
        )
        assert await count(db, DeadLetter) == 0


async def test_the_duplicate_enrolment_folded_away_by_a_merge_loses_its_certificate(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    kept = participant_completed(participant_name="Agus Salim")
    twin = participant_completed(session_id=kept.session_id, participant_name="Agus Salim")
    released = participant_completed(session_id=kept.session_id, participant_name="Bayu Aji")
    app = create_app(settings)
    async with running(app):
        db: Database = app.state.db
        await publish(settings, [kept, twin, released])

        def withdrawn(done: ParticipantCompleted, into: uuid.UUID | None) -> EnrollmentWithdrawn:
            return enrollment_withdrawn(
                done,
                reason=WithdrawalReason.OTHER,
                withdrawn_on=CORRECTED_ON,
                merged_into_enrollment_id=into,
            )

        # An ordinary withdrawal touches no certificate; the merged-away one is revoked, once.
        folded = withdrawn(twin, kept.enrollment_id)
        await publish(settings, [withdrawn(released, None), folded, folded])

        async def all_handled() -> bool:
            return await count(db, InboxMessage) >= 6

        await wait_until(all_handled, what="withdrawals handled")
        [twins] = await certificates_of(db, twin.enrollment_id)
        assert twins.status == "revoked" and twins.revocation_reason is not None
        assert str(kept.enrollment_id) in twins.revocation_reason
        for other in (kept, released):
            [certificate] = await certificates_of(db, other.enrollment_id)
            assert certificate.status == "valid"
        assert await count(db, DeadLetter) == 0
        records = await published(app, "certification.certificates", at_least=4)

    revoked = [r.event for r in records if isinstance(r.event, CertificateRevoked)]
    assert [(e.number, e.cause) for e in revoked] == [
        (twins.number, CertificateRevocationCause.ENROLLMENT_MERGED)
    ]
