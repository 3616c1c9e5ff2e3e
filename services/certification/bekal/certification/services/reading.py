"""Reading certificates for staff: one by id, or a page of them."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification.models import Certificate
from bekal.shared.pagination import DEFAULT_LIMIT, Page, paginate, parse_utc
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
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Certificate]:
    """Newest first; ``count`` is the number matching the filters, over all pages."""
    filters = []
    if participant_id is not None:
        filters.append(Certificate.participant_id == participant_id)
    if session_id is not None:
        filters.append(Certificate.session_id == session_id)
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
