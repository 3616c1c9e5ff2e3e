"""What the certification tests share: its settings, and checks that do not trust the service."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import base58
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyld import jsonld

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


# --- the Data Integrity proof (eddsa-rdfc-2022), checked with pyld, base58 and cryptography ----

# The published JSON-LD contexts, as the package keeps them (contexts/SOURCES.md names their
# sources); the test reads the files itself and gives pyld a loader of its own.
_PACKAGE_CONTEXTS = (
    Path(__file__).parents[2]
    / "services"
    / "certification"
    / "bekal"
    / "certification"
    / "contexts"
)
PUBLISHED_CONTEXTS = {
    "https://www.w3.org/ns/credentials/v2": _PACKAGE_CONTEXTS / "credentials-v2.jsonld",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": _PACKAGE_CONTEXTS
    / "ob-v3p0-context-3.0.3.json",
}


def jsonld_loader(documents: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """A pyld document loader answering only ``documents`` (URL -> parsed JSON): no network."""

    def load(url: str, options: Any = None) -> dict[str, Any]:
        if url not in documents:
            raise LookupError(f"not a context this test holds: {url}")
        return {"contextUrl": None, "documentUrl": url, "document": documents[url]}

    return load


def published_contexts() -> dict[str, Any]:
    return {url: json.loads(path.read_text("utf-8")) for url, path in PUBLISHED_CONTEXTS.items()}


def rdfc_canonical(document: dict[str, Any], loader: Callable[..., dict[str, Any]]) -> str:
    """RDFC-1.0 (URDNA2015) canonical N-Quads, by pyld."""
    options = {"algorithm": "URDNA2015", "format": "application/n-quads", "documentLoader": loader}
    canonical: str = jsonld.normalize(document, options)
    return canonical


def multikey_public_key(multibase: str) -> Ed25519PublicKey:
    """A Multikey ``publicKeyMultibase``: ``z`` + base58btc of 0xed 0x01 + the raw Ed25519 key."""
    assert multibase.startswith("z")
    raw = base58.b58decode(multibase[1:])
    assert raw[:2] == b"\xed\x01" and len(raw) == 34
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def verify_data_integrity(
    secured: dict[str, Any], public_key: Ed25519PublicKey, loader: Callable[..., dict[str, Any]]
) -> None:
    """vc-di-eddsa 3.3 (eddsa-rdfc-2022) verification; raises InvalidSignature when it fails.

    The proof options (the proof without proofValue, with the document's @context) and the
    document without its proof are canonicalised and hashed (SHA-256) separately; the Ed25519
    signature in proofValue (base58btc multibase) is over the two hashes, options first.
    """
    proof = dict(secured["proof"])
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-rdfc-2022"
    assert proof["proofPurpose"] == "assertionMethod"
    proof_value = proof.pop("proofValue")
    assert proof_value.startswith("z")
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    options = {"@context": secured["@context"], **proof}
    hash_data = (
        hashlib.sha256(rdfc_canonical(options, loader).encode()).digest()
        + hashlib.sha256(rdfc_canonical(unsecured, loader).encode()).digest()
    )
    public_key.verify(base58.b58decode(proof_value[1:]), hash_data)
