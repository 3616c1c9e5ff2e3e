"""Dependencies of the reporting API as Annotated aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Principal, Role, require

# Both ministries read reports: these roles of either side may.
READER_ROLES: tuple[str, ...] = (
    Role.REPORTING_VIEWER,
    Role.REGISTRY_ADMIN,
    Role.TRAINING_ADMIN,
    Role.CERTIFICATION_ADMIN,
)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReportReader = Annotated[Principal, require(roles=READER_ROLES)]
