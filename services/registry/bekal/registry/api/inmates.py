"""Inmates: registration, consent, movements, merge, erasure; corrections staff, by facility."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from bekal.registry.deps import CorrectionsStaff, RegistryAdmin, SessionDep, SettingsDep
from bekal.registry.domain import InmateStatus
from bekal.registry.schemas import (
    AbsenceIn,
    ConsentIn,
    DeathIn,
    ExpectedReleaseIn,
    InmateCreate,
    InmatePublic,
    InmatesPublic,
    MergeIn,
    ReleaseIn,
    ReturnIn,
    SubjectAccessExport,
    TransferIn,
)
from bekal.registry.services import audit, inmates, movements, privacy
from bekal.shared.idempotency import IdempotencyKey, commit, create_once
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix="/api/v1/inmates", tags=["inmates"])


@router.post(
    "",
    status_code=201,
    response_model=InmatePublic,
    summary="Register an inmate (publishes InmateShared when consent is complete)",
)
async def create_inmate(
    body: InmateCreate,
    request: Request,
    session: SessionDep,
    principal: CorrectionsStaff,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def create() -> dict[str, Any]:
        inmate = await inmates.register_inmate(
            session=session, data=body, principal=principal, secret=settings.pseudonym_secret
        )
        return InmatePublic.of(inmate).model_dump(mode="json")

    return await create_once(
        session,
        request=request,
        principal=principal,
        key=idempotency_key,
        # The NIK only as its keyed hash, never in what the key's record is compared by.
        payload=inmates.idempotency_payload(body, secret=settings.pseudonym_secret),
        create=create,
    )


@router.get(
    "",
    response_model=InmatesPublic,
    summary="List inmates (facility staff see only their facilities)",
)
async def list_inmates(
    session: SessionDep,
    settings: SettingsDep,
    principal: CorrectionsStaff,
    facility_id: uuid.UUID | None = None,
    status: InmateStatus | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=r"^[^\x00]*$",  # a NUL cannot be searched for (PostgreSQL refuses it)
            description="Part of the name or registration number",
        ),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> InmatesPublic:
    page = await inmates.list_inmates(
        session=session,
        principal=principal,
        facility_id=facility_id,
        status=status,
        q=q,
        limit=limit,
        cursor=cursor,
        count_limit=settings.list_count_limit,
    )
    result = InmatesPublic(
        data=[InmatePublic.of(i) for i in page.rows],
        count=page.count,
        count_capped=page.count_capped,
        next_cursor=page.next_cursor,
    )
    # Each record shown is a read of personal data: the trail names every one.
    await audit.audit_reads(
        session=session, principal=principal, action="inmate.listed", inmates=page.rows
    )
    await commit(session)
    return result


@router.get("/{inmate_id}", response_model=InmatePublic, summary="One inmate (the read is audited)")
async def get_inmate(
    inmate_id: uuid.UUID, session: SessionDep, principal: CorrectionsStaff
) -> InmatePublic:
    public = InmatePublic.of(
        await inmates.get_inmate(session=session, inmate_id=inmate_id, principal=principal)
    )
    await commit(session)
    return public


@router.get(
    "/{inmate_id}/subject-access",
    response_model=SubjectAccessExport,
    summary="Everything held about one person, the NIK included (registry admins only)",
)
async def subject_access(
    inmate_id: uuid.UUID, session: SessionDep, principal: RegistryAdmin, settings: SettingsDep
) -> SubjectAccessExport:
    export = SubjectAccessExport.model_validate(
        await privacy.subject_access(
            session=session,
            inmate_id=inmate_id,
            principal=principal,
            secret=settings.pseudonym_secret,
        )
    )
    await commit(session)
    return export


@router.post(
    "/{inmate_id}/consent",
    response_model=InmatePublic,
    summary="Record consent (publishes InmateShared the first time both scopes are given)",
)
async def record_consent(
    inmate_id: uuid.UUID, body: ConsentIn, session: SessionDep, principal: CorrectionsStaff
) -> InmatePublic:
    inmate = await inmates.record_consent(
        session=session, inmate_id=inmate_id, consent=body, principal=principal
    )
    public = InmatePublic.of(inmate)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/release",
    response_model=InmatePublic,
    summary="Record a permanent release (publishes InmateReleased if shared)",
)
async def release_inmate(
    inmate_id: uuid.UUID, body: ReleaseIn, session: SessionDep, principal: CorrectionsStaff
) -> InmatePublic:
    inmate = await movements.release_inmate(
        session=session, inmate_id=inmate_id, release=body, principal=principal
    )
    public = InmatePublic.of(inmate)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/transfer",
    response_model=InmatePublic,
    summary="Transfer to another facility (publishes InmateTransferred if shared)",
)
async def transfer_inmate(
    inmate_id: uuid.UUID, body: TransferIn, session: SessionDep, principal: CorrectionsStaff
) -> InmatePublic:
    inmate = await movements.transfer_inmate(
        session=session, inmate_id=inmate_id, transfer=body, principal=principal
    )
    public = InmatePublic.of(inmate)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/expected-release",
    response_model=InmatePublic,
    summary="Record a new expected release date (shares the person again if shared)",
)
async def update_expected_release(
    inmate_id: uuid.UUID,
    body: ExpectedReleaseIn,
    session: SessionDep,
    principal: CorrectionsStaff,
) -> InmatePublic:
    inmate = await movements.update_expected_release(
        session=session,
        inmate_id=inmate_id,
        expected_release_date=body.expected_release_date,
        principal=principal,
    )
    public = InmatePublic.of(inmate)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/absence",
    response_model=InmatePublic,
    summary="Record a temporary absence: court, hospital, leave (publishes if shared)",
)
async def record_absence(
    inmate_id: uuid.UUID, body: AbsenceIn, session: SessionDep, principal: CorrectionsStaff
) -> InmatePublic:
    inmate = await movements.record_absence(
        session=session, inmate_id=inmate_id, absence=body, principal=principal
    )
    public = InmatePublic.of(inmate)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/return",
    response_model=InmatePublic,
    summary="Record the return from a temporary absence (publishes InmateReturned if shared)",
)
async def record_return(
    inmate_id: uuid.UUID, body: ReturnIn, session: SessionDep, principal: CorrectionsStaff
) -> InmatePublic:
    inmate = await movements.record_return(
        session=session, inmate_id=inmate_id, back=body, principal=principal
    )
    public = InmatePublic.of(inmate)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/death",
    response_model=InmatePublic,
    summary="Record a death in custody (publishes InmateDied if shared)",
)
async def record_death(
    inmate_id: uuid.UUID, body: DeathIn, session: SessionDep, principal: CorrectionsStaff
) -> InmatePublic:
    inmate = await movements.record_death(
        session=session, inmate_id=inmate_id, death=body, principal=principal
    )
    public = InmatePublic.of(inmate)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/merge",
    response_model=InmatePublic,
    summary="Merge a duplicate record of the same person; returns the surviving record",
)
async def merge_inmates(
    inmate_id: uuid.UUID, body: MergeIn, session: SessionDep, principal: RegistryAdmin
) -> InmatePublic:
    survivor = await movements.merge_inmates(
        session=session, inmate_id=inmate_id, merge=body, principal=principal
    )
    public = InmatePublic.of(survivor)
    await commit(session)
    return public


@router.post(
    "/{inmate_id}/erasure",
    response_model=InmatePublic,
    summary="Grant an erasure request: anonymise the record, publish InmateErased",
)
async def erase_inmate(
    inmate_id: uuid.UUID, session: SessionDep, principal: RegistryAdmin
) -> InmatePublic:
    inmate = await privacy.erase_inmate(session=session, inmate_id=inmate_id, principal=principal)
    public = InmatePublic.of(inmate)
    await commit(session)
    return public
