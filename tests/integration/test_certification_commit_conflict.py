"""A unique key taken by another transaction after a route's own check is a 409, not a 500.

The race is made real on PostgreSQL: a second connection erases the same person, and commits,
while the request's transaction is still open, between the service's check ("not erased yet")
and the route's commit. The unique violation then comes from the database at commit time.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from bekal.certification.app import create_app
from bekal.certification.models import ErasedParticipant
from bekal.certification.services import erasure
from bekal.shared.db import Database
from bekal.shared.problems import PROBLEM_JSON, TYPE_BASE
from tests.support.apps import bearer, running
from tests.support.certification import certification_settings

pytestmark = pytest.mark.integration


# SQLite lets one writer in at a time: the second connection would wait for the request's
# transaction, which waits for it. The race exists where writers run side by side.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_erasure_racing_another_erasure_of_the_same_person_is_a_409_problem(
    database_url, broker, make_settings, tmp_path, monkeypatch
):
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    admin = bearer(settings, ministry="industry", roles=["certification_admin"])
    # No certificate yet (the completion has not arrived): nothing is locked, both proceed.
    participant_id = uuid.uuid4()
    erase_now = erasure.erase_participant
    elsewhere = Database(database_url)

    async def erased_elsewhere_meanwhile(**kwargs: Any) -> list[str]:
        numbers = await erase_now(**kwargs)  # checked and staged; the commit is still to come
        async with elsewhere.session() as other:
            await erase_now(session=other, participant_id=participant_id)
            await other.commit()
        return numbers

    app = create_app(settings)
    try:
        async with running(app) as client:
            monkeypatch.setattr(erasure, "erase_participant", erased_elsewhere_meanwhile)
            r = await client.post(f"/api/v1/participants/{participant_id}/erasure", headers=admin)
            assert r.status_code == 409
            assert r.headers["content-type"].startswith(PROBLEM_JSON)
            problem = r.json()
            assert problem["status"] == 409 and problem["type"] == TYPE_BASE + "duplicate"

            # The other erasure is the one that counts, once; asking again is a plain answer.
            monkeypatch.setattr(erasure, "erase_participant", erase_now)
            async with app.state.db.session() as s:
                rows = (
                    await s.scalars(
                        select(ErasedParticipant).where(
                            ErasedParticipant.participant_id == participant_id
                        )
                    )
                ).all()
            assert len(rows) == 1
            r = await client.post(f"/api/v1/participants/{participant_id}/erasure", headers=admin)
            assert r.status_code == 200 and r.json()["count"] == 0
    finally:
        await elsewhere.dispose()
