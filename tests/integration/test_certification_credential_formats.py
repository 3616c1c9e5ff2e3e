"""A certificate's credential in both Open Badges 3.0 proof formats, through HTTP: the JWT as
issued, and the same credential with an embedded Data Integrity proof (eddsa-rdfc-2022),
checked with pyld, base58 and cryptography against the did:web document and our context as
the service publishes them."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from cryptography.exceptions import InvalidSignature
from fastapi import FastAPI
from sqlalchemy import update

from bekal.certification.app import create_app
from bekal.certification.models import Certificate
from tests.support.apps import bearer, running
from tests.support.certification import (
    b64url_encode,
    certification_settings,
    jsonld_loader,
    jws_parts,
    multikey_public_key,
    published_contexts,
    verify_data_integrity,
    verify_with_jwks,
)
from tests.support.db import count
from tests.support.factories import participant_completed
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

BASE_URL = "https://sertifikat.example.id"
JWT_CLAIMS = {"iss", "jti", "nbf", "sub", "iat", "exp"}


async def _issued(app: FastAPI, n: int) -> bool:
    return await count(app.state.db, Certificate) == n


async def test_credential_is_served_as_jwt_or_with_a_data_integrity_proof(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(
        make_settings, database_url, broker, tmp_path, public_base_url=f"{BASE_URL}/"
    )
    siti = participant_completed(participant_name="Siti Rahmawati")
    dewi = participant_completed(session_id=siti.session_id, participant_name="Dewi Lestari")
    reader = bearer(settings, ministry="industry", roles=("training_officer",), subject="petugas")

    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, [siti, dewi])
        await wait_until(lambda: _issued(app, 2))
        certs = (await client.get("/api/v1/certificates", headers=reader)).json()["data"]
        cert = next(c for c in certs if c["recipient_name"] == "Siti Rahmawati")
        url = f"/api/v1/certificates/{cert['id']}/credential"

        assert (await client.get(url)).status_code == 401

        # --- the JWT, as issued (the default, or asked for) ----------------------------------
        for params, headers in (
            ({}, {}),
            ({}, {"Accept": "application/vc+jwt"}),
            ({"format": "vc-jwt"}, {"Accept": "application/vc"}),
        ):
            r = await client.get(url, params=params, headers={**reader, **headers})
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/vc+jwt"
            assert r.text == cert["credential_jws"]
        jwks = (await client.get("/.well-known/jwks.json")).json()
        claims = verify_with_jwks(cert["credential_jws"], jwks)

        # --- the same credential with an embedded Data Integrity proof ------------------------
        r = await client.get(url, headers={**reader, "Accept": "application/vc"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vc"
        secured = r.json()
        r = await client.get(url, params={"format": "data-integrity"}, headers=reader)
        assert r.status_code == 200 and r.json()["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
        assert {k: v for k, v in secured.items() if k != "proof"} == {
            k: v for k, v in claims.items() if k not in JWT_CLAIMS
        }
        context_url = f"{BASE_URL}/contexts/sertifikat-v1.jsonld"
        assert secured["@context"][-1] == context_url

        # Checked with what the service publishes: its did:web document and its context.
        did_doc = (await client.get("/.well-known/did.json")).json()
        proof = secured["proof"]
        (method,) = [
            m for m in did_doc["verificationMethod"] if m["id"] == proof["verificationMethod"]
        ]
        assert method["type"] == "Multikey" and method["id"] in did_doc["assertionMethod"]
        assert method["controller"] == did_doc["id"] == claims["issuer"]["id"]
        r = await client.get("/contexts/sertifikat-v1.jsonld")
        assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
        loader = jsonld_loader({**published_contexts(), context_url: r.json()})
        key = multikey_public_key(method["publicKeyMultibase"])
        verify_data_integrity(secured, key, loader)

        changed = copy.deepcopy(secured)
        changed["credentialSubject"]["hours"] = 400
        with pytest.raises(InvalidSignature):
            verify_data_integrity(changed, key, loader)

        # --- a row altered in the database is refused, never signed anew ----------------------
        dewi_cert = next(c for c in certs if c["recipient_name"] == "Dewi Lestari")
        _, payload, _, _ = jws_parts(dewi_cert["credential_jws"])
        payload["credentialSubject"]["hours"] = 400
        h, _, s = dewi_cert["credential_jws"].split(".")
        tampered = f"{h}.{b64url_encode(json.dumps(payload).encode())}.{s}"
        async with app.state.db.session() as session:
            await session.execute(
                update(Certificate)
                .where(Certificate.id == uuid.UUID(dewi_cert["id"]))
                .values(credential_jws=tampered)
            )
            await session.commit()
        r = await client.get(
            f"/api/v1/certificates/{dewi_cert['id']}/credential",
            params={"format": "data-integrity"},
            headers=reader,
        )
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("certificate-credential-invalid")

        r = await client.get(f"/api/v1/certificates/{uuid.uuid4()}/credential", headers=reader)
        assert r.status_code == 404
        r = await client.get(url, params={"format": "xml"}, headers=reader)
        assert r.status_code == 422
