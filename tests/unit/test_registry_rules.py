"""Registry rules added for absences, deaths, merges, candidates, erasure, search and the NIK."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date

import pytest

from bekal.registry import domain
from bekal.registry.domain import (
    InmateStatus,
    InvalidValue,
    MergeRefused,
    NotAbsent,
    NotInCustody,
    TemporarilyAbsent,
)

ADMITTED = date(2023, 1, 10)


def test_absence_only_from_custody_and_with_dates_in_order() -> None:
    domain.check_absence(
        status=InmateStatus.IN_CUSTODY,
        admission_date=ADMITTED,
        absent_from=date(2024, 1, 1),
        expected_return=date(2024, 1, 3),
    )
    with pytest.raises(TemporarilyAbsent):
        domain.check_absence(
            status=InmateStatus.TEMPORARILY_ABSENT,
            admission_date=ADMITTED,
            absent_from=date(2024, 1, 1),
            expected_return=None,
        )
    for gone in (InmateStatus.RELEASED, InmateStatus.DECEASED, InmateStatus.MERGED):
        with pytest.raises(NotInCustody):
            domain.check_absence(
                status=gone,
                admission_date=ADMITTED,
                absent_from=date(2024, 1, 1),
                expected_return=None,
            )
    with pytest.raises(InvalidValue) as bad:
        domain.check_absence(
            status=InmateStatus.IN_CUSTODY,
            admission_date=ADMITTED,
            absent_from=date(2024, 1, 5),
            expected_return=date(2024, 1, 4),
        )
    assert bad.value.field == "expected_return"


def test_return_only_when_absent() -> None:
    with pytest.raises(NotAbsent):
        domain.check_return(status=InmateStatus.IN_CUSTODY, absent_from=None, returned_on=ADMITTED)
    with pytest.raises(InvalidValue):
        domain.check_return(
            status=InmateStatus.TEMPORARILY_ABSENT,
            absent_from=date(2024, 2, 2),
            returned_on=date(2024, 2, 1),
        )
    domain.check_return(
        status=InmateStatus.TEMPORARILY_ABSENT,
        absent_from=date(2024, 2, 2),
        returned_on=date(2024, 2, 2),
    )


def test_release_and_death_allowed_while_absent_but_transfer_is_not() -> None:
    domain.check_release(
        status=InmateStatus.TEMPORARILY_ABSENT,
        admission_date=ADMITTED,
        released_on=date(2024, 1, 1),
    )
    domain.check_death(
        status=InmateStatus.TEMPORARILY_ABSENT, admission_date=ADMITTED, died_on=date(2024, 1, 1)
    )
    with pytest.raises(TemporarilyAbsent):
        domain.check_transfer(
            status=InmateStatus.TEMPORARILY_ABSENT,
            admission_date=ADMITTED,
            from_facility_id=uuid.uuid4(),
            to_facility_id=uuid.uuid4(),
            to_facility_active=True,
            transferred_on=date(2024, 1, 1),
        )
    with pytest.raises(NotInCustody) as refused:
        domain.check_death(
            status=InmateStatus.DECEASED, admission_date=ADMITTED, died_on=date(2024, 1, 1)
        )
    assert "meninggal" in refused.value.message


def test_consent_withdrawal_only_takes_back_what_was_shared() -> None:
    partial = domain.Consent(training=True, data_sharing=False)
    assert domain.withdraws_consent(consent=partial, shared=True)
    assert not domain.withdraws_consent(consent=partial, shared=False)
    assert not domain.withdraws_consent(consent=domain.Consent(True, True), shared=True)
    # A person away on leave may still be shared; one who died may not.
    assert domain.must_share(
        consent=domain.Consent(True, True),
        already_shared=False,
        status=InmateStatus.TEMPORARILY_ABSENT,
    )
    with pytest.raises(NotInCustody):
        domain.must_share(
            consent=domain.Consent(True, True), already_shared=False, status=InmateStatus.DECEASED
        )


def test_merge_keeps_the_shared_id() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    here = InmateStatus.IN_CUSTODY

    def plan(a_shared: bool, b_shared: bool) -> domain.MergePlan:
        return domain.plan_merge(
            target_id=a,
            target_shared=a_shared,
            target_status=here,
            duplicate_id=b,
            duplicate_shared=b_shared,
            duplicate_status=here,
        )

    assert plan(False, True) == domain.MergePlan(surviving_id=b, merged_id=a, announce=False)
    assert plan(True, False) == domain.MergePlan(surviving_id=a, merged_id=b, announce=False)
    assert plan(True, True) == domain.MergePlan(surviving_id=a, merged_id=b, announce=True)
    assert plan(False, False) == domain.MergePlan(surviving_id=a, merged_id=b, announce=False)
    with pytest.raises(MergeRefused):
        domain.plan_merge(
            target_id=a,
            target_shared=True,
            target_status=here,
            duplicate_id=a,
            duplicate_shared=True,
            duplicate_status=here,
        )
    with pytest.raises(MergeRefused) as refused:
        domain.plan_merge(
            target_id=a,
            target_shared=True,
            target_status=here,
            duplicate_id=b,
            duplicate_shared=False,
            duplicate_status=InmateStatus.MERGED,
        )
    assert refused.value.field == "duplicate_id"


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 11, 30), 14, date(2026, 1, 30)),
        (date(2024, 5, 15), 12, date(2025, 5, 15)),
    ],
)
def test_months_are_added_by_the_calendar(day: date, months: int, expected: date) -> None:
    assert domain.add_months(day, months) == expected


def test_candidate_window_defaults_are_checked() -> None:
    assert domain.candidate_window(date(2025, 1, 1), 12) == (date(2025, 1, 1), date(2026, 1, 1))
    with pytest.raises(InvalidValue) as bad:
        domain.candidate_window(date(2025, 1, 1), 0)
    assert bad.value.field == "months"


def test_search_key_ignores_case_accents_and_spacing() -> None:
    assert domain.search_key("  Nur  Aḥmad FAUZĪ ") == "nur ahmad fauzi"
    assert domain.search_key("Ṣiti Ámínah") == domain.search_key("siti aminah")


def test_erasure_keeps_only_the_birth_year() -> None:
    assert domain.erased_birth_date(date(1991, 4, 12)) == date(1991, 1, 1)


def test_nik_encryption_round_trips_and_hides_the_number() -> None:
    nik = "6171014505900001"
    sealed = domain.encrypt_nik(nik, "secret-a")
    assert nik not in sealed and sealed != domain.encrypt_nik(nik, "secret-a")  # fresh nonce
    assert domain.decrypt_nik(sealed, "secret-a") == nik
    with pytest.raises(Exception):  # noqa: B017 - any failure: another key cannot open it
        domain.decrypt_nik(sealed, "secret-b")


def test_search_key_of_ascii_text_is_what_the_full_folding_gives() -> None:
    """ASCII text skips the Unicode decomposition: the same key as the long way round."""

    def folded(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text)
        bare = "".join(c for c in decomposed if not unicodedata.combining(c))
        return " ".join(bare.casefold().split())

    every = "".join(chr(code) for code in range(128))
    for text in (every, every[::-1], "  Siti   AMINAH\t", "O'Neil-Putra, Jr.", ""):
        assert domain.search_key(text) == folded(text)
