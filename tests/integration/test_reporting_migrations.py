"""The reporting migrations run forward and back on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bekal.reporting.generations import Projections
from bekal.reporting.services.people import erasure_key
from bekal.shared.db import Database
from bekal.shared.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

PROJECTIONS = {
    "facilities",
    "programs",
    "sessions",
    "enrollments",
    "certificates",
    "projection_state",
    "participants",
    "certificate_revocations",
    "erased_participants",
    "merged_participants",
    "targets",
}
PLATFORM = {"outbox", "inbox", "dead_letters", "idempotency_keys"}
# The namespace the anonymous ids were derived in before they were keyed.
UNKEYED_NAMESPACE = uuid.UUID("6f1f3c2e-2b1a-4b8e-9a57-2f0f6f1c0b7d")


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migrations_create_the_projections_with_one_state_row_and_drop_them(database_url):
    await asyncio.to_thread(upgrade, "bekal.reporting", database_url)
    db = Database(database_url)
    try:
        assert PROJECTIONS | PLATFORM <= await _tables(db)
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, data_as_of FROM projection_state"))).all()
        assert [tuple(r) for r in rows] == [(1, None)]
        async with db.engine.connect() as conn:
            targets = (
                await conn.execute(
                    text("SELECT year, annual, cumulative FROM targets ORDER BY year")
                )
            ).all()
        # The announced targets are there from the start.
        assert [tuple(r) for r in targets] == [(2017, 5000, None), (2019, None, 20000)]

        await asyncio.to_thread(upgrade, "bekal.reporting", database_url)  # idempotent

        def downgrade() -> None:
            command.downgrade(alembic_config("bekal.reporting", database_url), "base")

        await asyncio.to_thread(downgrade)
        assert not (PROJECTIONS | PLATFORM) & await _tables(db)
    finally:
        await db.dispose()


async def test_tombstones_from_before_0007_are_rekeyed_when_the_service_opens_its_projections(
    database_url, make_settings
):
    """0007 cannot read the secret: it leaves the old tombstones (the raw participant id) with
    no anonymous id, and the service re-keys them before it applies any event."""
    await asyncio.to_thread(upgrade, "bekal.reporting", database_url, "0006")
    person, enrolment = uuid.uuid4(), uuid.uuid4()
    unkeyed = uuid.uuid5(UNKEYED_NAMESPACE, f"erased-person:{person}")
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO erased_participants (id) VALUES (:id)"), {"id": str(person)}
            )
            await conn.execute(
                text("INSERT INTO participants (id, sex, released) VALUES (:id, 'F', true)"),
                {"id": str(unkeyed)},
            )
            await conn.execute(
                text(
                    "INSERT INTO enrollments (id, session_id, participant_id, status) "
                    "VALUES (:id, :s, :p, 'completed')"
                ),
                {"id": str(enrolment), "s": str(uuid.uuid4()), "p": str(unkeyed)},
            )
        await asyncio.to_thread(upgrade, "bekal.reporting", database_url)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT id, anonymous_id FROM erased_participants"))
            ).all()
        assert [tuple(r) for r in rows] == [(str(person), None)]

        settings = make_settings("reporting", database_url)
        app = SimpleNamespace(state=SimpleNamespace(db=db, messaging=None))
        projections = Projections(app, settings)  # type: ignore[arg-type]
        assert await projections.key_old_tombstones(db) == 1
        key = erasure_key(settings)
        async with db.engine.connect() as conn:
            tombstones = (
                await conn.execute(text("SELECT id, anonymous_id FROM erased_participants"))
            ).all()
            filed = (await conn.execute(text("SELECT participant_id FROM enrollments"))).scalar()
            people = (await conn.execute(text("SELECT id, sex FROM participants"))).all()
        anonymous = str(key.anonymous(person))
        assert [tuple(r) for r in tombstones] == [(str(key.tombstone(person)), anonymous)]
        assert filed == anonymous
        assert [tuple(r) for r in people] == [(anonymous, "F")]
    finally:
        await db.dispose()
