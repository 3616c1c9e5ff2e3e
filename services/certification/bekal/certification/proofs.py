"""The embedded Data Integrity proof (``eddsa-rdfc-2022``) of an OpenBadgeCredential, and the
JSON-LD contexts it is canonicalised with, read from the package (never fetched).

W3C "Data Integrity EdDSA Cryptosuites v1.0", section 3.3 (eddsa-rdfc-2022): the proof
options (the proof without ``proofValue``, with the credential's ``@context``) and the
credential without its proof are each canonicalised with RDFC-1.0 and hashed with SHA-256;
the Ed25519 signature over the proof options' hash followed by the credential's hash, in
base58btc multibase, is the ``proofValue``. The verification method is a ``Multikey`` in the
issuer's did:web document.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyld import jsonld

from bekal.certification import domain
from bekal.certification.signing import CertificateSigner

CRYPTOSUITE = "eddsa-rdfc-2022"
CONTEXTS_DIR = Path(__file__).parent / "contexts"
BEKAL_CONTEXT_FILE = "sertifikat-v1.jsonld"
# The published contexts, as committed copies (contexts/SOURCES.md says where each is from).
PUBLISHED_CONTEXTS = {
    domain.VC_CONTEXT: "credentials-v2.jsonld",
    domain.OB_CONTEXT: "ob-v3p0-context-3.0.3.json",
}
# Multicodec prefix of an Ed25519 public key (0xed, as an unsigned varint).
_ED25519_PUB = b"\xed\x01"

DocumentLoader = Callable[..., dict[str, Any]]


class ContextNotServed(Exception):
    """A JSON-LD document the loader does not hold: it is never fetched instead."""


@cache
def context_document(filename: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CONTEXTS_DIR / filename).read_text("utf-8"))
    return document


def document_loader(*, bekal_context_url: str) -> DocumentLoader:
    """A pyld document loader that answers only the packaged contexts, ours at its URL."""
    served = {**PUBLISHED_CONTEXTS, bekal_context_url: BEKAL_CONTEXT_FILE}

    def load(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        filename = served.get(url)
        if filename is None:
            raise ContextNotServed(f"JSON-LD document not held in the package: {url}")
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": context_document(filename),
        }

    return load


def canonical_nquads(document: Mapping[str, Any], *, loader: DocumentLoader) -> str:
    """RDFC-1.0 canonical N-Quads (pyld's URDNA2015, the algorithm RDFC-1.0 standardised)."""
    canonical: str = jsonld.normalize(
        dict(document),
        {"algorithm": "URDNA2015", "format": "application/n-quads", "documentLoader": loader},
    )
    return canonical


def multikey(public_key: Ed25519PublicKey) -> str:
    """The key as Multikey ``publicKeyMultibase``: base58btc (``z``) of 0xed01 + the raw key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + base58.b58encode(_ED25519_PUB + raw).decode("ascii")


def public_key_from_multikey(value: str) -> Ed25519PublicKey:
    if not value.startswith("z"):
        raise ValueError("not base58btc multibase")
    decoded = base58.b58decode(value[1:])
    if not decoded.startswith(_ED25519_PUB) or len(decoded) != 34:
        raise ValueError("not an Ed25519 Multikey")
    return Ed25519PublicKey.from_public_bytes(decoded[2:])


def _hash_data(
    credential: Mapping[str, Any], proof_options: Mapping[str, Any], loader: DocumentLoader
) -> bytes:
    options = {"@context": credential["@context"], **proof_options}
    proof_hash = hashlib.sha256(canonical_nquads(options, loader=loader).encode()).digest()
    document_hash = hashlib.sha256(canonical_nquads(credential, loader=loader).encode()).digest()
    return proof_hash + document_hash


def _xsd_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def add_proof(
    credential: Mapping[str, Any],
    *,
    signer: CertificateSigner,
    verification_method: str,
    created: datetime,
    loader: DocumentLoader,
) -> dict[str, Any]:
    """``credential`` with an embedded ``DataIntegrityProof`` (eddsa-rdfc-2022) by ``signer``."""
    if "proof" in credential:
        raise ValueError("credential already has a proof")
    options: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": _xsd_datetime(created),
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
    }
    signature = signer.sign_bytes(_hash_data(credential, options, loader))
    proof_value = "z" + base58.b58encode(signature).decode("ascii")
    return {**credential, "proof": {**options, "proofValue": proof_value}}


def verify_proof(
    secured: Mapping[str, Any], public_key: Ed25519PublicKey, *, loader: DocumentLoader
) -> bool:
    """Whether ``secured``'s eddsa-rdfc-2022 proof checks out with ``public_key``."""
    proof = secured.get("proof")
    if not isinstance(proof, Mapping) or proof.get("cryptosuite") != CRYPTOSUITE:
        return False
    value = proof.get("proofValue")
    if proof.get("type") != "DataIntegrityProof" or not isinstance(value, str):
        return False
    if not value.startswith("z"):
        return False
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    credential = {k: v for k, v in secured.items() if k != "proof"}
    try:
        public_key.verify(base58.b58decode(value[1:]), _hash_data(credential, options, loader))
    except (InvalidSignature, ValueError, jsonld.JsonLdError):
        return False
    return True
