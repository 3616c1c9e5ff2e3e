"""Training's tables: registry replica, programs, sessions, enrolments, attendance, assessments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bekal.shared.db import GUID, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


# --- replica of registry facts (written only by event handlers) -----------------------------


class Facility(Base):
    """A facility as the registry last described it (id = the registry's facility_id)."""

    __tablename__ = "facilities"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    code: Mapped[str] = mapped_column(String(50), index=True)
    name: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(100), index=True)
    active: Mapped[bool] = mapped_column(Boolean)
    # Time of the registry event this row reflects: an older event never overwrites a newer one.
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Participant(Base):
    """A consenting inmate shared by the registry (id = the pseudonymous participant_id)."""

    __tablename__ = "participants"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str] = mapped_column(String(1))
    birth_year: Mapped[int] = mapped_column(Integer)
    # No foreign key: the facility's own event may arrive later, on another topic.
    facility_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    admission_date: Mapped[date] = mapped_column(Date)
    expected_release_date: Mapped[date | None] = mapped_column(Date)
    released_on: Mapped[date | None] = mapped_column(Date)
    release_kind: Mapped[str | None] = mapped_column(String(20))
    # A temporary absence (court, hospital, leave) is noted but ends no course.
    absent_from: Mapped[date | None] = mapped_column(Date)
    # Set when the person asked to be erased or withdrew consent: the name is gone, counts stay.
    anonymised_on: Mapped[date | None] = mapped_column(Date)
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ParticipantAbsence(Base):
    """One temporary absence the registry recorded (court, hospital, leave): from its first day
    until the day the person came back (``returned_on``, None while away).

    Kept per period, not only as the person's current state, so that a day's attendance is
    judged by whether the person was away on that day, also a day recorded after they returned.
    """

    __tablename__ = "participant_absences"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    absent_from: Mapped[date] = mapped_column(Date)
    returned_on: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ParticipantReturn(Base):
    """A return from a temporary absence the registry recorded, kept apart from the absence.

    The events of one person arrive in order, but not always: an absence retried from the
    dead-letter topic comes after the return that ended it. Kept, the return closes an absence
    that arrives late, so its period does not stay open for good.
    """

    __tablename__ = "participant_returns"

    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    returned_on: Mapped[date] = mapped_column(Date, primary_key=True)


class MergedParticipant(Base):
    """A tombstone: this participant id was merged into ``surviving_id`` by the registry.

    Registry events for the old id that arrive later (late, replayed or re-sent) are routed to
    the surviving id, so the old record is never brought back.
    """

    __tablename__ = "merged_participants"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    surviving_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    merged_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- owned by training ---------------------------------------------------------------------


class Program(Base):
    """A course design; each change is a new version (sessions keep the version they planned)."""

    __tablename__ = "programs"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(300))
    sector: Mapped[str] = mapped_column(String(100))
    partner: Mapped[str | None] = mapped_column(String(300))
    days: Mapped[int] = mapped_column(Integer)
    hours: Mapped[int] = mapped_column(Integer)
    min_attendance_share: Mapped[float] = mapped_column(Float)
    competency_units: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainingSession(Base):
    """A program held at one facility on given dates.

    It copies the rules of the program version it was planned with (units, hours, minimum
    attendance, titles), so a later version of the program never changes a planned course.
    """

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    program_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("programs.id"), index=True)
    program_version: Mapped[int] = mapped_column(Integer)
    program_code: Mapped[str] = mapped_column(String(50))
    program_title: Mapped[str] = mapped_column(String(300))
    sector: Mapped[str] = mapped_column(String(100))
    partner: Mapped[str | None] = mapped_column(String(300))
    hours: Mapped[int] = mapped_column(Integer)
    min_attendance_share: Mapped[float] = mapped_column(Float)
    competency_units: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    facility_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    instructors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    opened_on: Mapped[date | None] = mapped_column(Date)
    started_on: Mapped[date | None] = mapped_column(Date)
    completed_on: Mapped[date | None] = mapped_column(Date)
    cancelled_on: Mapped[date | None] = mapped_column(Date)
    cancellation_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("sessions.id"), index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    enrolled_on: Mapped[date] = mapped_column(Date)
    withdrawal_reason: Mapped[str | None] = mapped_column(String(30))
    withdrawn_on: Mapped[date | None] = mapped_column(Date)
    not_completed_reason: Mapped[str | None] = mapped_column(String(40))
    attendance_share: Mapped[float | None] = mapped_column(Float)
    # An administrator let this person in despite the release-window rule, and said why.
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_id", "participant_id", name="uq_enrollments_session_id"),
    )


class AttendanceRecord(Base):
    """One participant's status on one day of a session (a day's sheet is replaced as a whole)."""

    __tablename__ = "attendance_records"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("sessions.id"), index=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        GUID(), ForeignKey("enrollments.id"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("enrollment_id", "day", name="uq_attendance_records_enrollment_id"),
    )


class Assessment(Base):
    """The latest result of one competency unit for one enrolment."""

    __tablename__ = "assessments"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("sessions.id"), index=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        GUID(), ForeignKey("enrollments.id"), index=True
    )
    unit_code: Mapped[str] = mapped_column(String(50))
    result: Mapped[str] = mapped_column(String(20))
    assessor: Mapped[str] = mapped_column(Text)
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("enrollment_id", "unit_code", name="uq_assessments_enrollment_id"),
    )


class AttendanceChange(Base):
    """History of attendance: who set which status for whom on which day, and when.

    Written for every change (a first entry has no previous status); corrections after
    completion carry their reason.
    """

    __tablename__ = "attendance_changes"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("sessions.id"), index=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        GUID(), ForeignKey("enrollments.id"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    previous_status: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str | None] = mapped_column(String(10))
    changed_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AssessmentChange(Base):
    """One change of a unit's result made by a correction after completion: what it was, what it
    became, who changed it, when and why (the result itself is overwritten in ``assessments``)."""

    __tablename__ = "assessment_changes"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("sessions.id"), index=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        GUID(), ForeignKey("enrollments.id"), index=True
    )
    unit_code: Mapped[str] = mapped_column(String(50))
    previous_result: Mapped[str | None] = mapped_column(String(20))
    result: Mapped[str] = mapped_column(String(20))
    assessor: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReadinessChecklist(Base):
    """A graduate's papers and tools to trade, checked before release (one per enrolment)."""

    __tablename__ = "readiness_checklists"

    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        GUID(), ForeignKey("enrollments.id"), primary_key=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    identity_card: Mapped[bool] = mapped_column(Boolean)
    bank_account: Mapped[bool] = mapped_column(Boolean)
    nib: Mapped[bool] = mapped_column(Boolean)
    starter_tools: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_on: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FollowUp(Base):
    """A field officer's record of a graduate's situation about 3, 6 or 12 months after release."""

    __tablename__ = "follow_ups"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        GUID(), ForeignKey("enrollments.id"), index=True
    )
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    checkpoint_months: Mapped[int] = mapped_column(Integer)
    situation: Mapped[str] = mapped_column(String(40))
    recorded_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("enrollment_id", "checkpoint_months", name="uq_follow_ups_enrollment_id"),
    )
