"""CSV files a person opens in a spreadsheet program: no cell can be a formula.

A name such as ``=HYPERLINK("http://…", "klik")`` from a facility, a sector or a person would
otherwise run when an official opens the file (CSV injection). Following OWASP's guidance, a text
cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a
leading apostrophe, which spreadsheet programs show as text. Numbers stay numbers (a negative
count is not text). Reporting's XLSX files write each cell as a string or a number, never a
formula (bekal.reporting.exports).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: Any) -> Any:
    """The value as a spreadsheet must take it: a text that could start a formula gets a leading
    apostrophe; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a BOM so spreadsheet programs read the names right; comma-separated; None is an
    empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralised(c) for c in columns])
    for row in rows:
        writer.writerow(["" if v is None else neutralised(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
