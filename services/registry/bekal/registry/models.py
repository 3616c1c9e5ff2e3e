"""The registry's tables: facilities, inmates (a keyed hash, never the NIK), their movements."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bekal.shared.db import GUID, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


class Facility(Base):
    """A lapas, rutan, LPKA or women's lapas."""

    __tablename__ = "facilities"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    facility_class: Mapped[str] = mapped_column(String(10))
    province: Mapped[str] = mapped_column(String(100), index=True)
    regional_office: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Inmate(Base):
    """A person in custody (warga binaan); ``id`` is the pseudonymous participant id in events."""

    __tablename__ = "inmates"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    registration_number: Mapped[str] = mapped_column(String(50), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    # domain.search_key(full_name): lets name search ignore case and accents on any database.
    search_name: Mapped[str | None] = mapped_column(String(200), index=True)
    # HMAC-SHA256 of the NIK under the pseudonym secret: the NIK itself is never stored.
    nik_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sex: Mapped[str] = mapped_column(String(1))
    date_of_birth: Mapped[date] = mapped_column(Date)
    education_level: Mapped[str | None] = mapped_column(String(50))
    facility_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("facilities.id"), index=True)
    admission_date: Mapped[date] = mapped_column(Date)
    expected_release_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), index=True)
    consent_training: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_data_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consent_recorded_by: Mapped[str | None] = mapped_column(String(200))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    shared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    release_kind: Mapped[str | None] = mapped_column(String(20))
    released_on: Mapped[date | None] = mapped_column(Date)
    # The NIK encrypted (AES-GCM, key derived from the pseudonym secret): readable only through
    # the subject-access export. Null for rows made before it was kept, and after erasure.
    nik_encrypted: Mapped[str | None] = mapped_column(String(120))
    absence_reason: Mapped[str | None] = mapped_column(String(20))
    absent_from: Mapped[date | None] = mapped_column(Date)
    expected_return: Mapped[date | None] = mapped_column(Date)
    died_on: Mapped[date | None] = mapped_column(Date)
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # lazy="raise": under asyncio an implicit load would fail late; queries load it explicitly.
    facility: Mapped[Facility] = relationship(lazy="raise")


class InmateMovement(Base):
    """A transfer, absence, return, release, death or merge: the history, not only the present."""

    __tablename__ = "inmate_movements"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    inmate_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("inmates.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    absence_reason: Mapped[str | None] = mapped_column(String(20))
    from_facility_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("facilities.id"))
    to_facility_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), ForeignKey("facilities.id"))
    release_kind: Mapped[str | None] = mapped_column(String(20))
    occurred_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEntry(Base):
    """Who read or changed what, when: the queryable audit trail (never the NIK)."""

    __tablename__ = "audit_entries"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    roles: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    inmate_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    facility_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_audit_entries_inmate_id_at", "inmate_id", "at"),)


class ImportJob(Base):
    """A bulk CSV import (or dry run) and its progress, for the job status endpoint."""

    __tablename__ = "import_jobs"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(20), index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    filename: Mapped[str | None] = mapped_column(String(300))
    total_lines: Mapped[int] = mapped_column(Integer, default=0)
    processed_lines: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    invalid_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    transferred_count: Mapped[int] = mapped_column(Integer, default=0)
    released_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    # The first bad lines as JSON [{line, field, reason}]; the count above has them all.
    errors: Mapped[str | None] = mapped_column(Text)
    # The first skipped lines, the same way (a released person not registered, for example).
    skipped: Mapped[str | None] = mapped_column(Text)
    # Written with each chunk's progress: a running job whose beat stopped died with its process.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failure: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PersonKey(Base):
    """A shared person's live data key: it seals the name and birth year in their events.

    Erasure, or a consent withdrawal, deletes the row and publishes the key's tombstone
    (crypto-shredding): the events already on the topics can no longer be read for the person's
    name. A consent given again later makes a key of the next generation (its kid
    ``personal.key_id(participant_id, generation)``); keys made before generations are the 1st.
    """

    __tablename__ = "person_keys"

    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    secret: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DestroyedPersonKey(Base):
    """A generation of a person's key that was destroyed (no secret: only that it was).

    So that a kid is never issued twice (a later consent takes the next generation) and an
    erasure tombstones every generation the registry ever issued for the person.
    """

    __tablename__ = "destroyed_person_keys"

    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    destroyed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
