"""Training's attendance rule for people who left a course: which days can still carry a record."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bekal.training.domain import EndReason, EnrollmentStatus, attendance_refusal

# WUB IKM Batik at Lapas Cipinang, 3-7 September 2024; one participant paroled on the 5th.
DAYS = [date(2024, 9, 3) + timedelta(days=i) for i in range(5)]
PAROLED_ON = date(2024, 9, 5)


def refusal(day: date, **kwargs):  # type: ignore[no-untyped-def]
    args = {
        "day": day,
        "enrollment_status": EnrollmentStatus.WITHDRAWN,
        "withdrawn_on": PAROLED_ON,
        "withdrawal_reason": EndReason.RELEASED,
    }
    args.update(kwargs)
    return attendance_refusal(**args)


def test_an_enrolled_participant_can_be_marked_on_every_day() -> None:
    for day in DAYS:
        assert refusal(day, enrollment_status=EnrollmentStatus.ENROLLED, withdrawn_on=None) is None


def test_the_days_before_a_release_stay_open_the_release_day_and_after_are_refused() -> None:
    assert [refusal(day) is None for day in DAYS] == [True, True, False, False, False]


def test_the_refusal_names_the_day_the_withdrawal_date_and_why_in_indonesian() -> None:
    message = refusal(date(2024, 9, 6))
    assert message is not None
    assert "2024-09-06" in message and "2024-09-05" in message and "bebas" in message


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (EndReason.RELEASED, "bebas"),
        (EndReason.TRANSFERRED, "dipindahkan"),
        (EndReason.CONSENT_WITHDRAWN, "persetujuan"),
        (EndReason.OTHER, "ditarik"),
    ],
)
def test_every_way_of_leaving_ends_attendance_on_its_date(reason: EndReason, said: str) -> None:
    assert refusal(date(2024, 9, 4), withdrawal_reason=reason) is None
    message = refusal(PAROLED_ON, withdrawal_reason=reason)
    assert message is not None and said in message


def test_a_record_folded_away_by_a_merge_takes_no_attendance_on_any_day() -> None:
    for day in DAYS:
        message = refusal(day, withdrawal_reason=EndReason.MERGED, withdrawn_on=DAYS[-1])
        assert message is not None and "digabung" in message


def test_a_withdrawal_without_a_date_is_refused_on_every_day() -> None:
    assert all(refusal(day, withdrawn_on=None) is not None for day in DAYS)


def test_the_rule_only_concerns_withdrawn_enrolments() -> None:
    # Whatever a stale reason or date says, an enrolment that is not withdrawn is not refused
    # here (waiting-list entries are refused earlier as not enrolled).
    for status in (EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED):
        assert refusal(DAYS[-1], enrollment_status=status) is None
