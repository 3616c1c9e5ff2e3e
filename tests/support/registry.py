"""The registry in process for a test: its app on a database of its own, a client, tokens by role.

The ``registry`` fixture (tests/conftest.py) gives one on each database and broker, keyed with
``SECRET``; a test that sets the registry up itself (its own settings, a restart, beside
training) uses ``running_registry``. What it publishes is read from the broker's topics.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from bekal.registry.app import create_app
from bekal.registry.models import Inmate
from bekal.shared.settings import Settings
from tests.support.apps import Harness, published, running
from tests.support.kafka import Published
from tests.support.waiting import wait_until

SECRET = "registry-test-pseudonym-secret"
"""The pseudonym secret the ``registry`` fixture's NIK digests are keyed with."""


@dataclass
class Registry(Harness):
    ministry = "corrections"
    admin_subject: str = "admin"
    """Whom ``admin`` signs as: audit entries and recorded consent name this actor."""
    facilities: dict[str, str] = field(default_factory=dict)
    """The ids of the facilities registered through ``facility``, by code."""

    @property
    def admin(self) -> dict[str, str]:
        """A national registry administrator: facilities, every inmate, imports, the audit."""
        return self.token("registry_admin", subject=self.admin_subject)

    def officer(self, *facility_codes: str) -> dict[str, str]:
        """A facility officer, who sees only the inmates of ``facility_codes``."""
        return self.token("facility_officer", facilities=facility_codes, subject="officer")

    @property
    def industry(self) -> dict[str, str]:
        """Industry staff (a training administrator): facilities only, never an inmate."""
        return self.token("training_admin", ministry="industry", subject="industry")

    async def rows(self, model: type, *where: Any) -> list[Any]:
        async with self.app.state.db.session() as s:
            return list((await s.scalars(select(model).where(*where))).all())

    async def people(self) -> dict[str, Inmate]:
        """Every inmate row, by registration number."""
        return {i.registration_number: i for i in await self.rows(Inmate)}

    async def published(
        self, topic: str = "registry.inmates", *, at_least: int = 0
    ) -> list[Published]:
        """Every record on ``topic`` once the outbox has nothing left to send (and ``at_least``
        records are there)."""
        return await published(self.app, topic, at_least=at_least)

    async def get(self, path: str, headers: Any = None, **params: Any) -> httpx.Response:
        """``GET path?params`` as the admin unless ``headers`` say otherwise; the response,
        whatever its status, for the test to judge."""
        return await self.client.get(path, params=params, headers=headers or self.admin)

    async def post(self, path: str, body: Any = None, headers: Any = None) -> httpx.Response:
        """``POST path`` with the JSON ``body``, as the admin unless ``headers`` say otherwise;
        the response, whatever its status, for the test to judge."""
        return await self.client.post(path, json=body, headers=headers or self.admin)

    async def created(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """What ``POST path`` created: it must answer 201."""
        r = await self.post(path, body, headers)
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    async def facility(self, body: dict[str, Any]) -> dict[str, Any]:
        """A facility registered by the admin; its id is kept in ``facilities``."""
        created = await self.created("/api/v1/facilities", body)
        self.facilities[created["code"]] = created["id"]
        return created

    async def upload(
        self, csv_text: str, *, dry_run: bool = False, filename: str = "export.csv"
    ) -> dict[str, Any]:
        """An import job of ``csv_text`` started by the admin, polled until it is done or failed."""
        r = await self.client.post(
            "/api/v1/imports",
            params={"dry_run": str(dry_run).lower(), "filename": filename},
            content=csv_text.encode(),
            headers={**self.admin, "Content-Type": "text/csv"},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]

        async def job() -> dict[str, Any]:
            got = await self.client.get(f"/api/v1/imports/{job_id}", headers=self.admin)
            assert got.status_code == 200, got.text
            return dict(got.json())

        async def finished() -> bool:
            return (await job())["status"] in ("done", "failed")

        await wait_until(finished, within=60, what="import job finished")
        return await job()

    async def trail(self, inmate_id: uuid.UUID) -> list[dict[str, Any]]:
        """The audit trail of one inmate, newest first."""
        r = await self.get("/api/v1/audit", inmate_id=str(inmate_id))
        assert r.status_code == 200, r.text
        return list(r.json()["data"])


@asynccontextmanager
async def running_registry(
    settings: Settings, *, admin_subject: str = "admin"
) -> AsyncIterator[Registry]:
    """The registry started with ``settings`` (migrated, consuming) and a harness around it."""
    app = create_app(settings)
    async with running(app) as client:
        yield Registry(app, client, settings, admin_subject)
