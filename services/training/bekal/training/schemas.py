"""The training API's request and response bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bekal.shared.events.catalogue import (
    EnrollmentOutcome,
    FollowUpSituation,
    NotCompletedReason,
    Sex,
)
from bekal.training.domain import (
    AssessmentResult,
    AttendanceStatus,
    EndReason,
    EnrollmentStatus,
    ParticipantStatus,
    SessionStatus,
)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- replica -------------------------------------------------------------------------------


class FacilityPublic(_Output):
    id: uuid.UUID
    code: str
    name: str
    province: str
    active: bool


class FacilitiesPublic(BaseModel):
    data: list[FacilityPublic]
    count: int
    next_cursor: str | None


class ParticipantPublic(_Output):
    id: uuid.UUID = Field(description="The pseudonymous participant_id issued by the registry")
    full_name: str
    sex: Sex
    birth_year: int
    facility_id: uuid.UUID
    status: ParticipantStatus
    expected_release_date: date | None
    released_on: date | None


class ParticipantsPublic(BaseModel):
    data: list[ParticipantPublic]
    count: int
    next_cursor: str | None


# --- programs ------------------------------------------------------------------------------


class CompetencyUnitIn(_Input):
    code: Code
    title: Text


class CompetencyUnitPublic(BaseModel):
    code: str
    title: str


class _ProgramRules(_Input):
    title: Text
    sector: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    partner: Text | None = None
    days: int = Field(ge=1, le=366)
    hours: int = Field(ge=1, le=10_000)
    min_attendance_share: float = Field(ge=0, le=1)
    competency_units: list[CompetencyUnitIn] = Field(min_length=1, max_length=100)

    @field_validator("competency_units")
    @classmethod
    def _unit_codes_unique(cls, units: list[CompetencyUnitIn]) -> list[CompetencyUnitIn]:
        codes = [u.code for u in units]
        if len(set(codes)) != len(codes):
            raise ValueError("kode unit kompetensi harus unik dalam satu program")
        return units


class ProgramCreate(_ProgramRules):
    code: Code


class ProgramUpdate(_ProgramRules):
    """A full new version of the program's design (the code stays)."""


class ProgramPublic(_Output):
    id: uuid.UUID
    version: int
    code: str
    title: str
    sector: str
    partner: str | None
    days: int
    hours: int
    min_attendance_share: float
    competency_units: list[CompetencyUnitPublic]
    created_at: datetime
    updated_at: datetime


class ProgramsPublic(BaseModel):
    data: list[ProgramPublic]
    count: int
    next_cursor: str | None


# --- sessions ------------------------------------------------------------------------------


class Instructor(_Input):
    name: Text
    institution: Text


class SessionCreate(_Input):
    program_id: uuid.UUID
    facility_id: uuid.UUID
    start_date: date
    end_date: date
    capacity: int = Field(gt=0, le=10_000)
    instructors: list[Instructor] = Field(default_factory=list, max_length=50)


class EnrollmentPublic(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    participant_id: uuid.UUID
    full_name: str | None
    status: EnrollmentStatus
    enrolled_on: date
    withdrawal_reason: EndReason | None
    withdrawn_on: date | None
    not_completed_reason: NotCompletedReason | None
    attendance_share: float | None
    override_reason: str | None = None
    # Who gave the override (a training administrator's subject).
    override_by: str | None = None


class SessionPublic(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    program_version: int
    program_code: str
    program_title: str
    hours: int
    min_attendance_share: float
    competency_units: list[CompetencyUnitPublic]
    facility_id: uuid.UUID
    start_date: date
    end_date: date
    capacity: int
    status: SessionStatus
    instructors: list[Instructor]
    opened_on: date | None = None
    started_on: date | None
    completed_on: date | None
    cancelled_on: date | None = None
    cancellation_reason: str | None = None
    created_at: datetime
    enrollments: list[EnrollmentPublic]


class SessionsPublic(BaseModel):
    data: list[SessionPublic]
    count: int
    next_cursor: str | None


class EnrollmentOverride(_Input):
    """Admit someone outside the release window (training_admin only), saying why."""

    participant_id: uuid.UUID
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=500)]


class EnrollmentCreate(_Input):
    participant_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)
    waitlist: bool = Field(
        default=False,
        description="Those beyond the capacity join the waiting list instead of being refused",
    )
    overrides: list[EnrollmentOverride] = Field(default_factory=list, max_length=500)


class EnrollmentsPublic(BaseModel):
    data: list[EnrollmentPublic]
    count: int


class EnrollmentsPage(BaseModel):
    data: list[EnrollmentPublic]
    count: int
    next_cursor: str | None


class AttendanceRecordIn(_Input):
    participant_id: uuid.UUID
    status: AttendanceStatus
    note: Text | None = Field(
        default=None, description="Why (e.g. sick, court); kept with the change in the history"
    )


class AttendanceSheet(_Input):
    """One day's attendance; sending a day again replaces what was recorded for it."""

    date: dt.date
    records: list[AttendanceRecordIn] = Field(max_length=10_000)


class AttendanceSaved(BaseModel):
    date: dt.date
    count: int


class AssessmentResultIn(_Input):
    participant_id: uuid.UUID
    unit_code: Code
    result: AssessmentResult


class AssessmentSheet(_Input):
    assessor: Text
    results: list[AssessmentResultIn] = Field(min_length=1, max_length=20_000)


class AssessmentsSaved(BaseModel):
    count: int


class AttendanceChangePublic(BaseModel):
    date: dt.date
    participant_id: uuid.UUID
    enrollment_id: uuid.UUID
    previous_status: AttendanceStatus | None
    status: AttendanceStatus | None
    changed_by: str
    changed_at: datetime
    reason: str | None


class AttendanceHistoryPublic(BaseModel):
    data: list[AttendanceChangePublic]
    count: int


class CorrectionAttendance(_Input):
    date: dt.date
    participant_id: uuid.UUID
    status: AttendanceStatus


class CorrectionCreate(_Input):
    """A documented correction of a completed session (training_admin only)."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=1000)]
    attendance: list[CorrectionAttendance] = Field(default_factory=list, max_length=10_000)
    assessor: Text | None = None
    assessments: list[AssessmentResultIn] = Field(default_factory=list, max_length=20_000)


class OutcomeCorrectionPublic(BaseModel):
    enrollment_id: uuid.UUID
    participant_id: uuid.UUID
    previous_outcome: EnrollmentOutcome
    outcome: EnrollmentOutcome
    not_completed_reason: NotCompletedReason | None
    attendance_share: float | None


class CorrectionsPublic(BaseModel):
    data: list[OutcomeCorrectionPublic]
    count: int


class SessionCancel(_Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=1000)]


class ReadinessIn(_Input):
    identity_card: bool
    bank_account: bool
    nib: bool
    starter_tools: bool


class ReadinessPublic(_Output):
    enrollment_id: uuid.UUID
    participant_id: uuid.UUID
    identity_card: bool
    bank_account: bool
    nib: bool
    starter_tools: bool
    recorded_by: str
    recorded_on: date


class FollowUpIn(_Input):
    situation: FollowUpSituation
    recorded_on: dt.date


class FollowUpPublic(_Output):
    enrollment_id: uuid.UUID
    participant_id: uuid.UUID
    checkpoint_months: int
    situation: FollowUpSituation
    recorded_on: dt.date
    recorded_by: str


class FollowUpsPublic(BaseModel):
    data: list[FollowUpPublic]
    count: int
