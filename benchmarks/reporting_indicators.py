"""Benchmark: reporting's indicator queries over a national-sized projection.

Fills a fresh SQLite database (``--postgres``: a fresh PostgreSQL database, dropped at the end;
or ``--database-url``) with N enrolments spread over facilities, programs and years (a third of
the people trained twice, follow-ups, readiness checklists, waiting lists, certificates, a few
revoked or re-issued), then prints the time of the totals, a grouping by year and province
(what the dashboard asks), target progress and the suppressed public tables, each the median
of ``--repeat`` runs: counted (nothing kept, as after an event changed the projections), and
kept (asked again at the same version: the report kept is answered); then ``--at-once``
dashboards (16) asked at once with nothing kept, until the last has its answer. The data is the same
on every run (seeded), and a digest of every result is printed: two versions of the queries
must print the same digest. ``--explain``
prints PostgreSQL's EXPLAIN ANALYZE of the grouping by year and province. Run with
``.venv/bin/python benchmarks/reporting_indicators.py [--enrolments N] [--participants N]
[--postgres] [--explain]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import create_database, drop_database, machine, run_tag, sqlalchemy_url

import bekal.reporting
from bekal.reporting.domain import Dimension
from bekal.reporting.models import (
    Certificate,
    CertificateRevocation,
    Enrollment,
    Facility,
    Participant,
    Program,
    TrainingSession,
    WaitlistEntry,
)
from bekal.reporting.services import indicators, publication, targets
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


def _id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128))


async def fill(db: Database, n: int, n_people: int | None = None) -> None:
    rng = random.Random(7)
    facilities = [_id(rng) for _ in range(60)]
    programs = [_id(rng) for _ in range(12)]
    sessions = [_id(rng) for _ in range(max(1, n // 25))]
    people = [_id(rng) for _ in range(max(1, n_people or n * 3 // 4))]
    # Most people trained once, a third of the trainees twice.
    trainees = people[: max(1, n * 3 // 4)]
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
        session_ends: dict[uuid.UUID, date] = {}
        for sid in sessions:
            year = rng.randint(2017, 2024)
            end = date(year, rng.randint(1, 12), 20)
            session_ends[sid] = end
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
        await s.commit()
    for start in range(0, len(people), 10000):
        async with db.session() as s:
            s.add_all(
                Participant(
                    id=person,
                    sex=rng.choice("FM"),
                    birth_year=1990,
                    released_on=date(2025, 1, 1) if rng.random() < 0.4 else None,
                )
                for person in people[start : start + 10000]
            )
            await s.commit()
    for start in range(0, n, 5000):
        async with db.session() as s:
            for _ in range(min(5000, n - start)):
                eid = _id(rng)
                outcome = rng.random()
                done = outcome < 0.8
                status = (
                    "completed"
                    if done
                    else "withdrawn"
                    if outcome < 0.9
                    else "not_completed"
                    if outcome < 0.97
                    else "enrolled"
                )
                sid = rng.choice(sessions)
                person = rng.choice(trainees)
                s.add(
                    Enrollment(
                        id=eid,
                        session_id=sid,
                        participant_id=person,
                        status=status,
                        withdrawal_reason="released" if status == "withdrawn" else None,
                        not_completed_reason="attendance_below_minimum"
                        if status == "not_completed"
                        else None,
                        follow_up_situation=rng.choice(SITUATIONS) if done else None,
                        follow_up_checkpoint=3 if done else None,
                        ready_to_trade=rng.random() < 0.5 if done else None,
                    )
                )
                if done and rng.random() < 0.7:
                    cid = _id(rng)
                    issued = date(2025, 1, 1)
                    s.add(
                        Certificate(
                            id=cid,
                            number=str(eid),
                            enrollment_id=eid,
                            session_id=sid,
                            participant_id=person,
                            program_id=rng.choice(programs),
                            issued_on=issued,
                            issued_day=issued.toordinal(),
                        )
                    )
                    chance = rng.random()
                    if chance < 0.02:  # revoked
                        s.add(
                            CertificateRevocation(
                                certificate_id=cid,
                                enrollment_id=eid,
                                kind="revoked",
                                revoked_on=issued,
                            )
                        )
                    elif chance < 0.04:  # superseded; its replacement known half the time
                        new = _id(rng)
                        s.add(
                            CertificateRevocation(
                                certificate_id=cid,
                                enrollment_id=eid,
                                kind="superseded",
                                revoked_on=issued,
                                replaced_by_id=new,
                            )
                        )
                        if chance < 0.03:
                            s.add(
                                Certificate(
                                    id=new,
                                    number=f"{eid}-2",
                                    enrollment_id=eid,
                                    session_id=sid,
                                    participant_id=person,
                                    program_id=rng.choice(programs),
                                    issued_on=date(2025, 2, 1),
                                    issued_day=date(2025, 2, 1).toordinal(),
                                )
                            )
                if rng.random() < 0.1:
                    s.add(
                        WaitlistEntry(
                            id=_id(rng) if rng.random() < 0.8 else eid,
                            session_id=sid,
                            participant_id=rng.choice(people),
                            left_on=date(2024, 1, 1) if rng.random() < 0.3 else None,
                        )
                    )
            await s.commit()


def digest(result: Any) -> str:
    """A short fingerprint of a result, to compare two versions of the queries."""
    return hashlib.sha256(repr(result).encode()).hexdigest()[:12]


async def timed(
    label: str, repeat: int, run: Callable[[], Awaitable[Any]]
) -> tuple[str, float, str]:
    times = []
    result: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await run()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"{label:<38} {median:8.3f} s  (median of {repeat})  digest {digest(result)}")
    return label, median, digest(result)


async def explain(db: Database) -> None:
    """PostgreSQL's plan and timings of the grouping by year and province."""
    stmt = indicators.indicator_query(
        [Dimension.YEAR, Dimension.PROVINCE], indicators.IndicatorFilters()
    )
    async with db.session() as s:
        conn = await s.connection()
        sql = str(stmt.compile(conn.engine, compile_kwargs={"literal_binds": True}))
        rows = await s.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))
        print("\n".join(r[0] for r in rows))


async def run(args: argparse.Namespace, url: str) -> None:
    await asyncio.to_thread(upgrade, "bekal.reporting", url)
    db = Database(url)
    try:
        started = time.perf_counter()
        await fill(db, args.enrolments, args.participants)
        print(
            f"{args.enrolments} enrolments, {args.participants or args.enrolments * 3 // 4} "
            f"people written in {time.perf_counter() - started:.1f} s ({db.engine.dialect.name})"
        )
        if db.engine.dialect.name == "postgresql":
            async with db.engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
        filters = indicators.IndicatorFilters()

        def counted(ask: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
            async def afresh() -> Any:
                indicators._reports.clear()  # nothing kept: every run counts
                return await ask()

            return afresh

        async def report(group_by: list[Dimension]) -> Any:
            async with db.session() as s:
                r = await indicators.indicators(session=s, group_by=group_by, filters=filters)
                return r.groups, r.totals

        async def progress() -> Any:
            async with db.session() as s, db.session() as t:
                return (await targets.target_progress(session=s, targets_session=t))[0]

        async def public() -> Any:
            async with db.session() as s:
                return (await publication.public_tables(session=s, secret="bench"))[0]

        asks: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("totals", lambda: report([])),
            ("by year and province", lambda: report([Dimension.YEAR, Dimension.PROVINCE])),
            ("target progress", progress),
            ("public tables (suppressed)", public),
        ]
        # Counted: what a request costs after an event changed the projections. Kept: the same
        # question again at the same version of the projections (the report kept is answered).
        for label, ask in asks:
            await timed(f"{label}, counted", args.repeat, counted(ask))
            await timed(f"{label}, kept", args.repeat, ask)
        # Many officials opening the dashboard at once just after an event changed the
        # projections: the time until the last of them has its answer.
        dashboard = [Dimension.YEAR, Dimension.PROVINCE]

        async def at_once() -> Any:
            indicators._reports.clear()
            answers = await asyncio.gather(*[report(dashboard) for _ in range(args.at_once)])
            assert all(a == answers[0] for a in answers)
            return answers[0]

        await timed(f"by year and province, {args.at_once} at once, counted", args.repeat, at_once)
        if args.explain and db.engine.dialect.name == "postgresql":
            await explain(db)
    finally:
        await db.dispose()


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"reporting from {Path(bekal.reporting.__file__).parent}")
    if args.database_url:
        await run(args, args.database_url)
    elif args.postgres:
        name = run_tag()
        await create_database(name)
        try:
            await run(args, sqlalchemy_url(name))
        finally:
            await drop_database(name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            await run(args, f"sqlite+aiosqlite:///{tmp}/reporting.db")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--enrolments", type=int, default=50_000)
    parser.add_argument("--participants", type=int, default=None, help="default 3/4 of enrolments")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each query (median shown)")
    parser.add_argument("--at-once", type=int, default=16, help="dashboards opened at once")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE (PostgreSQL)")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    asyncio.run(main(parser.parse_args()))
