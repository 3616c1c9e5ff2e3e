"""The certification service's settings: the shared ones plus its signing key, its public
address, the public verification's rate limit and what the printed certificate carries."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, model_validator

from bekal.shared.settings import Environment, Settings

# Development prints these, so that a certificate made there can never pass for a real one;
# production refuses to start with them (see _refuse_placeholder_signatory_in_production).
PLACEHOLDER_SIGNATORY_NAME = "Nama Pejabat (contoh)"
PLACEHOLDER_SIGNATORY_POSITION = "Jabatan Pejabat Penandatangan (contoh)"
PLACEHOLDER_SIGNATORY_NIP = "000000000000000000"
# A civil servant's NIP: 18 digits, printed in groups (8 6 1 3) or not.
_NIP = re.compile(r"^\d(?: ?\d){17}$")


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
    certificate_place: str = Field(
        default="Jakarta",
        min_length=1,
        description="The place in the printed certificate's place and date line "
        "('Jakarta, 9 September 2024')",
    )
    certificate_signatory_name: str = Field(
        default=PLACEHOLDER_SIGNATORY_NAME,
        min_length=1,
        description="The official who signs the printed certificates, as printed (with titles); "
        "production refuses the placeholder",
    )
    certificate_signatory_position: str = Field(
        default=PLACEHOLDER_SIGNATORY_POSITION,
        min_length=1,
        description="The signing official's position (jabatan), e.g. 'Direktur Jenderal "
        "Industri Kecil, Menengah, dan Aneka'; production refuses the placeholder",
    )
    certificate_signatory_nip: str = Field(
        default=PLACEHOLDER_SIGNATORY_NIP,
        description="The signing official's NIP (18 digits, spaces allowed); production "
        "refuses the placeholder",
    )
    certificate_emblem_file: Path | None = Field(
        default=None,
        description="An emblem (PNG or JPEG) printed at the top of each certificate, scaled to "
        "fit and keeping its proportions; none by default, none shipped",
    )

    @model_validator(mode="after")
    def _check_signatory(self) -> CertificationSettings:
        if not _NIP.match(self.certificate_signatory_nip.strip()):
            raise ValueError("CERTIFICATE_SIGNATORY_NIP must be 18 digits (spaces allowed)")
        if self.environment is Environment.PRODUCTION:
            placeholders = {
                "CERTIFICATE_SIGNATORY_NAME": (
                    self.certificate_signatory_name,
                    PLACEHOLDER_SIGNATORY_NAME,
                ),
                "CERTIFICATE_SIGNATORY_POSITION": (
                    self.certificate_signatory_position,
                    PLACEHOLDER_SIGNATORY_POSITION,
                ),
                "CERTIFICATE_SIGNATORY_NIP": (
                    self.certificate_signatory_nip,
                    PLACEHOLDER_SIGNATORY_NIP,
                ),
            }
            unset = [
                name
                for name, (value, placeholder) in placeholders.items()
                if not value.strip() or value.strip() == placeholder
            ]
            if unset:
                raise ValueError(
                    f"{', '.join(unset)} must be set in production: certificates would be "
                    "printed with a placeholder signatory"
                )
        return self


def certification_settings(settings: Settings | None) -> CertificationSettings:
    """Accept plain shared settings too (tests and tools build those) and add our defaults."""
    return CertificationSettings.of(settings)
