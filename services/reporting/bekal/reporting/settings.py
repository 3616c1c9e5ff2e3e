"""The reporting service's settings: the shared ones plus the texts its pages show."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from bekal.shared.settings import Environment, Settings

DEV_PUBLICATION_SECRET = "development-only-publication-secret"


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
    # The public outputs' rounding draws from it (privacy.cell_key): whoever holds it could
    # narrow a rounded count down to its true value.
    publication_secret: str = Field(
        default=DEV_PUBLICATION_SECRET,
        description="Keys the rounding of the public summary and open data "
        "(PUBLICATION_SECRET): at least 32 characters of its own in production; changing it "
        "changes the published figures by up to 4",
    )

    @model_validator(mode="after")
    def _own_publication_secret_in_production(self) -> Self:
        if self.environment is Environment.PRODUCTION and (
            self.publication_secret == DEV_PUBLICATION_SECRET or len(self.publication_secret) < 32
        ):
            raise ValueError("PUBLICATION_SECRET must be a secret of its own (32+ characters)")
        return self


def reporting_settings(settings: Settings | None) -> ReportingSettings:
    """Accept plain shared settings too (tests and tools build those) and add our defaults."""
    return ReportingSettings.of(settings)
