"""Forged, stale and misdirected tokens against each service over HTTP: every one is refused.

The pure checks of the verifier are in tests/unit/test_shared_auth.py; here each attack goes
through a running app, to a route a genuine token of the same role does reach.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bekal.shared.auth import load_or_create_dev_key, mint_token
from bekal.shared.settings import Settings, audience_of
from tests.security.support import SERVICES, client_for, service_app, service_settings
from tests.support.apps import running

pytestmark = pytest.mark.integration

# Per service: a route, and the ministry and role (one only that side holds) that reach it.
PROBES: dict[str, tuple[str, str, str]] = {
    "registry": ("/api/v1/inmates", "corrections", "registry_admin"),
    "training": ("/api/v1/programs", "industry", "training_admin"),
    "certification": ("/api/v1/certificates", "industry", "certification_admin"),
    "reporting": ("/api/v1/indicators", "industry", "training_admin"),
}
OTHER_SIDE = {"corrections": "industry", "industry": "corrections"}


def _b64(data: bytes) -> str:
    return jwt.utils.base64url_encode(data).decode()


def attacks(settings: Settings, ministry: str, role: str) -> dict[str, tuple[str, int]]:
    """Each attack's Authorization header value and the status it must get."""
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    now = int(time.time())

    def claims(**over: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "sub": "attacker",
            "iss": settings.auth_issuer,
            "aud": settings.auth_audience,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "ministry": ministry,
            "roles": [role],
            "facilities": [],
        }
        base.update(over)
        return {k: v for k, v in base.items() if v is not None}

    def signed(**over: Any) -> str:
        return jwt.encode(claims(**over), key, algorithm="EdDSA", headers={"kid": "dev"})

    def unsigned(
        header: dict[str, Any], body: dict[str, Any], sign: Callable[[bytes], bytes]
    ) -> str:
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        return f"{signing_input}.{_b64(sign(signing_input.encode()))}"

    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    genuine = mint_token(settings, subject="someone", ministry=ministry, roles=["operator"])
    header, payload, signature = genuine.split(".")
    elevated = json.loads(jwt.utils.base64url_decode(payload))
    elevated["roles"] = [role]
    tampered = f"{header}.{_b64(json.dumps(elevated).encode())}.{signature}"
    other = OTHER_SIDE[ministry]
    elsewhere = [audience_of(s) for s in SERVICES if s != settings.service_name]
    cases = {
        "expired": signed(exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not yet valid (nbf)": signed(nbf=now + 3600),
        "issued in the future (iat)": signed(iat=now + 3600),
        "wrong audience": signed(aud="another-system"),
        "wrong issuer": signed(iss="https://idp.example.org"),
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims(), lambda _: b""),
        "HS256 keyed with the public key": unsigned(
            {"alg": "HS256", "typ": "JWT", "kid": "dev"},
            claims(),
            lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
        ),
        "signed with another key": jwt.encode(
            claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "dev"}
        ),
        "tampered roles": tampered,
        "signature stripped": f"{header}.{payload}.",
        "missing sub": signed(sub=None),
        "missing exp": signed(exp=None),
        "missing ministry": signed(ministry=None),
        "unknown ministry": signed(ministry="finance"),
        "not a JWT": "definitely-not-a-token",
        # Lifetime: exp - iat within AUTH_MAX_TOKEN_LIFETIME_SECONDS (12 h by default).
        "a 100-year token": signed(exp=now + 100 * 365 * 86400),
        "13 hours, issued an hour ago": signed(iat=now - 3600, nbf=now - 3600, exp=now + 12 * 3600),
        "exp as a string, 100 years on": signed(exp=str(now + 100 * 365 * 86400)),
        # The audit trail's actor: never blank.
        "empty sub": signed(sub=""),
        "blank sub": signed(sub="   "),
        "sub not a string": signed(sub=12345),
        # Bounded before decoding: 8 KiB by default.
        "oversized (9 KiB of claims)": signed(padding="x" * 9 * 1024),
        "oversized garbage (1 MiB)": "e" * 1024 * 1024,
        # An audience per service: a token for the others, or for the platform as a whole.
        "for the other services": signed(aud=elsewhere),
        "the old shared audience 'bekal'": signed(aud="bekal"),
        "no audience": signed(aud=[]),
    }
    refused = {name: (f"Bearer {token}", 401) for name, token in cases.items()}
    refused["wrong scheme"] = (f"Basic {signed()}", 401)
    # A genuine token of the other side claiming the role: the role counts for nothing there.
    refused["other ministry claiming the role"] = (
        f"Bearer {mint_token(settings, subject='x', ministry=other, roles=[role])}",
        403,
    )
    return refused


@pytest.mark.parametrize("service", SERVICES)
async def test_every_forged_stale_or_misdirected_token_is_refused(
    service: str, broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    settings = service_settings(
        service, make_settings, f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}", broker, tmp_path
    )
    app = service_app(service, settings)
    path, ministry, role = PROBES[service]
    async with running(app), client_for(app) as client:
        # The route is reachable with a genuine token, so the refusals below mean something:
        # one naming this service alone, one naming it among others, one at the lifetime cap.
        now = int(time.time())
        cap = settings.auth_max_token_lifetime_seconds
        for genuine in (
            mint_token(
                settings,
                subject="genuine",
                ministry=ministry,
                roles=[role],
                audience=settings.auth_audience,
            ),
            mint_token(
                settings,
                subject="genuine",
                ministry=ministry,
                roles=[role],
                audience=[audience_of("training"), settings.auth_audience],
            ),
            jwt.encode(
                {
                    "sub": "genuine",
                    "iss": settings.auth_issuer,
                    "aud": settings.auth_audience,
                    "iat": now,
                    "exp": now + cap,
                    "ministry": ministry,
                    "roles": [role],
                },
                load_or_create_dev_key(settings.auth_dev_key_file),
                algorithm="EdDSA",
            ),
        ):
            r = await client.get(path, headers={"Authorization": f"Bearer {genuine}"})
            assert r.status_code == 200, r.text

        wrong: list[str] = []
        cases = attacks(settings, ministry, role)
        for name, (authorization, status) in cases.items():
            r = await client.get(path, headers={"Authorization": authorization})
            if r.status_code != status or not r.headers["content-type"].startswith(
                "application/problem+json"
            ):
                wrong.append(f"{name}: expected {status}, got {r.status_code} {r.text[:120]}")
            elif (
                status == 401
                and "bearer" not in r.headers.get("www-authenticate", "bearer").lower()
            ):
                wrong.append(f"{name}: a 401 names the Bearer scheme")
    print(f"\n{service}: {len(cases) - len(wrong)} of {len(cases)} token attacks refused on {path}")
    assert not wrong, "\n".join(wrong)
