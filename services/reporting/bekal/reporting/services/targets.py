"""Targets of new entrepreneurs (set by hand, audited) and progress against them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting.domain import Dimension, TargetProgress, progress_by_year
from bekal.reporting.models import Target, TargetChange
from bekal.reporting.services.indicators import IndicatorFilters, indicators


async def list_targets(*, session: AsyncSession) -> list[Target]:
    return list((await session.scalars(select(Target).order_by(Target.year))).all())


async def set_target(
    *,
    session: AsyncSession,
    year: int,
    annual: int | None,
    cumulative: int | None,
    note: str | None,
    by: str,
) -> Target:
    """Create or replace the target of a year, and audit the change (the caller commits)."""
    row = await session.get(Target, year)
    if row is None:
        row = Target(year=year)
        session.add(row)
    now = datetime.now(UTC)
    session.add(
        TargetChange(
            year=year,
            changed_at=now,
            changed_by=by,
            old_annual=row.annual,
            old_cumulative=row.cumulative,
            old_note=row.note,
            new_annual=annual,
            new_cumulative=cumulative,
            new_note=note,
        )
    )
    row.annual = annual
    row.cumulative = cumulative
    row.note = note
    row.updated_at = now
    row.updated_by = by
    return row


async def target_changes(*, session: AsyncSession, year: int | None = None) -> list[TargetChange]:
    """The audit trail of target edits, oldest first."""
    stmt = select(TargetChange).order_by(TargetChange.changed_at, TargetChange.id)
    if year is not None:
        stmt = stmt.where(TargetChange.year == year)
    return list((await session.scalars(stmt)).all())


async def target_progress(
    *, session: AsyncSession, targets_session: AsyncSession
) -> tuple[list[TargetProgress], datetime | None]:
    """Each year with a target or data: new entrepreneurs (and certified) against the targets.

    Counts come from the projections, targets from the service's own database (``targets_session``):
    they are set by hand, so a rebuild never replaces them.
    """
    targets = {
        t.year: (t.annual, t.cumulative) for t in await list_targets(session=targets_session)
    }
    # End that transaction before reading the projections: on SQLite both may be one file, and
    # a transaction there holds the write lock.
    await targets_session.rollback()
    report = await indicators(
        session=session, group_by=[Dimension.YEAR], filters=IndicatorFilters()
    )
    by_year = {g.keys["year"]: g.counters for g in report.groups if g.keys["year"] is not None}
    return (
        progress_by_year(
            {y: (c.new_entrepreneurs, c.certified) for y, c in by_year.items()},
            targets,
        ),
        report.data_as_of,
    )
