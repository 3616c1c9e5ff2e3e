"""Bulk import of inmates from a CSV export of the national corrections database, streamed."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from bekal.registry import domain
from bekal.registry.domain import InmateStatus, RuleBroken
from bekal.registry.models import AuditEntry, Facility, Inmate
from bekal.shared.db import Database, utcnow
from bekal.shared.events.catalogue import InmateShared
from bekal.shared.messaging.outbox import add_event

log = structlog.get_logger(__name__)

# The columns, by header name (any order; other columns are ignored and never stored).
COLUMNS: tuple[str, ...] = (
    "registration_number",
    "full_name",
    "nik",
    "sex",
    "date_of_birth",
    "education_level",
    "facility_code",
    "admission_date",
    "expected_release_date",
    "status",
    "consent_training",
    "consent_data_sharing",
)
REQUIRED: frozenset[str] = frozenset(
    {
        "registration_number",
        "full_name",
        "nik",
        "sex",
        "date_of_birth",
        "facility_code",
        "admission_date",
    }
)
CHUNK_SIZE = 1000

_SEX = {"F": "F", "P": "F", "PEREMPUAN": "F", "M": "M", "L": "M", "LAKI-LAKI": "M"}
_TRUE = {"true", "1", "y", "ya", "yes"}
_FALSE = {"", "false", "0", "n", "tidak", "no"}
_STATUS_IN_CUSTODY = {"", "in_custody", "dalam_tahanan"}
_DMY = re.compile(r"(\d{2})[/-](\d{2})[/-](\d{4})")


@dataclass(frozen=True)
class LineError:
    line: int
    field: str | None
    reason: str  # in Bahasa Indonesia; never repeats a NIK

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class ImportRow:
    line: int
    registration_number: str
    full_name: str
    nik: str
    sex: str
    date_of_birth: date
    education_level: str | None
    facility_code: str
    admission_date: date
    expected_release_date: date | None
    consent_training: bool
    consent_data_sharing: bool


@dataclass
class ImportReport:
    dry_run: bool
    total_lines: int = 0  # data lines (the header excluded)
    processed_lines: int = 0
    created: int = 0
    unchanged: int = 0
    invalid: int = 0
    ignored_columns: list[str] = field(default_factory=list)


class BadFile(Exception):
    """The file as a whole cannot be imported (no header, a required column missing)."""


# --- parsing one line (no database) ----------------------------------------------------------


def _date(value: str, name: str) -> date:
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    match = _DMY.fullmatch(text)
    if match:
        day, month, year = (int(g) for g in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            pass
    raise _Bad(name, "tanggal tidak valid; gunakan YYYY-MM-DD atau DD/MM/YYYY")


def _flag(value: str | None, name: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Bad(name, "nilai persetujuan harus true/false (atau ya/tidak)")


class _Bad(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason


def parse_line(line: int, record: dict[str, str | None]) -> ImportRow:
    """One CSV record as an ImportRow; raises LineErrorException naming the field."""

    try:

        def text(name: str, max_length: int) -> str:
            value = (record.get(name) or "").strip()
            if name in REQUIRED and not value:
                raise _Bad(name, "wajib diisi")
            if len(value) > max_length:
                raise _Bad(name, f"terlalu panjang (maksimal {max_length} karakter)")
            return value

        number = text("registration_number", 50)
        name = text("full_name", 200)
        nik = text("nik", 16)
        if not domain.is_valid_nik(nik):
            raise _Bad("nik", "NIK harus terdiri dari tepat 16 angka")
        sex = _SEX.get(text("sex", 20).upper())
        if sex is None:
            raise _Bad("sex", "jenis kelamin harus F/M (atau P/L)")
        born = _date(text("date_of_birth", 10), "date_of_birth")
        education = text("education_level", 50) or None
        facility_code = text("facility_code", 50)
        admitted = _date(text("admission_date", 10), "admission_date")
        release_text = text("expected_release_date", 10)
        release = _date(release_text, "expected_release_date") if release_text else None
        status = text("status", 30).lower()
        if status not in _STATUS_IN_CUSTODY:
            raise _Bad(
                "status",
                "hanya warga binaan yang masih dalam tahanan (in_custody) yang diimpor",
            )
        training = _flag(record.get("consent_training"), "consent_training")
        sharing = _flag(record.get("consent_data_sharing"), "consent_data_sharing")
        domain.check_admission_dates(
            date_of_birth=born, admission_date=admitted, expected_release_date=release
        )
    except _Bad as bad:
        raise LineErrorException(LineError(line, bad.field_name, bad.reason)) from None
    except RuleBroken as rule:
        raise LineErrorException(LineError(line, rule.field, rule.message)) from None
    return ImportRow(
        line=line,
        registration_number=number,
        full_name=name,
        nik=nik,
        sex=sex,
        date_of_birth=born,
        education_level=education,
        facility_code=facility_code,
        admission_date=admitted,
        expected_release_date=release,
        consent_training=training,
        consent_data_sharing=sharing,
    )


class LineErrorException(Exception):
    def __init__(self, error: LineError) -> None:
        super().__init__(error.reason)
        self.error = error


def count_lines(path: Path) -> int:
    """Data lines for the progress total, read in blocks (never the whole file at once)."""
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def _records(path: Path, report: ImportReport) -> Iterator[tuple[int, dict[str, str | None]]]:
    handle = path.open(newline="", encoding="utf-8-sig")
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not header:
            raise BadFile("Berkas kosong atau tanpa baris judul kolom.")
        reader.fieldnames = header
        missing = sorted(REQUIRED - set(header))
        if missing:
            raise BadFile(f"Kolom wajib tidak ada: {', '.join(missing)}.")
        report.ignored_columns = [h for h in header if h not in COLUMNS]
        for record in reader:
            # line_num is the physical line where the record ends (quoted newlines counted).
            yield reader.line_num, record


def _digest(text: str) -> int:
    # 8 bytes per value seen: in-file duplicates are found without keeping the values.
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


class SeenKeys:
    """Digests of the registration numbers and NIK hashes met so far, in a scratch SQLite file.

    On disk rather than in a set: memory stays the same for 3,000 lines or 3 million, and a dry
    run (which writes nothing to the registry) still finds a line repeated far down the file.
    """

    NUMBER, NIK = 0, 1

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bekal-import-")
        self._db = sqlite3.connect(Path(self._dir.name) / "seen.db")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE seen (kind INTEGER, k INTEGER, PRIMARY KEY (kind, k)) WITHOUT ROWID"
        )

    def known(self, kind: int, keys: list[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            marks = ",".join("?" * len(batch))
            found.update(
                k
                for (k,) in self._db.execute(
                    f"SELECT k FROM seen WHERE kind = ? AND k IN ({marks})",
                    [kind, *batch],
                )
            )
        return found

    def add(self, kind: int, keys: set[int]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO seen (kind, k) VALUES (?, ?)", [(kind, k) for k in keys]
        )

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()


# --- the import ------------------------------------------------------------------------------

ProgressCallback = Callable[[ImportReport], Awaitable[None]]
ErrorCallback = Callable[[LineError], Awaitable[None]]


async def run_import(
    db: Database,
    path: Path,
    *,
    secret: str,
    dry_run: bool,
    recorded_by: str,
    on_error: ErrorCallback,
    on_progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ImportReport:
    """Import ``path`` chunk by chunk; each chunk is one transaction (none in a dry run).

    A line whose registration number is already registered with the same NIK is left as it
    is (``unchanged``), so running the same file again changes nothing. Changes to existing
    people go through the movement endpoints, which audit and announce them.
    """
    report = ImportReport(dry_run=dry_run, total_lines=count_lines(path))
    facilities: dict[str, tuple[uuid.UUID, bool]] = {}
    async with db.session() as s:
        for fid, code, active in (
            await s.execute(select(Facility.id, Facility.code, Facility.active))
        ).all():
            facilities[code] = (fid, active)
    seen = SeenKeys()
    try:
        chunk: list[tuple[int, dict[str, str | None]]] = []
        for line, record in _records(path, report):
            chunk.append((line, record))
            if len(chunk) >= chunk_size:
                await _chunk(
                    db,
                    chunk,
                    report,
                    facilities,
                    seen,
                    secret,
                    dry_run,
                    recorded_by,
                    on_error,
                )
                chunk = []
                if on_progress:
                    await on_progress(report)
        if chunk:
            await _chunk(
                db,
                chunk,
                report,
                facilities,
                seen,
                secret,
                dry_run,
                recorded_by,
                on_error,
            )
    finally:
        seen.close()
    report.total_lines = report.processed_lines
    if on_progress:
        await on_progress(report)
    log.info(
        "inmates_imported" if not dry_run else "inmates_import_checked",
        lines=report.processed_lines,
        created=report.created,
        unchanged=report.unchanged,
        invalid=report.invalid,
    )
    return report


async def _chunk(
    db: Database,
    chunk: list[tuple[int, dict[str, str | None]]],
    report: ImportReport,
    facilities: dict[str, tuple[uuid.UUID, bool]],
    seen: SeenKeys,
    secret: str,
    dry_run: bool,
    recorded_by: str,
    on_error: ErrorCallback,
) -> None:
    report.processed_lines += len(chunk)
    errors: list[LineError] = []
    try:
        await _check_and_write(
            db,
            chunk,
            report,
            facilities,
            seen,
            secret,
            dry_run,
            recorded_by,
            errors.append,
        )
    finally:
        report.invalid += len(errors)
        for error in sorted(errors, key=lambda e: e.line):
            await on_error(error)


async def _check_and_write(
    db: Database,
    chunk: list[tuple[int, dict[str, str | None]]],
    report: ImportReport,
    facilities: dict[str, tuple[uuid.UUID, bool]],
    seen: SeenKeys,
    secret: str,
    dry_run: bool,
    recorded_by: str,
    bad: Callable[[LineError], None],
) -> None:
    rows: list[tuple[ImportRow, str]] = []
    for line, record in chunk:
        try:
            row = parse_line(line, record)
        except LineErrorException as exc:
            bad(exc.error)
            continue
        known = facilities.get(row.facility_code)
        if known is None:
            bad(LineError(line, "facility_code", "kode fasilitas tidak dikenal"))
            continue
        if not known[1]:
            bad(LineError(line, "facility_code", "fasilitas tidak aktif"))
            continue
        rows.append((row, domain.nik_digest(row.nik, secret)))

    async with db.session() as session:
        numbers = [r.registration_number for r, _ in rows]
        hashes = [h for _, h in rows]
        by_number = (
            dict(
                (
                    await session.execute(
                        select(Inmate.registration_number, Inmate.nik_hash).where(
                            Inmate.registration_number.in_(numbers)
                        )
                    )
                ).all()
            )
            if numbers
            else {}
        )
        by_hash = (
            dict(
                (
                    await session.execute(
                        select(Inmate.nik_hash, Inmate.registration_number).where(
                            Inmate.nik_hash.in_(hashes)
                        )
                    )
                ).all()
            )
            if hashes
            else {}
        )
        keys = {
            row.line: (_digest(row.registration_number), _digest(nik_hash))
            for row, nik_hash in rows
        }
        known_numbers = seen.known(SeenKeys.NUMBER, [n for n, _ in keys.values()])
        known_niks = seen.known(SeenKeys.NIK, [k for _, k in keys.values()])
        seen_numbers: set[int] = set()  # this chunk's
        seen_niks: set[int] = set()
        new: list[dict[str, Any]] = []
        now: datetime = utcnow()
        for row, nik_hash in rows:
            number_key, nik_key = keys[row.line]
            # Checked before the database, so a dry run and a real run report the same lines.
            if number_key in seen_numbers or number_key in known_numbers:
                bad(
                    LineError(
                        row.line,
                        "registration_number",
                        "nomor registrasi muncul lebih dari sekali dalam berkas",
                    )
                )
                continue
            if nik_key in seen_niks or nik_key in known_niks:
                bad(LineError(row.line, "nik", "NIK muncul lebih dari sekali dalam berkas"))
                continue
            seen_numbers.add(number_key)
            seen_niks.add(nik_key)
            existing_hash = by_number.get(row.registration_number)
            if existing_hash is not None:
                if existing_hash == nik_hash:
                    report.unchanged += 1
                else:
                    bad(
                        LineError(
                            row.line,
                            "nik",
                            "nomor registrasi sudah terdaftar dengan NIK yang berbeda",
                        )
                    )
                continue
            if nik_hash in by_hash:
                bad(LineError(row.line, "nik", "NIK sudah terdaftar dengan nomor registrasi lain"))
                continue
            report.created += 1
            if dry_run:
                continue
            share = row.consent_training and row.consent_data_sharing
            consent_given = row.consent_training or row.consent_data_sharing
            new.append(
                {
                    "id": uuid.uuid4(),
                    "registration_number": row.registration_number,
                    "full_name": row.full_name,
                    "search_name": domain.search_key(row.full_name),
                    "nik_hash": nik_hash,
                    "nik_encrypted": domain.encrypt_nik(row.nik, secret),
                    "sex": row.sex,
                    "date_of_birth": row.date_of_birth,
                    "education_level": row.education_level,
                    "facility_id": facilities[row.facility_code][0],
                    "admission_date": row.admission_date,
                    "expected_release_date": row.expected_release_date,
                    "status": InmateStatus.IN_CUSTODY.value,
                    "consent_training": row.consent_training,
                    "consent_data_sharing": row.consent_data_sharing,
                    "consent_recorded_at": now if consent_given else None,
                    "consent_recorded_by": recorded_by if consent_given else None,
                    "shared": share,
                    "shared_at": now if share else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        seen.add(SeenKeys.NUMBER, seen_numbers)
        seen.add(SeenKeys.NIK, seen_niks)
        if dry_run or not new:
            return  # the session closes without a commit: nothing written
        # Core executemany: the ORM bulk path would fetch each new row back, for nothing here.
        await session.execute(Inmate.__table__.insert(), new)
        for values in new:
            if values["shared"]:
                add_event(
                    session,
                    InmateShared(
                        participant_id=values["id"],
                        full_name=values["full_name"],
                        sex=values["sex"],
                        birth_year=values["date_of_birth"].year,
                        facility_id=values["facility_id"],
                        admission_date=values["admission_date"],
                        expected_release_date=values["expected_release_date"],
                    ),
                )
        await session.commit()


async def audit_import(
    db: Database,
    *,
    actor: str,
    roles: str,
    report: ImportReport,
    source: str,
    job_id: uuid.UUID | None = None,
) -> None:
    """One audit entry per real import (not one per line): who imported what, with the counts."""
    async with db.session() as session:
        session.add(
            AuditEntry(
                id=uuid.uuid4(),
                at=utcnow(),
                actor=actor,
                roles=roles,
                action="inmates.imported",
                detail=json.dumps(
                    {
                        "source": source,
                        "job_id": str(job_id) if job_id else None,
                        "lines": report.processed_lines,
                        "created": report.created,
                        "unchanged": report.unchanged,
                        "invalid": report.invalid,
                    },
                    sort_keys=True,
                ),
            )
        )
        await session.commit()
