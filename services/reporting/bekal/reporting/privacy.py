"""Protection of everything published outside the ministries: random rounding to base 5, with
the draw taken from a cell key.

Every published count is a multiple of 5 (``ROUNDING_BASE``). A count n with remainder
r = n mod 5 is rounded up to the next multiple with probability r/5 and down otherwise, so the
published value is n on average (Statistics New Zealand's random rounding to base 3 or 5). The
draw is not a new random number per request: it is the cell's key, a number in [0, 1) derived
with a secret (HMAC-SHA256) from what the cell is (the counter, the cell or margin) and its true
count, as in the Australian Bureau of Statistics' cell-key method. So a cell always shows the
same value, asking again teaches nothing, and a cell changes only when its count does.

Margins (the total, per year, per province) are rounded as cells of their own, from their true
count, not summed from rounded cells: tables need not add up.

Why differencing gives nothing away: every published number is a multiple of 5, so any sum or
difference of published numbers, across the summary and the open data, is a multiple of 5 too
and is never an exact count from 1 to 4. Zero stays zero and a multiple of 5 is published as it
is; any other count is off by 1 to 4. Officials' outputs (the indicators API, its files and the
dashboard) stay exact: they are not published.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROUNDING_BASE = 5

# 2**64: the first eight bytes of the digest as a fraction in [0, 1).
_KEY_SCALE = float(1 << 64)


def cell_key(secret: bytes, cell: Hashable, count: int) -> float:
    """The cell's draw in [0, 1): the same for the same cell and count, unknowable without the
    secret."""
    digest = hmac.new(secret, repr((cell, count)).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / _KEY_SCALE


def round_count(count: int, key: float) -> int:
    """``count`` rounded to a multiple of ROUNDING_BASE: up with probability remainder/base."""
    remainder = count % ROUNDING_BASE
    down = count - remainder
    if remainder == 0:
        return count
    return down + ROUNDING_BASE if key < remainder / ROUNDING_BASE else down


def protect(secret: bytes, values: Mapping[Any, int]) -> dict[Any, int]:
    """Every value as published: rounded with its own cell key."""
    return {cell: round_count(v, cell_key(secret, cell, v)) for cell, v in values.items()}


# --- the public tables ------------------------------------------------------------------------

PUBLIC_COUNTERS: tuple[str, ...] = ("enrolled", "completed", "certified")
# The dimensions of the open-data cells, in column order.
OPEN_DATA_KEYS: tuple[str, ...] = ("year", "province", "sector", "sex")
# The margins the public summary publishes over those cells.
SUMMARY_MARGINS: tuple[str, ...] = ("year", "province")

TOTAL = ("total",)


def _margin_key(dimension: str, value: Any) -> tuple[str, str, Any]:
    return ("margin", dimension, value)


def _cell_key(keys: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    return ("cell", keys)


@dataclass(frozen=True)
class PublicTables:
    """The open-data cells and the summary's margins, each count rounded, per counter."""

    cells: list[dict[str, Any]]  # one per combination of OPEN_DATA_KEYS, counters published
    margins: dict[str, list[dict[str, Any]]]  # per SUMMARY_MARGINS dimension
    totals: dict[str, int]


def public_tables(rows: Sequence[Mapping[str, Any]], *, secret: bytes) -> PublicTables:
    """``rows``: one per cell, with the OPEN_DATA_KEYS and the PUBLIC_COUNTERS as ints (true
    counts). Every margin is computed here from the same true cells, then each figure is
    rounded on its own."""
    cell_keys = [tuple(r[k] for k in OPEN_DATA_KEYS) for r in rows]
    by_margin: dict[str, dict[Any, list[tuple[Any, ...]]]] = {d: {} for d in SUMMARY_MARGINS}
    for keys in cell_keys:
        for d in SUMMARY_MARGINS:
            by_margin[d].setdefault(keys[OPEN_DATA_KEYS.index(d)], []).append(keys)
    published: dict[str, dict[Any, int]] = {}
    for counter in PUBLIC_COUNTERS:
        values: dict[Hashable, int] = {}
        for keys, row in zip(cell_keys, rows, strict=True):
            values[(counter, _cell_key(keys))] = int(row[counter])
        for d in SUMMARY_MARGINS:
            for v, members in by_margin[d].items():
                values[(counter, _margin_key(d, v))] = sum(
                    values[(counter, _cell_key(k))] for k in members
                )
        values[(counter, TOTAL)] = sum(int(r[counter]) for r in rows)
        published[counter] = {cell: value for (_, cell), value in protect(secret, values).items()}

    cells = [
        {
            **dict(zip(OPEN_DATA_KEYS, keys, strict=True)),
            **{c: published[c][_cell_key(keys)] for c in PUBLIC_COUNTERS},
        }
        for keys in cell_keys
    ]
    margins = {
        d: [
            {d: v, **{c: published[c][_margin_key(d, v)] for c in PUBLIC_COUNTERS}}
            for v in by_margin[d]
        ]
        for d in SUMMARY_MARGINS
    }
    totals = {c: published[c][TOTAL] for c in PUBLIC_COUNTERS}
    return PublicTables(cells=cells, margins=margins, totals=totals)
