"""Certification's migrations on SQLite and PostgreSQL, with a certificate issued before
Open Badges: it is carried over, still verifies, can be corrected, and the way back works."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bekal.certification import domain
from bekal.certification.domain import Competency
from bekal.certification.services.keys import Issuer
from bekal.certification.services.reading import list_certificates
from bekal.certification.services.revocation import reissue_certificate
from bekal.certification.services.verification import verify
from bekal.certification.signing import CertificateSigner
from bekal.shared.db import Database
from bekal.shared.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

NEW_TABLES = {"status_entries", "erased_certificates", "erased_participants"}


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


def _legacy_row(signer: CertificateSigner) -> dict[str, object]:
    """A certificate as revision 0001 stored it: a plain JWT of claims, bare kid."""
    certificate_id = uuid.uuid4()
    claims = domain.credential_claims(
        certificate_id=certificate_id,
        number="IKMA/2024/000001",
        recipient_name="Siti Rahmawati",
        program_code="WUB-BATIK",
        program_title="Bimtek Wirausaha Baru IKM Batik",
        sector="batik",
        competency_units=[Competency("BTK.01", "Membatik tulis")],
        hours=40,
        start_date=date(2024, 9, 3),
        end_date=date(2024, 9, 7),
        issued_on=date(2024, 9, 8),
        partner="Yayasan Batik Indonesia",
    )
    return {
        "id": str(certificate_id),
        "number": "IKMA/2024/000001",
        "enrollment_id": str(uuid.uuid4()),
        "participant_id": str(uuid.uuid4()),
        "session_id": str(uuid.uuid4()),
        "program_id": str(uuid.uuid4()),
        "program_code": "WUB-BATIK",
        "program_title": "Bimtek Wirausaha Baru IKM Batik",
        "recipient_name": "Siti Rahmawati",
        "hours": 40,
        "start_date": date(2024, 9, 3),
        "end_date": date(2024, 9, 7),
        "issued_on": date(2024, 9, 8),
        "issued_at": datetime(2024, 9, 8, 2, 0, tzinfo=UTC),
        "verification_code": "kode-lama-0123456789ab",
        "credential_jws": signer.sign(claims),
        "signing_kid": signer.kid,
        "status": "valid",
        "source_event_id": "e-legacy",
    }


async def test_a_certificate_from_before_open_badges_survives_the_upgrade(database_url, tmp_path):
    signer = CertificateSigner.from_key_file(tmp_path / "key.pem")
    issuer = Issuer(signer=signer, public_base_url="https://sertifikat.example.id")
    await asyncio.to_thread(upgrade, "bekal.certification", database_url, "0001")
    db = Database(database_url)
    try:
        row = _legacy_row(signer)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO certificates ("
                    + ", ".join(row)
                    + ") VALUES ("
                    + ", ".join(f":{k}" for k in row)
                    + ")"
                ),
                row,
            )
            await conn.execute(
                text("INSERT INTO certificate_counters (year, last_number) VALUES (2024, 1)")
            )
            await conn.execute(
                text(
                    "INSERT INTO signing_keys (kid, algorithm, public_jwk, first_used_at) "
                    "VALUES (:kid, 'EdDSA', :jwk, :at)"
                ),
                {"kid": signer.kid, "jwk": json.dumps(signer.jwk), "at": datetime.now(UTC)},
            )

        await asyncio.to_thread(upgrade, "bekal.certification", database_url)
        assert NEW_TABLES <= await _tables(db)
        async with db.engine.connect() as conn:
            copied = (
                await conn.execute(
                    text("SELECT sector, partner, competency_units, revision FROM certificates")
                )
            ).one()
        assert copied.sector == "batik" and copied.partner == "Yayasan Batik Indonesia"
        assert json.loads(copied.competency_units) == [
            {"code": "BTK.01", "title": "Membatik tulis"}
        ]
        assert copied.revision == 1
        async with db.engine.connect() as conn:
            key = (await conn.execute(text("SELECT recipient_name_key FROM certificates"))).one()
        assert key.recipient_name_key == "siti rahmawati"  # the typed-name key, filled in

        async with db.session() as s:
            v = await verify(session=s, code="kode-lama-0123456789ab")
            assert v.result == "valid" and v.facts is not None
            assert v.facts.recipient_name == "Siti Rahmawati" and v.facts.hours == 40
            by_number = await verify(session=s, code="IKMA/2024/000001", name="siti rahmawati")
            assert by_number.result == "valid"
            assert (await verify(session=s, code="IKMA/2024/000001")).result == "unknown"
            found = await list_certificates(session=s, q="SITI rahmawati")
            assert [c.number for c in found.rows] == ["IKMA/2024/000001"]

            # A correction of the old certificate is a new Open Badges one.
            new = await reissue_certificate(
                session=s,
                certificate_id=uuid.UUID(str(row["id"])),
                recipient_name="Siti Rahmawaty",
                reason="Nama di akta kelahiran",
                reissued_by="admin",
                issuer=issuer,
            )
            await s.commit()
            assert new.number == "IKMA/2024/000002" and new.revision == 2
            v = await verify(session=s, code=new.verification_code)
            assert v.result == "valid" and v.facts is not None and v.facts.identity_hash
            assert (await verify(session=s, code="kode-lama-0123456789ab")).result == "revoked"

        def downgrade_to(revision: str) -> None:
            command.downgrade(alembic_config("bekal.certification", database_url), revision)

        # Back to 0001 is possible once the corrected revision is gone (it would break the
        # one-certificate-per-enrollment constraint there); then all the way down.
        async with db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM certificates WHERE revision > 1"))
        await asyncio.to_thread(downgrade_to, "0001")
        assert not NEW_TABLES & await _tables(db)
        await asyncio.to_thread(downgrade_to, "base")
        assert "certificates" not in await _tables(db)
    finally:
        await db.dispose()
