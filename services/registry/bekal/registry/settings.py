"""The registry's settings: the shared ones plus the secret that keys the NIK."""

from __future__ import annotations

from pydantic import Field, model_validator

from bekal.shared.settings import Environment, Settings

DEV_PSEUDONYM_SECRET = "development-only-secret-change-me"


class RegistrySettings(Settings):
    service_name: str = "registry"
    # Only the registry sees a NIK: it keeps the keyed hash and derives the pseudonymous
    # participant id with this; the other services only ever receive that id.
    pseudonym_secret: str = Field(
        default=DEV_PSEUDONYM_SECRET,
        description="Keyed-hash secret for identifiers that must not be readable in a dump (NIK)",
    )

    @model_validator(mode="after")
    def _refuse_development_secret_in_production(self) -> RegistrySettings:
        if self.environment is Environment.PRODUCTION and self.pseudonym_secret == (
            DEV_PSEUDONYM_SECRET
        ):
            raise ValueError("PSEUDONYM_SECRET must be set to a real secret in production")
        return self
