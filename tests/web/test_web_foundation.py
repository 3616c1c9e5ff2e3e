"""The shared staff-page foundation without a provider: the development sign-in and where it
is refused, the API documentation served offline, the pages' headers."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from bekal.registry.app import create_app
from bekal.registry.settings import RegistrySettings
from tests.support.staff_pages import csrf_of


def _app(tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "environment": "development",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}",
        "kafka_bootstrap_servers": "127.0.0.1:1",
        "auth_dev_key_file": tmp_path / "dev.pem",
    }
    values.update(overrides)
    return create_app(RegistrySettings(**values))  # type: ignore[arg-type]


def _client(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_development_offers_the_preset_users(tmp_path: Path):
    app = _app(tmp_path)
    async with LifespanManager(app), _client(app) as browser:
        page = await browser.get("/staf/masuk?next=/staf/penerimaan")
        assert "facility-officer" in page.text and "registry-admin" in page.text
        signed = await browser.post(
            "/staf/masuk/pengembang",
            data={
                "csrf_token": csrf_of(page),
                "preset": "facility-officer",
                "facility": "LPP-TANGERANG",
                "next": "/staf/penerimaan",
            },
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/staf/penerimaan"
        form = await browser.get("/staf/penerimaan")
        assert form.status_code == 200 and "Daftarkan penerimaan" in form.text
        assert "LPP-TANGERANG" in form.text  # the preset's facility, as `bekal token --facility`


@pytest.mark.parametrize("target", ["https://elsewhere.example/", "//elsewhere.example/x"])
async def test_sign_in_never_sends_the_browser_elsewhere(tmp_path: Path, target: str):
    async with _client(_app(tmp_path)) as browser:
        page = await browser.get("/staf/masuk")
        signed = await browser.post(
            "/staf/masuk/pengembang",
            data={"csrf_token": csrf_of(page), "preset": "registry-admin", "next": target},
        )
        assert signed.headers["location"] == "/staf"


async def test_production_refuses_the_development_sign_in(tmp_path: Path):
    app = _app(
        tmp_path,
        environment="production",
        auth_jwks_url="https://login.example.go.id/certs",
        auth_issuer="https://login.example.go.id/realms/bekal",
        pseudonym_secret="Q84HI6pLx0wEhtmpaAGbTsT5VoV1XpHs68w9O9gTXLfX",
        web_session_secret="another-real-secret",
        web_oidc_issuer="https://login.example.go.id/realms/bekal",
    )
    async with _client(app) as browser:
        page = await browser.get("/staf/masuk")
        assert "Pengguna contoh" not in page.text and "preset" not in page.text
        answer = await browser.post("/staf/masuk/pengembang", data={"preset": "registry-admin"})
        assert answer.status_code == 404


async def test_production_serves_no_page_without_a_provider_and_a_session_secret(
    tmp_path: Path,
):
    app = _app(
        tmp_path,
        environment="production",
        auth_jwks_url="https://login.example.go.id/certs",
        auth_issuer="https://login.example.go.id/realms/bekal",
        pseudonym_secret="Q84HI6pLx0wEhtmpaAGbTsT5VoV1XpHs68w9O9gTXLfX",
    )
    async with _client(app) as browser:
        assert (await browser.get("/staf/masuk")).status_code == 404
        assert (await browser.get("/openapi.json")).status_code == 200


async def test_api_documentation_is_served_without_the_internet(tmp_path: Path):
    async with _client(_app(tmp_path)) as browser:
        for page_path in ("/docs", "/redoc"):
            page = await browser.get(page_path)
            assert page.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sources and all(s.startswith("/") for s in sources), sources
            for source in sources:
                asset = await browser.get(source)
                assert asset.status_code == 200, source
            assert "<script>" not in page.text  # no inline script, so the policy holds
            assert (
                "'unsafe-inline'"
                not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
            )
        assert (await browser.get("/openapi.json")).status_code == 200
