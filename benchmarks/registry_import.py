"""Benchmark: import a generated 300,000-line inmate CSV into a fresh database.

Prints lines per second and peak memory for a dry run, a real run, a second (idempotent)
run of the same file, and the next day's export, in which one person in 100 changed (a
transfer, a new expected release date, a release or consent given, in turn).

Run with ``.venv/bin/python benchmarks/registry_import.py [--rows N]``;
``--tracemalloc`` also reports the peak of Python allocations (slower).

``--postgres`` imports into a fresh PostgreSQL database (``BENCH_POSTGRES_DSN``) instead of
SQLite, with autovacuum off for its tables (as on the test server: nothing is analysed unless
the import does it), and measures raw ``COPY`` of the same file into a table of text columns
in the same run: each run is also given as a share of it. ``--deciles`` prints the rate of
each tenth of the file, to see whether an import slows down as the table grows;
``--no-analyse`` takes out the import's own ANALYZE, so no statistics exist at all;
``--chunk-size`` sets the lines of a chunk (a transaction). On PostgreSQL each run also
prints the CPU time it took in this process (Python) and in the database's server processes
(PostgreSQL), per line: on a machine shared with other work, where the rates move with the
load, those move far less.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import date, timedelta
from pathlib import Path

from harness import create_database, drop_database, machine, pg_dsn, run_tag, sqlalchemy_url

from bekal.registry import importer
from bekal.registry.importer import COLUMNS, ImportReport, LineError, run_import
from bekal.registry.models import Facility
from bekal.shared.db import Database, utcnow
from bekal.shared.logging import configure_logging
from bekal.shared.migrations import upgrade

SECRET = "benchmark-pseudonym-secret"
FACILITIES = [f"LP-BENCH-{n:03d}" for n in range(60)]
FIRST = ["Siti", "Budi", "Rina", "Agus", "Dewi", "Eko", "Ayu", "Joko", "Sri", "Ahmad", "Nur"]
LAST = ["Aminah", "Santoso", "Wulandari", "Saputra", "Lestari", "Hidayat", "Rahayu", "Fauzi"]


def generate(path: Path, rows: int, bad_every: int, changed_every: int = 0) -> None:
    """Written line by line, so generating does not hold the file either.

    With ``changed_every``, the same people (the same random draws), one in that many changed.
    """
    rnd = random.Random(42)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(rows):
            born = date(1960, 1, 1) + timedelta(days=rnd.randrange(0, 15000))
            admitted = date(2015, 1, 1) + timedelta(days=rnd.randrange(0, 3500))
            release = admitted + timedelta(days=rnd.randrange(180, 4000))
            nik = f"{3100000000000000 + i:016d}"
            if bad_every and i % bad_every == bad_every - 1:
                nik = nik[:-1]  # a bad line now and then, as real exports have
            consent = rnd.random() < 0.3
            name = f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
            sex = rnd.choice("FM")
            education = rnd.choice(["SD", "SMP", "SMA", ""])
            facility = FACILITIES[i % len(FACILITIES)]
            status = "in_custody"
            if changed_every and i % changed_every == 0:
                change = (i // changed_every) % 4
                if change == 0:
                    facility = FACILITIES[(i + 1) % len(FACILITIES)]
                elif change == 1:
                    release += timedelta(days=30)
                elif change == 2:
                    status = "parole"
                else:
                    consent = True
            w.writerow(
                [
                    f"BN.{i:07d}",
                    name,
                    nik,
                    sex,
                    born.isoformat(),
                    education,
                    facility,
                    admitted.isoformat(),
                    release.isoformat(),
                    status,
                    "",  # release_kind: the status names it
                    "",  # released_on: the day of the import
                    "ya" if consent else "tidak",
                    "ya" if consent else "tidak",
                ]
            )


async def seed_facilities(db: Database) -> None:
    async with db.session() as s:
        now = utcnow()
        for code in FACILITIES:
            s.add(
                Facility(
                    id=uuid.uuid4(),
                    code=code,
                    name=code,
                    kind="lapas",
                    facility_class="IIA",
                    province="Jawa Barat",
                    regional_office="Kanwil Jawa Barat",
                    capacity=5000,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
        await s.commit()


def max_rss_mib() -> float:
    # Linux reports KiB, macOS bytes.
    raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return raw / (1024 * 1024) if sys.platform == "darwin" else raw / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of processes (the database's server processes), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone, or not on this machine
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def server_pids(dsn: str, database: str) -> list[int]:
    """The server processes serving ``database`` (the import's pooled connections)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


async def raw_copy(dsn: str, path: Path) -> float:
    """Lines per second of PostgreSQL's own ``COPY`` of the file into a table of text columns:
    the ceiling the import is compared with."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        columns = ", ".join(f"{name} text" for name in COLUMNS)
        await conn.execute(f"CREATE UNLOGGED TABLE raw_copy ({columns})")
        started = time.perf_counter()
        result = await conn.copy_to_table("raw_copy", source=path, format="csv", header=True)
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE raw_copy")
    finally:
        await conn.close()
    lines = int(result.split()[-1])
    rate = lines / elapsed
    print(
        f"{'raw COPY':<22} {lines:>8} lines in {elapsed:7.1f} s = {rate:8.0f} lines/s", flush=True
    )
    return rate


async def autovacuum_off(dsn: str) -> None:
    """Autovacuum off for every table, as on the test server: no statistics unless analysed."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for (name,) in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ):
            await conn.execute(f'ALTER TABLE "{name}" SET (autovacuum_enabled = false)')
    finally:
        await conn.close()


async def one_run(
    db: Database,
    path: Path,
    *,
    dry_run: bool,
    label: str,
    trace: bool,
    deciles: bool = False,
    ceiling: float | None = None,
    chunk_size: int = importer.CHUNK_SIZE,
    database: tuple[str, str] | None = None,
) -> None:
    errors = 0

    async def on_error(error: LineError) -> None:
        nonlocal errors
        errors += 1

    marks: list[tuple[int, float]] = []

    async def on_progress(report: ImportReport) -> None:
        if not deciles or not report.total_lines:
            return
        tenth = report.total_lines / 10
        last_lines, last_at = marks[-1] if marks else (0, started)
        if report.processed_lines - last_lines >= tenth or (
            report.processed_lines >= report.total_lines and report.processed_lines > last_lines
        ):
            now = time.perf_counter()
            marks.append((report.processed_lines, now))
            print(
                f"    {report.processed_lines / report.total_lines:4.0%} "
                f"{(report.processed_lines - last_lines) / (now - last_at):8.0f} lines/s",
                flush=True,
            )

    if trace:
        tracemalloc.start()
    rss_before = max_rss_mib()
    # The pool's connections are opened before the run is timed, so their processes are known.
    if database is not None:
        async with db.session() as warm, db.session() as warm2:
            await warm.connection()
            await warm2.connection()
        pids = await server_pids(*database)
        server_before = cpu_seconds(pids)
    cpu_before = time.process_time()
    started = time.perf_counter()
    report = await run_import(
        db,
        path,
        secret=SECRET,
        dry_run=dry_run,
        recorded_by="benchmark",
        on_error=on_error,
        on_progress=on_progress,
        chunk_size=chunk_size,
    )
    elapsed = time.perf_counter() - started
    cpu = ""
    if database is not None:
        lines = max(report.processed_lines, 1)
        python_us = (time.process_time() - cpu_before) / lines * 1e6
        server = cpu_seconds(sorted(set(pids) | set(await server_pids(*database)))) - server_before
        cpu = f"; CPU a line: Python {python_us:.0f} us, PostgreSQL {server / lines * 1e6:.0f} us"
    peak = ""
    if trace:
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak = f", tracemalloc peak {traced_peak / 2**20:.1f} MiB"
    rate = report.processed_lines / elapsed
    share = f" ({rate / ceiling:.3f} of raw COPY)" if ceiling else ""
    print(
        f"{label:<22} {report.processed_lines:>8} lines in {elapsed:7.1f} s = "
        f"{rate:8.0f} lines/s{share}; created {report.created}, "
        f"updated {report.updated}, transferred {report.transferred}, "
        f"released {report.released}, unchanged {report.unchanged}, invalid {report.invalid}; "
        f"max RSS {rss_before:.0f} -> {max_rss_mib():.0f} MiB{peak}{cpu}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--bad-every", type=int, default=1000, help="one bad line per N (0: none)")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--deciles", action="store_true", help="the rate of each tenth")
    parser.add_argument("--chunk-size", type=int, default=importer.CHUNK_SIZE, help="lines a chunk")
    parser.add_argument(
        "--no-analyse",
        action="store_true",
        help="take the import's ANALYZE out: its speed must not depend on statistics",
    )
    args = parser.parse_args()
    if args.no_analyse:

        async def no_analysis(db: Database) -> None:
            return None

        importer._analyse = no_analysis
    print(machine())
    # A line per person changed would be thousands of lines here, and would cost time to print.
    configure_logging(service="registry", level="WARNING", json=False)

    with tempfile.TemporaryDirectory(prefix="bekal-bench-") as tmp:
        csv_path = Path(tmp) / "inmates.csv"
        t = time.perf_counter()
        generate(csv_path, args.rows, args.bad_every)
        next_day = Path(tmp) / "inmates-next-day.csv"
        generate(next_day, args.rows, args.bad_every, changed_every=100)
        size = csv_path.stat().st_size / 2**20
        print(f"generated {args.rows} lines ({size:.1f} MiB) in {time.perf_counter() - t:.1f} s")
        name = f"{run_tag()}_import"
        if args.postgres:
            await create_database(name)
            url = sqlalchemy_url(name)
        else:
            url = f"sqlite+aiosqlite:///{tmp}/registry.db"
        await asyncio.to_thread(upgrade, "bekal.registry", url)
        db = Database(url)
        try:
            ceiling: float | None = None
            if args.postgres:
                await autovacuum_off(pg_dsn(name))
                ceiling = await raw_copy(pg_dsn(name), csv_path)
            await seed_facilities(db)
            print(f"max RSS before importing: {max_rss_mib():.0f} MiB")
            runs = [
                (csv_path, True, "dry run"),
                (csv_path, False, "import"),
                (csv_path, False, "same file again"),
                (next_day, False, "next day (1% changed)"),
            ]
            for path, dry_run, label in runs:
                await one_run(
                    db,
                    path,
                    dry_run=dry_run,
                    label=label,
                    trace=args.tracemalloc,
                    deciles=args.deciles,
                    ceiling=ceiling,
                    chunk_size=args.chunk_size,
                    database=(pg_dsn(name), name) if args.postgres else None,
                )
            if args.postgres:
                await raw_copy(pg_dsn(name), next_day)
        finally:
            await db.dispose()
            if args.postgres:
                await drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
