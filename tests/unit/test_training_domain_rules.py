"""Training's newer rules without a database, broker or HTTP: release window, overlap, waiting
list, corrections and graduate follow-ups."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from bekal.shared.events.catalogue import EnrollmentOutcome, NotCompletedReason
from bekal.training.domain import (
    AssessmentResult,
    AttendanceStatus,
    EnrollmentStatus,
    Outcome,
    ParticipantFacts,
    ParticipantStatus,
    RuleBroken,
    SessionStatus,
    add_months,
    check_can_cancel,
    check_can_open,
    check_correctable,
    check_follow_up,
    check_graduate,
    check_transition,
    dates_overlap,
    enrollment_problems,
    folded_day,
    folded_result,
    is_withdrawable,
    merged_keeps_its_own,
    outcome_of,
    release_window_problem,
    split_by_capacity,
)

HERE = uuid.uuid4()
START = date(2019, 5, 13)  # historical: Lapas Pontianak, woodcraft


def facts(release: date | None, *, status: ParticipantStatus = ParticipantStatus.IN_CUSTODY):  # type: ignore[no-untyped-def]
    return ParticipantFacts(uuid.uuid4(), status, HERE, release)


def problems(people, **kwargs):  # type: ignore[no-untyped-def]
    args = {
        "session_status": SessionStatus.OPEN,
        "session_facility_id": HERE,
        "capacity": 30,
        "seats_taken": 0,
        "already_enrolled": [],
        "candidates": [p.participant_id for p in people],
        "known": {p.participant_id: p for p in people},
        "session_start": START,
    }
    args.update(kwargs)
    return enrollment_problems(**args)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2019, 5, 13), 12, date(2020, 5, 13)),
        (date(2024, 11, 30), 3, date(2025, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_release_window_is_relative_to_the_session_start_not_today() -> None:
    # A 2019 session: release in early 2020 is inside the window even though it is long past.
    assert (
        release_window_problem(
            expected_release_date=date(2020, 5, 13), session_start=START, months=12
        )
        is None
    )
    assert (
        release_window_problem(expected_release_date=START, session_start=START, months=12) is None
    )
    late = release_window_problem(
        expected_release_date=date(2020, 5, 14), session_start=START, months=12
    )
    assert late is not None and "2020-05-14" in late and "12 bulan" in late
    early = release_window_problem(
        expected_release_date=date(2019, 5, 12), session_start=START, months=12
    )
    assert early is not None and "sebelum sesi" in early
    unknown = release_window_problem(expected_release_date=None, session_start=START, months=12)
    assert unknown is not None and "tidak diketahui" in unknown


def test_outside_the_window_is_refused_unless_overridden() -> None:
    near, far, unknown = facts(date(2019, 9, 1)), facts(date(2022, 1, 1)), facts(None)
    found = problems([near, far, unknown])
    assert [(p.index, p.conflict) for p in found] == [(1, False), (2, False)]
    assert found[0].field == "participant_ids.1"
    assert (
        problems([near, far, unknown], overridden=[far.participant_id, unknown.participant_id])
        == []
    )


def test_the_window_is_checked_after_custody_and_facility() -> None:
    released = facts(date(2030, 1, 1), status=ParticipantStatus.RELEASED)
    [problem] = problems([released])
    assert "bebas" in problem.message and "bulan" not in problem.message


def test_a_person_in_an_overlapping_session_is_refused_naming_it() -> None:
    busy, free = facts(date(2019, 9, 1)), facts(date(2019, 9, 1))
    [problem] = problems(
        [busy, free], busy={busy.participant_id: "KRJ-KAYU 2019-05-10 s.d. 2019-05-15"}
    )
    assert problem.participant_id == busy.participant_id and problem.conflict
    assert "KRJ-KAYU 2019-05-10" in problem.message


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ((date(2023, 7, 17), date(2023, 7, 22)), (date(2023, 7, 22), date(2023, 7, 25)), True),
        ((date(2023, 7, 17), date(2023, 7, 22)), (date(2023, 7, 23), date(2023, 7, 25)), False),
        ((date(2023, 7, 17), date(2023, 7, 22)), (date(2023, 7, 18), date(2023, 7, 19)), True),
        ((date(2023, 7, 17), date(2023, 7, 22)), (date(2023, 7, 1), date(2023, 7, 16)), False),
    ],
)
def test_dates_overlap_includes_shared_end_days(
    a: tuple[date, date], b: tuple[date, date], overlap: bool
) -> None:
    assert dates_overlap(*a, *b) is overlap
    assert dates_overlap(*b, *a) is overlap


def test_with_a_waiting_list_capacity_refuses_nobody() -> None:
    people = [facts(date(2019, 9, 1)) for _ in range(3)]
    full = problems(people, capacity=2)
    assert [(p.index, p.conflict) for p in full] == [(2, True)]
    assert problems(people, capacity=2, waitlist=True) == []


def test_split_by_capacity_keeps_the_order_given() -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    assert split_by_capacity(ids, capacity=4, seats_taken=2) == (ids[:2], ids[2:])
    assert split_by_capacity(ids, capacity=4, seats_taken=6) == ([], ids)
    assert split_by_capacity(ids, capacity=10, seats_taken=0) == (ids, [])


def test_a_waiting_list_entry_is_withdrawable_like_an_enrolment() -> None:
    assert is_withdrawable(
        enrollment_status=EnrollmentStatus.WAITLISTED,
        session_status=SessionStatus.RUNNING,
        session_facility_id=HERE,
    )
    assert not is_withdrawable(
        enrollment_status=EnrollmentStatus.COMPLETED,
        session_status=SessionStatus.COMPLETED,
        session_facility_id=HERE,
    )


def test_corrections_only_after_completion() -> None:
    check_correctable(SessionStatus.COMPLETED)
    for status in (SessionStatus.PLANNED, SessionStatus.RUNNING, SessionStatus.CANCELLED):
        with pytest.raises(RuleBroken) as refused:
            check_correctable(status)
        assert refused.value.conflict and refused.value.field == "status"


def test_outcome_of() -> None:
    assert outcome_of(Outcome(True, 1.0, None)) is EnrollmentOutcome.COMPLETED
    assert (
        outcome_of(Outcome(False, 0.6, NotCompletedReason.ATTENDANCE_BELOW_MINIMUM))
        is EnrollmentOutcome.NOT_COMPLETED
    )


def test_only_graduates_get_readiness_and_follow_ups() -> None:
    check_graduate(EnrollmentStatus.COMPLETED)
    for status in (
        EnrollmentStatus.ENROLLED,
        EnrollmentStatus.NOT_COMPLETED,
        EnrollmentStatus.WITHDRAWN,
        EnrollmentStatus.WAITLISTED,
    ):
        with pytest.raises(RuleBroken):
            check_graduate(status)


def test_follow_ups_at_3_6_12_months_after_release() -> None:
    released = date(2024, 12, 1)
    for months in (3, 6, 12):
        check_follow_up(
            checkpoint_months=months, released_on=released, recorded_on=date(2025, 3, 1)
        )
    with pytest.raises(RuleBroken) as wrong:
        check_follow_up(checkpoint_months=4, released_on=released, recorded_on=date(2025, 3, 1))
    assert wrong.value.field == "checkpoint_months" and not wrong.value.conflict
    with pytest.raises(RuleBroken) as inside:
        check_follow_up(checkpoint_months=3, released_on=None, recorded_on=date(2025, 3, 1))
    assert inside.value.conflict
    with pytest.raises(RuleBroken) as before:
        check_follow_up(checkpoint_months=3, released_on=released, recorded_on=date(2024, 11, 30))
    assert before.value.field == "recorded_on"


def test_someone_who_withdrew_consent_is_no_candidate() -> None:
    gone = ParticipantFacts(
        uuid.uuid4(), ParticipantStatus.IN_CUSTODY, HERE, date(2019, 9, 1), False
    )
    [problem] = problems([gone], overridden=[gone.participant_id])
    assert "persetujuan" in problem.message and not problem.conflict


def test_only_unfinished_sessions_can_be_cancelled() -> None:
    check_can_cancel(SessionStatus.PLANNED)
    check_can_cancel(SessionStatus.OPEN)
    check_can_cancel(SessionStatus.RUNNING)
    for status in (SessionStatus.COMPLETED, SessionStatus.CANCELLED):
        with pytest.raises(RuleBroken) as refused:
            check_can_cancel(status)
        assert refused.value.conflict


def test_the_life_cycle_is_planned_open_running_completed_or_cancelled() -> None:
    allowed = {
        (SessionStatus.PLANNED, SessionStatus.OPEN),
        (SessionStatus.PLANNED, SessionStatus.CANCELLED),
        (SessionStatus.OPEN, SessionStatus.RUNNING),
        (SessionStatus.OPEN, SessionStatus.CANCELLED),
        (SessionStatus.RUNNING, SessionStatus.COMPLETED),
        (SessionStatus.RUNNING, SessionStatus.CANCELLED),
    }
    for current in SessionStatus:
        for target in SessionStatus:
            if target is SessionStatus.PLANNED:
                continue  # nothing goes back to planned; there is no such move to ask for
            if (current, target) in allowed:
                check_transition(current, target)
                continue
            with pytest.raises(RuleBroken) as refused:
                check_transition(current, target)
            assert refused.value.conflict and refused.value.field == "status"
            assert f"'{current}'" in refused.value.message
    check_can_open(SessionStatus.PLANNED)
    with pytest.raises(RuleBroken):
        check_can_open(SessionStatus.OPEN)


def test_a_planned_session_takes_no_enrolment_until_it_is_opened() -> None:
    person = facts(date(2019, 9, 1))
    with pytest.raises(RuleBroken) as refused:
        problems([person], session_status=SessionStatus.PLANNED)
    assert refused.value.conflict and "belum dibuka" in refused.value.message
    assert problems([person], session_status=SessionStatus.OPEN) == []
    assert problems([person], session_status=SessionStatus.RUNNING) == []
    for closed in (SessionStatus.COMPLETED, SessionStatus.CANCELLED):
        with pytest.raises(RuleBroken) as after:
            problems([person], session_status=closed)
        assert "ditutup" in after.value.message


def test_a_merge_keeps_the_enrolment_furthest_along_and_the_survivors_own_on_a_tie() -> None:
    order = [
        EnrollmentStatus.WITHDRAWN,
        EnrollmentStatus.WAITLISTED,
        EnrollmentStatus.ENROLLED,
        EnrollmentStatus.NOT_COMPLETED,
        EnrollmentStatus.COMPLETED,
    ]
    for i, lower in enumerate(order):
        for higher in order[i + 1 :]:
            assert merged_keeps_its_own(higher, lower)
            assert not merged_keeps_its_own(lower, higher)
        assert not merged_keeps_its_own(lower, lower)


def test_a_merge_counts_a_day_present_if_either_record_says_so_else_excused() -> None:
    present, excused, absent = (
        AttendanceStatus.PRESENT,
        AttendanceStatus.EXCUSED,
        AttendanceStatus.ABSENT,
    )
    assert folded_day(None, absent) is absent  # a day only the other record has
    assert folded_day(absent, present) is present
    assert folded_day(absent, excused) is excused
    assert folded_day(excused, present) is present
    for kept in (present, excused, absent):
        assert folded_day(kept, kept) is None
    assert folded_day(present, absent) is None and folded_day(present, excused) is None
    assert folded_day(excused, absent) is None


def test_a_merge_counts_a_unit_competent_if_either_record_was_assessed_competent() -> None:
    yes, no = AssessmentResult.COMPETENT, AssessmentResult.NOT_YET_COMPETENT
    assert folded_result(None, no) is no
    assert folded_result(no, yes) is yes
    assert folded_result(yes, no) is None
    assert folded_result(yes, yes) is None and folded_result(no, no) is None
