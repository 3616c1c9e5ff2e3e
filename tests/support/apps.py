"""A service app under test: started with its lifespan, called over HTTP, its events read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bekal.shared.auth import mint_token
from bekal.shared.settings import Settings
from tests.support.db import count, outbox_drained
from tests.support.kafka import Published, person_keys_on, records_on
from tests.support.waiting import wait_until


def http_client(app: FastAPI, *, peer: str | None = None) -> httpx.AsyncClient:
    """A client calling ``app`` in process; ``peer`` is the client address the app sees."""
    transport = (
        httpx.ASGITransport(app=app, client=(peer, 40000)) if peer else httpx.ASGITransport(app=app)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@asynccontextmanager
async def running(app: FastAPI, *, consuming: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (migrated, connected to the broker, consuming) and a client for it;
    with ``consuming=False`` as soon as it serves HTTP, its consumer joining in the background."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        if consuming:
            await asyncio.wait_for(app.state.messaging.ready.wait(), timeout=60)
        async with http_client(app) as client:
            yield client


def bearer(
    settings: Settings,
    *,
    ministry: str,
    roles: Sequence[str],
    facilities: Sequence[str] = (),
    subject: str | None = None,
) -> dict[str, str]:
    """An Authorization header for the service of ``settings`` (its audience alone); the
    subject defaults to one per ministry and roles."""
    token = mint_token(
        settings,
        subject=subject or f"{ministry}-{'-'.join(roles)}",
        ministry=ministry,
        roles=list(roles),
        facilities=list(facilities),
        audience=settings.auth_audience,
    )
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Harness:
    """A service in process for a test: its app, a client calling it, the settings it runs with.
    Each service's harness (tests/support/<service>.py) adds its roles and what its tests share."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    ministry: ClassVar[str]
    """Whose staff ``token`` signs for unless told."""

    def token(
        self,
        *roles: str,
        ministry: str | None = None,
        facilities: Sequence[str] = (),
        subject: str | None = None,
    ) -> dict[str, str]:
        """An Authorization header for someone holding ``roles`` (of ``self.ministry``
        unless told)."""
        return bearer(
            self.settings,
            ministry=ministry or self.ministry,
            roles=roles,
            facilities=facilities,
            subject=subject,
        )

    async def count(self, model: type, *where: Any) -> int:
        return await count(self.app.state.db, model, *where)


async def published(
    app: FastAPI, topic: str, *, at_least: int = 0, within: float = 30.0
) -> list[Published]:
    """Everything on ``topic`` once the app's outbox is drained and ``at_least`` records are there.

    After ``within`` seconds it returns what there is: the caller's assertions say what is wrong.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        await wait_until(lambda: outbox_drained(app.state.db), within=within, what="outbox drained")
        records = await records_on(app.state.settings, topic)
        if len(records) >= at_least or loop.time() >= deadline:
            keys = await person_keys_on(app.state.settings)
            return [Published.of(r, keys) for r in records]
        await asyncio.sleep(0.2)
