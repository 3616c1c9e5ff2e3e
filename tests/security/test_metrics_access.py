"""/metrics is not public in production: only a scraper with METRICS_TOKEN reads it.

Development and tests keep it open (`make run`, the reliability tests read it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from tests.security.support import SERVICES, client_for, service_app, service_settings

pytestmark = pytest.mark.integration

SCRAPER_TOKEN = "scraper-token-0123456789abcdef0123456789abcdef"
PRODUCTION = {
    "environment": "production",
    "auth_jwks_url": "https://login.example.go.id/realms/bekal/protocol/openid-connect/certs",
    "auth_issuer": "https://login.example.go.id/realms/bekal",
    "pseudonym_secret": "a-pseudonym-secret-of-at-least-32-random-bytes-0123456789",
    "publication_secret": "a-publication-secret-of-at-least-32-random-bytes-012345",
    # What each service needs to start in production (ignored by the others).
    "certificate_signatory_name": "Nama Pejabat",
    "certificate_signatory_position": "Direktur",
    "certificate_signatory_nip": "197001012000031001",
}


def _app(service: str, make_settings: Any, tmp_path: Path, **overrides: object) -> Any:
    settings = service_settings(
        service,
        make_settings,
        f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}",
        None,
        tmp_path,
        **overrides,
    )
    return service_app(service, settings)


@pytest.mark.parametrize("service", SERVICES)
async def test_production_serves_metrics_only_to_the_scraper(
    service: str, make_settings: Any, tmp_path: Path
) -> None:
    app = _app(service, make_settings, tmp_path, metrics_token=SCRAPER_TOKEN, **PRODUCTION)
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        for headers in (
            {},
            {"Authorization": "Bearer not-the-token"},
            {"Authorization": f"Basic {SCRAPER_TOKEN}"},
            {"Authorization": f"Bearer {SCRAPER_TOKEN[:-1]}"},
        ):
            r = await client.get("/metrics", headers=headers)
            assert r.status_code == 401, (headers, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "bekal_http_request_duration_seconds" not in r.text
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"})
        assert r.status_code == 200 and "bekal_http_request_duration_seconds" in r.text
        # The probes stay open: the orchestrator asks them without a token.
        assert (await client.get("/healthz")).status_code == 200


async def test_production_without_a_scraper_token_serves_no_metrics(
    make_settings: Any, tmp_path: Path
) -> None:
    app = _app("training", make_settings, tmp_path, **PRODUCTION)
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            r = await client.get("/metrics", headers=headers)
            assert r.status_code == 404, (headers, r.status_code)
            assert "bekal_" not in r.text


async def test_development_keeps_metrics_open(make_settings: Any, tmp_path: Path) -> None:
    app = _app("training", make_settings, tmp_path, environment="development")
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        r = await client.get("/metrics")
        assert r.status_code == 200 and "bekal_http_request_duration_seconds" in r.text
