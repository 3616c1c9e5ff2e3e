"""What a line of a daily export changes for someone already registered (no database)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import pytest

from bekal.registry.domain import Consent, InmateStatus
from bekal.registry.importer import (
    Change,
    ImportRow,
    LineErrorException,
    Outcome,
    Registered,
    plan_change,
)
from bekal.shared.events.catalogue import ReleaseKind

HERE, THERE = uuid.uuid4(), uuid.uuid4()
TODAY = date(2026, 11, 25)
NONE = Consent(training=False, data_sharing=False)
BOTH = Consent(training=True, data_sharing=True)

ROW = ImportRow(
    line=7,
    registration_number="AI.1",
    full_name="Siti Aminah",
    nik="6171014505900001",
    sex="F",
    date_of_birth=date(1990, 5, 5),
    education_level=None,
    facility_code="LP-HERE",
    admission_date=date(2023, 1, 10),
    expected_release_date=date(2027, 1, 10),
    consent_training=False,
    consent_data_sharing=False,
)
HELD = Registered(
    id=uuid.uuid4(),
    nik_hash="h",
    facility_id=HERE,
    status=InmateStatus.IN_CUSTODY,
    admission_date=date(2023, 1, 10),
    expected_release_date=date(2027, 1, 10),
    consent=NONE,
    consent_withdrawn=False,
    erased=False,
)


def plan(
    row: ImportRow = ROW,
    current: Registered = HELD,
    *,
    facility: uuid.UUID = HERE,
    active: bool = True,
    nik_hash: str = "h",
) -> Change:
    return plan_change(
        row,
        nik_hash=nik_hash,
        current=current,
        facility_id=facility,
        facility_active=active,
        today=TODAY,
    )


def refused(**kwargs: object) -> tuple[int, str | None]:
    with pytest.raises(LineErrorException) as bad:
        plan(**kwargs)  # type: ignore[arg-type]
    assert bad.value.error.reason
    return bad.value.error.line, bad.value.error.field


def test_the_same_facts_change_nothing() -> None:
    assert plan() == Change(Outcome.UNCHANGED)


def test_another_facility_is_a_transfer() -> None:
    change = plan(facility=THERE)
    assert change.outcome is Outcome.TRANSFERRED and change.transfer_to == THERE


def test_a_transfer_to_an_inactive_facility_is_a_bad_line_naming_the_facility_column() -> None:
    assert refused(facility=THERE, active=False) == (7, "facility_code")


def test_a_temporarily_absent_person_cannot_be_transferred_by_a_file() -> None:
    away = replace(HELD, status=InmateStatus.TEMPORARILY_ABSENT)
    assert refused(current=away, facility=THERE) == (7, "status")
    # The same facility: the absence (recorded in the registry) stands, nothing changes.
    assert plan(current=away).outcome is Outcome.UNCHANGED


def test_a_new_expected_release_date_is_an_update_and_an_empty_one_changes_nothing() -> None:
    later = plan(replace(ROW, expected_release_date=date(2027, 6, 1)))
    assert later.outcome is Outcome.UPDATED
    assert later.expected_release_date == date(2027, 6, 1)
    assert plan(replace(ROW, expected_release_date=None)).outcome is Outcome.UNCHANGED


def test_a_transfer_and_a_new_date_together_count_as_a_transfer_and_carry_both() -> None:
    change = plan(replace(ROW, expected_release_date=date(2027, 6, 1)), facility=THERE)
    assert change.outcome is Outcome.TRANSFERRED
    assert (change.transfer_to, change.expected_release_date) == (THERE, date(2027, 6, 1))


def test_an_expected_release_before_the_registered_admission_is_a_bad_line() -> None:
    current = replace(HELD, admission_date=date(2028, 1, 1))
    row = replace(ROW, expected_release_date=date(2027, 6, 1))
    assert refused(row=row, current=current) == (7, "expected_release_date")


def test_consent_given_in_the_file_is_recorded_and_added_to_what_is_held() -> None:
    training_only = replace(HELD, consent=Consent(training=True, data_sharing=False))
    change = plan(replace(ROW, consent_data_sharing=True), current=training_only)
    assert change.outcome is Outcome.UPDATED and change.consent == BOTH


def test_a_file_saying_no_never_withdraws_consent() -> None:
    assert plan(current=replace(HELD, consent=BOTH)).outcome is Outcome.UNCHANGED


def test_consent_withdrawn_in_the_registry_is_not_given_back_by_a_file() -> None:
    withdrawn = replace(HELD, consent_withdrawn=True)
    row = replace(ROW, consent_training=True, consent_data_sharing=True)
    assert plan(row, current=withdrawn).outcome is Outcome.UNCHANGED


def test_a_release_status_releases_someone_in_custody_with_its_kind() -> None:
    row = replace(ROW, release_kind=ReleaseKind.PAROLE, released_on=date(2026, 11, 1))
    change = plan(row, facility=THERE)  # where the file places them no longer matters
    assert change == Change(Outcome.RELEASED, release=(ReleaseKind.PAROLE, date(2026, 11, 1)))
    away = replace(HELD, status=InmateStatus.TEMPORARILY_ABSENT)
    assert plan(row, current=away).outcome is Outcome.RELEASED  # freed at the hearing


def test_a_release_for_someone_already_released_changes_nothing() -> None:
    row = replace(ROW, release_kind=ReleaseKind.FREE, released_on=TODAY)
    assert plan(row, current=replace(HELD, status=InmateStatus.RELEASED)).outcome is (
        Outcome.UNCHANGED
    )


def test_a_release_for_someone_dead_is_a_bad_line() -> None:
    row = replace(ROW, release_kind=ReleaseKind.FREE, released_on=TODAY)
    assert refused(row=row, current=replace(HELD, status=InmateStatus.DECEASED)) == (7, "status")


def test_a_release_dated_before_the_registered_admission_is_a_bad_line() -> None:
    row = replace(ROW, release_kind=ReleaseKind.FREE, released_on=date(2023, 1, 11))
    current = replace(HELD, admission_date=date(2024, 1, 1))
    assert refused(row=row, current=current) == (7, "released_on")


def test_someone_released_in_the_registry_but_in_custody_in_the_file_is_a_bad_line() -> None:
    assert refused(current=replace(HELD, status=InmateStatus.RELEASED)) == (7, "status")


def test_the_same_number_with_another_nik_is_a_bad_line() -> None:
    assert refused(nik_hash="other") == (7, "nik")


@pytest.mark.parametrize(
    "current",
    [
        replace(HELD, erased=True),
        replace(HELD, status=InmateStatus.MERGED),
    ],
)
def test_an_erased_or_merged_record_is_never_changed_by_a_file(current: Registered) -> None:
    row = replace(ROW, consent_training=True, consent_data_sharing=True)
    assert plan(row, current=current, facility=THERE).outcome is Outcome.UNCHANGED


def test_someone_in_a_facility_since_deactivated_stays_unchanged() -> None:
    # Only a new registration or a transfer needs an active facility.
    assert plan(active=False).outcome is Outcome.UNCHANGED
