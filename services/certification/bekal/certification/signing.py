"""Ed25519 credentials as compact JWS (EdDSA), keys as JWKs named by their RFC 7638 thumbprint."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bekal.shared.keys import load_or_create_ed25519_key

log = structlog.get_logger(__name__)

ALGORITHM = "EdDSA"
VC_TYP = "vc+jwt"
# Open Badges 3.0 (section 8.2.3): ``typ``, when present, MUST be "JWT", and no JOSE header
# beyond alg, kid, jwk and typ is allowed.
OPEN_BADGE_TYP = "JWT"


class CredentialError(Exception):
    """A credential that is malformed, signed by an unknown key, or whose signature fails."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The key's required JWK members (RFC 8037: OKP / Ed25519)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace; base64url."""
    required = {name: jwk[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def public_key_from_jwk(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise CredentialError("not an Ed25519 JWK")
    try:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    except ValueError as exc:
        raise CredentialError(f"bad Ed25519 public key: {exc}") from exc


class CertificateSigner:
    """The current signing key. Only its public half is ever stored or published."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        base = public_jwk(self.public_key)
        self.kid = jwk_thumbprint(base)
        self.jwk: dict[str, str] = {**base, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    @classmethod
    def from_key_file(cls, path: Path) -> CertificateSigner:
        """Load the PEM key, creating it (atomically, first writer wins) when missing."""
        existed = path.exists()
        signer = cls(load_or_create_ed25519_key(path))
        if not existed:
            log.warning("certificate_signing_key_created", path=str(path), kid=signer.kid)
        return signer

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A plain JWT over ``claims`` (the format of certificates issued before Open Badges)."""
        return jwt.encode(
            dict(claims), self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid}
        )

    def sign_vc(self, credential: Mapping[str, Any], *, issuer_id: str) -> str:
        """VC-JOSE-COSE: a compact JWS whose payload is the credential itself.

        Header ``typ`` ``vc+jwt`` (media type ``application/vc+jwt``), ``cty`` ``vc``, and
        ``kid`` the DID URL of the verification method: the issuer's did:web, ``#``, and the
        key's RFC 7638 thumbprint (the ``kid`` in the JWKS).
        """
        payload = json.dumps(credential, separators=(",", ":"), ensure_ascii=False)
        return jwt.api_jws.encode(
            payload.encode("utf-8"),
            self._private_key,
            algorithm=ALGORITHM,
            headers={"kid": f"{issuer_id}#{self.kid}", "typ": VC_TYP, "cty": "vc"},
        )

    def sign_open_badge(self, credential: Mapping[str, Any], *, issuer_id: str) -> str:
        """An OpenBadgeCredential as Open Badges 3.0's JSON Web Token proof (section 8.2).

        Still VC-JOSE-COSE (the payload is the credential itself), with the header Open Badges
        allows: ``alg``, ``kid`` (the DID URL of the verification method) and ``typ`` "JWT";
        no ``cty``. The payload carries the registered claims (``iss``, ``jti``, ``nbf``,
        ``sub``), which ``domain.open_badge_credential`` writes.
        """
        payload = json.dumps(credential, separators=(",", ":"), ensure_ascii=False)
        return jwt.api_jws.encode(
            payload.encode("utf-8"),
            self._private_key,
            algorithm=ALGORITHM,
            headers={"kid": f"{issuer_id}#{self.kid}", "typ": OPEN_BADGE_TYP},
        )

    def sign_bytes(self, data: bytes) -> bytes:
        """A raw Ed25519 signature (for the Data Integrity proof)."""
        return self._private_key.sign(data)


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS (proves nothing)."""
    try:
        return dict(jwt.get_unverified_header(token))
    except jwt.PyJWTError as exc:
        raise CredentialError(f"malformed credential: {exc}") from exc


def unverified_kid(token: str) -> str | None:
    """The key thumbprint a credential claims to be signed with (to pick the key; proves nothing).

    Open Badges credentials name a DID URL (``did:web:...#<thumbprint>``); earlier ones the
    bare thumbprint.
    """
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise CredentialError(f"malformed credential: {exc}") from exc
    if not isinstance(kid, str):
        return None
    return kid.rsplit("#", 1)[-1]


def verify_credential(token: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The payload of a credential whose EdDSA signature checks out with ``public_key``."""
    try:
        payload = jwt.api_jws.decode(token, public_key, algorithms=[ALGORITHM])
        claims = json.loads(payload)
    except (jwt.PyJWTError, ValueError) as exc:
        raise CredentialError(f"credential does not verify: {exc}") from exc
    if not isinstance(claims, dict) or "jti" not in claims:
        raise CredentialError("credential has no jti")
    return claims
