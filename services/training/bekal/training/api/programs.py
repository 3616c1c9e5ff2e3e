"""Programs: course designs, versioned."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bekal.shared.idempotency import IdempotencyKey, commit, create_once
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit
from bekal.training.deps import (
    SessionDep,
    TrainingAdmin,
    TrainingReader,
)
from bekal.training.schemas import ProgramCreate, ProgramPublic, ProgramsPublic, ProgramUpdate
from bekal.training.services import programs

router = APIRouter(prefix="/api/v1/programs", tags=["programs"])


@router.post("", status_code=201, response_model=ProgramPublic, summary="Publish a new program")
async def create_program(
    body: ProgramCreate,
    request: Request,
    session: SessionDep,
    principal: TrainingAdmin,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def create() -> dict[str, Any]:
        program = await programs.create_program(session=session, data=body)
        return ProgramPublic.model_validate(program).model_dump(mode="json")

    return await create_once(
        session,
        request=request,
        principal=principal,
        key=idempotency_key,
        payload=body,
        create=create,
    )


@router.get("", response_model=ProgramsPublic)
async def list_programs(
    session: SessionDep,
    _: TrainingReader,
    code: str | None = None,
    sector: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ProgramsPublic:
    page = await programs.list_programs(
        session=session, code=code, sector=sector, limit=limit, cursor=cursor
    )
    return ProgramsPublic(
        data=[ProgramPublic.model_validate(p) for p in page.rows],
        count=page.count,
        next_cursor=page.next_cursor,
    )


@router.get("/{program_id}", response_model=ProgramPublic)
async def get_program(
    program_id: uuid.UUID, session: SessionDep, _: TrainingReader
) -> ProgramPublic:
    return ProgramPublic.model_validate(
        await programs.get_program(session=session, program_id=program_id)
    )


@router.put(
    "/{program_id}",
    response_model=ProgramPublic,
    summary="Publish a new version of a program (sessions already planned keep their version)",
)
async def publish_program_version(
    program_id: uuid.UUID, body: ProgramUpdate, session: SessionDep, _: TrainingAdmin
) -> ProgramPublic:
    program = await programs.publish_program_version(
        session=session, program_id=program_id, data=body
    )
    public = ProgramPublic.model_validate(program)
    await commit(session)
    return public
