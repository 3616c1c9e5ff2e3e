"""Token verification and the settings that guard production."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bekal.registry.settings import RegistrySettings
from bekal.shared import auth
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
        {"iat": int(time.time()) + 3600},
        {"aud": "someone-else"},
        {"aud": ["someone-else", "another"]},
        {"iss": "another-issuer"},
        {"ministry": "finance"},
        {"exp": "tomorrow"},
        {"roles": "training_admin"},
        {"facilities": "LP-CIPINANG"},
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "issued-in-the-future",
        "wrong-audience",
        "wrong-audiences",
        "wrong-issuer",
        "unknown-ministry",
        "expiry-not-a-number",
        "roles-not-a-list",
        "facilities-not-a-list",
    ],
)
def test_bad_tokens_are_refused(settings: Settings, override: dict[str, object]) -> None:
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    token = jwt.encode(_claims(settings, **override), key, algorithm="EdDSA")
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud", "ministry"])
def test_token_missing_a_required_claim_is_refused(settings: Settings, claim: str) -> None:
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    claims = _claims(settings)
    del claims[claim]
    with pytest.raises(Unauthorized):
        TokenVerifier(settings).verify(jwt.encode(claims, key, algorithm="EdDSA"))


def _b64(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode()


def test_hmac_token_keyed_with_the_public_key_is_refused(settings: Settings) -> None:
    """Algorithm confusion: whoever holds the public key must not be able to sign with it."""
    public = (
        load_or_create_dev_key(settings.auth_dev_key_file)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    # Built by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret.
    signing_input = ".".join(
        [
            _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "dev"}).encode()),
            _b64(json.dumps(_claims(settings)).encode()),
        ]
    )
    for secret in (public, public.strip()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(Unauthorized):
            TokenVerifier(settings).verify(f"{signing_input}.{_b64(mac)}")


def test_token_with_a_signature_stripped_is_refused(settings: Settings) -> None:
    token = mint_token(settings, subject="u", ministry="industry", roles=["training_admin"])
    header, payload, _ = token.split(".")
    for forged in (f"{header}.{payload}.", f"{header}.{payload}", "not-a-token", ""):
        with pytest.raises(Unauthorized):
            TokenVerifier(settings).verify(forged)


@pytest.mark.parametrize(
    ("ministry", "claimed", "kept"),
    [
        (
            "corrections",
            ["registry_admin", "training_admin", "certification_admin", "reporting_viewer"],
            {"registry_admin", "reporting_viewer"},
        ),
        ("industry", ["registry_admin", "facility_officer", "operator"], {"operator"}),
        (
            "industry",
            ["training_admin", "someone_elses_role"],
            {"training_admin", "someone_elses_role"},
        ),
    ],
    ids=["corrections-claims-industry-roles", "industry-claims-corrections-roles", "unknown-kept"],
)
def test_a_role_of_the_other_ministry_is_never_honoured(
    settings: Settings, ministry: str, claimed: list[str], kept: set[str]
) -> None:
    token = mint_token(settings, subject="u", ministry=ministry, roles=claimed)
    principal = TokenVerifier(settings).verify(token)
    assert principal.roles == kept


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
    # The pseudonym secret is the registry's own setting; the identity provider every service's.
    with pytest.raises(ValueError, match="PSEUDONYM_SECRET"):
        RegistrySettings(
            environment="production", auth_jwks_url="https://idp/jwks", auth_issuer=IDP
        )  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="AUTH_JWKS_URL"):
        RegistrySettings(environment="production", pseudonym_secret="s3cret-for-real")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="AUTH_JWKS_URL"):
        Settings(environment="production")  # type: ignore[arg-type]
    ok = RegistrySettings(
        environment="production",
        pseudonym_secret="Q84HI6pLx0wEhtmpaAGbTsT5VoV1XpHs68w9O9gTXLfX",
        auth_jwks_url="https://idp/jwks",
        auth_issuer=IDP,
    )  # type: ignore[arg-type]
    assert ok.auth_jwks_url


IDP = "https://login.example.go.id/realms/bekal"


def test_production_refuses_the_development_issuer() -> None:
    """A production service never trusts tokens claiming the development issuer, even when
    signed by the provider's keys."""
    with pytest.raises(ValueError, match="AUTH_ISSUER"):
        Settings(environment="production", auth_jwks_url="https://idp/jwks")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="AUTH_ISSUER"):
        Settings(
            environment="production", auth_jwks_url="https://idp/jwks", auth_issuer="bekal-dev"
        )  # type: ignore[arg-type]
    ok = Settings(environment="production", auth_jwks_url="https://idp/jwks", auth_issuer=IDP)  # type: ignore[arg-type]
    assert ok.auth_issuer == IDP
    # Development and tests keep the local issuer.
    assert Settings().auth_issuer == "bekal-dev"


def test_topic_namespace_prefixes_names() -> None:
    assert (
        Settings(kafka_namespace="staging.").topic("registry.inmates") == "staging.registry.inmates"
    )
    assert Settings().topic("registry.inmates") == "registry.inmates"


def test_a_token_lives_no_longer_than_the_cap(settings: Settings) -> None:
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    now = int(time.time())
    cap = settings.auth_max_token_lifetime_seconds
    assert cap == 12 * 3600
    at_cap = _claims(settings, iat=now, exp=now + cap)
    assert TokenVerifier(settings).verify(jwt.encode(at_cap, key, algorithm="EdDSA"))
    for over in ({"exp": now + cap + 1}, {"exp": now + 100 * 365 * 86400}):
        with pytest.raises(Unauthorized, match="Masa berlaku"):
            TokenVerifier(settings).verify(
                jwt.encode(_claims(settings, iat=now, **over), key, algorithm="EdDSA")
            )
    with pytest.raises(ValueError, match="at most"):
        mint_token(settings, subject="u", ministry="industry", roles=["x"], ttl_seconds=cap + 1)


@pytest.mark.parametrize("subject", ["", " ", "\t"])
def test_a_token_names_its_subject(settings: Settings, subject: str) -> None:
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    token = jwt.encode(_claims(settings, sub=subject), key, algorithm="EdDSA")
    with pytest.raises(Unauthorized, match="sub"):
        TokenVerifier(settings).verify(token)
    with pytest.raises(ValueError, match="subject"):
        mint_token(settings, subject=subject, ministry="industry", roles=["training_admin"])


def test_an_oversized_token_is_refused_before_it_is_decoded(settings: Settings) -> None:
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    big = jwt.encode(_claims(settings, padding="x" * 9000), key, algorithm="EdDSA")
    with pytest.raises(Unauthorized, match="terlalu besar"):
        TokenVerifier(settings).verify(big)
    fits = jwt.encode(_claims(settings, padding="x" * 5000), key, algorithm="EdDSA")
    assert TokenVerifier(settings).verify(fits).subject == "u"


def test_each_service_accepts_only_tokens_naming_its_audience(tmp_path: Path) -> None:
    services = ("registry", "training", "certification", "reporting")
    key_file = tmp_path / "dev.pem"
    each = {s: Settings(service_name=s, auth_dev_key_file=key_file) for s in services}
    assert {s.auth_audience for s in each.values()} == {f"bekal-{s}" for s in services}
    for_training = mint_token(
        each["training"], subject="u", ministry="industry", roles=["x"], audience="bekal-training"
    )
    platform = mint_token(
        Settings(auth_dev_key_file=key_file), subject="u", ministry="industry", roles=["x"]
    )
    for service, settings in each.items():
        verifier = TokenVerifier(settings)
        assert verifier.verify(platform).subject == "u"  # `bekal token`: every service's
        if service == "training":
            assert verifier.verify(for_training).subject == "u"
        else:
            with pytest.raises(Unauthorized):
                verifier.verify(for_training)
    # An operator may still name one audience for every service (AUTH_AUDIENCE).
    assert Settings(service_name="registry", auth_audience="bekal").auth_audience == "bekal"


def test_a_verified_token_is_taken_again_until_it_expires_and_a_minute_at_most(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [time.time()]
    monkeypatch.setattr(auth, "_now", lambda: clock[0])
    decoded: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counted)
    verifier = TokenVerifier(settings)
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    short = jwt.encode(_claims(settings, exp=int(clock[0]) + 10), key, "EdDSA")
    long = jwt.encode(_claims(settings, exp=int(clock[0]) + 600), key, "EdDSA")
    first = verifier.verify(short)
    assert verifier.verify(short) == first
    verifier.verify(long)
    assert decoded == [short, long]
    clock[0] += 10 + auth.LEEWAY_SECONDS  # past what jwt.decode allows the short one
    verifier.verify(short)
    verifier.verify(long)
    assert decoded == [short, long, short]
    clock[0] += auth.VERIFIED_TOKEN_SECONDS  # the long one is checked again after a minute
    verifier.verify(long)
    assert decoded == [short, long, short, long]


def test_a_refused_token_is_refused_every_time(settings: Settings) -> None:
    verifier = TokenVerifier(settings)
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    token = jwt.encode(_claims(settings, aud="another-service"), key, "EdDSA")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            verifier.verify(token)
