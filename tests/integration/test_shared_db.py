"""The database helpers every service uses, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bekal.shared.db import GUID, Database, among, new_metadata

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    metadata = new_metadata()


class Person(Base):
    __tablename__ = "people"
    id: Mapped[uuid.UUID] = mapped_column(GUID(), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


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
async def test_postgresql_plans_every_statement_for_its_values(database_url: str) -> None:
    """A cached generic plan cannot hash a batch's ids: it scans and compares each with each."""
    db = Database(database_url)
    async with db.session() as session:
        assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    await db.dispose()
