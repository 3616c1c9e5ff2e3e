"""The staff pages' tests share one Keycloak (a real OpenID provider) for the whole session.

Starting it takes about half a minute here: every test of the pages takes this one. Under
CI=true a Keycloak that cannot start fails the run; on a developer's machine the tests that
need it are skipped with the reason (`make keycloak-install` fetches it). While working on the
pages, BEKAL_TEST_KEYCLOAK_PORT names one left running by `python -m tests.support.keycloak run`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import _unavailable
from tests.support.keycloak import VERSION, Keycloak


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
