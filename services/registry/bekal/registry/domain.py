"""Registry rules as plain functions: provinces, the NIK, admission dates, consent and movements."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import ClassVar

# The 38 provinces by their official names (Kemendagri), in the order of their BPS codes.
PROVINCES: tuple[str, ...] = (
    "Aceh",
    "Sumatera Utara",
    "Sumatera Barat",
    "Riau",
    "Jambi",
    "Sumatera Selatan",
    "Bengkulu",
    "Lampung",
    "Kepulauan Bangka Belitung",
    "Kepulauan Riau",
    "DKI Jakarta",
    "Jawa Barat",
    "Jawa Tengah",
    "DI Yogyakarta",
    "Jawa Timur",
    "Banten",
    "Bali",
    "Nusa Tenggara Barat",
    "Nusa Tenggara Timur",
    "Kalimantan Barat",
    "Kalimantan Tengah",
    "Kalimantan Selatan",
    "Kalimantan Timur",
    "Kalimantan Utara",
    "Sulawesi Utara",
    "Sulawesi Tengah",
    "Sulawesi Selatan",
    "Sulawesi Tenggara",
    "Gorontalo",
    "Sulawesi Barat",
    "Maluku",
    "Maluku Utara",
    "Papua",
    "Papua Barat",
    "Papua Selatan",
    "Papua Tengah",
    "Papua Pegunungan",
    "Papua Barat Daya",
)

# Long forms staff also write; stored under the short official name so filters and reports agree.
_PROVINCE_ALIASES: dict[str, str] = {
    "daerah khusus ibukota jakarta": "DKI Jakarta",
    "daerah khusus jakarta": "DKI Jakarta",
    "daerah istimewa yogyakarta": "DI Yogyakarta",
}

_PROVINCE_LOOKUP: dict[str, str] = {
    **{name.casefold(): name for name in PROVINCES},
    **_PROVINCE_ALIASES,
}

# ASCII digits only: Python's \d also matches other scripts' digits.
_NIK_PATTERN = re.compile(r"[0-9]{16}")


class InmateStatus(StrEnum):
    IN_CUSTODY = "in_custody"
    RELEASED = "released"


class MovementKind(StrEnum):
    TRANSFER = "transfer"
    RELEASE = "release"


class RuleBroken(Exception):
    """A business rule refused a change; ``field`` names the input that broke it."""

    slug: ClassVar[str] = "rule-violation"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidValue(RuleBroken):
    """The input cannot be right whatever the state of the data (answered with 422)."""

    slug = "invalid-value"


class MovementRefused(RuleBroken):
    """The change contradicts the current state of the inmate or facility (answered with 409)."""

    slug = "movement-refused"


class NotInCustody(MovementRefused):
    slug = "inmate-not-in-custody"


class SameFacility(MovementRefused):
    slug = "transfer-to-same-facility"


class FacilityInactive(MovementRefused):
    slug = "facility-inactive"


# --- provinces and the NIK -----------------------------------------------------------------


def normalize_province(name: str) -> str:
    """The official name for ``name`` (case and long forms tolerated); ValueError otherwise."""
    official = _PROVINCE_LOOKUP.get(" ".join(name.split()).casefold())
    if official is None:
        raise ValueError(f"Provinsi '{name}' tidak dikenal; gunakan salah satu dari 38 nama resmi")
    return official


def is_valid_nik(nik: str) -> bool:
    return _NIK_PATTERN.fullmatch(nik) is not None


def nik_digest(nik: str, secret: str) -> str:
    """The keyed hash kept instead of the NIK: finds duplicates, yet a dump does not reveal it.

    Keyed (HMAC) because a plain hash of a 16-digit number with known structure is easily
    reversed by trying every candidate.
    """
    return hmac.new(secret.encode(), nik.encode(), hashlib.sha256).hexdigest()


# --- admission -----------------------------------------------------------------------------


def check_admission_dates(
    *, date_of_birth: date, admission_date: date, expected_release_date: date | None
) -> None:
    if date_of_birth.year < 1900:
        raise InvalidValue(
            "Tanggal lahir tidak masuk akal (sebelum tahun 1900).", field="date_of_birth"
        )
    if date_of_birth >= admission_date:
        raise InvalidValue("Tanggal lahir harus sebelum tanggal masuk.", field="date_of_birth")
    if expected_release_date is not None and expected_release_date < admission_date:
        raise InvalidValue(
            "Perkiraan tanggal bebas tidak boleh sebelum tanggal masuk.",
            field="expected_release_date",
        )


def check_facility_accepts_inmates(*, active: bool) -> None:
    if not active:
        raise InvalidValue(
            "Fasilitas tidak aktif; warga binaan baru tidak dapat didaftarkan di sana.",
            field="facility_id",
        )


# --- consent -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    training: bool
    data_sharing: bool

    @property
    def complete(self) -> bool:
        """Both scopes are needed before anything about the person reaches the industry side."""
        return self.training and self.data_sharing


def must_share(*, consent: Consent, already_shared: bool, status: InmateStatus) -> bool:
    """Whether recording ``consent`` shares the inmate now (InmateShared is published once)."""
    if already_shared or not consent.complete:
        return False
    if status is not InmateStatus.IN_CUSTODY:
        # Training is for people still inside: the industry side would enrol someone already gone.
        raise NotInCustody(
            "Warga binaan sudah bebas; datanya tidak dapat dibagikan untuk pelatihan.",
            field="status",
        )
    return True


# --- movements -----------------------------------------------------------------------------


def check_release(*, status: InmateStatus, admission_date: date, released_on: date) -> None:
    if status is not InmateStatus.IN_CUSTODY:
        raise NotInCustody(
            "Warga binaan tidak lagi dalam tahanan (sudah bebas); "
            "pembebasan tidak dapat dicatat dua kali.",
            field="status",
        )
    if released_on < admission_date:
        raise InvalidValue("Tanggal bebas tidak boleh sebelum tanggal masuk.", field="released_on")


def check_transfer(
    *,
    status: InmateStatus,
    admission_date: date,
    from_facility_id: uuid.UUID,
    to_facility_id: uuid.UUID,
    to_facility_active: bool,
    transferred_on: date,
) -> None:
    if status is not InmateStatus.IN_CUSTODY:
        raise NotInCustody(
            "Warga binaan tidak lagi dalam tahanan (sudah bebas); tidak dapat dipindahkan.",
            field="status",
        )
    if to_facility_id == from_facility_id:
        raise SameFacility(
            "Fasilitas tujuan sama dengan fasilitas saat ini.", field="to_facility_id"
        )
    if not to_facility_active:
        raise FacilityInactive(
            "Fasilitas tujuan tidak aktif; pemindahan ke sana tidak diizinkan.",
            field="to_facility_id",
        )
    if transferred_on < admission_date:
        raise InvalidValue(
            "Tanggal pindah tidak boleh sebelum tanggal masuk.", field="transferred_on"
        )
