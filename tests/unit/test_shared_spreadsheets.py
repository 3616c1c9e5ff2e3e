"""CSV cells that a spreadsheet program would run as formulas are written as text."""

from __future__ import annotations

import csv
import io

import pytest

from bekal.shared.spreadsheets import csv_bytes, neutralised


@pytest.mark.parametrize(
    "payload",
    [
        '=HYPERLINK("http://attacker.example","klik")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_a_text_that_could_start_a_formula_gets_a_leading_apostrophe(payload: str) -> None:
    assert neutralised(payload) == "'" + payload
    rows = list(csv.reader(io.StringIO(csv_bytes(["name"], [[payload]]).decode("utf-8-sig"))))
    assert rows == [["name"], ["'" + payload]]


@pytest.mark.parametrize(
    "value", ["Lapas Kelas IIA Pontianak", "Ma\u2019ruf", "", "a=b", 12, -3, 0.75]
)
def test_plain_text_and_numbers_are_unchanged(value: object) -> None:
    assert neutralised(value) == value


def test_none_is_an_empty_cell_and_headers_are_neutralised_too() -> None:
    text = csv_bytes(["=a", "b"], [[None, -1]]).decode("utf-8")
    assert text == "\ufeff'=a,b\r\n,-1\r\n"
