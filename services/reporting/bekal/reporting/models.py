"""Projection tables built only from events; participants by pseudonymous id, never by name."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bekal.shared.db import GUID, UTCDateTime, new_metadata

# The single row of ``projection_state``; created by the first migration.
STATE_ROW_ID = 1


class Base(DeclarativeBase):
    metadata = new_metadata()


class Facility(Base):
    """A facility as last described by registry.facilities."""

    __tablename__ = "facilities"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    facility_class: Mapped[str] = mapped_column(String(10))
    province: Mapped[str] = mapped_column(String(100), index=True)
    regional_office: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    # Event time of the fact applied, so an older fact replayed late cannot overwrite a newer one.
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Program(Base):
    """A course design at its latest published version."""

    __tablename__ = "programs"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(300))
    sector: Mapped[str] = mapped_column(String(100))
    partner: Mapped[str | None] = mapped_column(String(200))
    hours: Mapped[int] = mapped_column(Integer)


class TrainingSession(Base):
    """A session; its facts may be unknown (null) while only a status event has arrived.

    Named apart from the database session to keep the two apart when reading the code.
    """

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    program_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), index=True)
    program_version: Mapped[int | None] = mapped_column(Integer)
    facility_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), index=True)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    # The reporting year (end date's year), stored so GROUP BY is the same SQL on every database.
    year: Mapped[int | None] = mapped_column(Integer, index=True)
    capacity: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))


class Enrollment(Base):
    """One enrolment and its outcome. ``participant_id`` is the registry's pseudonym."""

    __tablename__ = "enrollments"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    status: Mapped[str] = mapped_column(String(20))
    withdrawal_reason: Mapped[str | None] = mapped_column(String(30))
    not_completed_reason: Mapped[str | None] = mapped_column(String(40))
    # Carried by ParticipantCompleted: used while the session itself is not yet known.
    program_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    year: Mapped[int | None] = mapped_column(Integer)


class Certificate(Base):
    """A certificate issued for an enrolment (number and date only, no personal data)."""

    __tablename__ = "certificates"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    number: Mapped[str] = mapped_column(String(50))
    # One certificate per enrolment is what "certified" counts; a second one is ignored.
    enrollment_id: Mapped[uuid.UUID] = mapped_column(GUID(), unique=True)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID())
    program_id: Mapped[uuid.UUID] = mapped_column(GUID())
    issued_on: Mapped[date] = mapped_column(Date)


class ProjectionState(Base):
    """One row: how fresh the projections are (``data_as_of`` = newest event time applied)."""

    __tablename__ = "projection_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
