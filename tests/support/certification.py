"""What the certification tests share: its settings, and checks that do not trust the service."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bekal.certification.settings import CertificationSettings
from bekal.devtools.broker import EmbeddedBroker
from bekal.shared.settings import Settings


def certification_settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    broker: EmbeddedBroker,
    tmp_path: Path,
    **overrides: object,
) -> CertificationSettings:
    base = make_settings("certification", database_url, broker, **overrides)
    return CertificationSettings(
        **{
            **base.model_dump(),
            "certificate_signing_key_file": tmp_path / "keys" / "certificate.pem",
        }
    )


# --- independent checks: the cryptography library and the specifications, not the service ----


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """``(header, payload, signature, signing input)`` of a compact JWS."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    return (
        json.loads(b64url_decode(header_b64)),
        json.loads(b64url_decode(payload_b64)),
        b64url_decode(signature_b64),
        f"{header_b64}.{payload_b64}".encode("ascii"),
    )


def verify_with_jwks(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The payload, once the Ed25519 signature checks out with the JWKS key the header names
    (a DID URL's fragment or a bare key id); raises InvalidSignature otherwise."""
    header, payload, signature, signing_input = jws_parts(token)
    assert header["alg"] == "EdDSA"
    kid = header["kid"].rsplit("#", 1)[-1]
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    key = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    key.verify(signature, signing_input)
    return payload


def rfc7638_thumbprint(jwk: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"), sort_keys=True
    )
    return b64url_encode(hashlib.sha256(canonical.encode()).digest())


def status_list_bit(encoded_list: str, index: int) -> bool:
    """Bitstring Status List v1.0: multibase ``u`` + base64url of GZIP; index 0 = first MSB."""
    assert encoded_list.startswith("u")
    bits = gzip.decompress(b64url_decode(encoded_list[1:]))
    assert len(bits) * 8 >= 131_072
    return bool(bits[index // 8] & (0x80 >> (index % 8)))
