"""Facilities: registered and changed by national admins; the course candidates at one."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import structlog
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry import domain
from bekal.registry.domain import InmateStatus, InvalidValue
from bekal.registry.models import Facility, Inmate
from bekal.registry.schemas import (
    FacilityCreate,
    FacilityUpdate,
)
from bekal.registry.services.common import inmates_query
from bekal.shared.auth import Principal
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    FacilityClass,
    FacilityKind,
    FacilityRegistered,
    FacilityUpdated,
)
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, paginate
from bekal.shared.problems import Conflict, NotFound

log = structlog.get_logger(__name__)


def _facility_facts(facility: Facility) -> dict[str, Any]:
    return {
        "facility_id": facility.id,
        "code": facility.code,
        "name": facility.name,
        "kind": facility.kind,
        "facility_class": facility.facility_class,
        "province": facility.province,
        "regional_office": facility.regional_office,
        "capacity": facility.capacity,
        "active": facility.active,
    }


async def register_facility(*, session: AsyncSession, data: FacilityCreate) -> Facility:
    if await session.scalar(select(Facility.id).where(Facility.code == data.code)) is not None:
        message = f"Kode fasilitas '{data.code}' sudah terdaftar."
        raise Conflict(
            message, slug="facility-code-taken", errors=[{"field": "code", "message": message}]
        )
    now = utcnow()
    facility = Facility(
        id=uuid.uuid4(), created_at=now, updated_at=now, **data.model_dump(mode="json")
    )
    session.add(facility)
    add_event(session, FacilityRegistered(**_facility_facts(facility)))
    log.info("facility_registered", facility_id=str(facility.id), code=facility.code)
    return facility


async def get_facility(*, session: AsyncSession, facility_id: uuid.UUID) -> Facility:
    facility = await session.get(Facility, facility_id)
    if facility is None:
        raise NotFound("Fasilitas tidak ditemukan.")
    return facility


async def update_facility(
    *, session: AsyncSession, facility_id: uuid.UUID, changes: FacilityUpdate
) -> Facility:
    facility = await session.get(Facility, facility_id, with_for_update=True)
    if facility is None:
        raise NotFound("Fasilitas tidak ditemukan.")
    changed = False
    for name, value in changes.model_dump(mode="json", exclude_unset=True).items():
        if getattr(facility, name) != value:
            setattr(facility, name, value)
            changed = True
    # A PATCH that changes nothing publishes nothing: consumers need no echo.
    if changed:
        facility.updated_at = utcnow()
        add_event(session, FacilityUpdated(**_facility_facts(facility)))
        log.info("facility_updated", facility_id=str(facility.id), fields=sorted(changes.changes()))
    return facility


async def list_facilities(
    *,
    session: AsyncSession,
    code: str | None,
    province: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
    kind: FacilityKind | None = None,
    facility_class: FacilityClass | None = None,
) -> Page[Facility]:
    conditions: list[ColumnElement[bool]] = []
    if code:
        conditions.append(Facility.code == code)
    if province:
        try:
            conditions.append(Facility.province == domain.normalize_province(province))
        except ValueError as exc:
            raise InvalidValue(str(exc), field="province") from None
    if active is not None:
        conditions.append(Facility.active.is_(active))
    if kind is not None:
        conditions.append(Facility.kind == kind.value)
    if facility_class is not None:
        conditions.append(Facility.facility_class == facility_class.value)
    return await paginate(
        session,
        select(Facility).where(*conditions),
        key=Facility.code,
        tiebreak=Facility.id,
        cursor=cursor,
        limit=limit,
    )


async def list_candidates(
    *,
    session: AsyncSession,
    facility_id: uuid.UUID,
    principal: Principal,
    months: int,
    today: date,
    limit: int,
    cursor: str | None,
) -> Page[Inmate]:
    """Consenting people at a facility whose expected release falls within the window."""
    facility = await session.get(Facility, facility_id)
    if facility is None or not principal.may_see_facility(facility.code):
        # Another facility's staff learn nothing, not even that the facility id is right.
        raise NotFound("Fasilitas tidak ditemukan.")
    start, end = domain.candidate_window(today, months)
    return await paginate(
        session,
        inmates_query().where(
            Inmate.facility_id == facility.id,
            Inmate.status.in_(
                [InmateStatus.IN_CUSTODY.value, InmateStatus.TEMPORARILY_ABSENT.value]
            ),
            Inmate.consent_training.is_(True),
            Inmate.consent_data_sharing.is_(True),
            Inmate.erased_at.is_(None),
            Inmate.expected_release_date >= start,
            Inmate.expected_release_date <= end,
        ),
        key=Inmate.expected_release_date,
        tiebreak=Inmate.id,
        cursor=cursor,
        limit=limit,
        parse_key=date.fromisoformat,
    )
