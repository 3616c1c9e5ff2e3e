"""The registry's API schemas: what comes in and what goes out (never the NIK)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bekal.registry import domain
from bekal.registry.domain import InmateStatus
from bekal.registry.models import Inmate
from bekal.shared.events.catalogue import (
    AbsenceReason,
    FacilityClass,
    FacilityKind,
    ReleaseKind,
    Sex,
)

# Unknown fields are refused rather than ignored: above all, nothing like an offence may slip
# into the registry under a field name nobody reviewed.
_INPUT = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- facilities ----------------------------------------------------------------------------


class FacilityCreate(BaseModel):
    model_config = _INPUT

    code: str = Field(
        min_length=2,
        max_length=50,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        examples=["LAPAS-PONTIANAK"],
    )
    name: str = Field(min_length=1, max_length=200, examples=["Lapas Kelas IIA Pontianak"])
    kind: FacilityKind
    facility_class: FacilityClass
    province: str = Field(
        description="One of the 38 official province names", examples=["Kalimantan Barat"]
    )
    regional_office: str = Field(min_length=1, max_length=200)
    capacity: int = Field(ge=0, le=1_000_000)
    active: bool = True

    @field_validator("province")
    @classmethod
    def _official_province(cls, value: str) -> str:
        return domain.normalize_province(value)


class FacilityUpdate(BaseModel):
    """Only what changes; code, kind and province identify a facility and stay."""

    model_config = _INPUT

    name: str | None = Field(default=None, min_length=1, max_length=200)
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    active: bool | None = None
    regional_office: str | None = Field(default=None, min_length=1, max_length=200)
    facility_class: FacilityClass | None = None

    @field_validator("name", "capacity", "active", "regional_office", "facility_class")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values actually sent: an explicit null would erase a required fact.
        if value is None:
            raise ValueError("tidak boleh null; hilangkan field ini bila tidak diubah")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class FacilityPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: FacilityKind
    facility_class: FacilityClass
    province: str
    regional_office: str
    capacity: int
    active: bool
    created_at: datetime


class FacilitiesPublic(BaseModel):
    data: list[FacilityPublic]
    count: int = Field(description="How many facilities match the filters, over all pages")
    next_cursor: str | None


# --- inmates -------------------------------------------------------------------------------


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    training: bool
    data_sharing: bool


class InmateCreate(BaseModel):
    model_config = _INPUT

    registration_number: str = Field(min_length=1, max_length=50)
    full_name: str = Field(min_length=1, max_length=200)
    # SecretStr keeps the NIK out of reprs, tracebacks and model dumps.
    nik: SecretStr = Field(
        description=(
            "16-digit national ID number; stored as a keyed hash and encrypted, shown only in the"
            " subject-access export, never in an event"
        )
    )
    sex: Sex
    date_of_birth: date
    education_level: str | None = Field(default=None, max_length=50)
    facility_id: uuid.UUID
    admission_date: date
    expected_release_date: date | None = None
    consent: ConsentIn | None = None

    @field_validator("nik")
    @classmethod
    def _sixteen_digits(cls, value: SecretStr) -> SecretStr:
        # The message never repeats the value: error bodies end up in logs and screenshots.
        if not domain.is_valid_nik(value.get_secret_value().strip()):
            raise ValueError("NIK harus terdiri dari tepat 16 angka")
        return SecretStr(value.get_secret_value().strip())


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReleaseKind
    released_on: date


class ExpectedReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_release_date: date


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_facility_id: uuid.UUID
    transferred_on: date


class AbsenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: AbsenceReason
    absent_from: date
    expected_return: date | None = None


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    returned_on: date


class DeathIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    died_on: date


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_id: uuid.UUID = Field(description="The other record of the same person")
    merged_on: date


class AbsencePublic(BaseModel):
    reason: AbsenceReason
    absent_from: date
    expected_return: date | None


class ConsentPublic(BaseModel):
    training: bool
    data_sharing: bool
    recorded_at: datetime | None
    recorded_by: str | None


class InmatePublic(BaseModel):
    id: uuid.UUID = Field(description="Also the pseudonymous participant_id used in every event")
    registration_number: str
    full_name: str
    sex: Sex
    date_of_birth: date
    education_level: str | None
    facility_id: uuid.UUID
    facility_code: str
    admission_date: date
    expected_release_date: date | None
    status: InmateStatus
    consent: ConsentPublic
    shared: bool
    release_kind: ReleaseKind | None
    released_on: date | None
    absence: AbsencePublic | None = None
    died_on: date | None = None
    merged_into_id: uuid.UUID | None = Field(
        default=None, description="Set on a duplicate record: the record that survived the merge"
    )
    consent_withdrawn_at: datetime | None = None
    erased: bool = False

    @classmethod
    def of(cls, inmate: Inmate) -> InmatePublic:
        """From a row whose facility is loaded."""
        return cls(
            id=inmate.id,
            registration_number=inmate.registration_number,
            full_name=inmate.full_name,
            sex=Sex(inmate.sex),
            date_of_birth=inmate.date_of_birth,
            education_level=inmate.education_level,
            facility_id=inmate.facility_id,
            facility_code=inmate.facility.code,
            admission_date=inmate.admission_date,
            expected_release_date=inmate.expected_release_date,
            status=InmateStatus(inmate.status),
            consent=ConsentPublic(
                training=inmate.consent_training,
                data_sharing=inmate.consent_data_sharing,
                recorded_at=inmate.consent_recorded_at,
                recorded_by=inmate.consent_recorded_by,
            ),
            shared=inmate.shared,
            release_kind=ReleaseKind(inmate.release_kind) if inmate.release_kind else None,
            released_on=inmate.released_on,
            absence=(
                AbsencePublic(
                    reason=AbsenceReason(inmate.absence_reason),
                    absent_from=inmate.absent_from,
                    expected_return=inmate.expected_return,
                )
                if inmate.absence_reason and inmate.absent_from
                else None
            ),
            died_on=inmate.died_on,
            merged_into_id=inmate.merged_into_id,
            consent_withdrawn_at=inmate.consent_withdrawn_at,
            erased=inmate.erased_at is not None,
        )


class InmatesPublic(BaseModel):
    data: list[InmatePublic]
    count: int = Field(
        description="How many inmates match the filters, over all pages; when `count_capped` "
        "is true, more than this many match and `count` is the cap (`LIST_COUNT_LIMIT`, "
        "1000 by default)"
    )
    count_capped: bool = Field(
        default=False,
        description="True when counting stopped at the cap: the real total is higher than "
        "`count`. Follow `next_cursor` to read every match, or narrow the search",
    )
    next_cursor: str | None


# --- audit, subject access, imports --------------------------------------------------------


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    actor: str
    roles: list[str]
    action: str
    inmate_id: uuid.UUID | None
    facility_id: uuid.UUID | None
    detail: dict[str, Any] | None


class AuditEntriesPublic(BaseModel):
    data: list[AuditEntryPublic]
    count: int = Field(
        description="How many entries match the filters, over all pages; when `count_capped` "
        "is true, more than this many match and `count` is the cap (`LIST_COUNT_LIMIT`)"
    )
    count_capped: bool = Field(
        default=False,
        description="True when counting stopped at the cap: the real total is higher than "
        "`count`. Follow `next_cursor` to read every entry, or filter by person or actor",
    )
    next_cursor: str | None


class MovementPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    inmate_id: uuid.UUID
    kind: str
    from_facility_id: uuid.UUID
    to_facility_id: uuid.UUID | None
    release_kind: str | None
    absence_reason: str | None
    occurred_on: date
    recorded_by: str
    recorded_at: datetime


class PublishedEventPublic(BaseModel):
    event_type: str
    topic: str
    created_at: datetime
    sent_at: datetime | None
    data: dict[str, Any]


class StoredResponsePublic(BaseModel):
    created_at: datetime
    status: int
    body: Any


class SubjectAccessExport(BaseModel):
    """Everything the registry holds about one person (UU PDP right of access)."""

    generated_at: datetime
    inmate: InmatePublic
    nik: str | None = Field(
        description="Decrypted only here; null if not kept (older records, or erased)"
    )
    merged_record_ids: list[uuid.UUID]
    movements: list[MovementPublic]
    events_published: list[PublishedEventPublic]
    audit_trail: list[AuditEntryPublic]
    stored_responses: list[StoredResponsePublic] = Field(
        description="Answers kept for Idempotency-Key replays that name the person"
    )


class ImportErrorPublic(BaseModel):
    line: int
    field: str | None
    reason: str


class ImportJobPublic(BaseModel):
    id: uuid.UUID
    status: str = Field(description="queued, running, done, failed or interrupted")
    dry_run: bool
    filename: str | None
    total_lines: int
    processed_lines: int
    progress: float = Field(description="processed_lines / total_lines, 0..1")
    created: int
    updated: int = Field(description="Expected release date or consent changed")
    transferred: int
    released: int
    unchanged: int
    skipped: int = Field(description="Neither bad nor written (a released person not registered)")
    invalid: int
    errors: list[ImportErrorPublic] = Field(description="The first bad lines (all are counted)")
    skipped_lines: list[ImportErrorPublic] = Field(
        description="The first skipped lines, with the reason (all are counted)"
    )
    failure: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None
