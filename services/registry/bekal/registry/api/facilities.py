"""Facilities: registered and changed by national registry admins, readable by anyone signed in."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from bekal.registry.deps import AnyPrincipal, CorrectionsStaff, RegistryAdmin, SessionDep
from bekal.registry.schemas import (
    FacilitiesPublic,
    FacilityCreate,
    FacilityPublic,
    FacilityUpdate,
    InmatePublic,
    InmatesPublic,
)
from bekal.registry.services import audit, facilities
from bekal.shared.events.catalogue import FacilityClass, FacilityKind
from bekal.shared.idempotency import IdempotencyKey, commit, create_once
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix="/api/v1/facilities", tags=["facilities"])


@router.post(
    "",
    status_code=201,
    response_model=FacilityPublic,
    summary="Register a facility (publishes FacilityRegistered)",
)
async def create_facility(
    body: FacilityCreate,
    request: Request,
    session: SessionDep,
    principal: RegistryAdmin,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def create() -> dict[str, Any]:
        facility = await facilities.register_facility(session=session, data=body)
        return FacilityPublic.model_validate(facility).model_dump(mode="json")

    return await create_once(
        session,
        request=request,
        principal=principal,
        key=idempotency_key,
        payload=body,
        create=create,
    )


@router.get("", response_model=FacilitiesPublic, summary="List facilities")
async def list_facilities(
    session: SessionDep,
    _: AnyPrincipal,
    code: str | None = None,
    province: str | None = None,
    active: bool | None = None,
    kind: FacilityKind | None = None,
    facility_class: FacilityClass | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> FacilitiesPublic:
    page = await facilities.list_facilities(
        session=session,
        code=code,
        province=province,
        active=active,
        kind=kind,
        facility_class=facility_class,
        limit=limit,
        cursor=cursor,
    )
    return FacilitiesPublic(
        data=[FacilityPublic.model_validate(f) for f in page.rows],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get("/{facility_id}", response_model=FacilityPublic, summary="One facility")
async def get_facility(
    facility_id: uuid.UUID, session: SessionDep, _: AnyPrincipal
) -> FacilityPublic:
    return FacilityPublic.model_validate(
        await facilities.get_facility(session=session, facility_id=facility_id)
    )


@router.patch(
    "/{facility_id}",
    response_model=FacilityPublic,
    summary="Change a facility (publishes FacilityUpdated when something changed)",
)
async def update_facility(
    facility_id: uuid.UUID, body: FacilityUpdate, session: SessionDep, _: RegistryAdmin
) -> FacilityPublic:
    facility = await facilities.update_facility(
        session=session, facility_id=facility_id, changes=body
    )
    public = FacilityPublic.model_validate(facility)
    await commit(session)
    return public


@router.get(
    "/{facility_id}/candidates",
    response_model=InmatesPublic,
    summary="Course candidates: consenting people expected to be released within the window",
)
async def list_candidates(
    facility_id: uuid.UUID,
    session: SessionDep,
    principal: CorrectionsStaff,
    months: Annotated[int, Query(ge=1, le=120, description="Window in months from today")] = 12,
    today: Annotated[
        date | None, Query(description="The window's start; today when left out")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> InmatesPublic:
    page = await facilities.list_candidates(
        session=session,
        facility_id=facility_id,
        principal=principal,
        months=months,
        today=today or date.today(),
        limit=limit,
        cursor=cursor,
    )
    result = InmatesPublic(
        data=[InmatePublic.of(i) for i in page.rows],
        count=page.count,
        next_cursor=page.next_cursor,
    )
    await audit.audit_reads(
        session=session, principal=principal, action="inmate.listed", inmates=page.rows
    )
    await commit(session)
    return result
