"""Benchmark: reporting's indicator queries over a national-sized projection.

Fills a fresh SQLite database (or ``--database-url``) with N enrolments spread over facilities,
programs and years (a third of the people trained twice, follow-ups, readiness checklists,
waiting lists, certificates), then prints the time of the totals, a grouping by year and
province, target progress and the suppressed public tables. Run with
``.venv/bin/python benchmarks/reporting_indicators.py [--enrolments N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from datetime import date

from bekal.reporting import services
from bekal.reporting.domain import Dimension
from bekal.reporting.models import (
    Certificate,
    Enrollment,
    Facility,
    Participant,
    Program,
    TrainingSession,
    WaitlistEntry,
)
from bekal.shared.db import Database
from bekal.shared.migrations import upgrade

PROVINCES = ["Banten", "DKI Jakarta", "Jawa Barat", "Jawa Timur", "Kalimantan Barat", "Bali"]
SITUATIONS = [
    None,
    "not_working",
    "employed_by_ikm",
    "business_started_with_nib",
    "business_started_without_nib",
]


async def fill(db: Database, n: int) -> None:
    rng = random.Random(7)
    facilities = [uuid.uuid4() for _ in range(60)]
    programs = [uuid.uuid4() for _ in range(12)]
    sessions = [uuid.uuid4() for _ in range(max(1, n // 25))]
    people = [uuid.uuid4() for _ in range(max(1, n * 3 // 4))]
    async with db.session() as s:
        for i, f in enumerate(facilities):
            s.add(
                Facility(
                    id=f,
                    code=f"F{i}",
                    name=f"Lapas {i}",
                    kind="lapas",
                    facility_class="IIA",
                    province=PROVINCES[i % len(PROVINCES)],
                    regional_office="Kanwil",
                    active=True,
                )
            )
        for i, p in enumerate(programs):
            s.add(
                Program(
                    id=p,
                    version=1,
                    code=f"P{i}",
                    title=f"Program {i}",
                    sector=f"s{i % 4}",
                    partner=None,
                    hours=40,
                )
            )
        for sid in sessions:
            year = rng.randint(2017, 2024)
            end = date(year, rng.randint(1, 12), 20)
            s.add(
                TrainingSession(
                    id=sid,
                    program_id=rng.choice(programs),
                    program_version=1,
                    facility_id=rng.choice(facilities),
                    start_date=end,
                    end_date=end,
                    year=year,
                    end_day=end.toordinal(),
                    capacity=30,
                    status="completed",
                )
            )
        for person in people:
            s.add(
                Participant(
                    id=person,
                    sex=rng.choice("FM"),
                    birth_year=1990,
                    released_on=date(2025, 1, 1) if rng.random() < 0.4 else None,
                )
            )
        await s.commit()
    for start in range(0, n, 5000):
        async with db.session() as s:
            for _ in range(min(5000, n - start)):
                eid = uuid.uuid4()
                done = rng.random() < 0.8
                sid = rng.choice(sessions)
                s.add(
                    Enrollment(
                        id=eid,
                        session_id=sid,
                        participant_id=rng.choice(people),
                        status="completed" if done else "withdrawn",
                        withdrawal_reason=None if done else "released",
                        follow_up_situation=rng.choice(SITUATIONS) if done else None,
                        ready_to_trade=rng.random() < 0.5 if done else None,
                    )
                )
                if done and rng.random() < 0.7:
                    s.add(
                        Certificate(
                            id=uuid.uuid4(),
                            number=str(eid),
                            enrollment_id=eid,
                            session_id=sid,
                            participant_id=uuid.uuid4(),
                            program_id=rng.choice(programs),
                            issued_on=date(2024, 1, 1),
                            issued_day=date(2024, 1, 1).toordinal(),
                        )
                    )
                if rng.random() < 0.1:
                    s.add(
                        WaitlistEntry(
                            id=uuid.uuid4(), session_id=sid, participant_id=rng.choice(people)
                        )
                    )
            await s.commit()


async def timed(label: str, run: object) -> None:
    started = time.perf_counter()
    await run  # type: ignore[misc]
    print(f"{label:<40} {time.perf_counter() - started:8.3f} s")


async def main(n: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite+aiosqlite:///{tmp}/reporting.db"
        await asyncio.to_thread(upgrade, "bekal.reporting", url)
        db = Database(url)
        try:
            started = time.perf_counter()
            await fill(db, n)
            print(f"{n} enrolments written in {time.perf_counter() - started:.1f} s")
            filters = services.IndicatorFilters()
            async with db.session() as s:
                await timed("totals", services.indicators(s, group_by=[], filters=filters))
            async with db.session() as s:
                await timed(
                    "by year and province",
                    services.indicators(
                        s, group_by=[Dimension.YEAR, Dimension.PROVINCE], filters=filters
                    ),
                )
            async with db.session() as s, db.session() as t:
                await timed("target progress", services.target_progress(s, t))
            async with db.session() as s:
                await timed("public tables (suppressed)", services.public_tables(s))
        finally:
            await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--enrolments", type=int, default=50_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.enrolments, args.database_url))
