"""What every projection use case shares: the version and data-as-of of the projections."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import reduce

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from bekal.reporting.domain import later
from bekal.reporting.models import STATE_ROW_ID, ProjectionState, ProjectionVersion
from bekal.shared.db import table_of

# Where a transaction keeps, until it commits, that it changed the projections.
_CHANGED = "reporting.projections_changed"


@dataclass(frozen=True)
class _Changed:
    at: datetime | None


def projections_changed(*, session: AsyncSession | Session, at: datetime | None) -> None:
    """Every transaction that changes the projections calls this before it commits: when it
    commits, the version goes one up (the indicators' cache is keyed by it) and data-as-of moves
    to the newest event time applied (events arriving out of order never lower it). Called
    several times, the transaction still moves the version once; rolled back, nothing moves.

    The rows are written last, just before the commit (``_write_changed``), and stay locked to
    it: versions follow the order of the commits (a read that sees version n sees every change
    up to the n-th and none after it), and a transaction never holds them while it waits for
    another lock. Taken as each handler ran, they made lanes of the consumer deadlock with a
    merge or an erasure holding the identity lock, and serialised every lane's whole
    transaction on PostgreSQL."""
    pending = session.info.get(_CHANGED)
    session.info[_CHANGED] = _Changed(at if pending is None else later(pending.at, at))


@event.listens_for(Session, "before_commit")
def _write_changed(session: Session) -> None:
    changed = session.info.pop(_CHANGED, None)
    if changed is None:
        return
    state = session.get(ProjectionState, STATE_ROW_ID, with_for_update=True)
    if state is None:  # the migration makes it; this only guards a hand-made database
        session.add(ProjectionState(id=STATE_ROW_ID, data_as_of=changed.at))
    elif changed.at is not None:
        state.data_as_of = later(state.data_as_of, changed.at)
    version = table_of(ProjectionVersion)
    session.execute(
        version.update().where(version.c.id == STATE_ROW_ID).values(version=version.c.version + 1)
    )


@event.listens_for(Session, "after_transaction_end")
def _forget_changed(session: Session, transaction: SessionTransaction) -> None:
    # Rolled back (or closed without a commit): what it changed is gone, and the session's
    # next transaction starts with nothing to write. A savepoint's end keeps it: a version
    # moved for nothing costs a count, one not moved would answer a stale report.
    if transaction.parent is None:
        session.info.pop(_CHANGED, None)


def newest(times: Iterable[datetime | None]) -> datetime | None:
    """The newest of some event times (unknown ones left out): a batch's data-as-of."""
    return reduce(later, times, None)
