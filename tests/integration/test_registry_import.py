"""Bulk CSV import of inmates, over HTTP (job + progress) and from the command line, on SQLite and
PostgreSQL: a dry run writes nothing, a real run is idempotent, consenting people are shared.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bekal.registry.domain import decrypt_nik, nik_digest
from bekal.registry.importer import ImportReport, LineError, run_import
from bekal.registry.models import AuditEntry, ImportJob, Inmate
from bekal.registry.models import PersonKey as PersonKeyRow
from bekal.shared.events.catalogue import InmateShared, PersonKeyPublished
from bekal.shared.events.personal import PersonKey, opened
from bekal.shared.messaging.models import OutboxMessage
from tests.support.registry import SECRET, Registry

pytestmark = pytest.mark.integration

HEADER = (
    "registration_number,full_name,nik,sex,date_of_birth,education_level,facility_code,"
    "admission_date,expected_release_date,status,consent_training,consent_data_sharing,offence\n"
)
GOOD_LINES = [
    "IM.1,Siti Aminah,6171014505900101,F,1990-05-05,SMA,LP-IMP,2023-01-10,2026-01-10,"
    "in_custody,ya,ya,x\n",
    'IM.2,"Budi, Santoso",6171014505900102,L,13/05/1988,,LP-IMP,2023-02-01,,,tidak,,x\n',
    "IM.3,Rina,6171014505900103,P,1995-01-01,SMP,LP-IMP,2023-03-01,2025-12-01,in_custody,1,1,\n",
]
BAD_LINES = [
    # line 5: NIK too short; 6: unknown facility; 7: inactive facility; 8: released and never
    # registered (skipped, not bad); 9: the same registration number again; 10: the same NIK
    # under another number.
    "IM.4,Ani,617101450590010,F,1990-05-05,,LP-IMP,2023-01-10,,,,,\n",
    "IM.5,Ani,6171014505900105,F,1990-05-05,,LP-NOPE,2023-01-10,,,,,\n",
    "IM.6,Ani,6171014505900106,F,1990-05-05,,LP-CLOSED,2023-01-10,,,,,\n",
    "IM.7,Ani,6171014505900107,F,1990-05-05,,LP-IMP,2023-01-10,,released,,,\n",
    "IM.1,Siti Aminah,6171014505900101,F,1990-05-05,SMA,LP-IMP,2023-01-10,,,,,\n",
    "IM.8,Siti,6171014505900103,F,1990-05-05,,LP-IMP,2023-01-10,,,,,\n",
]
EXPECTED_ERRORS = [
    (5, "nik"),
    (6, "facility_code"),
    (7, "facility_code"),
    (9, "registration_number"),
    (10, "nik"),
]


async def imported(reg: Registry, text: str, *, dry_run: bool) -> dict[str, Any]:
    """The import job of ``text``, finished; it names no NIK."""
    job = await reg.upload(text, dry_run=dry_run)
    assert not any(nik in json.dumps(job) for nik in NIK_TEXTS), job
    return job


NIK_TEXTS = {
    row["nik"] for row in csv.DictReader(io.StringIO(HEADER + "".join(GOOD_LINES + BAD_LINES)))
}


@pytest.fixture
async def registry(registry: Registry) -> Registry:
    """The registry with LP-IMP and the inactive LP-CLOSED; its admin signs as ``adm``."""
    reg = replace(registry, admin_subject="adm")
    for code, active in (("LP-IMP", True), ("LP-CLOSED", False)):
        await reg.facility(
            {
                "code": code,
                "name": code,
                "kind": "lapas",
                "facility_class": "IIB",
                "province": "Kalimantan Barat",
                "regional_office": "Kanwil Kalbar",
                "capacity": 100,
                "active": active,
            }
        )
    return reg


async def test_http_dry_run_reports_every_bad_line_and_writes_nothing_then_imports_once(
    registry: Registry, capfd: pytest.CaptureFixture[str]
):
    reg = registry
    text = HEADER + "".join(GOOD_LINES + BAD_LINES)
    outbox_before = await reg.count(OutboxMessage)

    dry = await imported(reg, text, dry_run=True)
    assert dry["status"] == "done" and dry["dry_run"] is True and dry["progress"] == 1.0
    assert (dry["total_lines"], dry["processed_lines"]) == (9, 9)
    assert (dry["created"], dry["unchanged"], dry["skipped"], dry["invalid"]) == (3, 0, 1, 5)
    assert [(e["line"], e["field"]) for e in dry["errors"]] == EXPECTED_ERRORS
    assert [(e["line"], e["field"]) for e in dry["skipped_lines"]] == [(8, "status")]
    assert all(e["reason"] for e in dry["errors"])
    assert await reg.count(Inmate) == 0
    assert await reg.count(OutboxMessage) == outbox_before
    assert await reg.count(AuditEntry, AuditEntry.action == "inmates.imported") == 0

    real = await imported(reg, text, dry_run=False)
    assert (real["created"], real["unchanged"], real["skipped"], real["invalid"]) == (3, 0, 1, 5)
    assert [(e["line"], e["field"]) for e in real["errors"]] == EXPECTED_ERRORS
    rows = await reg.people()
    assert sorted(rows) == ["IM.1", "IM.2", "IM.3"]
    assert rows["IM.2"].full_name == "Budi, Santoso" and rows["IM.2"].sex == "M"
    assert rows["IM.1"].shared and rows["IM.3"].shared and not rows["IM.2"].shared
    assert rows["IM.1"].consent_recorded_by == "adm"
    shared_events = [p for p in await reg.published("registry.inmates", at_least=2)]
    assert sorted(str(p.event.participant_id) for p in shared_events) == sorted(
        str(rows[n].id) for n in ("IM.1", "IM.3")
    )
    assert all(isinstance(p.event, InmateShared) for p in shared_events)
    before = {n: (r.updated_at, r.full_name, r.facility_id) for n, r in rows.items()}
    outbox_after_first = await reg.count(OutboxMessage)

    again = await imported(reg, text, dry_run=False)
    assert (again["created"], again["unchanged"], again["invalid"]) == (0, 3, 5)
    assert (again["updated"], again["transferred"], again["released"]) == (0, 0, 0)
    rows = await reg.people()
    assert {n: (r.updated_at, r.full_name, r.facility_id) for n, r in rows.items()} == before
    assert await reg.count(OutboxMessage) == outbox_after_first
    assert await reg.count(AuditEntry, AuditEntry.action == "inmates.imported") == 2

    # An erased person is not brought back by importing the same export again.
    r = await reg.client.post(f"/api/v1/inmates/{rows['IM.1'].id}/erasure", headers=reg.admin)
    assert r.status_code == 200, r.text
    third = await imported(reg, text, dry_run=False)
    assert (third["created"], third["unchanged"], third["invalid"]) == (0, 3, 5)
    async with reg.app.state.db.session() as s:
        erased = await s.get(Inmate, rows["IM.1"].id)
    assert erased is not None and erased.full_name == "[dihapus]" and erased.erased_at

    # The NIKs are in no event, no job, no log line (only their keyed hash and ciphertext).
    for p in await reg.published("registry.inmates"):
        assert not any(nik.encode() in p.raw() for nik in NIK_TEXTS)
    logs = capfd.readouterr()
    assert "import_job_started" in logs.out
    assert not any(nik in logs.out + logs.err for nik in NIK_TEXTS)


async def test_a_file_without_the_required_columns_fails_as_a_whole(registry: Registry):
    job = await imported(registry, "registration_number,full_name\nA,B\n", dry_run=False)
    assert job["status"] == "failed" and "nik" in job["failure"]
    assert await registry.count(Inmate) == 0


async def test_only_registry_admins_import(registry: Registry):
    reg = registry
    for headers in (reg.officer("LP-IMP"), reg.industry):
        r = await reg.client.post("/api/v1/imports", content=HEADER.encode(), headers=headers)
        assert r.status_code == 403
    assert (await reg.client.post("/api/v1/imports", content=b"x")).status_code == 401
    r = await reg.client.post("/api/v1/imports", content=b"", headers=reg.admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    assert await reg.count(ImportJob) == 0
    r = await reg.client.get(
        "/api/v1/imports/00000000-0000-0000-0000-000000000000", headers=reg.admin
    )
    assert r.status_code == 404


async def _cli(
    database_url: str, *args: str, command: tuple[str, ...] = ("bekal.registry.cli", "import")
) -> subprocess.CompletedProcess[str]:
    """In a thread: the app's loop must keep running (on SQLite it may hold the write lock)."""
    return await asyncio.to_thread(_run_cli, database_url, args, command)


def _run_cli(
    database_url: str, args: tuple[str, ...], command: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PSEUDONYM_SECRET": SECRET,
        "SERVICE_NAME": "registry",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", *command, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_cli_dry_run_then_idempotent_import_in_small_chunks(
    registry: Registry, database_url: str, tmp_path: Path
):
    reg = registry
    path = tmp_path / "export.csv"
    path.write_text(HEADER + "".join(GOOD_LINES + BAD_LINES))

    dry = await _cli(database_url, str(path), "--dry-run", "--chunk-size", "2", "--actor", "ops")
    assert dry.returncode == 1, dry.stderr
    for line, field in EXPECTED_ERRORS:
        assert f"baris {line}: {field}:" in dry.stdout
    assert "3 akan dibuat" in dry.stdout and "1 dilewati, 5 salah" in dry.stdout
    assert "baris 8: dilewati:" in dry.stdout
    assert "Kolom diabaikan: offence" in dry.stdout
    assert await reg.count(Inmate) == 0

    # Chunks of 2 lines: the duplicates sit in other chunks than their first occurrence.
    first = await _cli(database_url, str(path), "--chunk-size", "2", "--actor", "ops")
    assert "3 dibuat" in first.stdout, first.stdout + first.stderr
    # The same through the platform command, ``bekal registry-import``.
    second = await _cli(
        database_url,
        str(path),
        "--chunk-size",
        "2",
        "--actor",
        "ops",
        command=("bekal.shared.cli", "registry-import"),
    )
    assert "0 dibuat, 0 diperbarui, 0 dipindahkan, 0 dibebaskan, 3 tidak berubah" in second.stdout
    assert "1 dilewati, 5 salah" in second.stdout, second.stdout + second.stderr
    assert await reg.count(Inmate) == 3
    by_ops = AuditEntry.actor == "ops"
    assert await reg.count(AuditEntry, by_ops, AuditEntry.action == "inmates.imported") == 2
    # One entry per person created, by whoever ran the import; none for the unchanged lines.
    assert await reg.count(AuditEntry, by_ops, AuditEntry.action == "inmate.registered") == 3
    for run in (dry, first, second):
        assert not any(nik in run.stdout + run.stderr for nik in NIK_TEXTS)


async def test_a_first_import_analyses_what_it_wrote_on_postgresql(
    registry: Registry, database_url: str, tmp_path: Path
):
    """Without autovacuum a registry filled by an import would keep an empty one's statistics."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite plans without statistics gathered by ANALYZE")
    people = [
        f"AN.{n},Siti Aminah,61710145059{n:05d},F,1990-05-05,SMA,LP-IMP,2023-01-10,,,ya,ya,\n"
        for n in range(25)
    ]
    path = tmp_path / "export.csv"
    path.write_text(HEADER + "".join(people))
    db = registry.app.state.db

    async def estimated() -> dict[str, float]:
        async with db.session() as s:
            found = await s.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class WHERE relname IN "
                    "('inmates', 'audit_entries', 'person_keys')"
                )
            )
            return {name: tuples for name, tuples in found.all()}

    async def ignore(_: LineError) -> None:
        return None

    before = await estimated()
    await run_import(
        db, path, secret=SECRET, dry_run=True, recorded_by="adm", on_error=ignore, chunk_size=2
    )
    assert await estimated() == before  # a dry run writes nothing, statistics included
    report = await run_import(
        db, path, secret=SECRET, dry_run=False, recorded_by="adm", on_error=ignore, chunk_size=2
    )
    assert report.created == 25
    # Analysed during the import (after 20 people, ten chunks of 2) and at its end.
    after = await estimated()
    assert after["inmates"] == 25
    assert after["person_keys"] == 25
    assert after["audit_entries"] >= 25


async def test_each_shared_persons_key_is_in_the_outbox_before_the_event_it_seals(
    registry: Registry, tmp_path: Path
):
    """Written in bulk (COPY on PostgreSQL): keys, their PersonKeyPublished, then InmateShared
    in the file's order, each sealed with its own person's key; the NIK only hashed and
    encrypted."""
    people = [
        f"KY.{n},Siti Aminah {n},61710145059{n:05d},F,1990-05-05,SMA,LP-IMP,2023-01-10,"
        f"2027-01-10,,{'ya' if n % 3 else 'tidak'},ya,\n"
        for n in range(12)
    ]
    path = tmp_path / "export.csv"
    path.write_text(HEADER + "".join(people))
    db = registry.app.state.db

    async def fail(error: LineError) -> None:
        raise AssertionError(error)

    report = await run_import(
        db, path, secret=SECRET, dry_run=False, recorded_by="adm", on_error=fail, chunk_size=5
    )
    assert report.created == 12
    rows = await registry.people()
    shared = {r.id: r for r in rows.values() if r.shared}
    assert len(shared) == 8
    for n in range(12):
        person = rows[f"KY.{n}"]
        assert person.nik_hash == nik_digest(f"61710145059{n:05d}", SECRET)
        assert decrypt_nik(person.nik_encrypted or "", SECRET) == f"61710145059{n:05d}"
        assert person.search_name == f"siti aminah {n}"
        assert person.created_at.tzinfo is not None
    keys = {k.participant_id: k.secret for k in await registry.rows(PersonKeyRow)}
    assert keys.keys() == shared.keys()
    imported_types = (PersonKeyPublished.event_type(), InmateShared.event_type())
    outbox = sorted(
        await registry.rows(OutboxMessage, OutboxMessage.event_type.in_(imported_types)),
        key=lambda m: m.seq,
    )
    published_at: dict[str, int] = {}
    order: list[uuid.UUID] = []
    for position, message in enumerate(outbox):
        if message.event_type == PersonKeyPublished.event_type():
            published_at[message.aggregate_id] = position
            continue
        assert message.event_type == InmateShared.event_type()
        assert published_at[message.aggregate_id] < position
        event = InmateShared.model_validate(json.loads(message.payload))
        pid = event.participant_id
        assert event.full_name is None  # sealed
        key = PersonKey(kid=str(pid), secret=keys[pid])
        assert opened(event, key, str(message.event_id)).full_name == shared[pid].full_name
        assert message.created_at.tzinfo is not None
        order.append(pid)
    assert order == [rows[f"KY.{n}"].id for n in range(12) if rows[f"KY.{n}"].shared]
    registered = await registry.rows(AuditEntry, AuditEntry.action == "inmate.registered")
    assert sorted(json.loads(a.detail)["line"] for a in registered) == list(range(2, 14))


async def test_progress_counts_only_chunks_already_committed(registry: Registry, tmp_path: Path):
    """On PostgreSQL a chunk is written while the next is parsed; what progress reports (and a
    stop between chunks leaves) is whole chunks, each already in the registry."""
    people = [
        f"PG.{n},Siti {n},61710145058{n:05d},F,1990-05-05,SMA,LP-IMP,2023-01-10,,,ya,ya,\n"
        for n in range(9)
    ]
    path = tmp_path / "export.csv"
    path.write_text(HEADER + "".join(people))
    db = registry.app.state.db
    seen: list[tuple[int, int, int]] = []

    async def fail(error: LineError) -> None:
        raise AssertionError(error)

    async def progress(report: ImportReport) -> None:
        seen.append((report.processed_lines, report.created, await registry.count(Inmate)))

    report = await run_import(
        db,
        path,
        secret=SECRET,
        dry_run=False,
        recorded_by="adm",
        on_error=fail,
        on_progress=progress,
        chunk_size=2,
    )
    assert report.created == 9
    assert seen == [(2, 2, 2), (4, 4, 4), (6, 6, 6), (8, 8, 8), (9, 9, 9)]
