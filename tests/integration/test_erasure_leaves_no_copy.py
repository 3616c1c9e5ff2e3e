"""After an erasure no file of a SQLite database keeps the name: neither a page of the database
(``secure_delete`` zeroes freed space) nor its write-ahead log (checkpointed and emptied once the
erasure commits). Read as raw bytes, as someone holding a copy of the files would.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update

from bekal.certification.app import create_app as create_certification
from bekal.certification.models import Certificate
from bekal.shared.db import Database, checkpoint_after_commit
from bekal.shared.messaging.models import OutboxMessage
from bekal.training.models import AttendanceRecord, Enrollment, MergedParticipant, Participant
from bekal.training.services.erasure import ERASED
from tests.support.apps import running
from tests.support.certification import certification_settings
from tests.support.db import count
from tests.support.factories import (
    facility_registered,
    inmate_erased,
    inmate_returned,
    inmate_shared,
    inmate_temporarily_absent,
    participant_completed,
    program_body,
    session_body,
)
from tests.support.kafka import publish
from tests.support.registry import SECRET, running_registry
from tests.support.training import running_training
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

NAME = "Ayu Kartika Wulandari"
# Trigrams of the folded name that nothing else in the registry test's data contains.
PIECES = ("kar", "wul", "ula", "nda")


def _bytes(database: Path) -> bytes:
    """The database file and its write-ahead log, as they are on disk."""
    wal = database.with_name(database.name + "-wal")
    return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _holds(database: Path, *values: str) -> list[str]:
    raw = _bytes(database)
    return [v for v in values if v.encode() in raw]


async def test_an_erasure_commit_leaves_the_value_in_no_page_of_the_database_or_its_log(
    tmp_path: Path,
):
    path = tmp_path / "people.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    people = Table(
        "people",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(200)),
    )
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(people.metadata.create_all)
        async with db.session() as s:
            await s.execute(insert(people).values(id=1, name=NAME))
            await s.commit()
        async with db.session() as s:
            await s.execute(update(people).values(name=""))
            await s.commit()
        # Without a checkpoint the log still holds the page as it was: what this guards against.
        assert _holds(path, NAME) == [NAME]

        async with db.session() as s:
            await s.execute(insert(people).values(id=2, name=NAME))
            await s.commit()
        async with db.session() as s:
            await s.execute(update(people).values(name=""))
            checkpoint_after_commit(s)
            await s.commit()
        await db.checkpoints_done()
        assert _holds(path, NAME) == []
        assert not path.with_name(path.name + "-wal").stat().st_size
    finally:
        await db.dispose()


async def test_registry_erasure_leaves_the_name_in_no_file(tmp_path: Path, broker, make_settings):
    path = tmp_path / "registry.db"
    settings = make_settings(
        "registry", f"sqlite+aiosqlite:///{path}", broker, pseudonym_secret=SECRET
    )
    async with running_registry(settings) as reg:
        here = await reg.facility(
            {
                "code": "LP-HPS",
                "name": "Lapas LP-HPS",
                "kind": "lapas",
                "facility_class": "IIA",
                "province": "Jawa Barat",
                "regional_office": "Kanwil Jawa Barat",
                "capacity": 500,
            }
        )
        person = await reg.created(
            "/api/v1/inmates",
            {
                "registration_number": "H.1",
                "full_name": NAME,
                "nik": "6171014505900001",
                "sex": "F",
                "date_of_birth": "1991-04-12",
                "education_level": "SMP",
                "facility_id": here["id"],
                "admission_date": "2023-01-10",
                "expected_release_date": "2026-06-30",
                "consent": {"training": True, "data_sharing": True},
            },
        )
        assert _holds(path, NAME) == [NAME]
        response = await reg.post(f"/api/v1/inmates/{person['id']}/erasure")
        assert response.status_code == 200, response.text
        await reg.app.state.db.checkpoints_done()
        assert _holds(path, NAME, NAME.lower()) == []
        # Nor the pieces the SQLite search index (FTS5 trigrams) kept of the name.
        assert _holds(path, *PIECES) == []


async def _rows_of_every_table(db: Database) -> dict[str, str]:
    async with db.session() as s:
        tables = (
            await s.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        ).scalars()
        return {
            table: repr((await s.execute(text(f'SELECT * FROM "{table}"'))).all())
            for table in list(tables)
        }


async def test_training_erasure_refiles_the_person_and_leaves_the_name_in_no_file(
    tmp_path: Path, broker, make_settings
):
    """The enrolment, its attendance and its follow-up stay (counts do), under a fresh id: no
    row but the erasure's tombstone holds the participant id, none the name, and neither the
    database file nor its log holds the name."""
    path = tmp_path / "training.db"
    settings = make_settings("training", f"sqlite+aiosqlite:///{path}", broker)
    async with running_training(settings) as t:
        facility, person = uuid.uuid4(), uuid.uuid4()
        await t.handled(
            *await t.publish(
                facility_registered(facility_id=facility, code="CIPINANG"),
                inmate_shared(participant_id=person, facility_id=facility, full_name=NAME),
            )
        )
        # The name as the replica holds it once opened (however the share carried it).
        async with t.app.state.db.session() as s:
            await s.execute(update(Participant).values(full_name=NAME))
            await s.commit()
        program = await t.post(
            "/api/v1/programs", program_body(code="WUB-HPS", title="Batik"), expect=201
        )
        planned = await t.post(
            "/api/v1/sessions", session_body(program["id"], facility), expect=201
        )
        sid = planned["id"]
        await t.post(f"/api/v1/sessions/{sid}/open", headers=t.officer)
        await t.post(
            f"/api/v1/sessions/{sid}/enrollments",
            {"participant_ids": [str(person)]},
            headers={**t.officer, "Idempotency-Key": "hps-1"},
            expect=201,
        )
        await t.post(f"/api/v1/sessions/{sid}/start", headers=t.officer)
        await t.put(
            f"/api/v1/sessions/{sid}/attendance",
            {
                "date": planned["start_date"],
                "records": [{"participant_id": str(person), "status": "present"}],
            },
            headers=t.officer,
        )
        # A court absence the replica keeps as a period: a replica fact, gone with the row.
        await t.handled(
            *await t.publish(
                inmate_temporarily_absent(participant_id=person, facility_id=facility),
                inmate_returned(participant_id=person, facility_id=facility),
            )
        )
        before = await _rows_of_every_table(t.app.state.db)
        assert str(person) in before["participant_absences"]
        assert str(person) in before["participant_returns"]

        await t.handled(*await t.publish(inmate_erased(person)))
        await t.app.state.db.checkpoints_done()

        after = await _rows_of_every_table(t.app.state.db)
        holding = {table for table, rows in after.items() if str(person) in rows}
        assert holding == {"merged_participants"}, holding  # the tombstone: the id alone
        async with t.app.state.db.session() as s:
            (tomb,) = (await s.execute(select(MergedParticipant))).scalars().all()
            assert (tomb.id, tomb.surviving_id) == (person, ERASED)
            (enrolment,) = (await s.execute(select(Enrollment))).scalars().all()
            assert enrolment.participant_id not in (person, ERASED)
            assert enrolment.status == "withdrawn"  # ended, as when consent is withdrawn
            assert await s.get(Participant, person) is None
            assert (await s.execute(select(AttendanceRecord))).scalars().all()
        assert not [table for table, rows in after.items() if NAME in rows]
        assert _holds(path, NAME) == []


async def test_certification_erasure_leaves_no_row_with_the_id_and_the_name_in_no_file(
    tmp_path: Path, broker, make_settings
):
    path = tmp_path / "certification.db"
    settings = certification_settings(
        make_settings, f"sqlite+aiosqlite:///{path}", broker, tmp_path
    )
    done = participant_completed(participant_name=NAME)
    person = done.participant_id
    app = create_certification(settings)
    async with running(app):
        db: Database = app.state.db

        async def issued() -> bool:
            return await count(db, Certificate) == 1

        await publish(settings, [done])
        await wait_until(issued, what="the certificate issued")
        # The name as certification holds it once opened (however the completion carried it).
        async with db.session() as s:
            certificate = (await s.execute(select(Certificate))).scalars().one()
            certificate.recipient_name = NAME
            await s.commit()
        before = await _rows_of_every_table(db)
        assert any(str(person) in rows for rows in before.values())
        assert any(NAME in rows for rows in before.values())

        async def relayed() -> bool:
            return not await count(db, OutboxMessage, OutboxMessage.sent_at.is_(None))

        await wait_until(relayed, what="the certificate's event sent")
        await publish(settings, [inmate_erased(person)])

        async def erased() -> bool:
            return await count(db, Certificate) == 0

        await wait_until(erased, what="the erasure applied")
        await db.checkpoints_done()
        after = await _rows_of_every_table(db)
        holding = {table for table, rows in after.items() if str(person) in rows}
        assert holding == {"erased_participants"}, holding  # the tombstone: the id alone
        assert not [table for table, rows in after.items() if NAME in rows]
        assert _holds(path, NAME) == []
