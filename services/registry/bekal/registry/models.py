"""The registry's tables: facilities, inmates (a keyed hash, never the NIK), their movements."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # lazy="raise": under asyncio an implicit load would fail late; queries load it explicitly.
    facility: Mapped[Facility] = relationship(lazy="raise")


class InmateMovement(Base):
    """A transfer or release, kept so the current facility is not the only trace of a history."""

    __tablename__ = "inmate_movements"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True, default=uuid.uuid4)
    inmate_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("inmates.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    from_facility_id: Mapped[uuid.UUID] = mapped_column(GUID(), ForeignKey("facilities.id"))
    to_facility_id: Mapped[uuid.UUID | None] = mapped_column(GUID(), ForeignKey("facilities.id"))
    release_kind: Mapped[str | None] = mapped_column(String(20))
    occurred_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
