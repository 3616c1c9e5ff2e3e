"""The issuer and its signing keys: the keys that ever signed, and the did:web document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification import domain, pdf, proofs
from bekal.certification.models import SigningKey
from bekal.certification.signing import CertificateSigner, public_key_from_jwk
from bekal.shared.db import utcnow

log = structlog.get_logger(__name__)


async def register_signing_key(*, session: AsyncSession, signer: CertificateSigner) -> bool:
    """Record the current key's public half once; return whether it was new.

    Replicas start together: the loser of the insert race finds the winner's row.
    """
    if await session.get(SigningKey, signer.kid) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                SigningKey(
                    kid=signer.kid,
                    algorithm=signer.jwk["alg"],
                    public_jwk=json.dumps(signer.jwk, sort_keys=True),
                    first_used_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    log.info("signing_key_registered", kid=signer.kid)
    return True


async def published_keys(
    *, session: AsyncSession, signer: CertificateSigner
) -> list[dict[str, Any]]:
    """Every key that ever signed, newest first; the current key even before it is recorded."""
    rows = (
        await session.scalars(select(SigningKey).order_by(SigningKey.first_used_at.desc()))
    ).all()
    keys = [json.loads(row.public_jwk) for row in rows]
    if all(k.get("kid") != signer.kid for k in keys):
        keys.insert(0, dict(signer.jwk))
    return keys


@dataclass(frozen=True)
class Issuer:
    """Who signs and where it is published: the current key and the public address; and the
    printed certificate's place, signatory and emblem."""

    signer: CertificateSigner
    public_base_url: str
    paper: pdf.Paper = pdf.EXAMPLE_PAPER

    @cached_property
    def did(self) -> str:
        return domain.issuer_did(self.public_base_url)

    @cached_property
    def context_url(self) -> str:
        """Where our JSON-LD context (certificateNumber, competencyUnits, hours) is served."""
        return domain.bekal_context_url(self.public_base_url)

    @cached_property
    def multikey_method(self) -> str:
        """The current key's Multikey verification method (for Data Integrity proofs)."""
        return f"{self.did}#{proofs.multikey(self.signer.public_key)}"

    def status_list_url(self, status_list: int) -> str:
        return f"{self.public_base_url.rstrip('/')}/status-lists/{status_list}"

    def verification_url(self, code: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/verify/{code}"


def did_document(issuer: Issuer, keys: list[dict[str, Any]]) -> dict[str, Any]:
    """The issuer's did:web document: every key that ever signed, twice: as a JsonWebKey (named
    by its thumbprint, the JWT proof's ``kid``) and as a Multikey (named by its multibase, the
    Data Integrity proof's ``verificationMethod``, as vc-di-eddsa asks)."""
    did = issuer.did
    methods: list[dict[str, Any]] = []
    for key in keys:
        methods.append(
            {
                "id": f"{did}#{key['kid']}",
                "type": "JsonWebKey",
                "controller": did,
                "publicKeyJwk": {k: key[k] for k in ("kty", "crv", "x")},
            }
        )
        multibase = proofs.multikey(public_key_from_jwk(key))
        methods.append(
            {
                "id": f"{did}#{multibase}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multibase,
            }
        )
    ids = [m["id"] for m in methods]
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/jwk/v1",
            "https://w3id.org/security/multikey/v1",
        ],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": ids,
    }
