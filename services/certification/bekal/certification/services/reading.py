"""Reading certificates for staff: one by id, a page of them (searched), a session's, the
sessions that have certificates, and every revision of one enrolment's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Row, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification.domain import CertificateStatus, typed_name_key
from bekal.certification.models import Certificate
from bekal.shared.pagination import DEFAULT_LIMIT, Page, paginate, paginate_rows, parse_utc
from bekal.shared.problems import NotFound


async def get_certificate(
    *, session: AsyncSession, certificate_id: uuid.UUID, for_update: bool = False
) -> Certificate:
    certificate = await session.get(Certificate, certificate_id, with_for_update=for_update)
    if certificate is None:
        raise NotFound(f"Sertifikat {certificate_id} tidak ditemukan")
    return certificate


async def list_certificates(
    *,
    session: AsyncSession,
    participant_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    q: str | None = None,
    program: str | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    status: CertificateStatus | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Certificate]:
    """Newest first; ``count`` is the number matching the filters, over all pages.

    ``q`` finds a part of the number or of the holder's name (the name as people type it:
    "dede" finds "Dédé", "ma'ruf" finds "Ma\u2019ruf"), ``program`` a part of the program's code
    or title (case ignored, ASCII letters); ``issued_from`` and ``issued_to``
    bound the issue date, both days included.
    """
    filters = _filters(
        participant_id=participant_id,
        session_id=session_id,
        q=q,
        program=program,
        issued_from=issued_from,
        issued_to=issued_to,
        status=status,
    )
    return await paginate(
        session,
        select(Certificate).where(*filters),
        key=Certificate.issued_at,
        tiebreak=Certificate.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
        descending=True,
    )


# What the certificates page shows of each (and the sort key of its cursor).
LISTED_COLUMNS = (
    Certificate.id,
    Certificate.number,
    Certificate.recipient_name,
    Certificate.program_title,
    Certificate.issued_on,
    Certificate.issued_at,
    Certificate.status,
    Certificate.revocation_kind,
)


async def list_certificate_rows(
    *,
    session: AsyncSession,
    q: str | None = None,
    program: str | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    status: CertificateStatus | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Row[Any]]:
    """``list_certificates`` as rows of ``LISTED_COLUMNS``: the same certificates in the same
    order, for the page, which shows five columns and need not build an ORM object for each
    (with its credential, the largest column, which the page never shows)."""
    filters = _filters(
        participant_id=None,
        session_id=None,
        q=q,
        program=program,
        issued_from=issued_from,
        issued_to=issued_to,
        status=status,
    )
    return await paginate_rows(
        session,
        select(*LISTED_COLUMNS).where(*filters),
        key=Certificate.issued_at,
        tiebreak=Certificate.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
        descending=True,
    )


def _filters(
    *,
    participant_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    q: str | None,
    program: str | None,
    issued_from: date | None,
    issued_to: date | None,
    status: CertificateStatus | None,
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if participant_id is not None:
        filters.append(Certificate.participant_id == participant_id)
    if session_id is not None:
        filters.append(Certificate.session_id == session_id)
    if q:
        # A name is matched as verification matches a typed one (typed_name_key: case, accents
        # and apostrophes do not count) against the key kept beside it; a number as typed.
        needle = q.strip().lower()
        matches = [func.lower(Certificate.number).contains(needle, autoescape=True)]
        if name_key := typed_name_key(q):
            matches.append(Certificate.recipient_name_key.contains(name_key, autoescape=True))
        filters.append(or_(*matches))
    if program:
        needle = program.strip().lower()
        filters.append(
            or_(
                func.lower(Certificate.program_code).contains(needle, autoescape=True),
                func.lower(Certificate.program_title).contains(needle, autoescape=True),
            )
        )
    if issued_from is not None:
        filters.append(Certificate.issued_on >= issued_from)
    if issued_to is not None:
        filters.append(Certificate.issued_on <= issued_to)
    if status is not None:
        filters.append(Certificate.status == status.value)
    return filters


async def session_certificates(
    *, session: AsyncSession, session_id: uuid.UUID, valid_only: bool = False
) -> list[Certificate]:
    """A session's certificates in the order they are handed over: by name, then number."""
    query = select(Certificate).where(Certificate.session_id == session_id)
    if valid_only:
        query = query.where(Certificate.status == CertificateStatus.VALID.value)
    rows = await session.scalars(query.order_by(Certificate.recipient_name, Certificate.number))
    return list(rows.all())


async def enrollment_certificates(
    *, session: AsyncSession, enrollment_id: uuid.UUID
) -> list[Certificate]:
    """Every revision of one enrolment's certificate, the first issued first."""
    rows = await session.scalars(
        select(Certificate)
        .where(Certificate.enrollment_id == enrollment_id)
        .order_by(Certificate.revision)
    )
    return list(rows.all())


@dataclass(frozen=True)
class SessionCertificates:
    """A session as its certificates know it (the facility is never kept here)."""

    session_id: uuid.UUID
    program_code: str
    program_title: str
    start_date: date
    end_date: date
    valid: int
    revoked: int


SESSIONS_LIMIT = 200


async def list_sessions(
    *, session: AsyncSession, program: str | None = None, limit: int = SESSIONS_LIMIT
) -> list[SessionCertificates]:
    """The sessions that have certificates, the latest course first, with their counts."""
    valid = func.sum(case((Certificate.status == CertificateStatus.VALID.value, 1), else_=0))
    query = select(
        Certificate.session_id,
        func.min(Certificate.program_code),
        func.min(Certificate.program_title),
        func.min(Certificate.start_date),
        func.max(Certificate.end_date),
        valid,
        func.count() - valid,
    ).group_by(Certificate.session_id)
    if program:
        needle = program.strip().lower()
        query = query.where(
            or_(
                func.lower(Certificate.program_code).contains(needle, autoescape=True),
                func.lower(Certificate.program_title).contains(needle, autoescape=True),
            )
        )
    query = query.order_by(func.max(Certificate.end_date).desc(), Certificate.session_id)
    rows = await session.execute(query.limit(limit))
    return [
        SessionCertificates(
            session_id=row[0],
            program_code=row[1],
            program_title=row[2],
            start_date=row[3],
            end_date=row[4],
            valid=int(row[5] or 0),
            revoked=int(row[6] or 0),
        )
        for row in rows.all()
    ]
