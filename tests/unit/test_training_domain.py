"""Training rules without a database, a broker or HTTP: completion, enrolment, withdrawal, dates."""

from __future__ import annotations

import uuid
from datetime import date
from fractions import Fraction

import pytest

from bekal.shared.events.catalogue import NotCompletedReason
from bekal.training.domain import (
    AssessmentResult,
    AttendanceStatus,
    EnrollmentStatus,
    ParticipantFacts,
    ParticipantStatus,
    RuleBroken,
    SessionStatus,
    attendance_share,
    check_attendance_date,
    check_can_start,
    check_running,
    check_session_dates,
    completion_outcome,
    enrollment_problems,
    is_withdrawable,
    session_days,
)

P, A, E = AttendanceStatus.PRESENT, AttendanceStatus.ABSENT, AttendanceStatus.EXCUSED
OK, NYC = AssessmentResult.COMPETENT, AssessmentResult.NOT_YET_COMPETENT
UNITS = ["BTK-01", "BTK-02", "BTK-03"]
ALL_COMPETENT = dict.fromkeys(UNITS, OK)


def outcome(attendance, *, days=5, minimum=0.8, results=ALL_COMPETENT, units=UNITS):  # type: ignore[no-untyped-def]
    return completion_outcome(
        days=days,
        attendance=attendance,
        min_attendance_share=minimum,
        unit_codes=units,
        results=results,
    )


# --- completion ----------------------------------------------------------------------------


def test_share_exactly_at_the_minimum_completes() -> None:
    result = outcome([P, P, P, P, A])  # 4/5 = 0.8
    assert result.completed and result.reason is None and result.attendance_share == 0.8


def test_share_just_below_the_minimum_does_not_complete() -> None:
    result = outcome([P, P, P, A, A])
    assert not result.completed
    assert result.reason is NotCompletedReason.ATTENDANCE_BELOW_MINIMUM
    assert result.attendance_share == 0.6


@pytest.mark.parametrize(
    ("days", "present", "minimum", "completed"),
    [
        (6, 5, 0.8333, True),  # 5/6 = 0.83333... above the written minimum
        (6, 5, 0.84, False),
        (3, 2, 0.6667, False),  # 2/3 = 0.66666... just below
        (3, 2, 0.6666, True),
        (10, 7, 0.7, True),  # exactly 7/10 even though 0.7 has no exact binary form
        (10, 9, 0.9, True),
    ],
)
def test_minimum_is_compared_exactly_as_written(
    days: int, present: int, minimum: float, completed: bool
) -> None:
    result = outcome([P] * present + [A] * (days - present), days=days, minimum=minimum)
    assert result.completed is completed


def test_excused_days_leave_the_denominator() -> None:
    # 3 present of 5 days is 0.6, but with 1 day excused it is 3 of 4 = 0.75; with 2 it is 3/3.
    assert outcome([P, P, P, E, A], minimum=0.75).completed
    assert not outcome([P, P, P, A, A], minimum=0.75).completed
    full = outcome([P, P, P, E, E], minimum=1.0)
    assert full.completed and full.attendance_share == 1.0


def test_days_without_a_record_count_as_absent() -> None:
    result = outcome([P, P, P], days=5, minimum=0.8)  # two days never recorded
    assert not result.completed and result.attendance_share == 0.6


def test_zero_days_attended_does_not_complete_even_if_assessed_competent() -> None:
    result = outcome([A, A, A, A, A])
    assert not result.completed
    assert result.reason is NotCompletedReason.ATTENDANCE_BELOW_MINIMUM
    assert result.attendance_share == 0.0
    assert not outcome([]).completed


def test_excused_for_every_day_has_share_zero() -> None:
    assert attendance_share(days=5, present=0, excused=5) == 0
    assert not outcome([E] * 5).completed
    assert outcome([E] * 5, minimum=0.0).completed  # a program without an attendance rule


def test_missing_assessment_means_not_competent() -> None:
    result = outcome([P] * 5, results={"BTK-01": OK, "BTK-02": OK})
    assert not result.completed and result.reason is NotCompletedReason.COMPETENCIES_NOT_MET


def test_not_yet_competent_unit_fails_even_with_full_attendance() -> None:
    result = outcome([P] * 5, results={**ALL_COMPETENT, "BTK-02": NYC})
    assert not result.completed and result.reason is NotCompletedReason.COMPETENCIES_NOT_MET
    assert result.attendance_share == 1.0


def test_results_for_units_outside_the_program_do_not_count() -> None:
    results = {"BTK-01": OK, "BTK-02": OK, "OTHER": OK}
    assert not outcome([P] * 5, results=results).completed


def test_attendance_is_reported_first_when_both_rules_fail() -> None:
    result = outcome([A] * 5, results={})
    assert result.reason is NotCompletedReason.ATTENDANCE_BELOW_MINIMUM


def test_attendance_share_is_a_fraction_of_expected_days() -> None:
    assert attendance_share(days=6, present=5, excused=0) == Fraction(5, 6)
    assert attendance_share(days=6, present=4, excused=1) == Fraction(4, 5)
    assert round(outcome([P] * 5 + [A], days=6, minimum=0.5).attendance_share, 4) == 0.8333


# --- sessions ------------------------------------------------------------------------------


def test_session_days_include_both_ends() -> None:
    assert session_days(date(2019, 5, 13), date(2019, 5, 18)) == 6
    assert session_days(date(2024, 9, 3), date(2024, 9, 3)) == 1


def test_end_before_start_names_end_date() -> None:
    check_session_dates(date(2024, 9, 3), date(2024, 9, 3))
    with pytest.raises(RuleBroken) as err:
        check_session_dates(date(2024, 9, 7), date(2024, 9, 3))
    assert err.value.field == "end_date" and not err.value.conflict


def test_only_an_open_session_starts_and_only_a_running_one_takes_records() -> None:
    check_can_start(SessionStatus.OPEN)
    for status in (
        SessionStatus.PLANNED,
        SessionStatus.RUNNING,
        SessionStatus.COMPLETED,
        SessionStatus.CANCELLED,
    ):
        with pytest.raises(RuleBroken) as err:
            check_can_start(status)
        assert err.value.conflict
    check_running(SessionStatus.RUNNING, "absensi")
    for status in (SessionStatus.PLANNED, SessionStatus.OPEN, SessionStatus.COMPLETED):
        with pytest.raises(RuleBroken):
            check_running(status, "absensi")


def test_attendance_date_must_fall_within_the_session() -> None:
    start, end = date(2024, 9, 3), date(2024, 9, 7)
    check_attendance_date(start, start, end)
    check_attendance_date(end, start, end)
    for day in (date(2024, 9, 2), date(2024, 9, 8)):
        with pytest.raises(RuleBroken) as err:
            check_attendance_date(day, start, end)
        assert err.value.field == "date"


# --- enrolment -----------------------------------------------------------------------------

HERE, THERE = uuid.uuid4(), uuid.uuid4()


def facts(
    pid: uuid.UUID, *, status=ParticipantStatus.IN_CUSTODY, facility=HERE
) -> ParticipantFacts:  # type: ignore[no-untyped-def]
    return ParticipantFacts(pid, status, facility)


def problems(candidates, known, *, capacity=3, taken=0, enrolled=(), status=SessionStatus.OPEN):  # type: ignore[no-untyped-def]
    return enrollment_problems(
        session_status=status,
        session_facility_id=HERE,
        capacity=capacity,
        seats_taken=taken,
        already_enrolled=enrolled,
        candidates=candidates,
        known={f.participant_id: f for f in known},
    )


def test_eligible_batch_has_no_problems() -> None:
    people = [uuid.uuid4() for _ in range(3)]
    assert problems(people, [facts(p) for p in people]) == []
    assert problems(people, [facts(p) for p in people], status=SessionStatus.RUNNING) == []


def test_each_ineligible_participant_is_named_by_position() -> None:
    ok, unknown, released, elsewhere = (uuid.uuid4() for _ in range(4))
    known = [
        facts(ok),
        facts(released, status=ParticipantStatus.RELEASED),
        facts(elsewhere, facility=THERE),
    ]
    found = problems([ok, unknown, released, elsewhere], known)
    assert [(p.field, p.participant_id, p.conflict) for p in found] == [
        ("participant_ids.1", unknown, False),
        ("participant_ids.2", released, False),
        ("participant_ids.3", elsewhere, False),
    ]


def test_capacity_is_enforced_counting_seats_already_taken() -> None:
    people = [uuid.uuid4() for _ in range(3)]
    found = problems(people, [facts(p) for p in people], capacity=4, taken=2)
    assert [(p.field, p.conflict) for p in found] == [("participant_ids.2", True)]
    assert problems(people[:2], [facts(p) for p in people], capacity=4, taken=2) == []


def test_already_enrolled_and_repeated_participants_are_refused() -> None:
    old, new = uuid.uuid4(), uuid.uuid4()
    found = problems([old, new, new], [facts(old), facts(new)], enrolled=[old])
    assert [(p.field, p.conflict) for p in found] == [
        ("participant_ids.0", True),
        ("participant_ids.2", False),
    ]


def test_no_enrolment_in_a_closed_session() -> None:
    pid = uuid.uuid4()
    for status in (SessionStatus.COMPLETED, SessionStatus.CANCELLED):
        with pytest.raises(RuleBroken) as err:
            problems([pid], [facts(pid)], status=status)
        assert err.value.conflict


# --- withdrawal ----------------------------------------------------------------------------


def test_release_withdraws_only_live_enrolments_in_open_sessions() -> None:
    for session_status in (SessionStatus.PLANNED, SessionStatus.OPEN, SessionStatus.RUNNING):
        assert is_withdrawable(
            enrollment_status=EnrollmentStatus.ENROLLED,
            session_status=session_status,
            session_facility_id=HERE,
        )
    for session_status in (SessionStatus.COMPLETED, SessionStatus.CANCELLED):
        assert not is_withdrawable(
            enrollment_status=EnrollmentStatus.ENROLLED,
            session_status=session_status,
            session_facility_id=HERE,
        )
    for enrollment_status in (
        EnrollmentStatus.WITHDRAWN,
        EnrollmentStatus.COMPLETED,
        EnrollmentStatus.NOT_COMPLETED,
    ):
        assert not is_withdrawable(
            enrollment_status=enrollment_status,
            session_status=SessionStatus.RUNNING,
            session_facility_id=HERE,
        )


def test_transfer_withdraws_unless_the_course_is_at_the_new_facility() -> None:
    common = {
        "enrollment_status": EnrollmentStatus.ENROLLED,
        "session_status": SessionStatus.RUNNING,
    }
    assert is_withdrawable(**common, session_facility_id=HERE, moved_to_facility_id=THERE)
    assert not is_withdrawable(**common, session_facility_id=THERE, moved_to_facility_id=THERE)
