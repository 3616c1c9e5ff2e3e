"""The import's set-based comparison on PostgreSQL decides every line as the line-by-line one
does: the people whose line changes nothing stay in the database, the others come back and go
through ``plan_change``, for every state a registered person can be in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest

from bekal.registry import importer
from bekal.registry.domain import InmateStatus, nik_digest, search_key
from bekal.registry.importer import Outcome, parse_line
from bekal.registry.models import Facility, Inmate
from bekal.shared.db import Database, utcnow
from bekal.shared.migrations import upgrade

pytestmark = pytest.mark.integration

SECRET = "compare-test-secret"
TODAY = date(2026, 12, 6)
NOW = utcnow()
FACILITIES = {"LP-A": True, "LP-B": True, "LP-CLOSED": False}

# Registered people: number -> the registry's state of them.
STATES: dict[str, dict[str, Any]] = {
    "CM.CUSTODY": {},
    "CM.NODATE": {"expected_release_date": None, "consent_training": True},
    "CM.ABSENT": {"status": InmateStatus.TEMPORARILY_ABSENT.value, "absence_reason": "court"},
    "CM.RELEASED": {
        "status": InmateStatus.RELEASED.value,
        "release_kind": "free",
        "released_on": date(2026, 10, 1),
    },
    "CM.DEAD": {"status": InmateStatus.DECEASED.value, "died_on": date(2026, 9, 1)},
    "CM.MERGED": {"status": InmateStatus.MERGED.value},
    "CM.ERASED": {"erased_at": NOW},
    "CM.WITHDRAWN": {"consent_withdrawn_at": NOW},
    "CM.SHARED": {"consent_training": True, "consent_data_sharing": True, "shared": True},
}


def nik_of(number: str) -> str:
    return f"{3201000000000000 + sorted(STATES).index(number) + 1:016d}"


# What a file may say of someone: the same as day 1, or one thing changed.
VARIANTS: list[dict[str, str]] = [
    {},
    {"facility_code": "LP-B"},
    {"facility_code": "LP-CLOSED"},
    {"expected_release_date": ""},
    {"expected_release_date": "2026-12-20"},
    {"consent_training": "ya"},
    {"consent_data_sharing": "ya"},
    {"consent_training": "ya", "consent_data_sharing": "ya"},
    {"status": "parole", "released_on": "2026-11-20"},
    {"status": "released"},
    {"nik": "3209999999999999"},  # another NIK under the same number: a conflict
]


def record(number: str, nik: str, **changes: str) -> dict[str, str | None]:
    """A file's line for ``number``; ``changes`` may give another NIK."""
    return {
        "registration_number": number,
        "full_name": f"Warga {number}",
        "nik": nik,
        "sex": "F",
        "date_of_birth": "1990-05-05",
        "facility_code": "LP-A",
        "admission_date": "2023-01-10",
        "expected_release_date": "2027-01-10",
        "status": "in_custody",
        "consent_training": "tidak",
        "consent_data_sharing": "tidak",
        **changes,
    }


async def _registry(url: str) -> tuple[Database, dict[str, tuple[uuid.UUID, bool]]]:
    await asyncio.to_thread(upgrade, "bekal.registry", url)
    db = Database(url)
    facilities = {code: (uuid.uuid4(), active) for code, active in FACILITIES.items()}
    async with db.session() as s:
        for code, (fid, active) in facilities.items():
            s.add(
                Facility(
                    id=fid,
                    code=code,
                    name=code,
                    kind="lapas",
                    facility_class="IIB",
                    province="Jawa Barat",
                    regional_office="Kanwil Jawa Barat",
                    capacity=100,
                    active=active,
                )
            )
        await s.flush()
        for number, state in STATES.items():
            values: dict[str, Any] = {
                "id": uuid.uuid4(),
                "registration_number": number,
                "full_name": f"Warga {number}",
                "search_name": search_key(f"Warga {number}"),
                "nik_hash": nik_digest(nik_of(number), SECRET),
                "sex": "F",
                "date_of_birth": date(1990, 5, 5),
                "facility_id": facilities["LP-A"][0],
                "admission_date": date(2023, 1, 10),
                "expected_release_date": date(2027, 1, 10),
                "status": InmateStatus.IN_CUSTODY.value,
                "consent_training": False,
                "consent_data_sharing": False,
                "shared": False,
                **state,
            }
            s.add(Inmate(**values))
        await s.commit()
    return db, facilities


def _decide(
    row: importer.ImportRow,
    nik_hash: str,
    found: importer._Found,
    facilities: dict[str, tuple[uuid.UUID, bool]],
) -> tuple[str, ...]:
    """What the import makes of a line given ``found``, as plain values to compare."""
    facility_id, active = facilities[row.facility_code]
    verdict = importer._decide(
        row, nik_hash, found, facility_id=facility_id, facility_active=active, today=TODAY
    )
    if isinstance(verdict, importer._Planned):
        change = verdict.change
        if change.outcome is Outcome.UNCHANGED:
            return (Outcome.UNCHANGED.value,)
        return (
            change.outcome.value,
            str(change.transfer_to),
            str(change.expected_release_date),
            str(change.consent),
            str(change.release),
        )
    if isinstance(verdict, Outcome):
        return (verdict.value,)
    if isinstance(verdict, importer.LineError):
        return ("invalid", str(verdict.field), verdict.reason)
    if isinstance(verdict, importer._Skipped):
        return ("skipped", str(verdict.error.field), verdict.error.reason)
    return ("new",)


async def test_the_set_based_comparison_decides_each_line_as_plan_change_does(
    database_url: str,
):
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite compares a chunk line by line in Python")
    db, facilities = await _registry(database_url)
    try:
        lines: list[dict[str, str | None]] = [
            record(number, **{"nik": nik_of(number), **variant})
            for number in STATES
            for variant in VARIANTS
        ]
        # Not registered: a new person, and a new number with a registered person's NIK.
        lines.append(record("CM.NEW", "3201000000000999"))
        lines.append(record("CM.OTHER", nik_of("CM.CUSTODY")))
        rows = []
        for line, fields in enumerate(lines, start=2):
            row = parse_line(line, fields, today=TODAY)
            rows.append((row, nik_digest(row.nik, SECRET)))
        async with db.session() as session:
            await importer._by_index(session, True)
            by_line = await importer._look_up(session, rows)
            by_set = await importer._compare(session, rows, facilities)

        decided = {r.line: _decide(r, h, by_line, facilities) for r, h in rows}
        assert {r.line: _decide(r, h, by_set, facilities) for r, h in rows} == decided
        # Only the lines that change something, are new or conflict come back from PostgreSQL.
        assert by_set.unchanged == {
            line for line, outcome in decided.items() if outcome == (Outcome.UNCHANGED.value,)
        }
        assert len(by_set.unchanged) >= len(STATES)  # everyone's own line, at least
        outcomes = {outcome[0] for outcome in decided.values()}
        assert outcomes == {"unchanged", "updated", "transferred", "released", "invalid", "new"}
        # The registered person's NIK under a new number is refused as such.
        assert decided[len(lines) + 1][1:] == (
            "nik",
            "NIK sudah terdaftar dengan nomor registrasi lain",
        )
    finally:
        await db.dispose()
