"""An operator handles only the dead letters of the services their own ministry runs.

Training and certification are the industry ministry's, so a corrections operator may neither
read their dead letters (they hold the other side's records) nor retry or purge them; reporting
serves both ministries, so either side's operator may. The rule holds whatever the token claims
beside it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from bekal.shared.messaging.models import DeadLetter
from tests.security.support import (
    OPERATOR_C,
    OPERATOR_I,
    client_for,
    service_app,
    service_settings,
)
from tests.support.apps import running

pytestmark = pytest.mark.integration


async def _dead_letter(app: Any) -> uuid.UUID:
    row = DeadLetter(
        consumer_group="g",
        topic="training.enrollments",
        partition=0,
        offset=7,
        key="k",
        headers=json.dumps({"ce_type": "x"}),
        value="{}",
        event_id="e-1",
        event_type="x",
        reason="handler_failed",
        error="boom",
        attempts=3,
    )
    async with app.state.db.session() as session:
        session.add(row)
        await session.commit()
        return row.id


async def _still_there(app: Any, dead_letter_id: uuid.UUID) -> bool:
    async with app.state.db.session() as session:
        return await session.get(DeadLetter, dead_letter_id) is not None


@pytest.mark.parametrize("service", ["training", "certification"])
async def test_a_corrections_operator_cannot_list_retry_or_purge_industrys_dead_letters(
    service: str, broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    settings = service_settings(
        service, make_settings, f"sqlite+aiosqlite:///{tmp_path / 'op.db'}", broker, tmp_path
    )
    app = service_app(service, settings)
    async with running(app, consuming=False):
        dead = await _dead_letter(app)
        async with client_for(app) as client:
            foreign = OPERATOR_C.headers(settings)
            answers = [
                await client.get("/admin/dead-letters", headers=foreign),
                await client.post(f"/admin/dead-letters/{dead}/retry", headers=foreign),
                await client.delete(f"/admin/dead-letters/{dead}", headers=foreign),
            ]
            for r in answers:
                assert r.status_code == 403, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
                assert "kementerian lain" in r.json()["detail"]
            assert await _still_there(app, dead)

            own = OPERATOR_I.headers(settings)
            r = await client.get("/admin/dead-letters", headers=own)
            assert r.status_code == 200, r.text
            assert [d["id"] for d in r.json()["data"]] == [str(dead)]
            r = await client.delete(f"/admin/dead-letters/{dead}", headers=own)
            assert r.status_code == 204, r.text
            assert not await _still_there(app, dead)


async def test_either_ministrys_operator_handles_reportings_dead_letters(
    broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    settings = service_settings(
        "reporting", make_settings, f"sqlite+aiosqlite:///{tmp_path / 'op.db'}", broker, tmp_path
    )
    app = service_app("reporting", settings)
    async with running(app, consuming=False):
        dead = await _dead_letter(app)
        async with client_for(app) as client:
            for caller in (OPERATOR_C, OPERATOR_I):
                r = await client.get("/admin/dead-letters", headers=caller.headers(settings))
                assert r.status_code == 200, r.text
                assert [d["id"] for d in r.json()["data"]] == [str(dead)]
            r = await client.delete(
                f"/admin/dead-letters/{dead}", headers=OPERATOR_C.headers(settings)
            )
            assert r.status_code == 204, r.text
