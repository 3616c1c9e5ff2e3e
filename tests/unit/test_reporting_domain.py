"""Reporting rules without database, broker or HTTP: rates, grouping keys, merging late facts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from bekal.reporting.domain import (
    Counters,
    Dimension,
    EnrollmentStatus,
    IndicatorGroup,
    InvalidGroupBy,
    SessionStatus,
    completion_rate,
    group_keys,
    is_newer,
    later,
    merge_enrollment_status,
    merge_session_status,
    parse_group_by,
    reporting_year,
    sort_groups,
)
from bekal.reporting.services.indicators import IndicatorFilters, indicator_query

# --- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completed", "not_completed", "rate"),
    [(6, 4, 0.6), (2, 1, 0.6667), (1, 2, 0.3333), (0, 5, 0.0), (5, 0, 1.0)],
)
def test_completion_rate_is_completed_over_those_with_an_outcome(
    completed: int, not_completed: int, rate: float
) -> None:
    assert completion_rate(completed, not_completed) == rate


def test_completion_rate_is_null_when_nobody_has_an_outcome_yet() -> None:
    assert completion_rate(0, 0) is None


def test_withdrawn_and_still_enrolled_people_do_not_lower_the_completion_rate() -> None:
    counters = Counters(enrolled=10, withdrawn=4, completed=3, not_completed=1)
    assert counters.completion_rate == 0.75


def test_counters_read_null_sums_as_zero_and_list_every_withdrawal_reason() -> None:
    counters = Counters.from_row(
        {
            "enrolled": 3,
            "withdrawn": 1,
            "withdrawn_released": 1,
            "withdrawn_transferred": None,
            "completed": None,
            "not_completed": 2,
            "certified": 0,
        }
    )
    assert counters.enrolled == 3
    assert counters.completed == 0
    assert counters.withdrawn_by_reason == {
        "released": 1,
        "transferred": 0,
        "consent_withdrawn": 0,
        "other": 0,
    }
    assert counters.completion_rate == 0.0


# --- grouping ---------------------------------------------------------------------------------


def test_group_by_is_parsed_in_the_order_given_and_repeats_count_once() -> None:
    assert parse_group_by(" Year , facility,year,") == [Dimension.YEAR, Dimension.FACILITY]
    assert parse_group_by("facility,province,program,year,sector,sex,session") == list(Dimension)


@pytest.mark.parametrize("raw", [None, "", " , "])
def test_empty_group_by_means_totals_only(raw: str | None) -> None:
    assert parse_group_by(raw) == []


def test_unknown_group_by_names_every_unknown_dimension() -> None:
    with pytest.raises(InvalidGroupBy) as caught:
        parse_group_by("province,gender,sector,age")
    assert caught.value.unknown == ["gender", "age"]
    assert "gender" in str(caught.value) and "sex" in str(caught.value)


def test_group_keys_hold_only_the_requested_dimensions() -> None:
    row = {
        "facility_id": "f",
        "facility_code": "F",
        "facility_name": "Lapas",
        "province": "Banten",
        "program_id": "p",
        "program_code": "P",
        "program_title": "Batik",
        "year": 2024,
    }
    assert group_keys([Dimension.YEAR, Dimension.PROVINCE], row) == {
        "year": 2024,
        "province": "Banten",
    }
    assert group_keys([Dimension.FACILITY], row) == {
        "facility_id": "f",
        "facility_code": "F",
        "facility_name": "Lapas",
    }
    assert group_keys([], row) == {}


def test_groups_sort_by_each_dimension_in_turn_with_unknown_values_last() -> None:
    def g(**keys: object) -> IndicatorGroup:
        return IndicatorGroup(keys=dict(keys), counters=Counters())

    groups = [
        g(province=None, year=2019),
        g(province="Kalimantan Barat", year=2024),
        g(province="Banten", year=2024),
        g(province="Kalimantan Barat", year=2019),
        g(province="Banten", year=None),
    ]
    ordered = sort_groups(groups, [Dimension.PROVINCE, Dimension.YEAR])
    assert [(x.keys["province"], x.keys["year"]) for x in ordered] == [
        ("Banten", 2024),
        ("Banten", None),
        ("Kalimantan Barat", 2019),
        ("Kalimantan Barat", 2024),
        (None, 2019),
    ]


def test_a_facility_not_yet_described_sorts_after_known_ones_by_its_id() -> None:
    unknown = uuid.UUID(int=1)
    groups = [
        IndicatorGroup({"facility_id": unknown, "facility_code": None}, Counters()),
        IndicatorGroup({"facility_id": uuid.UUID(int=2), "facility_code": "LP-B"}, Counters()),
        IndicatorGroup({"facility_id": uuid.UUID(int=3), "facility_code": "LP-A"}, Counters()),
    ]
    codes = [x.keys["facility_code"] for x in sort_groups(groups, [Dimension.FACILITY])]
    assert codes == ["LP-A", "LP-B", None]


def test_a_session_counts_in_the_year_it_ends() -> None:
    assert reporting_year(date(2024, 1, 5)) == 2024
    assert reporting_year(date(2019, 5, 18)) == 2019


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_indicator_query_aggregates_in_sql_by_the_dimension_columns(dialect: object) -> None:
    sql = str(
        indicator_query([Dimension.PROVINCE, Dimension.YEAR], IndicatorFilters(year=2024)).compile(
            dialect=dialect
        )  # type: ignore[arg-type]
    ).upper()
    assert "UNION ALL" in sql and "SUM(" in sql
    group_by = sql.rsplit("GROUP BY", 1)[1]
    assert "PROVINCE" in group_by and "YEAR" in group_by and "FACILITY_ID" not in group_by


def test_totals_query_has_no_group_by() -> None:
    sql = str(indicator_query([], IndicatorFilters()).compile(dialect=sqlite.dialect())).upper()
    # Only the inner query of certified enrolments groups (one row per enrolment).
    assert "GROUP BY" not in sql.rsplit(") AS FACTS", 1)[1]
    assert sql.count("GROUP BY") == 1 and "GROUP BY CERTIFICATES.ENROLLMENT_ID" in sql


# --- facts arriving late, early or twice ------------------------------------------------------


def test_a_late_scheduled_event_never_moves_a_session_back() -> None:
    assert merge_session_status("running", SessionStatus.PLANNED) is SessionStatus.RUNNING
    assert merge_session_status("completed", SessionStatus.RUNNING) is SessionStatus.COMPLETED
    assert merge_session_status(None, SessionStatus.RUNNING) is SessionStatus.RUNNING
    assert merge_session_status("planned", SessionStatus.CANCELLED) is SessionStatus.CANCELLED
    assert merge_session_status("planned", SessionStatus.OPEN) is SessionStatus.OPEN
    assert merge_session_status("running", SessionStatus.OPEN) is SessionStatus.RUNNING
    assert merge_session_status("open", SessionStatus.PLANNED) is SessionStatus.OPEN


def test_a_folded_duplicate_enrolment_stays_folded_whatever_arrives_later() -> None:
    for current in (None, "enrolled", "completed", "withdrawn"):
        assert merge_enrollment_status(current, EnrollmentStatus.MERGED) is EnrollmentStatus.MERGED
    for late in EnrollmentStatus:
        assert merge_enrollment_status("merged", late) is EnrollmentStatus.MERGED


def test_a_late_enrolled_event_never_undoes_an_outcome() -> None:
    for outcome in ("completed", "not_completed", "withdrawn"):
        assert merge_enrollment_status(outcome, EnrollmentStatus.ENROLLED).value == outcome
    assert merge_enrollment_status(None, EnrollmentStatus.COMPLETED) is EnrollmentStatus.COMPLETED
    assert merge_enrollment_status("enrolled", EnrollmentStatus.WITHDRAWN) is (
        EnrollmentStatus.WITHDRAWN
    )


def test_an_older_whole_state_fact_does_not_replace_a_newer_one() -> None:
    t1 = datetime(2024, 9, 1, tzinfo=UTC)
    t2 = datetime(2024, 9, 2, tzinfo=UTC)
    assert is_newer(t2, t1) and is_newer(t1, t1)
    assert not is_newer(t1, t2)
    assert is_newer(None, t2) and is_newer(t1, None)


def test_data_as_of_only_moves_forward() -> None:
    t1 = datetime(2024, 9, 1, tzinfo=UTC)
    t2 = datetime(2024, 9, 2, tzinfo=UTC)
    assert later(t2, t1) == t2 and later(t1, t2) == t2
    assert later(None, t1) == t1 and later(t1, None) == t1 and later(None, None) is None


# --- follow-ups, targets, exports -------------------------------------------------------------


def test_the_latest_follow_up_is_the_later_checkpoint_then_the_later_date() -> None:
    from bekal.reporting.domain import is_later_follow_up

    assert is_later_follow_up((3, date(2025, 1, 1)), (None, None))
    assert is_later_follow_up((6, date(2025, 1, 1)), (3, date(2025, 2, 1)))
    assert not is_later_follow_up((3, date(2025, 3, 1)), (12, date(2025, 1, 1)))
    assert is_later_follow_up((6, date(2025, 4, 2)), (6, date(2025, 4, 1)))


def test_target_progress_runs_cumulative_figures_over_every_year_gaps_included() -> None:
    from bekal.reporting.domain import progress_by_year

    rows = progress_by_year(
        {2017: (1000, 1200), 2019: (2500, 3000)}, {2017: (5000, None), 2019: (None, 20000)}
    )
    assert [r.year for r in rows] == [2017, 2018, 2019]
    assert [r.new_entrepreneurs_cumulative for r in rows] == [1000, 1000, 3500]
    assert [r.certified_cumulative for r in rows] == [1200, 1200, 4200]
    assert rows[0].progress_annual == 0.2 and rows[0].progress_cumulative is None
    assert rows[1].progress_annual is None
    assert rows[2].progress_cumulative == 0.175
    assert progress_by_year({}, {}) == []


def test_counters_add_up_new_entrepreneurs_and_rates_and_mean_days() -> None:
    c = Counters(
        completed=4,
        certified=3,
        days_to_certificate_count=3,
        days_to_certificate_total=10,
        business_with_nib=2,
        business_without_nib=1,
    )
    assert c.new_entrepreneurs == 3
    assert c.certification_rate == 0.75
    assert c.mean_days_to_certificate == 3.3
    assert Counters().certification_rate is None and Counters().mean_days_to_certificate is None


def test_export_file_names_carry_the_grouping_and_every_filter() -> None:
    from bekal.reporting.exports import file_name

    filters = IndicatorFilters(year=2024, province="Kalimantan Barat", sex="F")
    assert file_name("indikator", [Dimension.PROGRAM, Dimension.YEAR], filters, "csv") == (
        "indikator_per-program-year_year-2024_province-kalimantan-barat_sex-f.csv"
    )
    assert file_name("indikator", [], IndicatorFilters(), "xlsx") == "indikator.xlsx"
