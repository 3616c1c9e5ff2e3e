"""Benchmark: issue certificates, revoke some, build the signed status list, render PDFs.

Prints certificates issued per second (each: a number, a random status list place, an Open
Badges credential signed with Ed25519, the row and its event), one at a time and a batch at a
time as the consumer issues them, the time to build and sign the status list credential,
verifications per second and PDFs per second, on a fresh SQLite database, with the load
average before and after. Run with
``.venv/bin/python benchmarks/certification_issue.py [--certificates N] [--batch N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import structlog
from sqlalchemy import select

from bekal.certification import pdf
from bekal.certification.models import Certificate
from bekal.certification.services.issuing import issue_certificate, issue_certificates
from bekal.certification.services.keys import Issuer, register_signing_key
from bekal.certification.services.revocation import revoke_certificate
from bekal.certification.services.status_list import status_list_credential
from bekal.certification.services.verification import verify
from bekal.certification.signing import CertificateSigner
from bekal.shared.db import Database
from bekal.shared.events.catalogue import CompetencyUnit, ParticipantCompleted
from bekal.shared.migrations import upgrade

NAMES = ["Siti Rahmawati", "Dewi Lestari", "Budi Santoso", "Rina Wati", "Agus Salim"]


def completed() -> ParticipantCompleted:
    return ParticipantCompleted(
        enrollment_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        participant_id=uuid.uuid4(),
        participant_name=random.choice(NAMES),
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
        start_date=date(2024, 9, 3),
        end_date=date(2024, 9, 7),
        attendance_share=1.0,
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(n: int, batch: int) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/certification.db"
        await asyncio.to_thread(upgrade, "bekal.certification", url)
        db = Database(url)
        issuer = Issuer(
            signer=CertificateSigner.from_key_file(Path(tmp) / "key.pem"),
            public_base_url="https://sertifikat.example.id",
        )
        async with db.session() as s:
            await register_signing_key(session=s, signer=issuer.signer)
            await s.commit()
        try:
            started = time.perf_counter()
            for first in range(0, n, batch):
                async with db.session() as s:
                    for _ in range(min(batch, n - first)):
                        await issue_certificate(
                            session=s, event=completed(), event_id=str(uuid.uuid4()), issuer=issuer
                        )
                    await s.commit()
            elapsed = time.perf_counter() - started
            print(f"issued: {n} certificates in {elapsed:.2f} s ({n / elapsed:,.0f}/s)")

            # What the consumer does with a fetched batch: the same work, drawn and written
            # together (issue_certificates), one call per transaction.
            started = time.perf_counter()
            for first in range(0, n, batch):
                async with db.session() as s:
                    await issue_certificates(
                        session=s,
                        completions=[
                            (completed(), str(uuid.uuid4())) for _ in range(min(batch, n - first))
                        ],
                        issuer=issuer,
                    )
                    await s.commit()
            elapsed = time.perf_counter() - started
            print(f"issued together: {n} certificates in {elapsed:.2f} s ({n / elapsed:,.0f}/s)")

            async with db.session() as s:
                rows = (await s.scalars(select(Certificate))).all()
            revoked = random.sample(rows, k=max(1, n // 20))
            async with db.session() as s:
                for c in revoked:
                    await revoke_certificate(
                        session=s, certificate_id=c.id, reason="benchmark", revoked_by="bench"
                    )
                await s.commit()

            started = time.perf_counter()
            async with db.session() as s:
                credential = await status_list_credential(session=s, status_list=1, issuer=issuer)
            elapsed = time.perf_counter() - started
            print(
                f"status list: {len(revoked)} revoked of {n}, credential {len(credential):,} "
                f"bytes, built and signed in {elapsed * 1000:.1f} ms"
            )

            sample = random.sample(rows, k=min(n, 500))
            started = time.perf_counter()
            async with db.session() as s:
                for c in sample:
                    await verify(session=s, code=c.verification_code)
            elapsed = time.perf_counter() - started
            print(f"verified: {len(sample)} in {elapsed:.2f} s ({len(sample) / elapsed:,.0f}/s)")

            started = time.perf_counter()
            for c in sample[:100]:
                pdf.render(
                    pdf.PrintedCertificate(
                        number=c.number,
                        recipient_name=c.recipient_name,
                        program_title=c.program_title,
                        competency_units=[
                            (u["code"], u["title"]) for u in json.loads(c.competency_units or "[]")
                        ],
                        hours=c.hours,
                        start_date=c.start_date,
                        end_date=c.end_date,
                        issued_on=c.issued_on,
                        partner=c.partner,
                        verification_url=issuer.verification_url(c.verification_code),
                    )
                )
            elapsed = time.perf_counter() - started
            count = min(100, len(sample))
            print(f"pdf: {count} rendered in {elapsed:.2f} s ({count / elapsed:,.0f}/s)")
            print(load())
        finally:
            await db.dispose()


if __name__ == "__main__":
    # The service logs every issuance; the figures are what this script is for.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--certificates", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100, help="certificates per transaction")
    args = parser.parse_args()
    asyncio.run(main(args.certificates, args.batch))
