"""A target year set by another transaction after the route's own check is a 409, not a 500.

The race is made real on PostgreSQL: a second connection sets the target of the same year, and
commits, while the request's transaction is still open, between the service's check ("no target
for this year yet") and the route's commit. The duplicate year then comes from the database at
commit time.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bekal.reporting.app import create_app
from bekal.reporting.models import Target, TargetChange
from bekal.reporting.services import targets
from bekal.shared.db import Database
from bekal.shared.problems import PROBLEM_JSON, TYPE_BASE
from tests.support.apps import bearer, running

pytestmark = pytest.mark.integration

YEAR = 2031  # no target announced for it


# SQLite lets one writer in at a time: the second connection would wait for the request's
# transaction, which waits for it. The race exists where writers run side by side.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_target_set_by_another_request_meanwhile_is_a_409_problem_and_keeps_theirs(
    database_url, broker, make_settings, monkeypatch
):
    settings = make_settings("reporting", database_url, broker)
    admin = bearer(settings, ministry="industry", roles=["training_admin"])
    set_now = targets.set_target
    elsewhere = Database(database_url)

    async def set_elsewhere_meanwhile(**kwargs: Any) -> Target:
        row = await set_now(**kwargs)  # checked and staged; the commit is still to come
        async with elsewhere.session() as other:
            await set_now(
                session=other, year=YEAR, annual=7, cumulative=None, note="Lain", by="other-admin"
            )
            await other.commit()
        return row

    app = create_app(settings)
    try:
        async with running(app) as client:
            monkeypatch.setattr(targets, "set_target", set_elsewhere_meanwhile)
            r = await client.put(f"/api/v1/targets/{YEAR}", headers=admin, json={"annual": 10})
            assert r.status_code == 409, r.text
            assert r.headers["content-type"].startswith(PROBLEM_JSON)
            problem = r.json()
            assert problem["status"] == 409 and problem["type"] == TYPE_BASE + "duplicate"

            # The other request's target stands, and nothing of the refused one is kept: not
            # its value, not its line in the audit trail.
            monkeypatch.setattr(targets, "set_target", set_now)
            async with app.state.db.session() as s:
                kept = await s.get(Target, YEAR)
                changes = (
                    await s.scalars(select(TargetChange).where(TargetChange.year == YEAR))
                ).all()
            assert kept is not None and (kept.annual, kept.updated_by) == (7, "other-admin")
            assert [(c.changed_by, c.old_annual, c.new_annual) for c in changes] == [
                ("other-admin", None, 7)
            ]

            # Asking again, now that the year has a target, replaces it as any edit does.
            r = await client.put(f"/api/v1/targets/{YEAR}", headers=admin, json={"annual": 10})
            assert r.status_code == 200, r.text
            assert r.json()["annual"] == 10
            body = (
                await client.get("/api/v1/targets/changes", headers=admin, params={"year": YEAR})
            ).json()
            assert [(c["old_annual"], c["new_annual"]) for c in body["data"]] == [
                (None, 7),
                (7, 10),
            ]
    finally:
        await elsewhere.dispose()
