"""API schemas of the reporting service."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class IndicatorCounters(BaseModel):
    enrolled: int = Field(
        description="Every enrolment ever made, later withdrawn or finished included"
    )
    withdrawn: int
    withdrawn_by_reason: dict[str, int] = Field(
        description="Withdrawals per reason (released, transferred, consent_withdrawn, other)"
    )
    completed: int
    not_completed: int
    certified: int = Field(description="Enrolments with a certificate issued")
    completion_rate: float | None = Field(
        description="completed / (completed + not_completed), 4 decimals; null when both are 0"
    )
    certification_rate: float | None = Field(
        description="certified / completed, 4 decimals; null when nobody completed"
    )
    mean_days_to_certificate: float | None = Field(
        description="Mean days from the session's end to the certificate's issue, 1 decimal"
    )
    days_to_certificate_count: int = Field(
        description="Certificates whose completion date is known (the mean's denominator)"
    )
    graduates_released: int = Field(description="Graduates (completed) since released")
    waitlisted: int = Field(
        default=0, description="Waiting-list entries on full sessions (not enrolments)"
    )
    waiting: int = Field(
        default=0, description="Of those, still waiting: neither enrolled nor left the list"
    )
    graduates_released_ready: int = Field(
        default=0,
        description="Released graduates whose readiness checklist had identity card, bank "
        "account, NIB and starter tools",
    )
    business_with_nib: int = Field(
        description="Graduates whose latest follow-up: business started, with an NIB"
    )
    business_without_nib: int = Field(
        description="Graduates whose latest follow-up: business started, no NIB yet"
    )
    new_entrepreneurs: int = Field(description="business_with_nib + business_without_nib")
    employed: int = Field(description="Graduates whose latest follow-up: employed by an IKM")


class IndicatorRow(IndicatorCounters):
    """One group. Only the keys of the requested dimensions are present."""

    facility_id: uuid.UUID | None = None
    facility_code: str | None = None
    facility_name: str | None = None
    province: str | None = None
    program_id: uuid.UUID | None = None
    program_code: str | None = None
    program_title: str | None = None
    year: int | None = Field(default=None, description="The year the session ends")
    sector: str | None = None
    sex: str | None = Field(default=None, description="F or M; null while not shared")
    session_id: uuid.UUID | None = None
    session_start_date: date | None = None
    session_end_date: date | None = None


class IndicatorsPublic(BaseModel):
    group_by: list[str]
    filters: dict[str, str] = Field(description="The filters applied, as given")
    data: list[IndicatorRow]
    totals: IndicatorCounters
    data_as_of: datetime | None = Field(
        description="Time of the newest event applied to the projections; null before any"
    )


# Far above any national target, and within the 32-bit column that stores it.
TARGET_MAX = 10_000_000


class TargetUpdate(BaseModel):
    annual: int | None = Field(
        default=None, ge=0, le=TARGET_MAX, description="New entrepreneurs in that year"
    )
    cumulative: int | None = Field(
        default=None,
        ge=0,
        le=TARGET_MAX,
        description="New entrepreneurs from the start to the end of that year",
    )
    note: str | None = Field(default=None, max_length=300)


class TargetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    year: int
    annual: int | None
    cumulative: int | None
    note: str | None
    updated_at: datetime | None
    updated_by: str | None


class TargetsPublic(BaseModel):
    data: list[TargetPublic]
    count: int


class TargetProgressPublic(BaseModel):
    year: int
    target_annual: int | None
    target_cumulative: int | None
    new_entrepreneurs: int = Field(description="Graduates of that year who started a business")
    new_entrepreneurs_cumulative: int
    certified: int
    certified_cumulative: int
    progress_annual: float | None = Field(description="new_entrepreneurs / target_annual")
    progress_cumulative: float | None = Field(
        description="new_entrepreneurs_cumulative / target_cumulative"
    )


class TargetProgressesPublic(BaseModel):
    data: list[TargetProgressPublic]
    data_as_of: datetime | None


class TargetChangePublic(BaseModel):
    """One edit of a target: who, when, and the values before and after."""

    model_config = ConfigDict(from_attributes=True)

    year: int
    changed_at: datetime
    changed_by: str
    old_annual: int | None
    old_cumulative: int | None
    old_note: str | None
    new_annual: int | None
    new_cumulative: int | None
    new_note: str | None


class TargetChangesPublic(BaseModel):
    data: list[TargetChangePublic]
    count: int


class GenerationPublic(BaseModel):
    """A generation of the projections and, while it is built, the rebuild's progress."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    status: str = Field(description="building, live, retired, failed or dropped")
    started_at: datetime | None
    switched_at: datetime | None
    retired_at: datetime | None
    records_done: int = Field(description="Events replayed so far")
    records_total: int = Field(description="Events replayed so far plus those still behind")
    error: str | None


class GenerationsPublic(BaseModel):
    live: int
    building: int | None
    data: list[GenerationPublic]
