"""The certification service's tables: certificates, the yearly number counter, signing keys."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from bekal.certification.domain import typed_name_key
from bekal.shared.db import GUID, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


class Certificate(Base):
    """A completion certificate: one per enrollment, numbered, signed once, revocable.

    The signed credential is the certificate; the other columns copy what lists and
    searches need. No facility is kept here, on purpose.
    """

    __tablename__ = "certificates"

    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    enrollment_id: Mapped[uuid.UUID] = mapped_column(GUID())
    participant_id: Mapped[uuid.UUID] = mapped_column(GUID())
    session_id: Mapped[uuid.UUID] = mapped_column(GUID())
    program_id: Mapped[uuid.UUID] = mapped_column(GUID())
    program_code: Mapped[str] = mapped_column(String(100))
    program_title: Mapped[str] = mapped_column(String(300))
    recipient_name: Mapped[str] = mapped_column(String(300))
    # The name as people type it (typed_name_key: case, accents and apostrophes dropped), kept
    # with the name so that the staff search finds "Dédé" by "Dede" on SQLite and PostgreSQL.
    recipient_name_key: Mapped[str] = mapped_column(Text, default="", server_default="")
    hours: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    issued_on: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    verification_code: Mapped[str] = mapped_column(String(64))
    credential_jws: Mapped[str] = mapped_column(Text)
    signing_kid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="valid")
    revoked_on: Mapped[date | None] = mapped_column(Date)
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    source_event_id: Mapped[str] = mapped_column(String(200))
    # 1 for the certificate issued from the completion; a correction re-issues as 2, 3, ...
    revision: Mapped[int] = mapped_column(Integer, default=1)
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    replaced_by_id: Mapped[uuid.UUID | None] = mapped_column(GUID())
    revocation_kind: Mapped[str | None] = mapped_column(String(16))
    # What a re-issue needs to sign the same course again (null only on rows too old to have it).
    sector: Mapped[str | None] = mapped_column(String(100))
    partner: Mapped[str | None] = mapped_column(String(300))
    competency_units: Mapped[str | None] = mapped_column(Text)  # JSON [{code, title}]
    status_list: Mapped[int | None] = mapped_column(Integer)
    status_list_index: Mapped[int | None] = mapped_column(Integer)

    @validates("recipient_name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.recipient_name_key = typed_name_key(name)
        return name

    __table_args__ = (
        # Exactly one certificate per enrollment and revision, whatever the consumer does: the
        # last word when the same completion arrives twice under different event ids at once.
        UniqueConstraint(
            "enrollment_id", "revision", name="uq_certificates_enrollment_id_revision"
        ),
        UniqueConstraint("number", name="uq_certificates_number"),
        UniqueConstraint("verification_code", name="uq_certificates_verification_code"),
        Index("ix_certificates_participant_id", "participant_id"),
        Index("ix_certificates_session_id", "session_id"),
        Index("ix_certificates_issued_at", "issued_at", "id"),
    )


class CertificateCounter(Base):
    """The last number issued in a year; incremented in the issuing transaction (no gaps)."""

    __tablename__ = "certificate_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class SigningKey(Base):
    """Every public key that ever signed a certificate, so old certificates keep verifying."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(20))
    public_jwk: Mapped[str] = mapped_column(Text)  # JSON, with kid, alg and use
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StatusEntry(Base):
    """A taken place in a Bitstring Status List; its bit is set when the certificate is revoked.

    Kept apart from certificates so that it outlives an erasure: the holder's credential
    still points at it.
    """

    __tablename__ = "status_entries"

    status_list: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    list_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ErasedCertificate(Base):
    """All that is left of a certificate whose holder's data was erased: nothing names them."""

    __tablename__ = "erased_certificates"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))
    revoked_on: Mapped[date | None] = mapped_column(Date)
    erased_on: Mapped[date] = mapped_column(Date)


class ErasedParticipant(Base):
    """A pseudonymous id whose person was erased (not merely anonymised on consent withdrawal):
    a completion delivered late, after the erasure, must not bring their name back."""

    __tablename__ = "erased_participants"

    participant_id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    erased_on: Mapped[date] = mapped_column(Date)
