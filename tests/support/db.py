"""Reading a service's database in tests: row counts and the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bekal.shared.db import Database
from bekal.shared.messaging.outbox import backlog


async def count(db: Database, model: type, *where: Any) -> int:
    """Rows of ``model`` matching ``where``."""
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def outbox_drained(db: Database) -> bool:
    """Whether the relay has published everything staged so far."""
    return await backlog(db) == 0
