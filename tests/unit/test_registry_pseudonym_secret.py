"""Production refuses a PSEUDONYM_SECRET that is not at least 32 random bytes; development keeps
its default. The secret keys every NIK hash, so a guessable one turns the hashes back into NIKs."""

from __future__ import annotations

import base64
import secrets

import pytest
from pydantic import ValidationError

from bekal.registry.settings import DEV_PSEUDONYM_SECRET, RegistrySettings, weak_secret
from bekal.shared.settings import Settings

IDP = "https://login.example.go.id/realms/bekal"
STRONG = "Q84HI6pLx0wEhtmpaAGbTsT5VoV1XpHs68w9O9gTXLfX"


def production(secret: str) -> RegistrySettings:
    return RegistrySettings(
        environment="production",  # type: ignore[arg-type]
        pseudonym_secret=secret,
        auth_jwks_url=f"{IDP}/protocol/openid-connect/certs",
        auth_issuer=IDP,
    )


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (DEV_PSEUDONYM_SECRET, "default or example"),
        ("compose-local-pseudonym-secret", "default or example"),
        ("please-change-me-before-going-live-2026", "placeholder"),
        ("s3cret", "6 bytes"),
        ("a-real-secret-from-the-platform", "31 bytes"),
        ("x" * 64, "only 1 different"),
        ("ab" * 32, "only 2 different"),
        ("0123456789abcdef" * 3, "repeats the same 16 characters"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "runs"),
        ("aaaabbbbccccddddeeeeffffgggghhhhiiiijjjj", "runs"),
    ],
)
def test_production_refuses_a_weak_pseudonym_secret_with_the_reason(
    secret: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        production(secret)
    message = str(caught.value)
    assert "PSEUDONYM_SECRET is too weak for production" in message
    assert reason in message and "openssl rand -base64 48" in message
    # The refused value never reaches the log of the service that will not start.
    assert f"input_value='{secret}'" not in message and f"'{secret}'" not in message


@pytest.mark.parametrize(
    "secret",
    [
        STRONG,
        base64.b64encode(secrets.token_bytes(32)).decode(),
        secrets.token_hex(32),
        secrets.token_urlsafe(32),
    ],
)
def test_production_accepts_32_random_bytes_however_they_are_written(secret: str) -> None:
    assert weak_secret(secret) is None
    assert production(secret).pseudonym_secret == secret


def test_development_and_tests_keep_the_default_or_any_value() -> None:
    assert RegistrySettings().pseudonym_secret == DEV_PSEUDONYM_SECRET
    for environment in ("development", "test"):
        settings = RegistrySettings(environment=environment, pseudonym_secret="s")  # type: ignore[arg-type]
        assert settings.pseudonym_secret == "s"


def test_only_the_registry_reads_the_pseudonym_secret() -> None:
    # The other services' settings have no such field: the manifests give it to the registry
    # only, and a weak value elsewhere would be checked by nothing.
    from bekal.certification.settings import CertificationSettings
    from bekal.reporting.settings import ReportingSettings
    from bekal.training.settings import TrainingSettings

    assert "pseudonym_secret" in RegistrySettings.model_fields
    for cls in (Settings, TrainingSettings, CertificationSettings, ReportingSettings):
        assert "pseudonym_secret" not in cls.model_fields, cls.__name__
