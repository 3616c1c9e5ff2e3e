"""The registry's command line: ``import FILE [--dry-run]``, ``rekey-history``,
``destroy-withdrawn-keys`` (docs/runbook.md)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bekal.registry.importer import (
    COLUMNS,
    BadFile,
    ImportReport,
    LineError,
    audit_import,
    count_lines,
    run_import,
)
from bekal.registry.services.keys import destroy_withdrawn_keys, key_named, keys_for_the_shared
from bekal.registry.settings import RegistrySettings
from bekal.shared.db import Database
from bekal.shared.events import catalogue
from bekal.shared.events.personal import PersonKey
from bekal.shared.events.topics import REGISTRY_INMATES
from bekal.shared.messaging.kafka import make_producer
from bekal.shared.messaging.outbox import OutboxRelay, backlog
from bekal.shared.messaging.rekey import rekey_topic
from bekal.shared.migrations import upgrade


async def _import(args: argparse.Namespace, settings: RegistrySettings, console: Console) -> int:
    path = Path(args.file)
    try:  # the whole file is checked (UTF-8, line sizes) before anything is imported
        total = count_lines(path)
    except BadFile as exc:
        console.print(f"[red]Berkas ditolak:[/red] {exc}")
        return 2
    db = Database(settings.database_url)
    actor = args.actor or f"cli:{getpass.getuser()}"
    shown = 0

    async def on_error(error: LineError) -> None:
        nonlocal shown
        shown += 1
        where = f"{error.field}: " if error.field else ""
        progress.console.print(f"baris {error.line}: {where}{error.reason}", highlight=False)

    async def on_skip(line: LineError) -> None:
        progress.console.print(f"baris {line.line}: dilewati: {line.reason}", highlight=False)

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("baris"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("Memeriksa" if args.dry_run else "Mengimpor", total=total)

    async def on_progress(report: ImportReport) -> None:
        progress.update(task, completed=report.processed_lines)

    try:
        with progress:
            report = await run_import(
                db,
                path,
                secret=settings.pseudonym_secret,
                dry_run=args.dry_run,
                recorded_by=actor,
                roles="cli",
                source=f"cli:{path.name}",
                on_error=on_error,
                on_skip=on_skip,
                on_progress=on_progress,
                chunk_size=args.chunk_size,
            )
        if not args.dry_run:
            await audit_import(
                db, actor=actor, roles="cli", report=report, source=f"cli:{path.name}"
            )
    except BadFile as exc:
        console.print(f"[red]Berkas ditolak:[/red] {exc}")
        return 2
    finally:
        await db.dispose()
    mode = "Uji coba (tidak ada yang ditulis)" if args.dry_run else "Impor selesai"
    would = "akan " if args.dry_run else ""
    console.print(
        f"{mode}: {report.processed_lines} baris, {report.created} {would}dibuat, "
        f"{report.updated} {would}diperbarui, {report.transferred} {would}dipindahkan, "
        f"{report.released} {would}dibebaskan, {report.unchanged} tidak berubah, "
        f"{report.skipped} dilewati, {report.invalid} salah."
    )
    if report.ignored_columns:
        console.print(f"Kolom diabaikan: {', '.join(report.ignored_columns)}")
    return 1 if report.invalid else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bekal-registry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "import",
        help="import inmates from a CSV export (columns: " + ", ".join(COLUMNS) + ")",
    )
    add_import_arguments(p)
    sub.add_parser(
        "rekey-history",
        help=(
            "seal the names in registry.inmates' history published before crypto-shredding "
            "(docs/runbook.md; the registry's relay stopped, its outbox empty)"
        ),
    )
    sub.add_parser(
        "destroy-withdrawn-keys",
        help=(
            "destroy the keys of people whose consent was withdrawn before a withdrawal "
            "destroyed the key (docs/runbook.md, section 8)"
        ),
    )
    args = parser.parse_args(argv)
    if args.command == "destroy-withdrawn-keys":
        settings = RegistrySettings(service_name="registry")
        upgrade("bekal.registry", settings.database_url)
        return asyncio.run(destroy_withdrawn(settings, Console()))
    if args.command == "rekey-history":
        settings = RegistrySettings(service_name="registry")
        upgrade("bekal.registry", settings.database_url)
        return asyncio.run(rekey_history(settings, Console()))
    return run_import_command(args)


async def destroy_withdrawn(settings: RegistrySettings, console: Console) -> int:
    """The keys of people withdrawn while a withdrawal still kept the key, destroyed now: their
    tombstones go out through the outbox (the registry may keep running)."""
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            destroyed = await destroy_withdrawn_keys(session=session)
            await session.commit()
    finally:
        await db.dispose()
    console.print(
        f"Kunci dimusnahkan: {destroyed} (persetujuan sudah ditarik). Tanda hapusnya terkirim "
        "lewat outbox registri."
    )
    return 0


async def rekey_history(settings: RegistrySettings, console: Console) -> int:
    """Keys for everyone shared before, published; then registry.inmates re-keyed in place."""
    db = Database(settings.database_url)
    producer = make_producer(settings)
    await producer.start()
    try:
        if await backlog(db):
            console.print(
                "[red]Outbox belum kosong:[/red] jalankan registri sampai semua event terkirim, "
                "lalu hentikan, sebelum riwayat disegel ulang."
            )
            return 2
        async with db.session() as session:
            made = await keys_for_the_shared(session=session)
            await session.commit()
        relay = OutboxRelay(db=db, producer=producer, settings=settings)
        while await relay.publish_pending():  # the new keys, on their topic before the copies
            pass

        async def key(participant_id: uuid.UUID) -> PersonKey | None:
            # A version 1 event was published under no key, before any withdrawal: it is sealed
            # with the 1st generation, or goes without its fields once that one is destroyed
            # (as training's completions, read with the ring by the participant id).
            async with db.session() as session:
                return await key_named(session=session, kid=str(participant_id))

        result = await rekey_topic(
            settings=settings,
            topic=REGISTRY_INMATES,
            registry=catalogue,
            key_of=key,
            producer=producer,
        )
    finally:
        await producer.stop()
        await db.dispose()
    console.print(
        f"Kunci baru: {made}. {REGISTRY_INMATES}: {result.copied} rekaman disalin, "
        f"{result.sealed} disegel, {result.dropped_fields} tanpa data pribadi (sudah dihapus)."
    )
    return 0


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the CSV file (UTF-8, header line first)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check every line, report the bad ones, write nothing",
    )
    p.add_argument("--actor", help="who is importing, for the audit trail (default cli:<user>)")
    p.add_argument("--chunk-size", type=int, default=1000, help="lines per transaction")


def run_import_command(args: argparse.Namespace) -> int:
    """Settings from the environment (DATABASE_URL, PSEUDONYM_SECRET); migrates first."""
    settings = RegistrySettings(service_name="registry")
    console = Console()
    if not Path(args.file).is_file():
        console.print(f"[red]Berkas tidak ditemukan:[/red] {args.file}")
        return 2
    upgrade("bekal.registry", settings.database_url)
    return asyncio.run(_import(args, settings, console))


if __name__ == "__main__":
    sys.exit(main())
