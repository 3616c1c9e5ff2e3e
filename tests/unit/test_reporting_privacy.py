"""The public outputs' protection: every count rounded to base 5 with a cell key, so no sum or
difference of published figures is an exact count from 1 to 4."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bekal.reporting.privacy import (
    ROUNDING_BASE,
    cell_key,
    protect,
    public_tables,
    round_count,
)
from bekal.reporting.settings import DEV_PUBLICATION_SECRET, ReportingSettings
from bekal.shared.settings import Environment

SECRET = b"a-test-secret-of-its-own-32-bytes-long"


def test_zero_and_multiples_of_five_are_published_as_they_are() -> None:
    values = {"a": 0, "b": 5, "c": 120}
    assert protect(SECRET, values) == values


def test_other_counts_go_to_a_neighbouring_multiple_of_five() -> None:
    assert round_count(1, 0.19) == 5 and round_count(1, 0.2) == 0
    assert round_count(4, 0.79) == 5 and round_count(4, 0.8) == 0
    assert round_count(92, 0.39) == 95 and round_count(92, 0.4) == 90


def test_the_same_cell_and_count_always_get_the_same_value_and_the_secret_decides_it() -> None:
    cells = {("cell", (2024, "Banten", f"sektor-{n}", "F")): 1 for n in range(200)}
    once, again = protect(SECRET, cells), protect(SECRET, cells)
    assert once == again
    other = protect(b"another-secret-of-its-own-32-bytes-long", cells)
    assert other != once
    assert cell_key(SECRET, "x", 1) != cell_key(SECRET, "x", 2)


def test_rounding_is_unbiased_over_many_cells() -> None:
    # A 1 goes to 5 one time in five: over 5,000 cells the mean stays near 1.
    cells = {("cell", n): 1 for n in range(5000)}
    published = list(protect(SECRET, cells).values())
    assert set(published) == {0, 5}
    assert 0.9 < sum(published) / len(published) < 1.1


def _rows(draw_cells: list[tuple[int, str, str, str, int, int, int]]) -> list[dict[str, Any]]:
    merged: dict[tuple[Any, ...], list[int]] = {}
    for year, province, sector, sex, enrolled, completed, certified in draw_cells:
        merged[(year, province, sector, sex)] = [enrolled, completed, certified]
    return [
        {
            "year": k[0],
            "province": k[1],
            "sector": k[2],
            "sex": k[3],
            "enrolled": v[0],
            "completed": v[1],
            "certified": v[2],
        }
        for k, v in merged.items()
    ]


cells_strategy = st.lists(
    st.tuples(
        st.sampled_from([2017, 2018, 2019]),
        st.sampled_from(["Banten", "DKI Jakarta", "Kalimantan Barat"]),
        st.sampled_from(["batik", "kayu"]),
        st.sampled_from(["F", "M", None]),
        st.integers(0, 30),
        st.integers(0, 12),
        st.integers(0, 8),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(cells_strategy)
def test_no_difference_of_published_figures_gives_a_small_count_back(cells: list[Any]) -> None:
    rows = _rows(cells)
    tables = public_tables(rows, secret=SECRET)
    for counter in ("enrolled", "completed", "certified"):
        shown = [c[counter] for c in tables.cells]
        truth = [r[counter] for r in rows]
        margins = {d: {m[d]: m[counter] for m in tables.margins[d]} for d in ("year", "province")}
        true_margins: dict[str, dict[Any, int]] = {d: defaultdict(int) for d in margins}
        for row in rows:
            for d in margins:
                true_margins[d][row[d]] += row[counter]
        everything = [
            *shown,
            tables.totals[counter],
            *(v for m in margins.values() for v in m.values()),
        ]
        # Each figure is its true count rounded: a multiple of 5, off by less than 5.
        for published, true in zip(
            [*shown, tables.totals[counter]], [*truth, sum(truth)], strict=True
        ):
            assert published % ROUNDING_BASE == 0 and abs(published - true) < ROUNDING_BASE
            assert published == true or true % ROUNDING_BASE
        for d in margins:
            for value, published in margins[d].items():
                assert abs(published - true_margins[d][value]) < ROUNDING_BASE
        # The subtraction attack: a total (or margin) minus every other published member, and
        # any sum or difference of two figures, is never a count from 1 to 4.
        for a, b in itertools.combinations(everything, 2):
            assert not 0 < abs(a - b) < ROUNDING_BASE
            assert not 0 < a + b < ROUNDING_BASE
        for d in margins:
            for value, published in margins[d].items():
                members = [
                    c[counter] for c, r in zip(tables.cells, rows, strict=True) if r[d] == value
                ]
                for i in range(len(members)):
                    recovered = published - sum(members[:i] + members[i + 1 :])
                    assert not 0 < recovered < ROUNDING_BASE


def test_production_takes_no_publication_secret_but_its_own() -> None:
    def production(secret: str) -> ReportingSettings:
        return ReportingSettings(
            environment=Environment.PRODUCTION,
            auth_jwks_url="https://sso.example.go.id/certs",
            auth_issuer="https://sso.example.go.id/realms/bekal",
            publication_secret=secret,
        )

    for weak in (DEV_PUBLICATION_SECRET, "short"):
        with pytest.raises(ValidationError, match="PUBLICATION_SECRET"):
            production(weak)
    assert production("x" * 32).publication_secret == "x" * 32
