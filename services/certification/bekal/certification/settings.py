"""The certification service's settings: the shared ones plus its signing key, its public
address and the public verification's rate limit."""

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
    public_base_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Where the public verification pages are reached: verification links, the "
        "issuer's did:web and the status list URLs are made from it",
    )
    verify_rate_limit_per_minute: int = Field(
        default=60, description="Public verification requests per client address per minute"
    )


def certification_settings(settings: Settings | None) -> CertificationSettings:
    """Accept plain shared settings too (tests and tools build those) and add our defaults."""
    return CertificationSettings.of(settings)
