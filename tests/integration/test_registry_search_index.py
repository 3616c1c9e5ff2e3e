"""The search index of migration 0005 (pg_trgm on PostgreSQL, an FTS5 trigram table on SQLite):
it goes up and down, stays in step with the people, serves a needle of 3 characters or more,
and the search finds what reading every row finds, in the same order and facility scope."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, insert, inspect, select, text

from bekal.registry import domain
from bekal.registry.models import Facility, Inmate
from bekal.registry.services.inmates import (
    few_matches_page,
    list_inmates,
    matches_to_count,
    search_condition,
)
from bekal.shared.auth import Ministry, Principal, Role
from bekal.shared.db import Database, table_of, utcnow
from bekal.shared.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

ADMIN = Principal("admin", Ministry.CORRECTIONS, frozenset({Role.REGISTRY_ADMIN}))
OFFICER_A = Principal(
    "officer", Ministry.CORRECTIONS, frozenset({Role.FACILITY_OFFICER}), frozenset({"LP-A"})
)

PEOPLE = [
    ("TGR.001", "Yosefína Kristanti", "LP-A"),
    ("TGR.002", "Ṣiti Ámínah", "LP-A"),
    ("TGR.003", "SITI NURHALIZA", "LP-B"),
    ("PTK.001", "Budi 100% Santoso", "LP-B"),
    ("PTK.002", 'Ani "Q" Rahma', "LP-A"),
    ("AB_9", "Siti Aminah", "LP-B"),
    ("ÅK.7", "Eko Prasetyo", "LP-A"),
]
NEEDLES = [
    "siti",
    "SÍTI",
    "ámín",
    "aminah",
    "Siti Ámínah",
    "kristan",
    "tgr.0",
    "TGR.001",
    "00",
    "i",
    '"q"',
    '"',
    "100%",
    "0% s",
    "b_9",
    "åk.",
    "filler 12",
    "zzz",
]
FILLERS = 1500


def _ascii_lower(value: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in value)


def _expected(
    rows: list[tuple[str, str, str]],
    needle: str,
    facilities: set[str] | None,
    *,
    sqlite: bool = False,
) -> list[str]:
    """What reading every row finds; SQLite's ``lower()`` folds ASCII letters only."""
    lower = _ascii_lower if sqlite else str.lower
    key, number = domain.search_key(needle), needle.lower()
    return sorted(
        reg
        for reg, name, facility in rows
        if (facilities is None or facility in facilities)
        and (key in domain.search_key(name) or number in lower(reg))
    )


async def _load(db: Database) -> list[tuple[str, str, str]]:
    now = utcnow()
    facilities = {}
    rows = [*PEOPLE, *((f"F.{n:05d}", f"Filler {n}", "LP-B") for n in range(FILLERS))]
    async with db.session() as s:
        for code in ("LP-A", "LP-B"):
            facility = Facility(
                id=uuid.uuid4(),
                code=code,
                name=f"Lapas {code}",
                kind="lapas",
                facility_class="IIA",
                province="Banten",
                regional_office="Kanwil Banten",
                capacity=100,
            )
            s.add(facility)
            facilities[code] = facility.id
        await s.flush()
        await s.execute(
            insert(table_of(Inmate)),
            [
                {
                    "id": uuid.uuid4(),
                    "registration_number": reg,
                    "full_name": name,
                    "search_name": domain.search_key(name),
                    "nik_hash": f"h{n}",
                    "sex": "F",
                    "date_of_birth": date(1990, 1, 1),
                    "facility_id": facilities[facility],
                    "admission_date": date(2023, 1, 1),
                    "status": "in_custody",
                    "consent_training": False,
                    "consent_data_sharing": False,
                    "shared": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, (reg, name, facility) in enumerate(rows)
            ],
        )
        await s.commit()
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return rows


async def _found(db: Database, principal: Principal, needle: str) -> list[str]:
    """Every page of the search, followed by its cursor."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        async with db.session() as s:
            page = await list_inmates(
                session=s,
                principal=principal,
                facility_id=None,
                status=None,
                q=needle,
                limit=100,
                cursor=cursor,
            )
        found += [i.registration_number for i in page.rows]
        if page.next_cursor is None:
            assert page.count == len(found)
            return found
        cursor = page.next_cursor


async def _indexes(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            rows = await conn.execute(
                text("SELECT name FROM sqlite_master WHERE name LIKE 'inmates_search%'")
            )
        else:
            rows = await conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%trgm'")
            )
        return set(rows.scalars())


SQLITE_OBJECTS = {
    "inmates_search",
    "inmates_search_insert",
    "inmates_search_delete",
    "inmates_search_update",
}
PG_INDEXES = {"ix_inmates_search_name_trgm", "ix_inmates_registration_number_trgm"}


async def test_0005_goes_up_and_down_and_fills_the_index_with_people_already_there(database_url):
    await asyncio.to_thread(upgrade, "bekal.registry", database_url, "0004")
    db = Database(database_url)
    try:
        rows = await _load(db)
        await asyncio.to_thread(upgrade, "bekal.registry", database_url)
        names = await _indexes(db)
        expected = SQLITE_OBJECTS if database_url.startswith("sqlite") else PG_INDEXES
        assert expected <= names
        assert (
            await _found(db, ADMIN, "ámín")
            == _expected(rows, "ámín", None)
            == [
                "AB_9",
                "TGR.002",
            ]
        )

        def downgrade(revision: str) -> None:
            command.downgrade(alembic_config("bekal.registry", database_url), revision)

        await asyncio.to_thread(downgrade, "0004")
        assert not expected & await _indexes(db)
        async with db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert "inmates_search" not in tables
        await asyncio.to_thread(upgrade, "bekal.registry", database_url)
        assert expected <= await _indexes(db)
    finally:
        await db.dispose()


async def test_search_with_the_index_finds_what_a_full_read_finds(database_url):
    await asyncio.to_thread(upgrade, "bekal.registry", database_url)
    db = Database(database_url)
    try:
        rows = await _load(db)
        sqlite = database_url.startswith("sqlite")
        for needle in NEEDLES:
            everyone = _expected(rows, needle, None, sqlite=sqlite)
            assert await _found(db, ADMIN, needle) == everyone, needle
            in_a = _expected(rows, needle, {"LP-A"}, sqlite=sqlite)
            assert await _found(db, OFFICER_A, needle) == in_a, needle
        # Accent and case variants meet the same people.
        assert (
            await _found(db, ADMIN, "SÍTI ÁMÍNAH")
            == await _found(db, ADMIN, "siti aminah")
            == ["AB_9", "TGR.002"]
        )

        # The index follows changes: a renamed person, a new number, a deleted row.
        async with db.session() as s:
            renamed = await s.scalar(select(Inmate).where(Inmate.registration_number == "TGR.002"))
            assert renamed is not None
            renamed.full_name = "Ratna Dewi"
            renamed.search_name = domain.search_key("Ratna Dewi")
            renamed.registration_number = "TGR.902"
            gone = await s.scalar(select(Inmate).where(Inmate.registration_number == "AB_9"))
            await s.delete(gone)
            await s.commit()
        assert await _found(db, ADMIN, "aminah") == []
        assert await _found(db, ADMIN, "ratna") == ["TGR.902"]
        assert await _found(db, ADMIN, "tgr.9") == ["TGR.902"]
        assert await _found(db, ADMIN, "tgr.00") == ["TGR.001", "TGR.003"]
    finally:
        await db.dispose()


async def test_a_needle_of_three_characters_uses_the_index(database_url):
    await asyncio.to_thread(upgrade, "bekal.registry", database_url)
    db = Database(database_url)
    try:
        await _load(db)
        async with db.session() as s:
            query = select(func.count()).select_from(Inmate).where(search_condition(s, "ámín"))
            sql = query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
            if database_url.startswith("sqlite"):
                rows = await s.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
                plan = " | ".join(str(row[-1]) for row in rows)
                assert "SCAN inmates_search VIRTUAL TABLE INDEX" in plan, plan
                # Each match looked up by the rowid the index's triggers keep.
                assert "SEARCH inmates USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
                assert "SCAN inmates " not in f"{plan} ", plan
                # Within some facilities, their people are read instead.
                within = select(func.count()).where(search_condition(s, "ámín", in_facilities=True))
                assert "inmates_search" not in str(within)
            else:
                # At this size reading the table is cheaper; forbidding it shows the indexes
                # match the query's expressions (the benchmark shows the plan at 300,000).
                await s.execute(text("SET LOCAL enable_seqscan = off"))
                plan = "\n".join((await s.execute(text(f"EXPLAIN {sql}"))).scalars())
                assert "ix_inmates_search_name_trgm" in plan, plan
                assert "ix_inmates_registration_number_trgm" in plan, plan
                assert "Seq Scan" not in plan, plan
    finally:
        await db.dispose()


async def test_a_common_needle_is_counted_up_to_the_cap_through_the_index(database_url):
    await asyncio.to_thread(upgrade, "bekal.registry", database_url)
    db = Database(database_url)
    try:
        rows = await _load(db)
        sqlite = database_url.startswith("sqlite")

        async def pages(needle: str, principal: Principal = ADMIN) -> tuple[int, bool, list[str]]:
            """The first page's count and every page's people, 100 a page, capped at 1,000."""
            found: list[str] = []
            cursor: str | None = None
            counts = set()
            while True:
                async with db.session() as s:
                    page = await list_inmates(
                        session=s,
                        principal=principal,
                        facility_id=None,
                        status=None,
                        q=needle,
                        limit=100,
                        cursor=cursor,
                        count_limit=1000,
                    )
                counts.add((page.count, page.count_capped))
                found += [i.registration_number for i in page.rows]
                if page.next_cursor is None:
                    (count,) = counts  # every page says the same
                    return *count, found
                cursor = page.next_cursor

        # "filler" matches 1,500 people: the count stops at 1,000, and the pages (read in
        # registration-number order on SQLite, the index's matches a filter) hold every one.
        for needle in ("filler", "FÍLLER", "i"):  # "i": no index, every row read
            everyone = _expected(rows, needle, None, sqlite=sqlite)
            assert len(everyone) > 1000
            assert await pages(needle) == (1000, True, everyone), needle
        # Fewer matches than the cap, or none: the exact count.
        for needle in ("filler 12", "siti", "zzz"):
            everyone = _expected(rows, needle, None, sqlite=sqlite)
            assert await pages(needle) == (len(everyone), False, everyone), needle
        # Within one facility: LP-A holds 5 of the 1,507.
        in_a = _expected(rows, "i", {"LP-A"}, sqlite=sqlite)
        assert await pages("i", OFFICER_A) == (len(in_a), False, in_a)
    finally:
        await db.dispose()


async def _plan(s: Any, query: Any, dialect: Any, *, sqlite: bool) -> str:
    sql = query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    if sqlite:
        rows = await s.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
        return " | ".join(str(row[-1]) for row in rows)
    return "\n".join((await s.execute(text(f"EXPLAIN {sql}"))).scalars())


async def test_each_kind_of_search_keeps_one_plan_whatever_the_needle(database_url):
    """The count goes through the index and stops at the cap; a page of few matches is sorted
    from them, a page of many read in registration-number order; on PostgreSQL the planner
    does not see the needle, so a common and a rare one get the same plan."""
    await asyncio.to_thread(upgrade, "bekal.registry", database_url)
    db = Database(database_url)
    try:
        await _load(db)
        sqlite = database_url.startswith("sqlite")
        dialect = db.engine.dialect
        async with db.session() as s:
            if sqlite:
                # The FTS5 table drives the count, one match at a time (no list of them all).
                plan = await _plan(
                    s, matches_to_count(s, "filler", [], in_facilities=False), dialect, sqlite=True
                )
                assert plan.startswith("SCAN inmates_search VIRTUAL TABLE INDEX"), plan
                assert "SEARCH inmates USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
                assert "LIST SUBQUERY" not in plan, plan
                # Many matches: read in order, each tested, without the index's set.
                common = search_condition(s, "filler", common=True)
                assert "inmates_search" not in str(common)
            else:
                plans = {}
                for needle in ("filler", "zzz"):  # 1,500 matches and none
                    count = await _plan(
                        s,
                        matches_to_count(s, needle, [], in_facilities=False),
                        dialect,
                        sqlite=False,
                    )
                    page, _ = few_matches_page(s, needle, [], in_facilities=False)
                    sorted_page = await _plan(s, page.limit(21), dialect, sqlite=False)
                    plans[needle] = (count, sorted_page)
                    assert "CTE Scan on matches" in sorted_page, sorted_page
                    assert "uq_inmates_registration_number" not in sorted_page, sorted_page
                assert plans["filler"] == plans["zzz"]
    finally:
        await db.dispose()
