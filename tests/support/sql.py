"""Reading a service's database from outside the service, while it runs (plain SQL, no locks)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows ``sql`` returns. A connection of its own, closed after: the service keeps its
    pool, and on SQLite a plain read takes no write lock (WAL lets it run beside the writer)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]
    finally:
        await engine.dispose()


async def scalar(url: str, sql: str, **params: Any) -> Any:
    rows = await query(url, sql, **params)
    return rows[0][0] if rows else None
