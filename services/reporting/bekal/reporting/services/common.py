"""What every projection use case shares: the data-as-of the folded events have reached."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import reduce

from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting.domain import later
from bekal.reporting.models import STATE_ROW_ID, ProjectionState


async def advance_data_as_of(*, session: AsyncSession, at: datetime | None) -> None:
    """Data-as-of is the newest event time applied; events arriving out of order never lower it."""
    if at is None:
        return
    state = await session.get(ProjectionState, STATE_ROW_ID, with_for_update=True)
    if state is None:  # the migration makes it; this only guards a hand-made database
        session.add(ProjectionState(id=STATE_ROW_ID, data_as_of=at))
        return
    state.data_as_of = later(state.data_as_of, at)


def newest(times: Iterable[datetime | None]) -> datetime | None:
    """The newest of some event times (unknown ones left out): a batch's data-as-of."""
    return reduce(later, times, None)
