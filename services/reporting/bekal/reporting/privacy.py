"""Small-count suppression for everything published outside the ministries.

Primary suppression: a count of 1 to 4 is shown as "<5". Secondary suppression: wherever a
published total (a margin) is the sum of published cells, one hidden cell could be recomputed
as the margin minus the others; so every such sum with exactly one hidden member gets a second
one hidden ("x"), the smallest positive cell preferred, repeated until no sum has exactly one.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Counts below this (and above zero) are never published.
SMALL_COUNT_THRESHOLD = 5
PRIMARY = "<5"
SECONDARY = "x"

Cell = int | str


@dataclass(frozen=True)
class Constraint:
    """``margin`` is published and equals the sum of ``cells`` (all published too)."""

    margin: Hashable
    cells: tuple[Hashable, ...]


def is_small(value: int) -> bool:
    return 0 < value < SMALL_COUNT_THRESHOLD


def _order(key: Hashable) -> str:
    return repr(key)


def suppress(values: Mapping[Hashable, int], constraints: Sequence[Constraint]) -> dict[Any, Cell]:
    """Every value as published: the count itself, "<5" (primary) or "x" (secondary)."""
    hidden: dict[Hashable, str] = {k: PRIMARY for k, v in values.items() if is_small(v)}
    changed = True
    while changed:
        changed = False
        for constraint in constraints:
            members = [constraint.margin, *constraint.cells]
            if sum(1 for m in members if m in hidden) != 1 or len(members) < 2:
                continue
            hidden[_second(values, constraint, hidden)] = SECONDARY
            changed = True
    return {k: hidden.get(k, v) for k, v in values.items()}


def _second(
    values: Mapping[Hashable, int], constraint: Constraint, hidden: Mapping[Hashable, str]
) -> Hashable:
    """Which member to hide with the lone hidden one: the smallest positive cell if any, else
    the margin (a line of one cell), else any zero (hiding a zero still blocks the sum)."""
    open_cells = [c for c in constraint.cells if c not in hidden]
    positive = [c for c in open_cells if values[c] > 0]
    if positive:
        return min(positive, key=lambda c: (values[c], _order(c)))
    if constraint.margin not in hidden:
        return constraint.margin
    return min(open_cells, key=_order)


def recomputable(
    published: Mapping[Hashable, Cell], constraints: Sequence[Constraint]
) -> list[Hashable]:
    """Hidden members that one published sum gives away (for tests and checks): must be empty."""
    found = []
    for constraint in constraints:
        members = [constraint.margin, *constraint.cells]
        hidden = [m for m in members if not isinstance(published[m], int)]
        if len(hidden) == 1:
            found.append(hidden[0])
    return found


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
    """The open-data cells and the summary's margins, suppressed together, per counter."""

    cells: list[dict[str, Any]]  # one per combination of OPEN_DATA_KEYS, counters published
    margins: dict[str, list[dict[str, Any]]]  # per SUMMARY_MARGINS dimension
    totals: dict[str, Cell]


def public_tables(rows: Sequence[Mapping[str, Any]]) -> PublicTables:
    """``rows``: one per cell, with the OPEN_DATA_KEYS and the PUBLIC_COUNTERS as ints.

    Every margin is computed here from the same cells, so the summary and the open data are one
    set of published numbers and are suppressed as one: no figure in either gives away a
    hidden one in the other.
    """
    cell_keys = [tuple(r[k] for k in OPEN_DATA_KEYS) for r in rows]
    by_margin: dict[str, dict[Any, list[tuple[Any, ...]]]] = {d: {} for d in SUMMARY_MARGINS}
    for keys in cell_keys:
        for d in SUMMARY_MARGINS:
            by_margin[d].setdefault(keys[OPEN_DATA_KEYS.index(d)], []).append(keys)
    constraints = [
        Constraint(TOTAL, tuple(_margin_key(d, v) for v in by_margin[d])) for d in SUMMARY_MARGINS
    ] + [
        Constraint(_margin_key(d, v), tuple(_cell_key(k) for k in members))
        for d in SUMMARY_MARGINS
        for v, members in by_margin[d].items()
    ]
    published: dict[str, dict[Any, Cell]] = {}
    for counter in PUBLIC_COUNTERS:
        values: dict[Hashable, int] = {}
        for keys, row in zip(cell_keys, rows, strict=True):
            values[_cell_key(keys)] = int(row[counter])
        for d in SUMMARY_MARGINS:
            for v, members in by_margin[d].items():
                values[_margin_key(d, v)] = sum(values[_cell_key(k)] for k in members)
        values[TOTAL] = sum(int(r[counter]) for r in rows)
        published[counter] = suppress(values, constraints)

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
