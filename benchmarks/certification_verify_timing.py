"""Benchmark: public verification by number, a known number with a wrong name against a number
never issued.

Both must answer "unknown" in the same time, so that the delay does not tell a stranger which
numbers exist. Prints the median and 90th percentile of each, and their difference, over
interleaved runs on a fresh SQLite database (or the PostgreSQL database given), with the load
average before and after. Run with
``.venv/bin/python benchmarks/certification_verify_timing.py [--certificates N] [--runs N]
[--database-url postgresql+asyncpg://...]`` (the database must be empty: it is migrated).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import structlog

from bekal.certification.services.issuing import issue_certificate
from bekal.certification.services.keys import Issuer, register_signing_key
from bekal.certification.services.verification import verify
from bekal.certification.signing import CertificateSigner
from bekal.shared.db import Database
from bekal.shared.events.catalogue import ParticipantCompleted
from bekal.shared.migrations import upgrade

WRONG_NAME = "Dewi Lestari"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def completed(number: int) -> ParticipantCompleted:
    return ParticipantCompleted(
        enrollment_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        participant_id=uuid.uuid4(),
        participant_name=f"Siti Rahmawati {number}",
        program_id=uuid.uuid4(),
        program_code="WUB-BATIK",
        program_title="Bimtek Wirausaha Baru IKM Batik",
        sector="batik",
        partner=None,
        competency_units=[],
        hours=40,
        start_date=date(2024, 9, 3),
        end_date=date(2024, 9, 7),
        attendance_share=1.0,
    )


async def main(certificates: int, runs: int, url: str, key_folder: Path) -> None:
    await asyncio.to_thread(upgrade, "bekal.certification", url)
    db = Database(url)
    issuer = Issuer(
        signer=CertificateSigner.from_key_file(key_folder / "key.pem"),
        public_base_url="https://sertifikat.example.id",
    )
    try:
        numbers = []
        async with db.session() as s:
            await register_signing_key(session=s, signer=issuer.signer)
            for i in range(certificates):
                cert, _ = await issue_certificate(
                    session=s, event=completed(i), event_id=f"e-{i}", issuer=issuer
                )
                numbers.append(cert.number)
            await s.commit()
        never = [f"IKMA/2024/{900000 + i:06d}" for i in range(certificates)]

        async def timed(number: str) -> float:
            started = time.perf_counter_ns()
            async with db.session() as s:
                answer = await verify(session=s, code=number, name=WRONG_NAME)
            elapsed = (time.perf_counter_ns() - started) / 1000
            assert answer.result.value == "unknown", answer.result
            return elapsed

        for i in range(min(runs, 50)):  # warm up: plans, caches, connections
            await timed(numbers[i % certificates])
            await timed(never[i % certificates])
        known: list[float] = []
        unknown: list[float] = []
        for i in range(runs):  # interleaved, so that a drift in load touches both alike
            known.append(await timed(numbers[i % certificates]))
            unknown.append(await timed(never[i % certificates]))
    finally:
        await db.dispose()

    def line(label: str, values: list[float]) -> str:
        p90 = statistics.quantiles(values, n=10)[-1]
        return f"| {label:<34} | {statistics.median(values):>10.1f} | {p90:>10.1f} |"

    print("| lookup by number, wrong name       | median µs  |    p90 µs  |")
    print("|------------------------------------|-----------:|-----------:|")
    print(line("known number, another's name", known))
    print(line("number never issued", unknown))
    difference = statistics.median(known) - statistics.median(unknown)
    print(f"median difference: {difference:+.1f} µs over {runs} runs each")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/certification.db"
        asyncio.run(main(args.certificates, args.runs, url, Path(tmp)))
    print(load())
