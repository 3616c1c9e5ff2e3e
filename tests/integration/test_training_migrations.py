"""Training's migrations run forward and back on SQLite and PostgreSQL: 0005 keeps an absence
open when it runs as a period of its own, 0006 adds the history of corrected results."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bekal.shared.db import Database
from bekal.shared.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

AWAY = "a0000000-0000-0000-0000-000000000001"
HERE = "a0000000-0000-0000-0000-000000000002"


async def test_0005_turns_an_open_absence_into_a_period(database_url):
    await asyncio.to_thread(upgrade, "bekal.training", database_url, "0004")
    db = Database(database_url)
    now = datetime(2024, 9, 1, tzinfo=UTC)
    try:
        async with db.engine.begin() as conn:
            for pid, since in ((AWAY, date(2024, 9, 2)), (HERE, None)):
                await conn.execute(
                    text(
                        "INSERT INTO participants (id, full_name, sex, birth_year, facility_id, "
                        "status, admission_date, absent_from, updated_at) VALUES (:id, 'Sri', "
                        "'F', 1990, 'f0000000-0000-0000-0000-000000000001', 'in_custody', "
                        ":admitted, :since, :now)"
                    ),
                    {"id": pid, "admitted": date(2023, 1, 1), "since": since, "now": now},
                )

        await asyncio.to_thread(upgrade, "bekal.training", database_url)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT participant_id, absent_from, returned_on FROM participant_absences"
                    )
                )
            ).all()
        assert [(r[0], str(r[1]), r[2]) for r in rows] == [(AWAY, "2024-09-02", None)]
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "assessment_changes" in tables  # 0006: corrections of results keep a history

        config = alembic_config("bekal.training", database_url)
        await asyncio.to_thread(command.downgrade, config, "0004")
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "participant_absences" not in tables and "assessment_changes" not in tables
    finally:
        await db.dispose()
