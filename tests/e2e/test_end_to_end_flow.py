"""The whole path over HTTP only, the four services as separate processes on a real broker.

Corrections registers a facility and inmates → training learns of them from events → industry runs a
course to completion → certification issues certificates on its own → anyone verifies one publicly →
reporting counts it all. A release mid-course withdraws the enrolment on its own, and reporting
shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bekal.devtools.broker import EmbeddedBroker
from bekal.devtools.devrun import Platform
from tests.support.course import CourseRun
from tests.support.platform import PlatformClient, eventually, started_platform

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def platform(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    with started_platform(broker, tmp_path_factory.mktemp("platform"), namespace="e2e") as p:
        yield p


def test_course_from_registration_to_certificate_and_report(platform: Platform) -> None:
    api = PlatformClient(platform)
    course = CourseRun(api)

    # 1. Corrections: a facility and five inmates, four of whom consent.
    facility = course.register_facility("LP-CIPINANG")
    names = ["Budi Santoso", "Agus Wijaya", "Dedi Saputra", "Rudi Hidayat", "Joko Pratama"]
    niks = [f"31750{tag_digit}{i:010d}" for i, tag_digit in enumerate("12345")]
    inmates = course.register_inmates("E2E", names, niks, consenting=4)
    for inmate in inmates:
        assert "nik" not in inmate
    consenting = [m["id"] for m in inmates[:4]]

    # 2. Training learns of the four (and only the four) from the registry's events.
    participants = course.participants_known(4)
    assert {p["id"] for p in participants["data"]} == set(consenting)

    # 3. Industry: a program, a session at that facility, enrolment, start.
    program = course.publish_program("WUB-BATIK")
    course.schedule(capacity=4)
    opened = course.open()
    assert opened["status"] == "open"
    course.enrol(consenting)
    course.start()

    # 4. The fourth participant is released on parole mid-course: training withdraws them itself.
    course.release_on_parole(consenting[3])
    enrollments = course.withdrawn(consenting[3])
    assert enrollments[consenting[3]]["withdrawal_reason"] == "released"

    # Attendance: the third participant misses three of five days; assessments all competent.
    course.attend(consenting[:3], absent={consenting[2]: 3})
    course.assess_competent(consenting[:3])
    done = course.complete()
    outcome = {e["participant_id"]: e["status"] for e in done["enrollments"]}
    assert outcome == {
        consenting[0]: "completed",
        consenting[1]: "completed",
        consenting[2]: "not_completed",
        consenting[3]: "withdrawn",
    }

    # 5. Certification issues a certificate to each who passed, on its own.
    by_participant = {c["participant_id"]: c for c in course.certificates(2)}
    assert set(by_participant) == set(consenting[:2])
    for pid, name in zip(consenting[:2], names[:2], strict=True):
        cert = by_participant[pid]
        assert cert["recipient_name"] == name
        assert cert["number"].startswith("IKMA/2024/")
        # 6. Anyone can verify it, without a token.
        verified = api(
            "GET", "certification", f"/public/verify/{cert['verification_code']}", as_=None
        )
        assert verified["result"] == "valid"
        assert verified["recipient_name"] == name and verified["number"] == cert["number"]
        assert "Cipinang" not in str(verified)  # a certificate never names the prison
    unknown = api("GET", "certification", "/public/verify/not-a-real-code-0000", as_=None)
    assert unknown == {"result": "unknown"}

    # 7. Reporting counts it by facility, province, program and year, withdrawal included.
    def report_row() -> Any:
        got = api(
            "GET",
            "reporting",
            f"/api/v1/indicators?group_by=facility,province,program,year&facility_id={facility['id']}",
            as_="industry",
        )
        rows = [r for r in got["data"] if r.get("program_id") == program["id"]]
        return (
            (got, rows[0])
            if rows
            and rows[0]["certified"] == 2
            and rows[0]["withdrawn"] == 1
            and rows[0]["completed"] + rows[0]["not_completed"] == 3
            else None
        )

    report, row = eventually("the indicators to count the course", report_row)
    assert row["facility_code"] == facility["code"] and row["province"] == "DKI Jakarta"
    assert row["year"] == 2024
    assert row["enrolled"] == 4
    assert row["withdrawn_by_reason"]["released"] == 1
    assert sum(row["withdrawn_by_reason"].values()) == 1
    assert (row["completed"], row["not_completed"], row["certified"]) == (2, 1, 2)
    assert report["data_as_of"] is not None

    # The NIK never leaves the registry: not in any other service's database.
    for service in ("training", "certification", "reporting"):
        content = _database_bytes(platform, service)
        assert content, f"no database files found for {service}"
        for nik in niks:
            assert nik.encode() not in content, f"a NIK is in {service}'s database"
    # Reporting keeps no names at all.
    assert names[0].encode() not in _database_bytes(platform, "reporting")


def _database_bytes(platform: Platform, service: str) -> bytes:
    """The service's SQLite file with its WAL and shared-memory files, as far as they exist.

    SQLite creates and removes the -wal/-shm files while the service runs, so a file listed a
    moment ago may be gone when read.
    """
    content = b""
    for db_file in Path(platform.var / "data").glob(f"{service}.db*"):
        try:
            content += db_file.read_bytes()
        except FileNotFoundError:
            continue
    return content
