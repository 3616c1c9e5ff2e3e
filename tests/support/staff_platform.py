"""The four services served together for the staff pages' tests: each on a real port with the
test realm's provider (the browser signs in at Keycloak and comes back), all on one broker under
one namespace, so the registry's events reach training and reporting, training's reach
certification and reporting, and certification's reach reporting, as in production."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bekal.certification.app import create_app as certification_app
from bekal.devtools.broker import Broker
from bekal.registry.app import create_app as registry_app
from bekal.registry.schemas import FacilityCreate, InmateCreate
from bekal.registry.services import facilities, inmates
from bekal.reporting.app import create_app as reporting_app
from bekal.shared.auth import Ministry, Principal
from bekal.shared.settings import Settings
from bekal.training.app import create_app as training_app
from bekal.training.models import Participant
from tests.support.db import count
from tests.support.factories import FacilityProfile, facility_body, inmate_body
from tests.support.keycloak import Keycloak
from tests.support.staff_pages import free_port, provider_settings, served
from tests.support.waiting import wait_until

# Whoever loads the people into the registry before the course: not one of the realm's users.
_SEED = Principal("seed", Ministry.CORRECTIONS, frozenset({"registry_admin"}))
_APPS: dict[str, Callable[[Any], FastAPI]] = {
    "registry": registry_app,
    "training": training_app,
    "certification": certification_app,
    "reporting": reporting_app,
}


@dataclass
class Served:
    """One service of the platform: its app (for its database) and where the browser finds it."""

    app: FastAPI
    base: str


@dataclass
class StaffPlatform:
    registry: Served
    training: Served
    certification: Served
    reporting: Served

    async def admit(
        self, profile: FacilityProfile, names: Sequence[str], *, expected_release: date
    ) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
        """``profile``'s facility and one consenting woman per name, registered in the registry
        (whose outbox announces them); once training's replica knows them all, the facility's
        id and each person's by name."""
        app = self.registry.app
        ids: dict[str, uuid.UUID] = {}
        async with app.state.db.session() as session:
            facility = await facilities.register_facility(
                session=session, data=FacilityCreate(**facility_body(profile))
            )
            for n, name in enumerate(names):
                body = inmate_body(
                    facility.id,
                    full_name=name,
                    sex="F",
                    registration_number=f"{profile.code[-3:]}.{n:03d}",
                    nik=f"360301150490{n:04d}",
                    expected_release_date=expected_release.isoformat(),
                )
                inmate = await inmates.register_inmate(
                    session=session,
                    data=InmateCreate(**body),
                    principal=_SEED,
                    secret=app.state.settings.pseudonym_secret,
                )
                ids[name] = inmate.id
            await session.commit()
            facility_id = facility.id

        async def known() -> bool:
            where = Participant.facility_id == facility_id
            return await count(self.training.app.state.db, Participant, where) >= len(names)

        await wait_until(known, within=60, what=f"training knowing the {len(names)} people")
        return facility_id, ids


@asynccontextmanager
async def served_platform(
    make_settings: Callable[..., Settings], keycloak: Keycloak, broker: Broker, directory: Path
) -> AsyncIterator[StaffPlatform]:
    """The four services, each on a free port with its own SQLite database, consuming from
    ``broker`` under a namespace of their own (``make_settings``: the fixture of tests/conftest)."""
    namespace = f"pages{uuid.uuid4().hex[:6]}."
    ports = {name: free_port() for name in _APPS}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    extra: dict[str, dict[str, Any]] = {
        "registry": {},
        "training": {},
        "certification": {
            "certificate_signing_key_file": directory / "certificate.pem",
            "public_base_url": bases["certification"],
            "verify_rate_limit_per_minute": 1000,
        },
        "reporting": {
            f"{name}_pages_url": f"{bases[name]}/staf"
            for name in ("registry", "training", "certification")
        },
    }
    async with AsyncExitStack() as stack:
        served_apps: dict[str, Served] = {}
        for name, create_app in _APPS.items():
            settings = make_settings(
                name,
                f"sqlite+aiosqlite:///{directory / f'{name}.db'}",
                broker,
                kafka_namespace=namespace,
                web_base_url=bases[name],
                **provider_settings(keycloak),
                **extra[name],
            )
            app = create_app(settings)
            await stack.enter_async_context(served(app, ports[name]))
            served_apps[name] = Served(app, bases[name])
        await asyncio.wait_for(
            asyncio.gather(*(s.app.state.messaging.ready.wait() for s in served_apps.values())),
            timeout=90,
        )
        yield StaffPlatform(**served_apps)
