"""Dependencies of the reporting API as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Ministry, Principal, Role, require
from bekal.shared.deps import SessionDep

# Both ministries read reports: these roles of either side may.
READER_ROLES: tuple[str, ...] = (
    Role.REPORTING_VIEWER,
    Role.REGISTRY_ADMIN,
    Role.TRAINING_ADMIN,
    Role.CERTIFICATION_ADMIN,
)

# Detail (one facility, one session) is for the national administrators of either side;
# reporting viewers read aggregates by province, program, sector, sex and year.
DETAIL_ROLES: tuple[str, ...] = (
    Role.REGISTRY_ADMIN,
    Role.TRAINING_ADMIN,
    Role.CERTIFICATION_ADMIN,
)
# Targets are set by the industry ministry's administrators.
TARGET_EDITOR_ROLES: tuple[str, ...] = (Role.TRAINING_ADMIN,)


async def projection_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the live generation of the projections (a rebuild may switch it)."""
    async with request.app.state.projections.live.db.session() as session:
        yield session


# The projections (live generation) and the control database (targets, generations).
ProjectionSession = Annotated[AsyncSession, Depends(projection_session)]
ControlSession = SessionDep

ReportReader = Annotated[Principal, require(roles=READER_ROLES)]
TargetEditor = Annotated[Principal, require(ministry=Ministry.INDUSTRY, roles=TARGET_EDITOR_ROLES)]
Operator = Annotated[Principal, require(roles=(Role.OPERATOR,))]
