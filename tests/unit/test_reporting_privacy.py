"""Small-count suppression of everything published: primary "<5", secondary "x", no recompute."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bekal.reporting.privacy import (
    PRIMARY,
    SECONDARY,
    Constraint,
    public_tables,
    recomputable,
    suppress,
)


def test_counts_of_one_to_four_are_hidden_zero_and_five_are_shown() -> None:
    values = {"a": 0, "b": 1, "c": 4, "d": 5, "e": 120}
    assert suppress(values, []) == {"a": 0, "b": PRIMARY, "c": PRIMARY, "d": 5, "e": 120}


def test_a_lone_small_cell_under_a_total_takes_the_smallest_other_positive_cell_with_it() -> None:
    # Without the second, "3" would be 30 - 12 - 0 - 15.
    values = {"total": 30, "a": 3, "b": 12, "c": 0, "d": 15}
    published = suppress(values, [Constraint("total", ("a", "b", "c", "d"))])
    assert published == {"total": 30, "a": PRIMARY, "b": SECONDARY, "c": 0, "d": 15}
    assert recomputable(published, [Constraint("total", ("a", "b", "c", "d"))]) == []


def test_two_small_cells_under_a_total_need_nothing_more() -> None:
    values = {"total": 20, "a": 2, "b": 3, "c": 15}
    published = suppress(values, [Constraint("total", ("a", "b", "c"))])
    assert published == {"total": 20, "a": PRIMARY, "b": PRIMARY, "c": 15}


def test_a_line_of_one_small_cell_hides_its_total_too() -> None:
    values = {"total": 2, "a": 2}
    assert suppress(values, [Constraint("total", ("a",))]) == {"total": PRIMARY, "a": PRIMARY}
    # With only zeros beside it, the total goes (it would equal the small cell).
    values = {"total": 3, "a": 3, "b": 0}
    assert suppress(values, [Constraint("total", ("a", "b"))]) == {
        "total": PRIMARY,
        "a": PRIMARY,
        "b": 0,
    }
    values = {"total": 9, "a": 3, "b": 0, "c": 6}
    published = suppress(values, [Constraint("total", ("a", "b", "c"))])
    assert published == {"total": 9, "a": PRIMARY, "b": 0, "c": SECONDARY}


def test_secondary_suppression_cascades_across_margins_until_no_sum_gives_a_cell_away() -> None:
    # A 2 x 2 table with row and column totals: hiding one small cell forces a second in its
    # row, which then stands alone in its column, and so on.
    cells = {("r1", "c1"): 2, ("r1", "c2"): 10, ("r2", "c1"): 9, ("r2", "c2"): 11}
    values: dict[Any, int] = dict(cells)
    values.update({"r1": 12, "r2": 20, "c1": 11, "c2": 21, "all": 32})
    constraints = [
        Constraint("r1", (("r1", "c1"), ("r1", "c2"))),
        Constraint("r2", (("r2", "c1"), ("r2", "c2"))),
        Constraint("c1", (("r1", "c1"), ("r2", "c1"))),
        Constraint("c2", (("r1", "c2"), ("r2", "c2"))),
        Constraint("all", ("r1", "r2")),
        Constraint("all", ("c1", "c2")),
    ]
    published = suppress(values, constraints)
    assert published[("r1", "c1")] == PRIMARY
    assert recomputable(published, constraints) == []
    assert all(isinstance(published[k], str) for k in cells)  # the whole interior goes
    assert published["all"] == 32  # and the grand total can still be shown


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
        st.sampled_from(["F", "M"]),
        st.integers(0, 30),
        st.integers(0, 12),
        st.integers(0, 8),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(cells_strategy)
def test_no_published_figure_gives_away_a_hidden_one(cells: list[Any]) -> None:
    rows = _rows(cells)
    tables = public_tables(rows)
    for counter in ("enrolled", "completed", "certified"):
        true_total = sum(r[counter] for r in rows)
        # Shown numbers are the true ones; every small one is hidden, everywhere.
        published_cells = [(r, c[counter]) for r, c in zip(rows, tables.cells, strict=True)]
        for row, shown in published_cells:
            if isinstance(shown, int):
                assert shown == row[counter] and not 0 < shown < 5
            else:
                assert shown == (PRIMARY if 0 < row[counter] < 5 else SECONDARY)
        shown_total = tables.totals[counter]
        assert shown_total == true_total or not isinstance(shown_total, int)
        if isinstance(shown_total, int):
            assert not 0 < shown_total < 5

        # Every published sum (total over years or provinces, a margin over its cells) has
        # either no hidden member or at least two.
        for dim in ("year", "province"):
            margins = {m[dim]: m[counter] for m in tables.margins[dim]}
            truth: dict[Any, int] = defaultdict(int)
            members: dict[Any, list[Any]] = defaultdict(list)
            for row, cell in zip(rows, tables.cells, strict=True):
                truth[row[dim]] += row[counter]
                members[row[dim]].append(cell[counter])
            for value, shown in margins.items():
                assert shown == truth[value] or not isinstance(shown, int)
                hidden = [x for x in [shown, *members[value]] if not isinstance(x, int)]
                assert len(hidden) != 1, (dim, value, counter)
            hidden = [x for x in [shown_total, *margins.values()] if not isinstance(x, int)]
            assert len(hidden) != 1, (dim, counter)
