"""Reading one line of an inmate CSV export: every rule names its field and never the NIK."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bekal.registry.importer import LineErrorException, count_lines, parse_line
from bekal.shared.events.catalogue import ReleaseKind

GOOD = {
    "registration_number": "AI.2023.001",
    "full_name": "Siti Aminah",
    "nik": "6171014505900001",
    "sex": "F",
    "date_of_birth": "1990-05-05",
    "education_level": "SMA",
    "facility_code": "LP-PONTIANAK",
    "admission_date": "2023-01-10",
    "expected_release_date": "2026-01-10",
    "status": "in_custody",
    "consent_training": "ya",
    "consent_data_sharing": "true",
}


def test_a_good_line() -> None:
    row = parse_line(2, dict(GOOD))
    assert row.line == 2 and row.sex == "F" and row.date_of_birth == date(1990, 5, 5)
    assert row.consent_training and row.consent_data_sharing
    assert row.expected_release_date == date(2026, 1, 10)


def test_indonesian_forms_are_understood() -> None:
    row = parse_line(
        3,
        {
            **GOOD,
            "sex": "L",
            "date_of_birth": "05/05/1990",
            "status": "",
            "expected_release_date": "",
            "consent_training": "tidak",
            "consent_data_sharing": "",
            "education_level": "",
        },
    )
    assert row.sex == "M" and row.date_of_birth == date(1990, 5, 5)
    assert row.expected_release_date is None and row.education_level is None
    assert not row.consent_training and not row.consent_data_sharing


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"registration_number": " "}, "registration_number"),
        ({"full_name": ""}, "full_name"),
        ({"nik": "61710145059000"}, "nik"),
        ({"nik": "61710145059000AB"}, "nik"),
        ({"nik": "617101450590000123"}, "nik"),
        ({"sex": "X"}, "sex"),
        ({"date_of_birth": "1990-13-01"}, "date_of_birth"),
        ({"date_of_birth": "2024-01-01"}, "date_of_birth"),  # after admission
        ({"admission_date": ""}, "admission_date"),
        ({"expected_release_date": "2020-01-01"}, "expected_release_date"),
        ({"status": "deceased"}, "status"),
        ({"status": "in_custody", "release_kind": "parole"}, "release_kind"),
        ({"status": "parole", "release_kind": "free"}, "release_kind"),
        ({"status": "released", "released_on": "2020-01-01"}, "released_on"),
        ({"released_on": "2026-01-01"}, "released_on"),
        ({"consent_training": "mungkin"}, "consent_training"),
        ({"facility_code": ""}, "facility_code"),
        ({"full_name": "x" * 201}, "full_name"),
    ],
)
def test_each_bad_value_names_its_field_and_the_line(changes: dict[str, str], field: str) -> None:
    with pytest.raises(LineErrorException) as bad:
        parse_line(7, {**GOOD, **changes})
    assert bad.value.error.line == 7 and bad.value.error.field == field
    assert bad.value.error.reason
    assert GOOD["nik"] not in bad.value.error.reason
    assert changes.get("nik", "@") not in bad.value.error.reason


def test_lines_are_counted_without_the_header(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("h\n1\n2\n3")
    assert count_lines(path) == 3
    path.write_text("h\n1\n2\n")
    assert count_lines(path) == 2
    path.write_text("")
    assert count_lines(path) == 0


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        ("released", "", ReleaseKind.FREE),
        ("released", "parole", ReleaseKind.PAROLE),
        ("bebas", "cuti_bersyarat", ReleaseKind.CONDITIONAL),
        ("parole", "", ReleaseKind.PAROLE),
        ("Pembebasan Bersyarat", "", ReleaseKind.PAROLE),
        ("conditional_release", "conditional", ReleaseKind.CONDITIONAL),
        ("bebas_murni", "", ReleaseKind.FREE),
    ],
)
def test_a_release_status_names_its_kind(status: str, kind: str, expected: ReleaseKind) -> None:
    row = parse_line(
        4,
        {**GOOD, "status": status, "release_kind": kind, "released_on": ""},
        today=date(2026, 11, 25),
    )
    assert row.release_kind is expected
    assert row.released_on == date(2026, 11, 25)  # no date in the file: the day of the import


def test_a_release_keeps_the_date_the_file_gives() -> None:
    row = parse_line(4, {**GOOD, "status": "parole", "released_on": "01/11/2026"})
    assert row.released_on == date(2026, 11, 1)


def test_someone_in_custody_has_no_release() -> None:
    row = parse_line(4, dict(GOOD))
    assert row.release_kind is None and row.released_on is None
