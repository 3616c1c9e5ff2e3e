"""Read-only views of the registry facts training keeps (fed by events, never by these routes)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit
from bekal.training.deps import SessionDep, TrainingReader
from bekal.training.domain import ParticipantStatus
from bekal.training.schemas import (
    FacilitiesPublic,
    FacilityPublic,
    ParticipantPublic,
    ParticipantsPublic,
)
from bekal.training.services import replica

router = APIRouter(prefix="/api/v1", tags=["replica"])


@router.get(
    "/facilities", response_model=FacilitiesPublic, summary="Facilities known from the registry"
)
async def list_facilities(
    session: SessionDep,
    _: TrainingReader,
    code: str | None = None,
    province: str | None = None,
    active: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> FacilitiesPublic:
    page = await replica.list_facilities(
        session=session, code=code, province=province, active=active, limit=limit, cursor=cursor
    )
    return FacilitiesPublic(
        data=[FacilityPublic.model_validate(f) for f in page.rows],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get("/facilities/{facility_id}", response_model=FacilityPublic)
async def get_facility(
    facility_id: uuid.UUID, session: SessionDep, _: TrainingReader
) -> FacilityPublic:
    return FacilityPublic.model_validate(
        await replica.get_facility(session=session, facility_id=facility_id)
    )


@router.get(
    "/participants",
    response_model=ParticipantsPublic,
    summary="Consenting inmates shared by the registry",
)
async def list_participants(
    session: SessionDep,
    _: TrainingReader,
    facility_id: uuid.UUID | None = None,
    status: ParticipantStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ParticipantsPublic:
    page = await replica.list_participants(
        session=session, facility_id=facility_id, status=status, limit=limit, cursor=cursor
    )
    return ParticipantsPublic(
        data=[ParticipantPublic.model_validate(p) for p in page.rows],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get("/participants/{participant_id}", response_model=ParticipantPublic)
async def get_participant(
    participant_id: uuid.UUID, session: SessionDep, _: TrainingReader
) -> ParticipantPublic:
    return ParticipantPublic.model_validate(
        await replica.get_participant(session=session, participant_id=participant_id)
    )
