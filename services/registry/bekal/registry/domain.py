"""Registry rules as plain functions: provinces, the NIK, admission dates, consent and movements."""

from __future__ import annotations

import base64
import calendar
import functools
import hashlib
import hmac
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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
    # Away for a while (court, hospital, leave) but still in custody: a course goes on.
    TEMPORARILY_ABSENT = "temporarily_absent"
    RELEASED = "released"
    DECEASED = "deceased"
    # A duplicate record folded into another (``merged_into_id``); kept only as a pointer.
    MERGED = "merged"

    @property
    def in_custody(self) -> bool:
        return self in (InmateStatus.IN_CUSTODY, InmateStatus.TEMPORARILY_ABSENT)


class MovementKind(StrEnum):
    TRANSFER = "transfer"
    RELEASE = "release"
    ABSENCE = "absence"
    RETURN = "return"
    DEATH = "death"
    MERGE = "merge"


_STATUS_WORDS: dict[InmateStatus, str] = {
    InmateStatus.IN_CUSTODY: "dalam tahanan",
    InmateStatus.TEMPORARILY_ABSENT: "sedang keluar sementara",
    InmateStatus.RELEASED: "sudah bebas",
    InmateStatus.DECEASED: "sudah meninggal",
    InmateStatus.MERGED: "sudah digabungkan ke catatan lain",
}


def status_words(status: InmateStatus) -> str:
    return _STATUS_WORDS[status]


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


class TemporarilyAbsent(MovementRefused):
    slug = "inmate-temporarily-absent"


class NotAbsent(MovementRefused):
    slug = "inmate-not-absent"


class MergeRefused(MovementRefused):
    slug = "merge-refused"


class SameFacility(MovementRefused):
    slug = "transfer-to-same-facility"


class FacilityInactive(MovementRefused):
    slug = "facility-inactive"


# --- names ---------------------------------------------------------------------------------


def search_key(text: str) -> str:
    """Case- and accent-free form for search: 'Ṣiti Ámínah' and 'siti aminah' meet."""
    if text.isascii():  # most names: nothing to decompose (a bulk import's every line)
        return " ".join(text.casefold().split())
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


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
    if not status.in_custody:
        # Training is for people still inside: the industry side would enrol someone already gone.
        raise NotInCustody(
            f"Warga binaan {status_words(status)}; datanya tidak dapat dibagikan untuk pelatihan.",
            field="status",
        )
    return True


def withdraws_consent(*, consent: Consent, shared: bool) -> bool:
    """Whether recording ``consent`` takes back what the industry side was given."""
    return shared and not consent.complete


# --- movements -----------------------------------------------------------------------------


def check_release(*, status: InmateStatus, admission_date: date, released_on: date) -> None:
    # A court may free someone while they are away for the hearing: absence does not block it.
    if not status.in_custody:
        raise NotInCustody(
            f"Warga binaan tidak lagi dalam tahanan ({status_words(status)}); "
            "pembebasan tidak dapat dicatat.",
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
    if status is InmateStatus.TEMPORARILY_ABSENT:
        raise TemporarilyAbsent(
            "Warga binaan sedang keluar sementara; catat kepulangannya sebelum dipindahkan.",
            field="status",
        )
    if not status.in_custody:
        raise NotInCustody(
            f"Warga binaan tidak lagi dalam tahanan ({status_words(status)}); "
            "tidak dapat dipindahkan.",
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


def check_expected_release(
    *, status: InmateStatus, admission_date: date, expected_release_date: date
) -> None:
    if not status.in_custody:
        raise NotInCustody(
            f"Warga binaan tidak lagi dalam tahanan ({status_words(status)}); "
            "perkiraan tanggal bebas tidak dapat diubah.",
            field="status",
        )
    if expected_release_date < admission_date:
        raise InvalidValue(
            "Perkiraan tanggal bebas tidak boleh sebelum tanggal masuk.",
            field="expected_release_date",
        )


def check_absence(
    *,
    status: InmateStatus,
    admission_date: date,
    absent_from: date,
    expected_return: date | None,
) -> None:
    if status is InmateStatus.TEMPORARILY_ABSENT:
        raise TemporarilyAbsent(
            "Warga binaan sudah tercatat keluar sementara; catat kepulangannya dulu.",
            field="status",
        )
    if not status.in_custody:
        raise NotInCustody(
            f"Warga binaan tidak lagi dalam tahanan ({status_words(status)}); "
            "keluar sementara tidak dapat dicatat.",
            field="status",
        )
    if absent_from < admission_date:
        raise InvalidValue("Tanggal keluar tidak boleh sebelum tanggal masuk.", field="absent_from")
    if expected_return is not None and expected_return < absent_from:
        raise InvalidValue(
            "Perkiraan tanggal kembali tidak boleh sebelum tanggal keluar.",
            field="expected_return",
        )


def check_return(*, status: InmateStatus, absent_from: date | None, returned_on: date) -> None:
    if status is not InmateStatus.TEMPORARILY_ABSENT:
        raise NotAbsent(
            f"Warga binaan tidak sedang keluar sementara ({status_words(status)}); "
            "kepulangan tidak dapat dicatat.",
            field="status",
        )
    if absent_from is not None and returned_on < absent_from:
        raise InvalidValue(
            "Tanggal kembali tidak boleh sebelum tanggal keluar.", field="returned_on"
        )


def check_death(*, status: InmateStatus, admission_date: date, died_on: date) -> None:
    if not status.in_custody:
        raise NotInCustody(
            f"Warga binaan tidak lagi dalam tahanan ({status_words(status)}); "
            "kematian tidak dapat dicatat.",
            field="status",
        )
    if died_on < admission_date:
        raise InvalidValue("Tanggal meninggal tidak boleh sebelum tanggal masuk.", field="died_on")


@dataclass(frozen=True)
class MergePlan:
    surviving_id: uuid.UUID
    merged_id: uuid.UUID
    announce: bool  # both ids were shared: the industry side must fold one into the other


def plan_merge(
    *,
    target_id: uuid.UUID,
    target_shared: bool,
    target_status: InmateStatus,
    duplicate_id: uuid.UUID,
    duplicate_shared: bool,
    duplicate_status: InmateStatus,
) -> MergePlan:
    """Which record survives a merge of two records of the same person.

    The survivor keeps an id the industry side already knows, so course history and
    certificates stay attached: if only one of the two was shared, that one survives, whichever
    was named in the request. Otherwise the record named in the URL survives.
    """
    if target_id == duplicate_id:
        raise MergeRefused(
            "Catatan tidak dapat digabungkan dengan dirinya sendiri.", field="duplicate_id"
        )
    for status, name in ((target_status, "status"), (duplicate_status, "duplicate_id")):
        if status is InmateStatus.MERGED:
            raise MergeRefused("Salah satu catatan sudah digabungkan ke catatan lain.", field=name)
    if duplicate_shared and not target_shared:
        return MergePlan(surviving_id=duplicate_id, merged_id=target_id, announce=False)
    return MergePlan(
        surviving_id=target_id,
        merged_id=duplicate_id,
        announce=target_shared and duplicate_shared,
    )


# --- candidates ----------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clamped to the month's last day (31 Jan + 1 = 28/29 Feb).

    Raises ValueError past the calendar's end (year 9999)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    if not date.min.year <= year <= date.max.year:
        raise ValueError(f"year {year} is out of range")
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def candidate_window(today: date, months: int) -> tuple[date, date]:
    """Expected release dates that make someone a course candidate: from today to +months."""
    if months < 1:
        raise InvalidValue("Jendela harus paling sedikit 1 bulan.", field="months")
    try:
        return today, add_months(today, months)
    except ValueError as exc:  # e.g. today=9999-06-30: the window ends past the calendar
        raise InvalidValue(
            "Tanggal awal terlalu jauh: jendela kandidat berakhir melewati tahun 9999.",
            field="today",
        ) from exc


# --- erasure -------------------------------------------------------------------------------

ERASED_NAME = "[dihapus]"


def erased_birth_date(date_of_birth: date) -> date:
    """Only the birth year stays after erasure (age statistics); the day is personal detail."""
    return date(date_of_birth.year, 1, 1)


# --- the NIK, reversibly, for the subject-access export only ---------------------------------


@functools.lru_cache(maxsize=4)
def _nik_cipher(secret: str) -> AESGCM:
    # A key of its own, derived from the pseudonym secret: the hash key is never the cipher key.
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"bekal-registry-nik-encryption"
    ).derive(secret.encode())
    return AESGCM(key)


def encrypt_nik(nik: str, secret: str) -> str:
    """AES-256-GCM under a key derived from ``secret``: a database dump alone does not reveal it."""
    nonce = os.urandom(12)
    sealed = _nik_cipher(secret).encrypt(nonce, nik.encode(), b"nik")
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_nik(token: str, secret: str) -> str:
    raw = base64.urlsafe_b64decode(token)
    return _nik_cipher(secret).decrypt(raw[:12], raw[12:], b"nik").decode()
