"""A unique key taken between a create's own check and its commit answers 409, never a 500.

The race is made real, not waited for: the service function is wrapped so that, after its
check found the code or number free, a second request registers the same one and commits.
The first request's commit then meets the unique constraint of the database itself. That
interleaving exists on PostgreSQL only: on SQLite each transaction takes the single write lock
at its BEGIN IMMEDIATE, before its check, so the rival would wait for the first to finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bekal.registry.app import create_app
from bekal.registry.models import Facility, Inmate
from bekal.registry.services import facilities, inmates
from bekal.shared.events.catalogue import FacilityRegistered, InmateShared
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.settings import Settings
from tests.support.apps import bearer, running
from tests.support.db import count

pytestmark = pytest.mark.integration

SECRET = "registry-test-pseudonym-secret"
PROBLEM = "application/problem+json"


@pytest.fixture
async def registry(
    database_url: str, broker: Any, make_settings: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Settings]]:
    settings = make_settings("registry", database_url, broker, pseudonym_secret=SECRET)
    app = create_app(settings)
    async with running(app) as client:
        yield app, client, settings


@pytest.fixture
def interleaving(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writing transactions from their start: no interleaving")


def _admin(settings: Settings) -> dict[str, str]:
    return bearer(settings, ministry="corrections", roles=["registry_admin"], subject="admin")


def _facility(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Lapas {code}",
        "kind": "lapas",
        "facility_class": "IIA",
        "province": "Kalimantan Barat",
        "regional_office": "Kanwil Kalimantan Barat",
        "capacity": 600,
    }


def _inmate(facility_id: str, *, nik: str) -> dict[str, Any]:
    return {
        "registration_number": "BI-2026-0001",
        "nik": nik,
        "full_name": "Siti Aminah",
        "sex": "F",
        "date_of_birth": "1990-05-05",
        "facility_id": facility_id,
        "admission_date": "2025-01-10",
        "expected_release_date": "2027-01-10",
        "consent": {"training": True, "data_sharing": True},
    }


def _overtaken(
    use_case: Callable[..., Awaitable[Any]], rival: Callable[[], Awaitable[httpx.Response]]
) -> tuple[Callable[..., Awaitable[Any]], list[httpx.Response]]:
    """``use_case``, with ``rival`` run to its end once, after the checks and before the commit."""
    answers: list[httpx.Response] = []
    overtaking = False

    async def wrapped(**kwargs: Any) -> Any:
        nonlocal overtaking
        created = await use_case(**kwargs)
        if not overtaking:  # the rival passes through here too, and must not start another
            overtaking = True
            answers.append(await rival())
        return created

    return wrapped, answers


def _assert_duplicate(r: httpx.Response) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["status"] == 409
    # The database's answer, not the service's own check (that one says facility-code-taken).
    assert problem["type"].endswith("/duplicate")


@pytest.mark.usefixtures("interleaving")
@pytest.mark.parametrize("idempotency_key", [None, "k-first"])
async def test_facility_code_taken_between_check_and_commit_is_a_409(
    registry: tuple[FastAPI, httpx.AsyncClient, Settings],
    monkeypatch: pytest.MonkeyPatch,
    idempotency_key: str | None,
) -> None:
    app, client, settings = registry
    headers = _admin(settings)
    body = _facility("LP-RACE")

    async def rival() -> httpx.Response:
        return await client.post("/api/v1/facilities", json=body, headers=headers)

    wrapped, rivals = _overtaken(facilities.register_facility, rival)
    monkeypatch.setattr(facilities, "register_facility", wrapped)
    first = await client.post(
        "/api/v1/facilities",
        json=body,
        headers={**headers, **({"Idempotency-Key": idempotency_key} if idempotency_key else {})},
    )

    assert [r.status_code for r in rivals] == [201]
    _assert_duplicate(first)
    # Only the rival's facility and its event: the loser's rows were rolled back whole.
    assert await count(app.state.db, Facility) == 1
    registered = OutboxMessage.event_type == FacilityRegistered.event_type()
    assert await count(app.state.db, OutboxMessage, registered) == 1
    # The loser's key was not spent on the failed attempt: it creates nothing new either way.
    if idempotency_key:
        again = await client.post(
            "/api/v1/facilities",
            json=body,
            headers={**headers, "Idempotency-Key": idempotency_key},
        )
        assert again.status_code == 409
        assert again.json()["type"].endswith("/facility-code-taken")


@pytest.mark.usefixtures("interleaving")
async def test_registration_number_taken_between_check_and_commit_is_a_409(
    registry: tuple[FastAPI, httpx.AsyncClient, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client, settings = registry
    headers = _admin(settings)
    created = await client.post("/api/v1/facilities", json=_facility("LP-A"), headers=headers)
    assert created.status_code == 201, created.text
    facility_id = created.json()["id"]

    async def rival() -> httpx.Response:
        body = _inmate(facility_id, nik="6171014505900001")
        return await client.post("/api/v1/inmates", json=body, headers=headers)

    wrapped, rivals = _overtaken(inmates.register_inmate, rival)
    monkeypatch.setattr(inmates, "register_inmate", wrapped)
    # The same registration number, another NIK: only the number's constraint can refuse it.
    first = await client.post(
        "/api/v1/inmates", json=_inmate(facility_id, nik="6171011204880002"), headers=headers
    )

    assert [r.status_code for r in rivals] == [201]
    _assert_duplicate(first)
    assert await count(app.state.db, Inmate) == 1
    shared = OutboxMessage.event_type == InmateShared.event_type()
    assert await count(app.state.db, OutboxMessage, shared) == 1


async def test_two_concurrent_registrations_of_one_code_are_one_201_and_one_409(
    registry: tuple[FastAPI, httpx.AsyncClient, Settings],
) -> None:
    """However the two interleave, one wins and the other is a problem, never a 500."""
    app, client, settings = registry
    headers = _admin(settings)
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/facilities", json=_facility("LP-TWICE"), headers=headers)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in answers) == [201, 409]
    loser = next(r for r in answers if r.status_code == 409)
    assert loser.headers["content-type"].startswith(PROBLEM)
    assert await count(app.state.db, Facility) == 1
