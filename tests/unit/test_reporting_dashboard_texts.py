"""The dashboard's title and the institutions it names are settings, never code."""

from __future__ import annotations

from bekal.reporting.app import create_app
from bekal.reporting.settings import ReportingSettings
from bekal.shared.settings import Settings
from tests.support.apps import http_client


async def test_dashboard_header_names_no_ministry_unless_configured() -> None:
    async with http_client(create_app(Settings(service_name="reporting"))) as client:
        page = (await client.get("/dashboard")).text
    assert "Kementerian Perindustrian" not in page and "{{" not in page
    assert "Dasbor Pelatihan Wirausaha Baru bagi Warga Binaan" in page


async def test_dashboard_header_shows_the_configured_title_and_issuers_escaped() -> None:
    settings = ReportingSettings(
        dashboard_title="Dasbor <Uji>",
        dashboard_issuers="Kementerian A & Direktorat Jenderal B",
    )
    async with http_client(create_app(settings)) as client:
        page = (await client.get("/dashboard")).text
    assert '<h1 id="title">Dasbor &lt;Uji&gt;</h1>' in page
    assert '<span id="issuers">Kementerian A &amp; Direktorat Jenderal B</span>' in page


def test_dashboard_texts_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DASHBOARD_ISSUERS", "Kementerian C")
    assert ReportingSettings().dashboard_issuers == "Kementerian C"
