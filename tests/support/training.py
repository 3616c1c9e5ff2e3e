"""Training in process for a test: its app on a database of its own, a client, tokens by role.

The ``training`` fixture (tests/conftest.py) gives one on each database and broker; a test that
sets training up itself (its own settings, beside another service) uses ``running_training``.
Registry facts reach it only as events on the broker, published as the registry's relay would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bekal.shared.events.base import Event
from bekal.shared.messaging.models import InboxMessage
from bekal.shared.settings import Settings
from bekal.training.app import create_app
from tests.support.apps import Harness, published, running
from tests.support.kafka import publish
from tests.support.waiting import wait_until


@dataclass
class Training(Harness):
    ministry = "industry"

    @property
    def admin(self) -> dict[str, str]:
        """A course administrator of Ditjen IKMA: programs and sessions."""
        return self.token("training_admin", subject="admin-ikma")

    @property
    def officer(self) -> dict[str, str]:
        """A training officer: nominations, attendance, assessment."""
        return self.token("training_officer", subject="petugas-pelatihan")

    @property
    def field(self) -> dict[str, str]:
        """A field officer: readiness and follow-ups after release."""
        return self.token("field_officer", subject="petugas-lapangan")

    async def publish(
        self,
        *events: Event,
        event_ids: Sequence[str] | None = None,
        times: Sequence[datetime] | None = None,
    ) -> list[str]:
        """Publish registry events to the broker exactly as the registry's relay would."""
        return await publish(self.settings, events, event_ids=event_ids, times=times)

    async def handled(self, *event_ids: str) -> None:
        """Wait until training has applied every one of ``event_ids``."""

        async def done() -> bool:
            n = await self.count(InboxMessage, InboxMessage.event_id.in_(event_ids))
            return n == len(event_ids)

        await wait_until(done, what=f"events {event_ids} handled")

    async def events(
        self, topic: str = "training.enrollments", *, expect: int = 0, within: float = 30.0
    ) -> list[Event]:
        """Everything on ``topic`` once the outbox is drained and ``expect`` events are there."""
        return [p.event for p in await published(self.app, topic, at_least=expect, within=within)]

    async def get(self, path: str) -> dict[str, Any]:
        r = await self.client.get(path, headers=self.admin)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def post(
        self,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        expect: int = 200,
    ) -> dict[str, Any]:
        r = await self.client.post(path, headers=headers or self.admin, json=body)
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def put(
        self, path: str, body: Any, *, headers: dict[str, str] | None = None, expect: int = 200
    ) -> dict[str, Any]:
        r = await self.client.put(path, headers=headers or self.admin, json=body)
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def meanwhile(self, *rows: Any) -> None:
        """Write and commit ``rows`` through a connection of their own, as another request would."""
        async with self.app.state.db.session() as other:
            other.add_all(rows)
            await other.commit()


@asynccontextmanager
async def running_training(settings: Settings) -> AsyncIterator[Training]:
    """Training started with ``settings`` (migrated, consuming) and a harness around it."""
    app = create_app(settings)
    async with running(app) as client:
        yield Training(app, client, settings)
