"""What every projection use case shares: the version and data-as-of of the projections."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import reduce

from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting.domain import later
from bekal.reporting.models import STATE_ROW_ID, ProjectionState, ProjectionVersion
from bekal.shared.db import table_of


async def projections_changed(*, session: AsyncSession, at: datetime | None) -> None:
    """Every transaction that changes the projections calls this before it commits: the
    version goes one up (the indicators' cache is keyed by it) and data-as-of moves to the
    newest event time applied (events arriving out of order never lower it).

    The version's row stays locked to the commit, so versions follow the order of the
    commits: a read that sees version n sees every change up to the n-th and none after it."""
    state = await session.get(ProjectionState, STATE_ROW_ID, with_for_update=True)
    if state is None:  # the migration makes it; this only guards a hand-made database
        session.add(ProjectionState(id=STATE_ROW_ID, data_as_of=at))
    elif at is not None:
        state.data_as_of = later(state.data_as_of, at)
    version = table_of(ProjectionVersion)
    await session.execute(
        version.update().where(version.c.id == STATE_ROW_ID).values(version=version.c.version + 1)
    )


def newest(times: Iterable[datetime | None]) -> datetime | None:
    """The newest of some event times (unknown ones left out): a batch's data-as-of."""
    return reduce(later, times, None)
