"""The reporting service's settings: the shared ones plus the texts its pages show."""

from __future__ import annotations

from pydantic import Field

from bekal.shared.settings import Settings


class ReportingSettings(Settings):
    service_name: str = "reporting"
    # Ministries get reorganised: their names are configuration, never code.
    dashboard_title: str = Field(
        default="Dasbor Pelatihan Wirausaha Baru bagi Warga Binaan",
        max_length=200,
        description="Title of the leadership's dashboard (DASHBOARD_TITLE)",
    )
    dashboard_issuers: str = Field(
        default="Kerja sama bidang perindustrian dan pemasyarakatan",
        max_length=300,
        description="The institutions named under the title (DASHBOARD_ISSUERS), e.g. both "
        "ministries' current names",
    )
    # Where each ministry's staff pages are: the dashboard links to those the signed-in person
    # may use. Unset: no link.
    registry_pages_url: str | None = Field(
        default=None, description="The corrections staff pages, e.g. https://registry.example/staf"
    )
    training_pages_url: str | None = Field(
        default=None, description="The training staff pages, e.g. https://training.example/staf"
    )
    certification_pages_url: str | None = Field(
        default=None,
        description="The certification staff pages, e.g. https://certification.example/staf",
    )


def reporting_settings(settings: Settings | None) -> ReportingSettings:
    """Accept plain shared settings too (tests and tools build those) and add our defaults."""
    return ReportingSettings.of(settings)
