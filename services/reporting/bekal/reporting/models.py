"""Projection tables built only from events; participants by pseudonymous id, never by name."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Integer, String, Text, false
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
    # The end date as a day number (date.toordinal), so durations are plain integer subtraction
    # on every database.
    end_day: Mapped[int | None] = mapped_column(Integer)
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
    sector: Mapped[str | None] = mapped_column(String(100))
    end_day: Mapped[int | None] = mapped_column(Integer)
    # The latest follow-up after release (by checkpoint, then date): what the graduate does now.
    follow_up_situation: Mapped[str | None] = mapped_column(String(40))
    follow_up_checkpoint: Mapped[int | None] = mapped_column(Integer)
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    # The latest readiness checklist before release: identity card, bank account, NIB and
    # starter tools all in hand (null until one is recorded).
    ready_to_trade: Mapped[bool | None] = mapped_column(Boolean)
    readiness_on: Mapped[date | None] = mapped_column(Date)


class WaitlistEntry(Base):
    """A place on a session's waiting list (not an enrolment: a person moved up enrols under the
    same id). ``participant_id`` is the registry's pseudonym."""

    __tablename__ = "waitlist_entries"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    waitlisted_on: Mapped[date | None] = mapped_column(Date)
    # Set when the entry ended without an enrolment.
    left_on: Mapped[date | None] = mapped_column(Date)


class Certificate(Base):
    """A certificate issued (or re-issued) for an enrolment: number and date, no personal data.

    An enrolment may have several (a corrected one re-issued); it counts once as certified while
    any of them is not revoked.
    """

    __tablename__ = "certificates"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    number: Mapped[str] = mapped_column(String(50))
    enrollment_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    session_id: Mapped[uuid.UUID] = mapped_column(GUID(), index=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID())
    program_id: Mapped[uuid.UUID] = mapped_column(GUID())
    issued_on: Mapped[date] = mapped_column(Date)
    issued_day: Mapped[int | None] = mapped_column(Integer)


class Participant(Base):
    """What reporting needs of a person: sex and birth year, by pseudonymous id. No name.

    An erased person's row is under their anonymous id and keeps only the sex and ``released``
    (what the published figures group and count by): no birth year, no date of release.
    """

    __tablename__ = "participants"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    released_on: Mapped[date | None] = mapped_column(Date)
    released: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CertificateRevocation(Base):
    """A certificate no longer valid: revoked, or superseded by a re-issued one.

    Kept apart from ``certificates`` so a revocation that arrives first is not lost.
    """

    __tablename__ = "certificate_revocations"

    certificate_id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(GUID())
    kind: Mapped[str] = mapped_column(String(20))
    revoked_on: Mapped[date] = mapped_column(Date)
    replaced_by_id: Mapped[uuid.UUID | None] = mapped_column(GUID())


class ErasedParticipant(Base):
    """A person erased (or who withdrew consent): their later or replayed events stay anonymous.

    Keyed (``people.ErasureKey``), never the participant id itself: ``id`` is derived from the
    participant id and ``anonymous_id`` (where the person's facts are filed) likewise, with a
    secret the database does not hold, so no row leads back to the person.
    """

    __tablename__ = "erased_participants"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    # Null only on a tombstone from before the ids were keyed (its id is then the participant
    # id itself): ``people.key_old_tombstones`` re-keys it before any event is applied.
    anonymous_id: Mapped[uuid.UUID | None] = mapped_column(GUID())


class MergedParticipant(Base):
    """A participant id merged into another: its later events are filed under the survivor."""

    __tablename__ = "merged_participants"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    surviving_id: Mapped[uuid.UUID] = mapped_column(GUID())


class Target(Base):
    """A target of new entrepreneurs for a year: for that year alone, or cumulative to its end."""

    __tablename__ = "targets"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    annual: Mapped[int | None] = mapped_column(Integer)
    cumulative: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(200))


class ProjectionState(Base):
    """One row: how fresh the projections are (``data_as_of`` = newest event time applied)."""

    __tablename__ = "projection_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ProjectionVersion(Base):
    """One row: the projections' version, one more with every transaction that changes them,
    so two reads that see the same version see the same projections. Not a projection: it
    counts transactions, and two generations built from the same events differ in it."""

    __tablename__ = "projection_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class TargetChange(Base):
    """One edit of a target, kept for audit: who, when, and the values before and after."""

    __tablename__ = "target_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_by: Mapped[str] = mapped_column(String(200))
    old_annual: Mapped[int | None] = mapped_column(Integer)
    old_cumulative: Mapped[int | None] = mapped_column(Integer)
    old_note: Mapped[str | None] = mapped_column(String(300))
    new_annual: Mapped[int | None] = mapped_column(Integer)
    new_cumulative: Mapped[int | None] = mapped_column(Integer)
    new_note: Mapped[str | None] = mapped_column(String(300))


class ProjectionGeneration(Base):
    """A generation of the projections (control table, in the service's own database).

    Generation 0 is the projection tables of the service's database itself; a rebuild fills
    generation n+1 in a database of its own (``location``) and makes it ``live`` once caught up.
    Exactly one generation is ``live``: reads and the live consumer use it.
    """

    __tablename__ = "projection_generations"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Database URL of the generation; None = the service's own database (generation 0).
    location: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))  # building, live, retired, failed, dropped
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    switched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    records_done: Mapped[int] = mapped_column(Integer, default=0)
    records_total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1000))
    # JSON {"topic:partition": offset}: the generation holds every record before these offsets.
    # Another replica switching over moves its consumer there, so nothing it applied to the old
    # generation meanwhile is missing from the new one.
    switch_offsets: Mapped[str | None] = mapped_column(Text)
