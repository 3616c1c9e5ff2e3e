"""Public verification by number does the same work for a known number asked for with another
name as for a number never issued: the same statement, one name comparison each (against a
stand-in when there is no holder), and the same answer. Not timed: the work is what is shown
equal here; benchmarks/certification_verify_timing.py prints the two latencies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bekal.certification import domain
from bekal.certification.services import verification
from bekal.certification.services.issuing import issue_certificate
from bekal.certification.services.keys import Issuer, register_signing_key
from bekal.certification.signing import CertificateSigner
from bekal.shared.db import Database
from bekal.shared.migrations import upgrade
from tests.support.factories import participant_completed

pytestmark = pytest.mark.integration


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement sent to the database while inside."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_a_wrong_name_and_a_number_never_issued_take_the_same_work(
    database_url, tmp_path, monkeypatch
):
    await asyncio.to_thread(upgrade, "bekal.certification", database_url)
    db = Database(database_url)
    issuer = Issuer(
        signer=CertificateSigner.from_key_file(tmp_path / "certificate.pem"),
        public_base_url="https://sertifikat.example.id",
    )
    # The real comparison, watched: which printed name each typed one is compared with.
    compared: list[str] = []
    real = domain.typed_name_matches

    def watched(printed: str, typed: str) -> bool:
        compared.append(printed)
        return real(printed, typed)

    monkeypatch.setattr(domain, "typed_name_matches", watched)

    async def asked(number: str, name: str) -> tuple[str, list[str], list[str]]:
        compared.clear()
        with statements(db) as sent:
            async with db.session() as s:
                answer = await verification.verify(session=s, code=number, name=name)
        return answer.result.value, sent, list(compared)

    try:
        async with db.session() as s:
            await register_signing_key(session=s, signer=issuer.signer)
            cert, _ = await issue_certificate(
                session=s,
                event=participant_completed(participant_name="Siti Rahmawati"),
                event_id="e-1",
                issuer=issuer,
            )
            await s.commit()
        never = "IKMA/2024/999999"

        known = await asked(cert.number, "Dewi Lestari")
        unknown = await asked(never, "Dewi Lestari")
        assert known[0] == unknown[0] == "unknown"
        assert known[1] == unknown[1]  # the same statements, in the same order
        assert len([s for s in known[1] if "certificates" in s]) == 1
        assert known[2] == ["Siti Rahmawati"]  # one comparison each: with the holder,
        assert unknown[2] == [verification.STAND_IN_HOLDER]  # or with the stand-in
        # The stand-in typed in is still a number never issued.
        assert (await asked(never, verification.STAND_IN_HOLDER))[0] == "unknown"
        # The holder's name as typed from the paper still finds the certificate.
        assert (await asked(cert.number, "siti  RAHMAWATI"))[0] == "valid"
    finally:
        await db.dispose()


def test_the_typed_name_is_compared_in_constant_time(monkeypatch):
    """typed_name_matches compares the folded names with hmac.compare_digest, not ==."""
    calls: list[tuple[bytes, bytes]] = []
    real = domain.hmac.compare_digest

    def watched(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(domain.hmac, "compare_digest", watched)
    assert domain.typed_name_matches("Dédé", "dede")
    assert not domain.typed_name_matches("Dédé", "Dodo")
    assert calls == [(b"dede", b"dede"), (b"dede", b"dodo")]
