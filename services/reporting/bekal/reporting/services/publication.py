"""What is published outside the ministries: the open-data tables, every count rounded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bekal.reporting import privacy
from bekal.reporting.domain import Dimension
from bekal.reporting.privacy import OPEN_DATA_KEYS, PublicTables
from bekal.reporting.services.indicators import IndicatorFilters, indicators


async def public_tables(
    *, session: AsyncSession, secret: str
) -> tuple[PublicTables, datetime | None]:
    """The open-data cells (by year, province, sector and sex) and the summary's margins, each
    count rounded to base 5 with its cell key (``privacy``)."""
    dims = [Dimension.YEAR, Dimension.PROVINCE, Dimension.SECTOR, Dimension.SEX]
    report = await indicators(session=session, group_by=dims, filters=IndicatorFilters())
    rows = [
        {
            **{k: g.keys.get(k) for k in OPEN_DATA_KEYS},
            "enrolled": g.counters.enrolled,
            "completed": g.counters.completed,
            "certified": g.counters.certified,
        }
        for g in report.groups
    ]
    return privacy.public_tables(rows, secret=secret.encode()), report.data_as_of
