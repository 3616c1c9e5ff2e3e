"""Benchmark: the registry's name and number search at national volume, on SQLite and PostgreSQL.

Loads 530 facilities and 300,000 people straight into a fresh database of each kind (``COPY``
on PostgreSQL, one ``executemany`` on SQLite; the search index of migration 0005 is filled as
rows arrive), runs ``ANALYZE``, then times the search as the API answers it: the service's
``list_inmates`` (the count, capped at ``LIST_COUNT_LIMIT``'s default of 1,000, and the first
page of 20), the audit of the page's reads, the commit. Each needle is searched by a registry
administrator (the whole country) and by a facility officer (one facility), one request at a
time, and so is the people list with no search. Each row names its kind of query (a common
name, a 3-letter substring, a rare name, a number, ...), and the p50/p99 of each kind over its
rows is printed after.

Then, on the same data, the same searches with the exact count (every match counted, as before
the cap; ``--exact-requests``, 0 leaves it out), and without the index (migration 0005
downgraded, the search reading every row as before it; ``--skip-baseline`` leaves that out).

Run with ``.venv/bin/python benchmarks/registry_search.py [--inmates N] [--requests N]
[--database sqlite|postgresql|both]``; PostgreSQL is ``BENCH_POSTGRES_DSN``'s server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from sqlalchemy import ColumnElement, event, func, or_, text
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    create_database,
    drop_database,
    machine,
    percentile,
    pg_dsn,
    pg_server_version,
    run_tag,
    sqlalchemy_url,
    table,
)

from bekal.registry import domain
from bekal.registry.models import Inmate
from bekal.registry.services import audit, inmates
from bekal.registry.settings import RegistrySettings
from bekal.shared.auth import Ministry, Principal, Role
from bekal.shared.db import Database
from bekal.shared.logging import configure_logging
from bekal.shared.migrations import alembic_config, upgrade

FACILITIES = 530
FIRST = [
    "Siti", "Ṣiti", "Budi", "Rina", "Agus", "Dewi", "Eko", "Ayu", "Joko", "Sri", "Ahmad",
    "Nur", "Yosefína", "Putu", "Made", "Wayan", "Maria", "Yohanes", "Fransiska", "Hendra",
    "Rudi", "Indah", "Bambang", "Lestari", "Teguh", "Wahyu", "Fitri", "Andi", "Rizky", "Dian",
]  # fmt: skip
MIDDLE = [
    "", "", "", "Nur", "Dwi", "Tri", "Eka", "Kartika", "Puspita", "Adi", "Muhammad", "Ayu",
]  # fmt: skip
LAST = [
    "Aminah", "Ámínah", "Santoso", "Wulandari", "Saputra", "Lestari", "Hidayat", "Rahayu",
    "Fauzi", "Fauzī", "Kristanti", "Nurhaliza", "Siregar", "Nasution", "Simanjuntak",
    "Pratama", "Gunawan", "Setiawan", "Kusuma", "Halim", "Tanjung", "Harahap", "Sihombing",
    "Manurung", "Situmorang", "Wijaya", "Susanto", "Purnomo", "Sembiring", "Ginting",
]  # fmt: skip
# (needle, kind): common, middling and rare name parts, an accent and case variant, numbers,
# short needles. None is the people list with no search.
NEEDLES: list[tuple[str | None, str]] = [
    ("siti", "common name"),
    ("muhammad", "common name"),
    ("ÁMÍNAH", "common name"),
    ("aminah", "common name"),
    ("wulandari", "common name"),
    ("kartika", "middling name"),
    ("hend", "middling name"),
    ("wan", "3-letter substring"),
    ("nur", "3-letter substring"),
    ("RN.0123", "number prefix"),
    ("0042517", "one number"),
    ("ti", "2 letters (no index)"),
    (None, "people list"),
]
# What the API and the staff page count up to (LIST_COUNT_LIMIT's default).
COUNT_LIMIT = RegistrySettings.model_fields["list_count_limit"].default

INMATE_COLUMNS = [
    "id", "registration_number", "full_name", "search_name", "nik_hash", "sex",
    "date_of_birth", "facility_id", "admission_date", "status", "consent_training",
    "consent_data_sharing", "shared", "created_at", "updated_at",
]  # fmt: skip
FACILITY_COLUMNS = [
    "id", "code", "name", "kind", "facility_class", "province", "regional_office",
    "capacity", "active", "created_at", "updated_at",
]  # fmt: skip

ADMIN = Principal("bench-admin", Ministry.CORRECTIONS, frozenset({Role.REGISTRY_ADMIN}))


def facilities(now: datetime) -> list[tuple[Any, ...]]:
    return [
        (
            str(uuid.UUID(int=n + 1)),
            f"LP-{n:03d}",
            f"Lapas {n:03d}",
            "lapas",
            "IIA",
            "Banten",
            "Kanwil Banten",
            1000,
            True,
            now,
            now,
        )
        for n in range(FACILITIES)
    ]


def people(count: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    rnd = random.Random(42)
    for i in range(count):
        parts = [rnd.choice(FIRST), rnd.choice(MIDDLE), rnd.choice(LAST)]
        name = " ".join(p for p in parts if p)
        yield (
            str(uuid.uuid4()),
            f"RN.{i:07d}",
            name,
            domain.search_key(name),
            f"h{i}",
            rnd.choice("FM"),
            date(1960, 1, 1) + timedelta(days=rnd.randrange(15000)),
            str(uuid.UUID(int=i % FACILITIES + 1)),
            date(2015, 1, 1) + timedelta(days=rnd.randrange(3500)),
            "in_custody",
            False,
            False,
            False,
            now,
            now,
        )


async def load_postgresql(name: str, count: int) -> float:
    now = datetime.now(UTC)
    started = time.perf_counter()
    conn = await asyncpg.connect(pg_dsn(name))
    try:
        await conn.copy_records_to_table(
            "facilities", records=facilities(now), columns=FACILITY_COLUMNS
        )
        await conn.copy_records_to_table(
            "inmates", records=people(count, now), columns=INMATE_COLUMNS
        )
        # VACUUM too: it empties the GIN indexes' pending lists (rows written since their last
        # cleanup, read in full by every search through them), as autovacuum would a little
        # later, in the middle of the timed searches.
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
    return time.perf_counter() - started


def load_sqlite(path: Path, count: int) -> float:
    now = datetime.now(UTC)
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    try:
        with conn:

            def marks(n: int) -> str:
                return ", ".join("?" * n)

            conn.executemany(
                f"INSERT INTO facilities ({', '.join(FACILITY_COLUMNS)}) "
                f"VALUES ({marks(len(FACILITY_COLUMNS))})",
                (_sqlite_row(r) for r in facilities(now)),
            )
            conn.executemany(
                f"INSERT INTO inmates ({', '.join(INMATE_COLUMNS)}) "
                f"VALUES ({marks(len(INMATE_COLUMNS))})",
                (_sqlite_row(r) for r in people(count, now)),
            )
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return time.perf_counter() - started


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as SQLAlchemy writes them to SQLite (ISO dates and times)."""
    return tuple(
        v.strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(v, datetime)
        else v.isoformat()
        if isinstance(v, date)
        else v
        for v in row
    )


def _full_scan(
    session: AsyncSession, needle: str, *, in_facilities: bool = False, common: bool = False
) -> ColumnElement[bool]:
    """The search condition before migration 0005: no index serves it."""
    return or_(
        Inmate.search_name.contains(domain.search_key(needle), autoescape=True),
        func.lower(Inmate.registration_number).contains(needle.lower(), autoescape=True),
    )


async def search_once(
    db: Database, principal: Principal, needle: str | None, count_limit: int | None
) -> tuple[float, int, bool]:
    """One search as the API runs it: count and first page, the audit of its reads, commit."""
    started = time.perf_counter()
    async with db.session() as session:
        page = await inmates.list_inmates(
            session=session,
            principal=principal,
            facility_id=None,
            status=None,
            q=needle,
            limit=20,
            cursor=None,
            count_limit=count_limit,
        )
        await audit.audit_reads(
            session=session, principal=principal, action="inmate.listed", inmates=page.rows
        )
        await session.commit()
    return time.perf_counter() - started, page.count, page.count_capped


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backends(db: Database) -> list[int]:
    """The PostgreSQL server processes of ``db``'s pooled connections (none on SQLite)."""
    if db.engine.dialect.name != "postgresql":
        return []
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend'"
            )
        )
        return list(rows.scalars())


async def server_ms(
    db: Database, principal: Principal, needle: str | None, count_limit: int | None
) -> float:
    """PostgreSQL's own time (planning and execution, from ``EXPLAIN ANALYZE``) for the
    statements one search sends, the audit's ``INSERT`` aside; the median of 5."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await search_once(db, principal, needle, count_limit)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    totals = []
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        for _ in range(5):
            total = 0.0
            for statement, parameters in statements:
                explained = await raw.fetchval(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters
                )
                # SQLAlchemy's asyncpg connections decode json; a bare one gives text.
                plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]
                total += plan["Planning Time"] + plan["Execution Time"]
            totals.append(total)
    return statistics.median(totals)


async def measure(db: Database, requests: int, count_limit: int | None) -> list[list[Any]]:
    officer = Principal(
        "bench-officer",
        Ministry.CORRECTIONS,
        frozenset({Role.FACILITY_OFFICER}),
        frozenset({"LP-017"}),
    )
    rows = []
    for needle, kind in NEEDLES:
        for who, principal in (("national", ADMIN), ("one facility", officer)):
            for _ in range(3):  # warm the caches and the prepared statements
                await search_once(db, principal, needle, count_limit)
            backends = await _backends(db)
            times = []
            found, capped = 0, False
            python_started = time.process_time()
            server_started = sum(_cpu_seconds(pid) for pid in backends)
            for _ in range(requests):
                elapsed, found, capped = await search_once(db, principal, needle, count_limit)
                times.append(elapsed * 1000)
            python_cpu = (time.process_time() - python_started) * 1000 / requests
            server_cpu = (sum(_cpu_seconds(pid) for pid in backends) - server_started) * 1000
            explained = (
                await server_ms(db, principal, needle, count_limit) if backends else float("nan")
            )
            rows.append(
                [
                    "(no search)" if needle is None else needle,
                    kind,
                    who,
                    f"more than {found:,}" if capped else f"{found:,}",
                    percentile(times, 50),
                    percentile(times, 99),
                    max(times),
                    python_cpu,
                    server_cpu / requests if backends else float("nan"),
                    explained,
                    times,
                ]
            )
    return rows


def report(title: str, rows: list[list[Any]]) -> None:
    print(f"\n{title}\n")
    # CPU a request: this process's (Python, and SQLite's engine on SQLite), PostgreSQL's
    # server processes' (/proc), and PostgreSQL's time under EXPLAIN ANALYZE, which a loaded
    # machine stretches far less than p99.
    cpu = ["python cpu ms", "server cpu ms", "server explain ms"]
    headers = ["needle", "kind", "scope", "found", "p50 ms", "p99 ms", "max ms", *cpu]
    print(table(headers, [row[:-1] for row in rows]))
    # Per kind of query and scope, over every request of its rows.
    kinds: dict[tuple[str, str], list[list[Any]]] = {}
    for row in rows:
        kinds.setdefault((row[1], row[2]), []).append(row)
    print(f"\n{title}, per kind of query\n")
    print(
        table(
            ["kind", "scope", "requests", "p50 ms", "p99 ms", "max ms", *cpu],
            [
                [
                    kind,
                    who,
                    len(times := [t for row in group for t in row[-1]]),
                    percentile(times, 50),
                    percentile(times, 99),
                    max(times),
                    *(statistics.mean(row[i] for row in group) for i in (7, 8, 9)),
                ]
                for (kind, who), group in kinds.items()
            ],
        )
    )


async def run(kind: str, url: str, count: int, requests: int, exact: int, baseline: int) -> None:
    await asyncio.to_thread(upgrade, "bekal.registry", url)
    if kind == "sqlite":
        seconds = await asyncio.to_thread(load_sqlite, Path(url.split("///", 1)[1]), count)
    else:
        seconds = await load_postgresql(url.rsplit("/", 1)[1], count)
    print(f"\n{kind}: {count:,} people loaded and analysed in {seconds:.1f} s")
    db = Database(url)
    try:
        report(
            f"{kind}, with the search index, the count capped at {COUNT_LIMIT:,}",
            await measure(db, requests, COUNT_LIMIT),
        )
        if exact:
            report(
                f"{kind}, with the search index, every match counted",
                await measure(db, exact, None),
            )
        if baseline:
            config = alembic_config("bekal.registry", url)
            await asyncio.to_thread(command.downgrade, config, "0004")
            original, serves = inmates.search_condition, inmates.index_serves
            inmates.search_condition = _full_scan  # type: ignore[assignment]
            inmates.index_serves = lambda session, needle: False  # type: ignore[assignment]
            try:
                rows = await measure(db, baseline, None)
            finally:
                inmates.search_condition = original  # type: ignore[assignment]
                inmates.index_serves = serves  # type: ignore[assignment]
            report(f"{kind}, without it (every row read, every match counted)", rows)
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inmates", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=200, help="timed searches per row")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--exact-requests",
        type=int,
        default=20,
        help="timed searches per row with every match counted (0: none)",
    )
    parser.add_argument(
        "--baseline-requests", type=int, default=20, help="timed searches per row without it"
    )
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    configure_logging(service="registry", level="WARNING", json=False)
    baseline = 0 if args.skip_baseline else args.baseline_requests
    print(machine())
    print(f"SQLite {sqlite3.sqlite_version}; PostgreSQL {await pg_server_version()}")
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'registry.db'}"
            await run("sqlite", url, args.inmates, args.requests, args.exact_requests, baseline)
    if args.database in ("postgresql", "both"):
        name = f"{run_tag()}_search"
        await create_database(name)
        try:
            await run(
                "postgresql",
                sqlalchemy_url(name),
                args.inmates,
                args.requests,
                args.exact_requests,
                baseline,
            )
        finally:
            await drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
