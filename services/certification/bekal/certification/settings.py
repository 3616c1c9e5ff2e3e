"""The certification service's settings: the shared ones plus where its signing key lives."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bekal.shared.settings import Settings


class CertificationSettings(Settings):
    service_name: str = "certification"
    certificate_signing_key_file: Path = Field(
        default=Path("var/keys/certificate-signing-key.pem"),
        description="Ed25519 private key (PEM, PKCS#8) that signs new certificates; created if "
        "missing. Replacing it rotates the key: every public key ever used stays in the JWKS.",
    )


def certification_settings(settings: Settings | None) -> CertificationSettings:
    """Accept plain shared settings too (tests and tools build those) and add our defaults."""
    if settings is None:
        return CertificationSettings()
    if isinstance(settings, CertificationSettings):
        return settings
    return CertificationSettings(**settings.model_dump())
