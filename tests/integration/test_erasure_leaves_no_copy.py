"""After an erasure no file of a SQLite database keeps the name: neither a page of the database
(``secure_delete`` zeroes freed space) nor its write-ahead log (checkpointed and emptied once the
erasure commits). Read as raw bytes, as someone holding a copy of the files would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, update

from bekal.shared.db import Database, checkpoint_after_commit
from tests.support.registry import SECRET, running_registry

pytestmark = pytest.mark.integration

NAME = "Ayu Kartika Wulandari"


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
