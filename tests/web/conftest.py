"""The staff pages' tests share one Keycloak (a real OpenID provider) for the whole session.

Starting it takes about half a minute here: every test of the pages takes this one. Under
CI=true a Keycloak that cannot start fails the run; on a developer's machine the tests that
need it are skipped with the reason (`make keycloak-install` fetches it). While working on the
pages, BEKAL_TEST_KEYCLOAK_PORT names one left running by `python -m tests.support.keycloak run`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bekal.registry.app import create_app
from bekal.registry.schemas import FacilityCreate, InmateCreate
from bekal.registry.services import facilities, inmates
from bekal.registry.settings import RegistrySettings
from bekal.shared.auth import Ministry, Principal
from tests.conftest import _unavailable
from tests.support.factories import PONTIANAK, TANGERANG, facility_body, inmate_body
from tests.support.keycloak import VERSION, Keycloak
from tests.support.staff_pages import free_port, provider_settings, served

SOON = (date.today() + timedelta(days=120)).isoformat()
SEED = Principal("seed", Ministry.CORRECTIONS, frozenset({"registry_admin"}))
NAMES = ["Siti Nurhaliza", "Yosefína Kristanti", "Dewi Ratnasari"]


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    running = os.environ.get("BEKAL_TEST_KEYCLOAK_PORT")
    if running:  # one already started by `python -m tests.support.keycloak run`
        yield Keycloak(port=int(running))
        return
    provider = Keycloak(directory=tmp_path_factory.mktemp("keycloak"))
    try:
        provider.start()
    except Exception as exc:  # KeycloakUnavailable (no Java 21, Maven) or a failed start
        _unavailable(f"Keycloak {VERSION} (`make keycloak-install`; Java 21+)", exc)
    yield provider
    provider.stop()


class Registry:
    def __init__(self, base: str, app: Any, ids: dict[str, uuid.UUID]) -> None:
        self.base, self.app, self.ids = base, app, ids


@pytest.fixture(scope="module")
async def registry(
    keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Registry]:
    """One registry for the module, on a real port, with two facilities and their people."""
    directory: Path = tmp_path_factory.mktemp("registry-pages")
    port = free_port()
    settings = RegistrySettings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{directory / 'registry.db'}",
        kafka_bootstrap_servers="127.0.0.1:1",  # pages need no broker: events wait in the outbox
        auth_dev_key_file=directory / "dev.pem",
        web_base_url=f"http://127.0.0.1:{port}",
        log_json=True,
        **provider_settings(keycloak),
    )
    app = create_app(settings)
    async with served(app, port) as base:
        ids: dict[str, uuid.UUID] = {}
        async with app.state.db.session() as session:
            for profile in (TANGERANG, PONTIANAK):
                facility = await facilities.register_facility(
                    session=session, data=FacilityCreate(**facility_body(profile))
                )
                ids[profile.code] = facility.id
            for n, name in enumerate(NAMES):
                inmate = await inmates.register_inmate(
                    session=session,
                    data=InmateCreate(
                        **inmate_body(
                            ids["LPP-TANGERANG"],
                            full_name=name,
                            sex="F",
                            registration_number=f"TGR.{n:03d}",
                            nik=f"36030115049000{n:02d}",
                            expected_release_date=SOON,
                        )
                    ),
                    principal=SEED,
                    secret=settings.pseudonym_secret,
                )
                ids[name] = inmate.id
            inmate = await inmates.register_inmate(
                session=session,
                data=InmateCreate(
                    **inmate_body(
                        ids["LAPAS-PONTIANAK"],
                        registration_number="PTK.001",
                        nik="6171011504900001",
                    )
                ),
                principal=SEED,
                secret=settings.pseudonym_secret,
            )
            ids["pontianak"] = inmate.id
            await session.commit()
        yield Registry(base, app, ids)
