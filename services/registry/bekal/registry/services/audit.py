"""The audit trail: one row per read or change of a record, and the trail read back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry.models import AuditEntry, Inmate
from bekal.registry.schemas import AuditEntryPublic
from bekal.shared.auth import Principal
from bekal.shared.db import table_of, utcnow
from bekal.shared.pagination import Page, paginate, parse_utc


def audit(
    *,
    session: AsyncSession,
    principal: Principal,
    action: str,
    inmate_id: uuid.UUID | None = None,
    facility_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One row of the audit trail, in the same transaction as what it records.

    ``detail`` holds field names, dates and codes, never the NIK and never a name, so the
    trail itself needs no anonymising after an erasure.
    """
    session.add(
        AuditEntry(
            id=uuid.uuid4(),
            at=utcnow(),
            actor=principal.subject,
            roles=",".join(sorted(principal.roles)),
            action=action,
            inmate_id=inmate_id,
            facility_id=facility_id,
            detail=json.dumps(detail, default=str, sort_keys=True) if detail else None,
        )
    )


async def audit_reads(
    *,
    session: AsyncSession,
    principal: Principal,
    action: str,
    inmates: Sequence[Inmate | Row[Any]],
) -> None:
    """One audit row per record read, all of them in one INSERT through the table: people as
    ORM objects, or as rows with their ``id`` and ``facility_id`` (the list page's).

    A search shows up to a page of people and each is a read of personal data. As ORM objects
    the rows went through the unit of work one by one (constructing and flushing 20 of them
    was the largest piece of Python in a profiled search); as plain values they are one
    statement, in the same transaction as the read, committed or rolled back with it.
    """
    if not inmates:
        return
    at = utcnow()
    actor = principal.subject
    roles = ",".join(sorted(principal.roles))
    await session.execute(
        insert(table_of(AuditEntry)),
        [
            {
                "id": uuid.uuid4(),
                "at": at,
                "actor": actor,
                "roles": roles,
                "action": action,
                "inmate_id": inmate.id,
                "facility_id": inmate.facility_id,
                "detail": None,
            }
            for inmate in inmates
        ],
    )


async def list_audit(
    *,
    session: AsyncSession,
    inmate_id: uuid.UUID | None,
    actor: str | None,
    action: str | None,
    limit: int,
    cursor: str | None,
    count_limit: int | None = None,
) -> Page[AuditEntry]:
    """The trail newest first. It grows with every read of a record (each search audits the
    people it returns), so its count stops at ``count_limit`` when given."""
    conditions: list[ColumnElement[bool]] = []
    if inmate_id is not None:
        conditions.append(AuditEntry.inmate_id == inmate_id)
    if actor:
        conditions.append(AuditEntry.actor == actor)
    if action:
        conditions.append(AuditEntry.action == action)
    return await paginate(
        session,
        select(AuditEntry).where(*conditions),
        key=AuditEntry.at,
        tiebreak=AuditEntry.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
        descending=True,
        count_limit=count_limit,
    )


def audit_public(entry: AuditEntry) -> AuditEntryPublic:
    return AuditEntryPublic(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        roles=[r for r in entry.roles.split(",") if r],
        action=entry.action,
        inmate_id=entry.inmate_id,
        facility_id=entry.facility_id,
        detail=json.loads(entry.detail) if entry.detail else None,
    )
