"""What the inmate use cases share: loading a person within the asker's scope, the share event."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from bekal.registry.models import Facility, Inmate
from bekal.registry.services.keys import person_key
from bekal.shared.auth import Principal
from bekal.shared.db import among
from bekal.shared.events.catalogue import InmateShared
from bekal.shared.messaging.outbox import add_event
from bekal.shared.problems import NotFound


def inmates_query() -> Select[Inmate]:
    return select(Inmate).join(Inmate.facility).options(contains_eager(Inmate.facility))


def facility_scope(principal: Principal) -> list[ColumnElement[bool]]:
    """Facility staff see only the facilities named in their token."""
    if principal.facility_scoped:
        return [Facility.code.in_(sorted(principal.facilities))]
    return []


async def load_inmate(
    *, session: AsyncSession, inmate_id: uuid.UUID, principal: Principal, for_update: bool = False
) -> Inmate:
    stmt = inmates_query().where(Inmate.id == inmate_id, *facility_scope(principal))
    if for_update:
        # Serialises concurrent movements of one inmate on PostgreSQL (SQLite has one writer).
        stmt = stmt.with_for_update(of=Inmate)
    inmate = (await session.scalars(stmt)).unique().one_or_none()
    if inmate is None:
        # The same answer whether it does not exist or belongs to another facility's staff.
        raise NotFound("Warga binaan tidak ditemukan.")
    return inmate


async def load_inmates(
    *, session: AsyncSession, inmate_ids: Collection[uuid.UUID], principal: Principal
) -> dict[uuid.UUID, Inmate]:
    """Several people within the asker's scope, locked for update in one statement (in id
    order, so two callers locking overlapping people wait rather than deadlock).

    For a bulk change (an import's chunk): each use case then takes its person as ``locked``
    instead of loading and locking it with a statement of its own. Those not found (or out of
    scope) are absent; the use case loads them itself and answers as it always does.
    """
    if not inmate_ids:
        return {}
    stmt = (
        inmates_query()
        .where(among(session, Inmate.id, set(inmate_ids)), *facility_scope(principal))
        .order_by(Inmate.id)
        .with_for_update(of=Inmate)
    )
    return {inmate.id: inmate for inmate in (await session.scalars(stmt)).unique()}


async def publish_share(*, session: AsyncSession, inmate: Inmate) -> None:
    """Stage InmateShared for ``inmate``, its name and birth year sealed with the person's key."""
    key = await person_key(session=session, participant_id=inmate.id)
    add_event(session, shared_event(inmate), person_key=key)


def shared_event(inmate: Inmate) -> InmateShared:
    return InmateShared(
        participant_id=inmate.id,
        full_name=inmate.full_name,
        sex=inmate.sex,
        birth_year=inmate.date_of_birth.year,
        facility_id=inmate.facility_id,
        admission_date=inmate.admission_date,
        expected_release_date=inmate.expected_release_date,
        facility_code=inmate.facility.code,
    )


def clear_absence(inmate: Inmate) -> None:
    inmate.absence_reason = None
    inmate.absent_from = None
    inmate.expected_return = None
