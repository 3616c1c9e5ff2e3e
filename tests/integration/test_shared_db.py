"""The database helpers every service uses, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy import Date, Integer, String, UniqueConstraint, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import bekal.shared.db as shared_db
from bekal.shared.db import (
    GUID,
    Database,
    UTCDateTime,
    among,
    insert_rows,
    new_metadata,
    plan_each_statement,
)
from tests.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    metadata = new_metadata()


class Person(Base):
    __tablename__ = "people"
    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Visit(Base):
    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[uuid.UUID] = mapped_column(GUID())
    code: Mapped[str] = mapped_column(String(20))
    on: Mapped[date | None] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("person_id", "code"),)


async def test_among_finds_exactly_the_rows_whose_ids_it_is_given(database_url: str) -> None:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    stored = [uuid.uuid4() for _ in range(300)]
    async with db.session() as session:
        session.add_all(Person(id=pid, name=f"p{i}") for i, pid in enumerate(stored))
        await session.commit()

    async def found(ids: set[uuid.UUID]) -> set[uuid.UUID]:
        async with db.session() as session:
            return set(
                await session.scalars(select(Person.id).where(among(session, Person.id, ids)))
            )

    strangers = {uuid.uuid4() for _ in range(50)}
    wanted = set(stored[10:260])  # more than one batch, some of them unknown
    assert await found(wanted | strangers) == wanted
    # Another number of ids reuses the same statement on PostgreSQL, with its own values.
    assert await found(set(stored[:3])) == set(stored[:3])
    assert await found(strangers) == set()
    assert await found(set()) == set()
    await db.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no plan cache
async def test_a_batch_transaction_plans_each_statement_and_requests_keep_cached_plans(
    database_url: str,
) -> None:
    """A cached generic plan cannot hash a batch's ids: it compares each row with each id."""
    db = Database(database_url)
    async with db.session() as session:
        await plan_each_statement(session)
        assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
        await session.commit()
    async with db.session() as session:
        assert await session.scalar(text("SHOW plan_cache_mode")) == "auto"
    await db.dispose()


async def test_insert_rows_writes_every_value_and_skips_taken_keys(database_url: str) -> None:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    table = Visit.__table__
    person = uuid.uuid4()
    jakarta = timezone(timedelta(hours=7))
    first = [
        {
            "person_id": person,
            "code": f"c{i}",
            "on": date(2024, 9, 3) if i % 2 else None,
            "at": datetime(2024, 9, 3, 8, i % 60, tzinfo=jakarta),
        }
        for i in range(250)
    ]
    async with db.session() as session:
        await insert_rows(session, table, first)  # type: ignore[arg-type]
        await session.commit()
    again = [*first[240:], {**first[0], "code": "new"}]  # ten taken, one new
    async with db.session() as session:
        written = await insert_rows(
            session,
            table,  # type: ignore[arg-type]
            again,
            key=["person_id", "code"],
            returning=table.c.code,
        )
        await session.commit()
        assert written == ["new"]
        assert await insert_rows(session, table, []) == []  # type: ignore[arg-type]
        # What is returned comes back through its column's type, as a query reads it.
        returned = await insert_rows(
            session,
            table,  # type: ignore[arg-type]
            [{**first[0], "code": "newer"}],
            key=["person_id", "code"],
            returning=table.c.person_id,
        )
        assert returned == [person] and isinstance(returned[0], uuid.UUID)
        await session.commit()
    async with db.session() as session:
        stored = {v.code: v for v in await session.scalars(select(Visit))}
    assert len(stored) == 252
    assert stored["c1"].on == date(2024, 9, 3) and stored["c2"].on is None
    assert stored["c7"].at == datetime(2024, 9, 3, 1, 7, tzinfo=UTC)  # the same instant, in UTC
    assert stored["new"].person_id == person
    await db.dispose()


async def _terminate(pid: int) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def _backend(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_pooled_connection_the_server_closed_is_replaced_before_it_is_used(
    database_url: str,
) -> None:
    db = Database(database_url, pool_size=1)
    first = await _backend(db)
    await _terminate(first)
    await asyncio.sleep(0.3)  # the driver reads the server's goodbye
    assert await _backend(db) != first  # a new connection, not an error
    await db.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_idle_pooled_connection_is_pinged_and_a_dead_one_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(database_url, pool_size=1)
    first = await _backend(db)
    monkeypatch.setattr(shared_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    # Taken back at once, before the driver could notice the close: only a ping finds it.
    monkeypatch.setattr(shared_db, "_server_closed", lambda _proxy: False)
    await _terminate(first)
    assert await _backend(db) != first
    await db.dispose()
