"""Token verification and the settings that guard production."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bekal.shared.auth import (
    Ministry,
    Principal,
    Role,
    TokenVerifier,
    load_or_create_dev_key,
    mint_token,
)
from bekal.shared.problems import Unauthorized
from bekal.shared.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(auth_dev_key_file=tmp_path / "dev.pem")


def _claims(settings: Settings, **over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "u",
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "ministry": "industry",
        "roles": ["training_admin"],
        "facilities": [],
    }
    claims.update(over)
    return claims


def test_minted_token_verifies_with_claims(settings: Settings) -> None:
    token = mint_token(
        settings,
        subject="officer-1",
        ministry="corrections",
        roles=["facility_officer"],
        facilities=["LP-CIPINANG"],
    )
    principal = TokenVerifier(settings).verify(token)
    assert principal.subject == "officer-1"
    assert principal.ministry is Ministry.CORRECTIONS
    assert principal.facility_scoped
    assert principal.may_see_facility("LP-CIPINANG") and not principal.may_see_facility(
        "LP-PONTIANAK"
    )


@pytest.mark.parametrize(
    "override",
    [
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
        {"aud": "someone-else"},
        {"iss": "another-issuer"},
        {"ministry": "finance"},
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "unknown-ministry"],
)
def test_bad_tokens_are_refused(settings: Settings, override: dict[str, object]) -> None:
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    token = jwt.encode(_claims(settings, **override), key, algorithm="EdDSA")
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(token)


def test_token_signed_with_another_key_is_refused(settings: Settings) -> None:
    token = jwt.encode(_claims(settings), Ed25519PrivateKey.generate(), algorithm="EdDSA")
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(token)


def test_unsigned_token_is_refused(settings: Settings) -> None:
    load_or_create_dev_key(settings.auth_dev_key_file)
    token = jwt.encode(_claims(settings), None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(token)


def test_tampered_claims_are_refused(settings: Settings) -> None:
    token = mint_token(settings, subject="u", ministry="industry", roles=["reporting_viewer"])
    header, payload, signature = token.split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b"reporting_viewer", b"training_admin__")
    ).decode()
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(f"{header}.{forged}.{signature}")


def test_the_dev_key_is_made_once_and_shared(settings: Settings) -> None:
    a = load_or_create_dev_key(settings.auth_dev_key_file)
    b = load_or_create_dev_key(settings.auth_dev_key_file)
    assert a.public_key().public_bytes_raw() == b.public_key().public_bytes_raw()


def test_registry_admin_is_not_facility_scoped() -> None:
    p = Principal(
        subject="a",
        ministry=Ministry.CORRECTIONS,
        roles=frozenset({Role.REGISTRY_ADMIN, Role.FACILITY_OFFICER}),
    )
    assert not p.facility_scoped and p.may_see_facility("ANY")


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValueError, match="PSEUDONYM_SECRET"):
        Settings(environment="production", auth_jwks_url="https://idp/jwks")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="AUTH_JWKS_URL"):
        Settings(environment="production", pseudonym_secret="s3cret-for-real")  # type: ignore[arg-type]
    ok = Settings(
        environment="production", pseudonym_secret="s3cret", auth_jwks_url="https://idp/jwks"
    )  # type: ignore[arg-type]
    assert ok.auth_jwks_url


def test_topic_namespace_prefixes_names() -> None:
    assert (
        Settings(kafka_namespace="staging.").topic("registry.inmates") == "staging.registry.inmates"
    )
    assert Settings().topic("registry.inmates") == "registry.inmates"
