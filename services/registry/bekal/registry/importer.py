"""Bulk import of inmates from a CSV export of the national corrections database, streamed.

An export is a full picture of the day: new people are registered, and the changes it shows
for people already registered (a transfer, a new expected release date, a release, consent
given) are applied through the same use cases as the API, with the same rules, events and
audit entries.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import itertools
import json
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry import domain
from bekal.registry.domain import Consent, InmateStatus, RuleBroken
from bekal.registry.models import AuditEntry, Facility, Inmate, PersonKey
from bekal.registry.schemas import ConsentIn, ReleaseIn, TransferIn
from bekal.registry.services import inmates, movements
from bekal.registry.services.common import load_inmates
from bekal.registry.services.keys import new_person_keys
from bekal.shared.auth import Ministry, Principal
from bekal.shared.db import (
    Database,
    among,
    copy_rows,
    plan_each_statement,
    set_locally,
    table_of,
    utcnow,
)
from bekal.shared.events.catalogue import InmateShared, ReleaseKind
from bekal.shared.messaging.outbox import add_events, outbox_values

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
    "release_kind",
    "released_on",
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
# A release status names its kind, or says "released" and leaves the kind to ``release_kind``.
_RELEASE_KINDS: dict[str, ReleaseKind] = {
    "free": ReleaseKind.FREE,
    "bebas_murni": ReleaseKind.FREE,
    "parole": ReleaseKind.PAROLE,
    "pembebasan_bersyarat": ReleaseKind.PAROLE,
    "conditional": ReleaseKind.CONDITIONAL,
    "conditional_release": ReleaseKind.CONDITIONAL,
    "cuti_bersyarat": ReleaseKind.CONDITIONAL,
}
_STATUS_RELEASED = {"released", "bebas"}
# Rule fields (named after the API's inputs) as the file's columns, for the report.
_COLUMN_OF_FIELD = {
    "to_facility_id": "facility_code",
    "transferred_on": "facility_code",
    "released_on": "released_on",
    "expected_release_date": "expected_release_date",
}
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
    # Set when the file says the person has left: a permanent release of that kind, on that day.
    release_kind: ReleaseKind | None = None
    released_on: date | None = None


class Outcome(StrEnum):
    """What a good line does; each line counts under exactly one."""

    CREATED = "created"
    UPDATED = "updated"  # expected release date and/or consent
    TRANSFERRED = "transferred"  # (and possibly updated too)
    RELEASED = "released"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # not bad, not written: a released person the registry never had


@dataclass
class ImportReport:
    dry_run: bool
    total_lines: int = 0  # data lines (the header excluded)
    processed_lines: int = 0
    created: int = 0
    updated: int = 0
    transferred: int = 0
    released: int = 0
    unchanged: int = 0
    skipped: int = 0
    invalid: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def counts(self) -> dict[str, int]:
        return {
            "lines": self.processed_lines,
            **{o.value: getattr(self, o.value) for o in Outcome},
            "invalid": self.invalid,
        }


class BadFile(Exception):
    """The file as a whole cannot be imported (no header, a required column missing)."""


# A line of the export is well under a kilobyte; one this long is not a line of it (a binary
# file, or text without line breaks). Below the csv module's own field limit (131,072).
MAX_LINE_BYTES = 64 * 1024
EXPECTED_ENCODING = "UTF-8"


class BadEncoding(BadFile):
    """The file is not UTF-8 text in lines of the export's size: refused before any line is
    read as a record, so nothing is written. ``str()`` is the message for people (Bahasa
    Indonesia); ``english`` is the API's."""

    def __init__(self, line: int, message: str, english: str) -> None:
        super().__init__(message)
        self.line = line
        self.english = english


def _utf16(line: int) -> BadEncoding:
    return BadEncoding(
        line,
        f"Baris {line}: berkas ini UTF-16 atau berkas biner, bukan teks {EXPECTED_ENCODING}. "
        f'Simpan ulang sebagai CSV {EXPECTED_ENCODING} (di Excel: "CSV UTF-8") lalu unggah lagi.',
        f"Line {line}: the file is UTF-16 or binary, not {EXPECTED_ENCODING} text. Save it as "
        f"CSV {EXPECTED_ENCODING} and upload it again.",
    )


def _not_utf8(line: int, byte: int, column: int) -> BadEncoding:
    return BadEncoding(
        line,
        f"Baris {line}: bukan teks {EXPECTED_ENCODING} (byte 0x{byte:02X} pada posisi {column}; "
        f"mungkin Latin-1 atau Windows-1252). Simpan ulang sebagai CSV {EXPECTED_ENCODING} "
        "lalu unggah lagi.",
        f"Line {line}: not {EXPECTED_ENCODING} text (byte 0x{byte:02X} at position {column}; "
        f"Latin-1 or Windows-1252?). Save the file as CSV {EXPECTED_ENCODING} and upload it "
        "again.",
    )


def _too_long(line: int) -> BadEncoding:
    return BadEncoding(
        line,
        f"Baris {line} lebih panjang dari {MAX_LINE_BYTES:,} byte".replace(",", ".")
        + f": bukan baris ekspor SDP (berkas biner, atau tanpa ganti baris?). Berkas harus "
        f"CSV {EXPECTED_ENCODING}, satu orang per baris.",
        f"Line {line} is longer than {MAX_LINE_BYTES} bytes: not a line of an export (a binary "
        f"file, or no line breaks?). Expected CSV in {EXPECTED_ENCODING}, one person per line.",
    )


def _check_text(block: bytes, first_line: int, *, final: bool = True) -> None:
    """UTF-8 without NUL, from line ``first_line`` on; ``final=False`` for a block cut short
    (its last character may be incomplete)."""
    nul = block.find(b"\x00")  # valid UTF-8, but no text export holds one: UTF-16, binary
    try:
        codecs.getincrementaldecoder("utf-8")().decode(block, final=final)
    except UnicodeDecodeError as exc:
        if nul < 0 or exc.start < nul:  # whichever comes first in the file is named
            line_start = block.rfind(b"\n", 0, exc.start) + 1
            raise _not_utf8(
                first_line + block.count(b"\n", 0, exc.start),
                block[exc.start],
                exc.start - line_start + 1,
            ) from None
    if nul >= 0:
        raise _utf16(first_line + block.count(b"\n", 0, nul))


def _check_lines(block: bytes, first_line: int) -> None:
    """Complete lines (``block`` ends with a line break) starting at line ``first_line``:
    UTF-8 without NUL, none longer than MAX_LINE_BYTES; else BadEncoding naming the first."""
    _check_text(block, first_line)
    if len(block) > MAX_LINE_BYTES:
        for number, text in enumerate(block.split(b"\n")):
            if len(text.rstrip(b"\r")) > MAX_LINE_BYTES:
                raise _too_long(first_line + number)


def count_lines(path: Path) -> int:
    """Data lines, for the progress total, once the whole file is known to be importable text:
    UTF-8 (a byte-order mark allowed), no NUL, no line over MAX_LINE_BYTES. Read in blocks
    (never the whole file at once); a file that is not raises BadEncoding before any import
    writes, so a bad byte at line 90,000 does not leave the first 89,999 lines half-done."""
    lines = 0
    carry = b""
    with path.open("rb") as f:
        start = f.read(2)
        if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise _utf16(1)
        f.seek(0)
        while block := f.read(1 << 20):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut:
                _check_lines(data[:cut], lines + 1)
                lines += data.count(b"\n", 0, cut)
            carry = data[cut:]
            if len(carry) > MAX_LINE_BYTES:  # no line break in sight: refused before it grows
                _check_text(carry, lines + 1, final=False)  # binary or Latin-1: say that first
                raise _too_long(lines + 1)
        if carry:
            _check_lines(carry + b"\n", lines + 1)
            lines += 1
    return max(lines - 1, 0)


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


def _release(status: str, record: dict[str, str | None]) -> ReleaseKind | None:
    """The release kind a line states, or None for someone in custody."""
    word = "_".join(status.replace("-", " ").split())
    named = (record.get("release_kind") or "").strip().lower()
    named = "_".join(named.replace("-", " ").split())
    if word in _STATUS_IN_CUSTODY:
        if named:
            raise _Bad("release_kind", "jenis pembebasan hanya diisi untuk warga binaan yang bebas")
        return None
    if word not in _STATUS_RELEASED and word not in _RELEASE_KINDS:
        raise _Bad(
            "status",
            "status harus in_custody, released, free, parole atau conditional "
            "(atau dalam_tahanan, bebas, bebas_murni, pembebasan_bersyarat, cuti_bersyarat)",
        )
    if named and named not in _RELEASE_KINDS:
        raise _Bad("release_kind", "jenis pembebasan harus free, parole atau conditional")
    stated = _RELEASE_KINDS.get(word)
    kind = _RELEASE_KINDS.get(named)
    if stated is not None and kind is not None and stated is not kind:
        raise _Bad("release_kind", "jenis pembebasan tidak cocok dengan status")
    return stated or kind or ReleaseKind.FREE


def parse_line(line: int, record: dict[str, str | None], *, today: date | None = None) -> ImportRow:
    """One CSV record as an ImportRow; raises LineErrorException naming the field.

    ``today`` dates a release whose ``released_on`` is empty (the day the export shows it).
    """

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
        release_kind = _release(text("status", 30).lower(), record)
        released_text = text("released_on", 10)
        released_on: date | None = None
        if release_kind is not None:
            released_on = (
                _date(released_text, "released_on") if released_text else today or utcnow().date()
            )
            if released_on < admitted:
                raise _Bad("released_on", "tanggal bebas tidak boleh sebelum tanggal masuk")
        elif released_text:
            raise _Bad("released_on", "tanggal bebas hanya diisi untuk warga binaan yang bebas")
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
        release_kind=release_kind,
        released_on=released_on,
    )


# --- what a line means for someone already registered (no database) -------------------------


@dataclass(frozen=True)
class Registered:
    """What the import compares of a person already in the registry."""

    id: uuid.UUID
    nik_hash: str
    facility_id: uuid.UUID
    status: InmateStatus
    admission_date: date
    expected_release_date: date | None
    consent: Consent
    consent_withdrawn: bool
    erased: bool


@dataclass(frozen=True)
class Change:
    outcome: Outcome
    transfer_to: uuid.UUID | None = None
    expected_release_date: date | None = None
    consent: Consent | None = None  # the consent to record (never less than what is held)
    release: tuple[ReleaseKind, date] | None = None


def plan_change(
    row: ImportRow,
    *,
    nik_hash: str,
    current: Registered,
    facility_id: uuid.UUID,
    facility_active: bool,
    today: date,
) -> Change:
    """What a line changes for someone already registered; LineErrorException if it cannot.

    The file is a daily picture, so what it says that differs is applied: a transfer, a new
    expected release date, a release, consent given. It never withdraws consent (a person's
    act, recorded in the registry, not an export's artefact) and never brings back an erased
    or merged record.
    """

    def refuse(rule: RuleBroken) -> LineErrorException:
        return LineErrorException(
            LineError(row.line, _COLUMN_OF_FIELD.get(rule.field, rule.field), rule.message)
        )

    if nik_hash != current.nik_hash:
        raise LineErrorException(
            LineError(row.line, "nik", "nomor registrasi sudah terdaftar dengan NIK yang berbeda")
        )
    if current.erased or current.status is InmateStatus.MERGED:
        return Change(Outcome.UNCHANGED)
    if row.release_kind is not None:
        if current.status is InmateStatus.RELEASED:
            return Change(Outcome.UNCHANGED)
        assert row.released_on is not None  # parse_line dates every release
        try:
            domain.check_release(
                status=current.status,
                admission_date=current.admission_date,
                released_on=row.released_on,
            )
        except RuleBroken as rule:
            raise refuse(rule) from None
        return Change(Outcome.RELEASED, release=(row.release_kind, row.released_on))
    if not current.status.in_custody:
        raise LineErrorException(
            LineError(
                row.line,
                "status",
                f"warga binaan {domain.status_words(current.status)} menurut registri, "
                "sedangkan berkas menyatakan dalam tahanan",
            )
        )
    transfer_to: uuid.UUID | None = None
    expected: date | None = None
    consent: Consent | None = None
    try:
        if facility_id != current.facility_id:
            domain.check_transfer(
                status=current.status,
                admission_date=current.admission_date,
                from_facility_id=current.facility_id,
                to_facility_id=facility_id,
                to_facility_active=facility_active,
                transferred_on=today,
            )
            transfer_to = facility_id
        # An empty date in the file is "not known there", not "no longer expected".
        if (
            row.expected_release_date is not None
            and row.expected_release_date != current.expected_release_date
        ):
            domain.check_expected_release(
                status=current.status,
                admission_date=current.admission_date,
                expected_release_date=row.expected_release_date,
            )
            expected = row.expected_release_date
    except RuleBroken as rule:
        raise refuse(rule) from None
    given = Consent(
        training=current.consent.training or row.consent_training,
        data_sharing=current.consent.data_sharing or row.consent_data_sharing,
    )
    # After a withdrawal the export may still say "ya" for a while: only the registry gives it back.
    if given != current.consent and not current.consent_withdrawn:
        consent = given
    if transfer_to is not None:
        outcome = Outcome.TRANSFERRED
    elif expected is not None or consent is not None:
        outcome = Outcome.UPDATED
    else:
        outcome = Outcome.UNCHANGED
    return Change(outcome, transfer_to=transfer_to, expected_release_date=expected, consent=consent)


class LineErrorException(Exception):
    def __init__(self, error: LineError) -> None:
        super().__init__(error.reason)
        self.error = error


def _records(path: Path, report: ImportReport) -> Generator[tuple[int, dict[str, str | None]]]:
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
        try:
            for record in reader:
                # line_num is the physical line where the record ends (quoted newlines counted).
                yield reader.line_num, record
        except csv.Error as exc:  # e.g. a quoted field that never ends, past the field limit
            raise BadFile(f"Baris {reader.line_num}: CSV tidak dapat dibaca ({exc}).") from None


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
    on_skip: ErrorCallback | None = None,
    on_progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
    roles: str = "",
    source: str = "import",
    job_id: uuid.UUID | None = None,
    today: date | None = None,
) -> ImportReport:
    """Import ``path`` chunk by chunk; each chunk is one transaction (none in a dry run).

    A line that says what the registry already holds is ``unchanged``, so running the same
    file again changes nothing. Each change to a person is audited under ``recorded_by`` with
    ``source``, ``job_id`` and the line, like the same change made through the API.
    """
    report = ImportReport(dry_run=dry_run, total_lines=count_lines(path))
    context = _Context(
        secret=secret,
        dry_run=dry_run,
        principal=Principal(
            subject=recorded_by,
            ministry=Ministry.CORRECTIONS,
            roles=frozenset(r for r in roles.split(",") if r),
        ),
        via={"source": source, "job_id": str(job_id) if job_id else None},
        today=today or utcnow().date(),
    )
    facilities: dict[str, tuple[uuid.UUID, bool]] = {}
    async with db.session() as s:
        for fid, code, active in (
            await s.execute(select(Facility.id, Facility.code, Facility.active))
        ).all():
            facilities[code] = (fid, active)
    seen = SeenKeys()
    analysed = 0  # people created when the tables were last analysed
    # On PostgreSQL a chunk is checked against the registry and written while the next one is
    # parsed: the database's work and Python's overlap. The next chunk is checked only once
    # the previous one is committed (its lookups see it), and progress counts committed chunks.
    # SQLite (one writer) and a dry run (nothing to write) take one chunk at a time.
    overlap = not dry_run and not db.is_sqlite
    writing: asyncio.Task[None] | None = None
    full = False  # whether the chunk being written is a whole one

    async def done() -> None:
        nonlocal writing, analysed
        if writing is not None:
            task, writing = writing, None
            await task
        if not full:
            return
        grown = report.created - analysed
        if not dry_run and grown >= max(_ANALYSE_AFTER_CHUNKS * chunk_size, analysed):
            await _analyse(db)
            analysed = report.created
        if on_progress:
            await on_progress(report)

    records = _records(path, report)
    try:
        while chunk := list(itertools.islice(records, chunk_size)):
            parsed = await _parse(chunk, facilities, context)
            if writing is not None:
                await done()
            full = len(chunk) >= chunk_size
            work = _chunk(db, parsed, report, facilities, seen, context, on_error, on_skip)
            if overlap:
                writing = asyncio.create_task(work)
            else:
                await work
                await done()
        if writing is not None:
            await done()
    except BaseException as exc:
        if writing is not None:  # the chunk sent to the database ends before this does
            if isinstance(exc, asyncio.CancelledError):
                writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
        raise
    finally:
        records.close()
        seen.close()
    if not dry_run and report.created > analysed:
        await _analyse(db)
    report.total_lines = report.processed_lines
    if on_progress:
        await on_progress(report)
    log.info(
        "inmates_imported" if not dry_run else "inmates_import_checked",
        **report.counts(),
    )
    return report


# The tables a bulk load grows, analysed once this many chunks' worth of people were created
# and again each time their number doubled, then at the end.
_ANALYSE_AFTER_CHUNKS = 10
_GROWN = (table_of(Inmate).name, table_of(AuditEntry).name, table_of(PersonKey).name)


async def _analyse(db: Database) -> None:
    """Statistics for what the import wrote, on PostgreSQL.

    Without autovacuum (or before it comes round), a registry filled by a first import keeps
    the statistics of an empty one: the API's statements would be planned for a few rows, and
    a plan cached for an empty table stays until the table is analysed. The import's own
    statements are planned for their parameters and the table's actual size
    (``plan_each_statement``), so its speed does not depend on this.
    """
    if db.is_sqlite:
        return
    async with db.session() as session:
        await session.execute(text(f"ANALYZE {', '.join(_GROWN)}"))
        await session.commit()


@dataclass(frozen=True)
class _Context:
    secret: str
    dry_run: bool
    principal: Principal  # who runs the import: the actor of every audit entry it writes
    via: dict[str, Any]  # added to each audit entry: where the change came from
    today: date


@dataclass
class _Parsed:
    """A chunk's lines read and checked on their own (no database): the good ones with their
    NIK's keyed hash, and the bad ones."""

    lines: int
    rows: list[tuple[ImportRow, str]]
    errors: list[LineError]


# Lines parsed between two turns of the event loop: a chunk's writes, going on meanwhile, get
# their answers from PostgreSQL without waiting for the whole next chunk to be parsed.
_PARSE_SLICE = 25


async def _parse(
    chunk: list[tuple[int, dict[str, str | None]]],
    facilities: dict[str, tuple[uuid.UUID, bool]],
    context: _Context,
) -> _Parsed:
    parsed = _Parsed(lines=len(chunk), rows=[], errors=[])
    for n, (line, record) in enumerate(chunk, start=1):
        if n % _PARSE_SLICE == 0:
            await asyncio.sleep(0)
        try:
            row = parse_line(line, record, today=context.today)
        except LineErrorException as exc:
            parsed.errors.append(exc.error)
            continue
        if row.facility_code not in facilities:
            parsed.errors.append(LineError(line, "facility_code", "kode fasilitas tidak dikenal"))
            continue
        parsed.rows.append((row, domain.nik_digest(row.nik, context.secret)))
    return parsed


async def _chunk(
    db: Database,
    parsed: _Parsed,
    report: ImportReport,
    facilities: dict[str, tuple[uuid.UUID, bool]],
    seen: SeenKeys,
    context: _Context,
    on_error: ErrorCallback,
    on_skip: ErrorCallback | None,
) -> None:
    report.processed_lines += parsed.lines
    errors: list[LineError] = list(parsed.errors)
    skipped: list[LineError] = []
    try:
        await _check_and_write(
            db, parsed.rows, report, facilities, seen, context, errors.append, skipped.append
        )
    finally:
        report.invalid += len(errors)
        report.skipped += len(skipped)
        for error in sorted(errors, key=lambda e: e.line):
            await on_error(error)
        if on_skip is not None:
            for skip in sorted(skipped, key=lambda e: e.line):
                await on_skip(skip)


# The columns compared for people already registered: read as plain rows, not ORM objects, so
# the same file again (everything unchanged) costs one query per chunk.
_REGISTERED = (
    Inmate.registration_number,
    Inmate.id,
    Inmate.nik_hash,
    Inmate.facility_id,
    Inmate.status,
    Inmate.admission_date,
    Inmate.expected_release_date,
    Inmate.consent_training,
    Inmate.consent_data_sharing,
    Inmate.consent_withdrawn_at,
    Inmate.erased_at,
)


@dataclass
class _Found:
    """What the registry holds for a chunk's lines, by line number."""

    registered: dict[int, Registered]  # the person registered under the line's number
    unchanged: set[int]  # lines whose person is registered and would not change (PostgreSQL)
    nik_taken: set[int]  # lines whose NIK is registered (under another number, if not above)


def _registered(found: Any) -> Registered:
    return Registered(
        id=uuid.UUID(found.id) if isinstance(found.id, str) else found.id,
        nik_hash=found.nik_hash,
        facility_id=uuid.UUID(found.facility_id)
        if isinstance(found.facility_id, str)
        else found.facility_id,
        status=InmateStatus(found.status),
        admission_date=found.admission_date,
        expected_release_date=found.expected_release_date,
        consent=Consent(training=found.consent_training, data_sharing=found.consent_data_sharing),
        consent_withdrawn=found.consent_withdrawn_at is not None,
        erased=found.erased_at is not None,
    )


async def _look_up(session: AsyncSession, rows: list[tuple[ImportRow, str]]) -> _Found:
    """SQLite: the people registered under the chunk's numbers, and the NIKs already held,
    compared line by line in Python (``plan_change``)."""
    numbers = [r.registration_number for r, _ in rows]
    hashes = [h for _, h in rows]
    by_number: dict[str, Registered] = {}
    held: set[str] = set()
    if rows:
        for found in (
            await session.execute(
                select(*_REGISTERED).where(among(session, Inmate.registration_number, numbers))
            )
        ).all():
            by_number[found.registration_number] = _registered(found)
        held = set(
            (
                await session.scalars(
                    select(Inmate.nik_hash).where(among(session, Inmate.nik_hash, hashes))
                )
            ).all()
        )
    return _Found(
        registered={
            row.line: by_number[row.registration_number]
            for row, _ in rows
            if row.registration_number in by_number
        },
        unchanged=set(),
        nik_taken={row.line for row, nik_hash in rows if nik_hash in held},
    )


# The chunk's lines, staged as arrays of values, compared with the registry in one statement.
# A line whose person is registered and whose file values are what the registry holds (what
# ``plan_change`` finds unchanged) comes back as nothing: the same file again, or a next-day
# file, brings back only the lines that change something, are new, or conflict. The
# predicate is narrower than ``plan_change`` where it must be (an unknown case comes back and is
# decided in Python), never wider.
_COMPARE = text(
    """
    SELECT f.line, i.id, i.nik_hash, i.facility_id, i.status, i.admission_date,
           i.expected_release_date, i.consent_training, i.consent_data_sharing,
           i.consent_withdrawn_at, i.erased_at,
           CASE WHEN i.id IS NULL
                THEN EXISTS (SELECT 1 FROM inmates o WHERE o.nik_hash = f.nik_hash)
           END AS nik_taken
    FROM unnest(
        CAST(:lines AS integer[]), CAST(:numbers AS text[]), CAST(:hashes AS text[]),
        CAST(:facilities AS text[]), CAST(:expected AS date[]), CAST(:training AS boolean[]),
        CAST(:sharing AS boolean[]), CAST(:released AS boolean[])
    ) AS f(line, number, nik_hash, facility_id, expected, training, sharing, released)
    LEFT JOIN inmates i ON i.registration_number = f.number
    WHERE i.id IS NULL OR NOT COALESCE(
        i.nik_hash = f.nik_hash AND (
            i.erased_at IS NOT NULL
            OR i.status = :merged
            OR (f.released AND i.status = :released_status)
            OR (
                NOT f.released
                AND i.status IN (:in_custody, :absent)
                AND i.facility_id = f.facility_id
                AND (f.expected IS NULL OR f.expected = i.expected_release_date)
                AND (
                    i.consent_withdrawn_at IS NOT NULL
                    OR ((i.consent_training OR NOT f.training)
                        AND (i.consent_data_sharing OR NOT f.sharing))
                )
            )
        ),
        false
    )
    """
)


async def _compare(
    session: AsyncSession,
    rows: list[tuple[ImportRow, str]],
    facilities: dict[str, tuple[uuid.UUID, bool]],
) -> _Found:
    """PostgreSQL: the chunk compared with the registry in one statement (``_COMPARE``).

    Its plan does not depend on statistics: with sequential scans, hash and merge joins off
    (``_by_index``) it probes the unique indexes on the registration number and the NIK hash
    once a line, whether the registry was analysed or not, empty or national.
    """
    if not rows:
        return _Found(registered={}, unchanged=set(), nik_taken=set())
    result = await session.execute(
        _COMPARE,
        {
            "lines": [row.line for row, _ in rows],
            "numbers": [row.registration_number for row, _ in rows],
            "hashes": [nik_hash for _, nik_hash in rows],
            "facilities": [str(facilities[row.facility_code][0]) for row, _ in rows],
            "expected": [row.expected_release_date for row, _ in rows],
            "training": [row.consent_training for row, _ in rows],
            "sharing": [row.consent_data_sharing for row, _ in rows],
            "released": [row.release_kind is not None for row, _ in rows],
            "merged": InmateStatus.MERGED.value,
            "released_status": InmateStatus.RELEASED.value,
            "in_custody": InmateStatus.IN_CUSTODY.value,
            "absent": InmateStatus.TEMPORARILY_ABSENT.value,
        },
    )
    found = _Found(registered={}, unchanged={row.line for row, _ in rows}, nik_taken=set())
    for line in result.all():
        found.unchanged.discard(line.line)
        if line.id is not None:
            found.registered[line.line] = _registered(line)
        elif line.nik_taken:
            found.nik_taken.add(line.line)
    return found


_PLANNER = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")
_PLANNER_OFF = set_locally(dict.fromkeys(_PLANNER, "off"))


async def _by_index(session: AsyncSession, on: bool) -> None:
    """On PostgreSQL, whether this transaction's next statements must probe an index if one
    serves: sequential scans, hash and merge joins off (``on``), or back to the settings'
    values.

    A chunk's lookups fetch 1,000 people by a unique key: an index scan, whatever the table's
    size. Without statistics (no ANALYZE yet, autovacuum off or not come round) PostgreSQL
    plans a sequential scan even for these, planned for their values or not: 27 to 41 ms at
    100,000 people and growing with the table, against 7 to 9 ms through the unique indexes;
    and joined with the chunk's values, a hash join over the whole table (95 to 124 ms).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    if on:
        await session.execute(text(_PLANNER_OFF))
    else:
        names = ", ".join(f"'{name}'" for name in _PLANNER)
        await session.execute(
            text(
                f"SELECT set_config(name, reset_val, true) FROM pg_settings WHERE name IN ({names})"
            )
        )


async def _check_and_write(
    db: Database,
    rows: list[tuple[ImportRow, str]],
    report: ImportReport,
    facilities: dict[str, tuple[uuid.UUID, bool]],
    seen: SeenKeys,
    context: _Context,
    bad: Callable[[LineError], None],
    skip: Callable[[LineError], None],
) -> None:
    async with db.session() as session:
        # A generic plan made while the registry was empty would scan the whole table for each
        # chunk's lookups as it grows (215 lines/s at 150,000 people, and falling).
        await plan_each_statement(session)
        await _by_index(session, True)
        if db.is_sqlite:
            found = await _look_up(session, rows)
        else:
            found = await _compare(session, rows, facilities)
        await _by_index(session, False)
        keys = {
            row.line: (_digest(row.registration_number), _digest(nik_hash))
            for row, nik_hash in rows
        }
        known_numbers = seen.known(SeenKeys.NUMBER, [n for n, _ in keys.values()])
        known_niks = seen.known(SeenKeys.NIK, [k for _, k in keys.values()])
        seen_numbers: set[int] = set()  # this chunk's
        seen_niks: set[int] = set()
        new: list[dict[str, Any]] = []
        changes: list[tuple[ImportRow, uuid.UUID, Change]] = []
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
            facility_id, facility_active = facilities[row.facility_code]
            verdict = _decide(
                row,
                nik_hash,
                found,
                facility_id=facility_id,
                facility_active=facility_active,
                today=context.today,
            )
            if isinstance(verdict, Outcome):
                report.count(verdict)
            elif isinstance(verdict, _Planned):
                report.count(verdict.change.outcome)
                if verdict.change.outcome is not Outcome.UNCHANGED:
                    changes.append((row, verdict.inmate_id, verdict.change))
            elif isinstance(verdict, _Skipped):
                skip(verdict.error)
            elif verdict is None:
                report.created += 1
                if not context.dry_run:
                    new.append(_new_inmate(row, nik_hash, facility_id, context))
            else:
                bad(verdict)
        seen.add(SeenKeys.NUMBER, seen_numbers)
        seen.add(SeenKeys.NIK, seen_niks)
        if context.dry_run or not (new or changes):
            return  # the session closes without a commit: nothing written
        if new:
            await _insert(session, new, facilities, context)
        # The changes are flushed together at the commit, not each before the next person is
        # loaded: each line names another person (a number or NIK met twice is refused above),
        # and one person's use cases find their own pending changes in the session.
        with session.no_autoflush:
            # Locked together, in one statement, rather than one locked read a person.
            locked = await load_inmates(
                session=session,
                inmate_ids=[inmate_id for _, inmate_id, _ in changes],
                principal=context.principal,
            )
            # The facilities people move to, in the session at once: each transfer's own read
            # of its destination (``session.get``) finds it there. Held here, as the session
            # holds what it loaded only while something refers to it.
            destinations = await _facilities(
                session, {c.transfer_to for _, _, c in changes if c.transfer_to is not None}
            )
            for row, inmate_id, change in changes:
                await _apply(session, row, inmate_id, locked.get(inmate_id), change, context)
            del destinations
        await session.commit()


@dataclass(frozen=True, slots=True)
class _Planned:
    """A registered person's line: what it changes (``Outcome.UNCHANGED`` when nothing)."""

    inmate_id: uuid.UUID
    change: Change


@dataclass(frozen=True, slots=True)
class _Skipped:
    """A line passed over, not refused: reported apart from the bad lines."""

    error: LineError


def _decide(
    row: ImportRow,
    nik_hash: str,
    found: _Found,
    *,
    facility_id: uuid.UUID,
    facility_active: bool,
    today: date,
) -> Outcome | _Planned | _Skipped | LineError | None:
    """What a line (already checked against the file's other lines) does, given what the
    registry holds for it: unchanged, a change planned, skipped, refused (a ``LineError``), or
    ``None`` for a new person. The same whether ``found`` came from the comparison line by line
    or set-based."""
    if row.line in found.unchanged:
        return Outcome.UNCHANGED
    current = found.registered.get(row.line)
    if current is not None:
        try:
            change = plan_change(
                row,
                nik_hash=nik_hash,
                current=current,
                facility_id=facility_id,
                facility_active=facility_active,
                today=today,
            )
        except LineErrorException as exc:
            return exc.error
        return _Planned(current.id, change)
    if row.line in found.nik_taken:
        return LineError(row.line, "nik", "NIK sudah terdaftar dengan nomor registrasi lain")
    if row.release_kind is not None:
        return _Skipped(
            LineError(
                row.line,
                "status",
                "sudah bebas menurut berkas dan belum terdaftar; tidak didaftarkan",
            )
        )
    if not facility_active:
        return LineError(row.line, "facility_code", "fasilitas tidak aktif")
    return None


async def _facilities(session: AsyncSession, ids: set[uuid.UUID]) -> list[Facility]:
    if not ids:
        return []
    return list(await session.scalars(select(Facility).where(among(session, Facility.id, ids))))


def _new_inmate(
    row: ImportRow, nik_hash: str, facility_id: uuid.UUID, context: _Context
) -> dict[str, Any]:
    now: datetime = utcnow()
    share = row.consent_training and row.consent_data_sharing
    consent_given = row.consent_training or row.consent_data_sharing
    return {
        "id": uuid.uuid4(),
        "registration_number": row.registration_number,
        "full_name": row.full_name,
        "search_name": domain.search_key(row.full_name),
        "nik_hash": nik_hash,
        "nik_encrypted": domain.encrypt_nik(row.nik, context.secret),
        "sex": row.sex,
        "date_of_birth": row.date_of_birth,
        "education_level": row.education_level,
        "facility_id": facility_id,
        "admission_date": row.admission_date,
        "expected_release_date": row.expected_release_date,
        "status": InmateStatus.IN_CUSTODY.value,
        "consent_training": row.consent_training,
        "consent_data_sharing": row.consent_data_sharing,
        "consent_recorded_at": now if consent_given else None,
        "consent_recorded_by": context.principal.subject if consent_given else None,
        "shared": share,
        "shared_at": now if share else None,
        "created_at": now,
        "updated_at": now,
        "_line": row.line,
    }


# ``json.dumps(..., sort_keys=True)`` makes an encoder for each call: a third of an audit
# entry's detail, once a line in a first import.
_SORTED_JSON = json.JSONEncoder(sort_keys=True)


async def _insert(
    session: AsyncSession,
    new: list[dict[str, Any]],
    facilities: dict[str, tuple[uuid.UUID, bool]],
    context: _Context,
) -> None:
    """New people, their audit entries and InmateShared events, in bulk."""
    codes = {fid: code for code, (fid, _) in facilities.items()}
    lines = [values.pop("_line") for values in new]
    # COPY on PostgreSQL (one statement each on SQLite): the ORM would stage an object per row
    # and flush them one statement a table, for nothing here.
    await copy_rows(session, table_of(Inmate), new)
    principal = context.principal
    roles = ",".join(sorted(principal.roles))
    await copy_rows(
        session,
        table_of(AuditEntry),
        [
            {
                "id": uuid.uuid4(),
                "at": values["created_at"],
                "actor": principal.subject,
                "roles": roles,
                "action": "inmate.registered",
                "inmate_id": values["id"],
                "facility_id": values["facility_id"],
                "detail": _SORTED_JSON.encode(
                    {
                        "registration_number": values["registration_number"],
                        "consent_training": values["consent_training"],
                        "consent_data_sharing": values["consent_data_sharing"],
                        "shared": values["shared"],
                        "line": line,
                        **context.via,
                    }
                ),
            }
            for values, line in zip(new, lines, strict=True)
        ],
    )
    shared = [values for values in new if values["shared"]]
    # The people are new: their keys are made, not looked for; PersonKeyPublished goes first.
    keys = await new_person_keys(session=session, participant_ids=[v["id"] for v in shared])
    await add_events(
        session,
        [
            outbox_values(
                InmateShared(
                    participant_id=values["id"],
                    full_name=values["full_name"],
                    sex=values["sex"],
                    birth_year=values["date_of_birth"].year,
                    facility_id=values["facility_id"],
                    admission_date=values["admission_date"],
                    expected_release_date=values["expected_release_date"],
                    facility_code=codes[values["facility_id"]],
                ),
                person_key=keys[values["id"]],
            )
            for values in shared
        ],
    )


async def _apply(
    session: AsyncSession,
    row: ImportRow,
    inmate_id: uuid.UUID,
    locked: Inmate | None,
    change: Change,
    context: _Context,
) -> None:
    """One person's changes, through the same use cases (rules, events, audit) as the API;
    ``locked`` is the person already loaded for update with the chunk's others."""
    principal = context.principal
    via = {**context.via, "line": row.line}
    if change.release is not None:
        kind, released_on = change.release
        await movements.release_inmate(
            session=session,
            inmate_id=inmate_id,
            release=ReleaseIn(kind=kind, released_on=released_on),
            principal=principal,
            via=via,
            locked=locked,
        )
        return
    if change.transfer_to is not None:
        await movements.transfer_inmate(
            session=session,
            inmate_id=inmate_id,
            transfer=TransferIn(to_facility_id=change.transfer_to, transferred_on=context.today),
            principal=principal,
            via=via,
            locked=locked,
        )
    if change.expected_release_date is not None:
        await movements.update_expected_release(
            session=session,
            inmate_id=inmate_id,
            expected_release_date=change.expected_release_date,
            principal=principal,
            via=via,
            locked=locked,
        )
    if change.consent is not None:
        await inmates.record_consent(
            session=session,
            inmate_id=inmate_id,
            consent=ConsentIn(
                training=change.consent.training, data_sharing=change.consent.data_sharing
            ),
            principal=principal,
            via=via,
            locked=locked,
        )


async def audit_import(
    db: Database,
    *,
    actor: str,
    roles: str,
    report: ImportReport,
    source: str,
    job_id: uuid.UUID | None = None,
) -> None:
    """One summary entry per real import, next to the entries per person it changed."""
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
                        **report.counts(),
                    },
                    sort_keys=True,
                ),
            )
        )
        await session.commit()
