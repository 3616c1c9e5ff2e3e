"""Programs: course designs, published and versioned."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import CompetencyUnit, ProgramPublished
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, paginate
from bekal.shared.problems import Conflict, NotFound
from bekal.training.models import Program
from bekal.training.schemas import ProgramCreate, ProgramUpdate


def _program_published(program: Program) -> ProgramPublished:
    return ProgramPublished(
        program_id=program.id,
        program_version=program.version,
        code=program.code,
        title=program.title,
        sector=program.sector,
        partner=program.partner,
        days=program.days,
        hours=program.hours,
        min_attendance_share=program.min_attendance_share,
        competency_units=[CompetencyUnit(**u) for u in program.competency_units],
    )


def _apply_rules(program: Program, data: ProgramCreate | ProgramUpdate) -> None:
    program.title = data.title
    program.sector = data.sector
    program.partner = data.partner
    program.days = data.days
    program.hours = data.hours
    program.min_attendance_share = data.min_attendance_share
    program.competency_units = [u.model_dump() for u in data.competency_units]


async def create_program(*, session: AsyncSession, data: ProgramCreate) -> Program:
    if await session.scalar(select(Program.id).where(Program.code == data.code)) is not None:
        raise Conflict(
            f"Kode program '{data.code}' sudah dipakai.",
            errors=[{"field": "code", "message": "kode program sudah dipakai"}],
        )
    now = utcnow()
    program = Program(id=uuid.uuid4(), code=data.code, version=1, created_at=now, updated_at=now)
    _apply_rules(program, data)
    session.add(program)
    add_event(session, _program_published(program))
    return program


async def publish_program_version(
    *, session: AsyncSession, program_id: uuid.UUID, data: ProgramUpdate
) -> Program:
    """A changed design is a new version; sessions already planned keep the rules they copied."""
    program = await session.scalar(
        select(Program).where(Program.id == program_id).with_for_update()
    )
    if program is None:
        raise NotFound("Program tidak ditemukan.")
    program.version += 1
    program.updated_at = utcnow()
    _apply_rules(program, data)
    add_event(session, _program_published(program))
    return program


async def get_program(*, session: AsyncSession, program_id: uuid.UUID) -> Program:
    program = await session.get(Program, program_id)
    if program is None:
        raise NotFound("Program tidak ditemukan.")
    return program


async def list_programs(
    *, session: AsyncSession, code: str | None, sector: str | None, limit: int, cursor: str | None
) -> Page[Program]:
    query = select(Program)
    if code is not None:
        query = query.where(Program.code == code)
    if sector is not None:
        query = query.where(Program.sector == sector)
    return await paginate(
        session, query, key=Program.code, tiebreak=Program.id, cursor=cursor, limit=limit
    )
