"""Bearer JWT auth: tokens verified against a JWKS (production) or a local dev key (development).

Claims: ``ministry`` (corrections | industry), ``roles`` (list), ``facilities`` (facility codes
a facility officer may see; empty for national roles).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
from cachetools import TLRUCache
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bekal.shared.keys import load_or_create_ed25519_key
from bekal.shared.problems import Forbidden, Unauthorized
from bekal.shared.settings import SERVICES, Settings, audience_of

ALGORITHMS = ["EdDSA", "RS256", "ES256"]
LEEWAY_SECONDS = 30
# A token verified once is taken as verified again until it expires, for this long at most:
# a key withdrawn from the JWKS stops admitting it within that time, as the JWKS client's
# own key cache lets it anyway.
VERIFIED_TOKEN_SECONDS = 60.0
VERIFIED_TOKENS = 4096  # kept at most; the least recently used go first


class Ministry(StrEnum):
    CORRECTIONS = "corrections"
    INDUSTRY = "industry"


class Role(StrEnum):
    # corrections
    REGISTRY_ADMIN = "registry_admin"  # national register: facilities and inmates everywhere
    FACILITY_OFFICER = "facility_officer"  # a facility's staff: only their facilities
    # industry
    TRAINING_ADMIN = "training_admin"  # programs and sessions everywhere
    TRAINING_OFFICER = "training_officer"  # runs sessions: enrolment, attendance, assessment
    FIELD_OFFICER = "field_officer"  # follows graduates up after release (readiness, follow-ups)
    CERTIFICATION_ADMIN = "certification_admin"
    # both
    REPORTING_VIEWER = "reporting_viewer"
    OPERATOR = "operator"  # dead letters and other operations


# The side each role belongs to; None for roles either side may hold.
ROLE_MINISTRY: dict[Role, Ministry | None] = {
    Role.REGISTRY_ADMIN: Ministry.CORRECTIONS,
    Role.FACILITY_OFFICER: Ministry.CORRECTIONS,
    Role.TRAINING_ADMIN: Ministry.INDUSTRY,
    Role.TRAINING_OFFICER: Ministry.INDUSTRY,
    Role.FIELD_OFFICER: Ministry.INDUSTRY,
    Role.CERTIFICATION_ADMIN: Ministry.INDUSTRY,
    Role.REPORTING_VIEWER: None,
    Role.OPERATOR: None,
}


def foreign_roles(ministry: Ministry, roles: frozenset[str]) -> list[str]:
    """The roles in ``roles`` that belong to the other ministry (unknown names are not ours)."""
    known = {r.value: side for r, side in ROLE_MINISTRY.items()}
    return sorted(r for r in roles if known.get(r) not in (None, ministry))


@dataclass(frozen=True)
class Principal:
    subject: str
    ministry: Ministry
    roles: frozenset[str]
    facilities: frozenset[str] = field(default_factory=frozenset)
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def facility_scoped(self) -> bool:
        """Facility staff see only the facilities in their token."""
        return Role.FACILITY_OFFICER in self.roles and not self.has_role(Role.REGISTRY_ADMIN)

    def may_see_facility(self, code: str) -> bool:
        return not self.facility_scoped or code in self.facilities


# --- keys ----------------------------------------------------------------------------------


def load_or_create_dev_key(path: Path) -> Ed25519PrivateKey:
    """The development signing key: made once, shared by the token command and the services."""
    return load_or_create_ed25519_key(path)


def mint_token(
    settings: Settings,
    *,
    subject: str,
    ministry: str,
    roles: list[str],
    facilities: list[str] | None = None,
    ttl_seconds: int = 8 * 3600,
    audience: str | list[str] | None = None,
) -> str:
    """A development token signed with the local key (never available in production).

    ``audience`` names the services the token is for; by default every service's (and the
    settings' own), as `bekal token` gives a developer one token for the whole platform.
    """
    if ttl_seconds > settings.auth_max_token_lifetime_seconds:
        raise ValueError(
            f"a token lives at most {settings.auth_max_token_lifetime_seconds} s "
            "(AUTH_MAX_TOKEN_LIFETIME_SECONDS)"
        )
    if not subject.strip():
        raise ValueError("a token names its subject (the audit trail's actor)")
    if audience is None:
        audience = list(dict.fromkeys([*map(audience_of, SERVICES), settings.auth_audience]))
    key = load_or_create_dev_key(settings.auth_dev_key_file)
    now = int(time.time())
    claims = {
        "sub": subject,
        "iss": settings.auth_issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "ministry": ministry,
        "roles": roles,
        "facilities": facilities or [],
    }
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "dev"})


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True)
            if settings.auth_jwks_url
            else None
        )
        self._dev_key: Ed25519PublicKey | None = None
        # The principal of each token verified lately: a client sends the same token with
        # every request, and decoding and checking its signature again was 3 to 5 % of a
        # request under py-spy. Sign-in verifies in a worker thread: hence the lock.
        self._verified: TLRUCache[str, Principal] = TLRUCache(
            maxsize=VERIFIED_TOKENS, ttu=_verified_until, timer=_now
        )
        self._lock = threading.Lock()

    def _key_for(self, token: str) -> Any:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        if self._dev_key is None:
            self._dev_key = load_or_create_dev_key(self.settings.auth_dev_key_file).public_key()
        return self._dev_key

    def verify(self, token: str) -> Principal:
        if len(token) > self.settings.auth_max_token_bytes:
            # Refused before a byte of it is decoded or a key looked up for it.
            raise Unauthorized(
                f"Token terlalu besar (paling besar {self.settings.auth_max_token_bytes} byte)"
            )
        with self._lock:
            principal = self._verified.get(token)
        if principal is None:
            principal = self._verify(token)  # a refused token raises: it is never kept
            with self._lock:
                self._verified[token] = principal
        return principal

    async def verify_async(self, token: str) -> Principal:
        """``verify`` for a request handler: a token not verified lately whose key comes from
        the provider's JWKS is checked in a worker thread, since fetching the key set (a new
        ``kid``, a cold start) blocks on the network, and would stall every request meanwhile."""
        if self._jwks is not None and len(token) <= self.settings.auth_max_token_bytes:
            with self._lock:
                known = self._verified.get(token)
            if known is not None:
                return known
            return await asyncio.to_thread(self.verify, token)
        return self.verify(token)

    def _verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=ALGORITHMS,
                audience=self.settings.auth_audience,
                issuer=self.settings.auth_issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=LEEWAY_SECONDS,
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthorized(f"Token tidak valid: {exc}") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip():
            # The audit trail names the actor by it: a blank one would name nobody.
            raise Unauthorized("Token tidak memuat klaim 'sub' yang berisi")
        lifetime = int(claims["exp"]) - int(claims["iat"])  # both checked as integers
        if lifetime > self.settings.auth_max_token_lifetime_seconds:
            raise Unauthorized(
                "Masa berlaku token terlalu panjang (exp - iat lebih dari "
                f"{self.settings.auth_max_token_lifetime_seconds} detik)"
            )
        try:
            ministry = Ministry(str(claims.get("ministry")))
        except ValueError as exc:
            raise Unauthorized("Token tidak memuat klaim 'ministry' yang dikenal") from exc
        roles = claims.get("roles") or []
        facilities = claims.get("facilities") or []
        if not isinstance(roles, list) or not isinstance(facilities, list):
            raise Unauthorized("Klaim 'roles' dan 'facilities' harus berupa daftar")
        claimed = frozenset(map(str, roles))
        # A role of the other side is never honoured: endpoints that admit a role without
        # naming a ministry (reports, operations) would otherwise open to a mis-issued token.
        granted = claimed.difference(foreign_roles(ministry, claimed))
        return Principal(
            subject=subject,
            ministry=ministry,
            roles=granted,
            facilities=frozenset(map(str, facilities)),
            claims=claims,
        )


def _now() -> float:
    return time.time()


def _verified_until(_token: str, principal: Principal, now: float) -> float:
    """Until when a verified token's principal is kept: its expiry, as ``jwt.decode`` allows
    it (with the leeway), and ``VERIFIED_TOKEN_SECONDS`` at most."""
    return min(now + VERIFIED_TOKEN_SECONDS, int(principal.claims["exp"]) + LEEWAY_SECONDS)


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Sertakan header Authorization: Bearer <token>")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify_async(credentials.credentials)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*, ministry: Ministry | None = None, roles: tuple[str, ...] = ()) -> Any:
    """A dependency that admits a principal of the ministry holding any of the roles."""

    async def check(principal: CurrentPrincipal) -> Principal:
        return admit(principal, ministry=ministry, roles=roles)

    return Depends(check)


def admit(
    principal: Principal, *, ministry: Ministry | None = None, roles: tuple[str, ...] = ()
) -> Principal:
    """``principal`` if of ``ministry`` and holding any of ``roles``; else Forbidden. The one
    rule the API's dependencies and the staff pages both apply."""
    if ministry is not None and principal.ministry is not ministry:
        raise Forbidden(f"Hanya untuk pengguna dari sisi {ministry.value}")
    if roles and not principal.has_role(*roles):
        raise Forbidden(f"Memerlukan salah satu peran: {', '.join(roles)}")
    return principal
