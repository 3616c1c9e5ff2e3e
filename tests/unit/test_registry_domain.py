"""The registry's rules without a database, broker or HTTP: provinces, NIK, consent, movements."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from pydantic import ValidationError

from bekal.registry import domain
from bekal.registry.domain import (
    Consent,
    FacilityInactive,
    InmateStatus,
    InvalidValue,
    MovementRefused,
    NotInCustody,
    SameFacility,
)
from bekal.registry.schemas import FacilityCreate, FacilityUpdate, InmateCreate

ADMITTED = date(2022, 3, 1)
HERE, THERE = uuid.uuid4(), uuid.uuid4()


# --- provinces -----------------------------------------------------------------------------


def test_there_are_38_distinct_provinces_including_the_newest_papua_ones():
    assert len(domain.PROVINCES) == 38
    assert len(set(domain.PROVINCES)) == 38
    for name in (
        "DKI Jakarta",
        "Kalimantan Barat",
        "Banten",
        "Papua Barat Daya",
        "Papua Pegunungan",
    ):
        assert name in domain.PROVINCES


def test_province_names_are_normalised_to_the_official_spelling():
    assert domain.normalize_province("Kalimantan Barat") == "Kalimantan Barat"
    assert domain.normalize_province("  kalimantan   barat ") == "Kalimantan Barat"
    assert domain.normalize_province("dki jakarta") == "DKI Jakarta"
    assert domain.normalize_province("Daerah Istimewa Yogyakarta") == "DI Yogyakarta"


@pytest.mark.parametrize(
    "name", ["Jakarta Raya", "Kalimantan", "Irian Jaya Barat", "", "Timor Timur"]
)
def test_unknown_provinces_are_refused(name: str):
    with pytest.raises(ValueError, match="tidak dikenal"):
        domain.normalize_province(name)


# --- NIK -----------------------------------------------------------------------------------


def test_a_nik_is_exactly_sixteen_ascii_digits():
    assert domain.is_valid_nik("3171012345678901")
    assert not domain.is_valid_nik("317101234567890")  # 15
    assert not domain.is_valid_nik("31710123456789012")  # 17
    assert not domain.is_valid_nik("31710123456789AB")
    assert not domain.is_valid_nik("3171-01234567890")
    assert not domain.is_valid_nik("٣١٧١٠١٢٣٤٥٦٧٨٩٠١")  # Arabic-Indic digits match \d, not a NIK


def test_nik_digest_is_stable_keyed_and_does_not_contain_the_nik():
    nik = "3171012345678901"
    first = domain.nik_digest(nik, "secret-a")
    assert first == domain.nik_digest(nik, "secret-a")
    assert first != domain.nik_digest(nik, "secret-b")
    assert first != domain.nik_digest("3171012345678902", "secret-a")
    assert len(first) == 64 and nik not in first


def _inmate_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "registration_number": "AI.2022.001",
        "full_name": "Siti Aminah",
        "nik": "3171012345678901",
        "sex": "F",
        "date_of_birth": "1990-05-01",
        "facility_id": str(HERE),
        "admission_date": "2022-03-01",
    }
    body.update(overrides)
    return body


def test_inmate_schema_rejects_a_bad_nik_without_echoing_it():
    with pytest.raises(ValidationError) as caught:
        InmateCreate.model_validate(_inmate_body(nik="12345678901234XX"))
    errors = caught.value.errors(include_input=False)
    assert [e["loc"] for e in errors] == [("nik",)]
    assert "12345678901234XX" not in str(errors)


def test_inmate_schema_keeps_the_nik_out_of_its_repr():
    body = InmateCreate.model_validate(_inmate_body())
    assert "3171012345678901" not in repr(body)
    assert body.nik.get_secret_value() == "3171012345678901"


def test_inmate_schema_refuses_fields_it_does_not_know_such_as_an_offence():
    with pytest.raises(ValidationError) as caught:
        InmateCreate.model_validate(_inmate_body(offence="pencurian"))
    assert caught.value.errors()[0]["loc"] == ("offence",)


def test_facility_schema_stores_the_official_province_name():
    facility = FacilityCreate.model_validate(
        {
            "code": "LP-PTK",
            "name": "Lapas Kelas IIA Pontianak",
            "kind": "lapas",
            "facility_class": "IIA",
            "province": "kalimantan barat",
            "regional_office": "Kanwil Kalimantan Barat",
            "capacity": 600,
        }
    )
    assert facility.province == "Kalimantan Barat"
    assert facility.active is True


def test_facility_update_refuses_explicit_nulls_but_not_omissions():
    assert FacilityUpdate.model_validate({"capacity": 10}).changes() == {"capacity": 10}
    with pytest.raises(ValidationError) as caught:
        FacilityUpdate.model_validate({"name": None})
    assert caught.value.errors()[0]["loc"] == ("name",)
    with pytest.raises(ValidationError):
        FacilityUpdate.model_validate({"province": "Bali"})  # a facility does not move province


# --- admission -----------------------------------------------------------------------------


def test_expected_release_before_admission_is_refused_naming_the_field():
    with pytest.raises(InvalidValue) as caught:
        domain.check_admission_dates(
            date_of_birth=date(1990, 1, 1),
            admission_date=ADMITTED,
            expected_release_date=date(2022, 2, 28),
        )
    assert caught.value.field == "expected_release_date"


def test_birth_must_come_before_admission():
    with pytest.raises(InvalidValue) as caught:
        domain.check_admission_dates(
            date_of_birth=ADMITTED, admission_date=ADMITTED, expected_release_date=None
        )
    assert caught.value.field == "date_of_birth"


def test_consistent_admission_dates_pass():
    domain.check_admission_dates(
        date_of_birth=date(1990, 1, 1), admission_date=ADMITTED, expected_release_date=ADMITTED
    )


def test_an_inactive_facility_takes_no_new_inmates():
    with pytest.raises(InvalidValue) as caught:
        domain.check_facility_accepts_inmates(active=False)
    assert caught.value.field == "facility_id"
    domain.check_facility_accepts_inmates(active=True)


# --- consent -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("training", "data_sharing"), [(True, False), (False, True), (False, False)]
)
def test_partial_consent_shares_nothing(training: bool, data_sharing: bool):
    consent = Consent(training=training, data_sharing=data_sharing)
    assert not domain.must_share(
        consent=consent, already_shared=False, status=InmateStatus.IN_CUSTODY
    )


def test_complete_consent_shares_once():
    consent = Consent(training=True, data_sharing=True)
    assert domain.must_share(consent=consent, already_shared=False, status=InmateStatus.IN_CUSTODY)
    assert not domain.must_share(
        consent=consent, already_shared=True, status=InmateStatus.IN_CUSTODY
    )


def test_a_released_person_cannot_be_newly_shared_for_training():
    with pytest.raises(NotInCustody) as caught:
        domain.must_share(
            consent=Consent(training=True, data_sharing=True),
            already_shared=False,
            status=InmateStatus.RELEASED,
        )
    assert "bebas" in caught.value.message


def test_withdrawing_consent_after_release_is_allowed():
    consent = Consent(training=False, data_sharing=False)
    assert not domain.must_share(consent=consent, already_shared=True, status=InmateStatus.RELEASED)


# --- release -------------------------------------------------------------------------------


def test_release_of_someone_in_custody_is_allowed():
    domain.check_release(
        status=InmateStatus.IN_CUSTODY, admission_date=ADMITTED, released_on=ADMITTED
    )


def test_release_of_someone_already_released_is_a_conflict_explained_in_bahasa():
    with pytest.raises(NotInCustody) as caught:
        domain.check_release(
            status=InmateStatus.RELEASED, admission_date=ADMITTED, released_on=date(2024, 1, 1)
        )
    assert isinstance(caught.value, MovementRefused)
    assert "tidak lagi dalam tahanan" in caught.value.message


def test_release_before_admission_is_invalid():
    with pytest.raises(InvalidValue) as caught:
        domain.check_release(
            status=InmateStatus.IN_CUSTODY, admission_date=ADMITTED, released_on=date(2022, 2, 1)
        )
    assert caught.value.field == "released_on"


# --- transfer ------------------------------------------------------------------------------


def _transfer(**overrides: object) -> None:
    args: dict[str, object] = {
        "status": InmateStatus.IN_CUSTODY,
        "admission_date": ADMITTED,
        "from_facility_id": HERE,
        "to_facility_id": THERE,
        "to_facility_active": True,
        "transferred_on": date(2023, 1, 1),
    }
    args.update(overrides)
    domain.check_transfer(**args)  # type: ignore[arg-type]


def test_transfer_to_another_active_facility_is_allowed():
    _transfer()


def test_transfer_to_the_same_facility_is_refused():
    with pytest.raises(SameFacility) as caught:
        _transfer(to_facility_id=HERE)
    assert caught.value.field == "to_facility_id"


def test_transfer_to_an_inactive_facility_is_refused():
    with pytest.raises(FacilityInactive) as caught:
        _transfer(to_facility_active=False)
    assert caught.value.field == "to_facility_id"
    assert "tidak aktif" in caught.value.message


def test_transfer_of_a_released_person_is_refused():
    with pytest.raises(NotInCustody):
        _transfer(status=InmateStatus.RELEASED)


def test_transfer_dated_before_admission_is_invalid():
    with pytest.raises(InvalidValue) as caught:
        _transfer(transferred_on=date(2021, 12, 31))
    assert caught.value.field == "transferred_on"


def test_a_candidate_window_past_the_calendars_end_names_the_start_date() -> None:
    with pytest.raises(domain.InvalidValue) as refused:
        domain.candidate_window(date(9999, 6, 30), 12)
    assert refused.value.field == "today"
    # The last window that fits still works, clamped to the month's end.
    assert domain.candidate_window(date(9998, 12, 31), 12) == (
        date(9998, 12, 31),
        date(9999, 12, 31),
    )
    assert domain.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
