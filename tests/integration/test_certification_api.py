"""The certification API and public verification, against a real broker and both databases.

Certificates come from real ParticipantCompleted events; the signature is checked
independently from the JWKS served over HTTP; the verification pages, the rate limit,
revocation, auth and input validation are exercised through HTTP.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from fastapi import FastAPI
from sqlalchemy import update

from bekal.certification.app import create_app
from bekal.certification.models import Certificate
from bekal.certification.services.issuing import issue_certificate
from bekal.shared.events.catalogue import CertificateRevoked
from bekal.shared.settings import Settings
from tests.support.apps import bearer, http_client, published, running
from tests.support.certification import (
    b64url_decode,
    b64url_encode,
    certification_settings,
    jws_parts,
    rfc7638_thumbprint,
    status_list_bit,
    verify_with_jwks,
)
from tests.support.db import count
from tests.support.factories import participant_completed
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

FACILITY_NAME = "Lapas Kelas I Cipinang"  # where the course was held: never on the certificate
RATE_LIMIT = 40  # more than this test's own calls from the default client


async def _status_bit(client: httpx.AsyncClient, jwks: dict[str, Any], index: int) -> bool:
    """The bit at ``index`` in the published status list, its signature checked first."""
    r = await client.get("/status-lists/1")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vc+jwt"
    header, _, _, _ = jws_parts(r.text)
    assert header["typ"] == "vc+jwt"
    status_list = verify_with_jwks(r.text, jwks)
    assert status_list["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    # A copy kept by a verifier expires: it must fetch the list again to see new revocations.
    assert status_list["validUntil"] > status_list["validFrom"]
    subject = status_list["credentialSubject"]
    assert subject["statusPurpose"] == "revocation" and subject["type"] == "BitstringStatusList"
    return status_list_bit(subject["encodedList"], index)


def _token(settings: Settings, ministry: str, *roles: str) -> dict[str, str]:
    return bearer(settings, ministry=ministry, roles=roles, subject=f"{ministry}-user")


async def _issued(app: FastAPI, n: int) -> bool:
    return await count(app.state.db, Certificate) == n


async def test_certificates_are_listed_verified_publicly_and_revocable(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(
        make_settings,
        database_url,
        broker,
        tmp_path,
        verify_rate_limit_per_minute=RATE_LIMIT,
        public_base_url="https://sertifikat.example.id/",
    )
    siti = participant_completed(participant_name="Siti Rahmawati")
    dewi = participant_completed(session_id=siti.session_id, participant_name="Dewi Lestari")
    admin = _token(settings, "industry", "certification_admin")

    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, [siti, dewi])
        await wait_until(lambda: _issued(app, 2))

        # --- the staff list: filters, pages, count ------------------------------------------
        r = await client.get("/api/v1/certificates", headers=admin)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == 2 and len(body["data"]) == 2 and body["next_cursor"] is None

        r = await client.get(
            "/api/v1/certificates",
            params={"participant_id": str(siti.participant_id)},
            headers=admin,
        )
        (cert,) = r.json()["data"]
        assert r.json()["count"] == 1
        assert cert["enrollment_id"] == str(siti.enrollment_id)
        assert cert["session_id"] == str(siti.session_id)
        assert cert["recipient_name"] == "Siti Rahmawati"
        assert cert["program_title"] == "Bimtek Wirausaha Baru IKM Batik"
        assert cert["status"] == "valid" and cert["revoked_on"] is None
        assert cert["number"] in ("IKMA/2024/000001", "IKMA/2024/000002")
        assert len(cert["verification_code"]) == 24
        assert (
            cert["verification_url"]
            == f"https://sertifikat.example.id/verify/{cert['verification_code']}"
        )

        first = await client.get("/api/v1/certificates", params={"limit": 1}, headers=admin)
        assert first.json()["count"] == 2 and first.json()["next_cursor"]
        second = await client.get(
            "/api/v1/certificates",
            params={"limit": 1, "cursor": first.json()["next_cursor"]},
            headers=admin,
        )
        assert second.json()["next_cursor"] is None
        paged = {first.json()["data"][0]["id"], second.json()["data"][0]["id"]}
        assert len(paged) == 2

        r = await client.get(
            f"/api/v1/certificates/{cert['id']}",
            headers=_token(settings, "industry", "training_officer"),
        )
        assert r.status_code == 200 and r.json() == cert
        r = await client.get(f"/api/v1/certificates/{uuid.uuid4()}", headers=admin)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"

        # --- auth ----------------------------------------------------------------------------
        assert (await client.get("/api/v1/certificates")).status_code == 401
        wrong_ministry = _token(settings, "corrections", "certification_admin")
        assert (await client.get("/api/v1/certificates", headers=wrong_ministry)).status_code == 403
        wrong_role = _token(settings, "industry", "reporting_viewer")
        assert (await client.get("/api/v1/certificates", headers=wrong_role)).status_code == 403

        # --- input validation names the field ------------------------------------------------
        for params, field in (
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"participant_id": "bukan-uuid"}, "participant_id"),
            ({"cursor": "!!rusak!!"}, "cursor"),
        ):
            r = await client.get("/api/v1/certificates", params=params, headers=admin)
            assert r.status_code == 422, (params, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert field in {e["field"].split(".")[-1] for e in r.json()["errors"]}, r.json()

        # --- the credential, checked independently with the JWKS served over HTTP ------------
        jwks = (await client.get("/.well-known/jwks.json")).json()
        header, claims, signature, signing_input = jws_parts(cert["credential_jws"])
        # Open Badges 3.0's JWT proof: typ "JWT" and no header beyond alg, kid, typ.
        assert header == {"alg": "EdDSA", "typ": "JWT", "kid": header["kid"]}
        did, thumbprint = header["kid"].split("#")
        assert did == "did:web:sertifikat.example.id"
        (jwk,) = [k for k in jwks["keys"] if k["kid"] == thumbprint]
        assert thumbprint == rfc7638_thumbprint(jwk) and jwk["iss"] == did
        assert verify_with_jwks(cert["credential_jws"], jwks) == claims

        # The same key, by the same id, in the issuer's did:web document.
        did_doc = (await client.get("/.well-known/did.json")).json()
        assert did_doc["id"] == did and header["kid"] in did_doc["assertionMethod"]
        (method,) = [m for m in did_doc["verificationMethod"] if m["id"] == header["kid"]]
        assert method["publicKeyJwk"] == {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}

        # An Open Badges 3.0 credential on the VC 2.0 data model.
        assert claims["@context"][0] == "https://www.w3.org/ns/credentials/v2"
        assert claims["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
        assert claims["id"] == f"urn:uuid:{cert['id']}" == claims["jti"]
        assert claims["issuer"] == {
            "id": did,
            "type": ["Profile"],
            "name": "Direktorat Jenderal Industri Kecil, Menengah, dan Aneka, "
            "Kementerian Perindustrian",
        }
        assert claims["iss"] == did and claims["certificateNumber"] == cert["number"]
        subject = claims["credentialSubject"]
        achievement = subject["achievement"]
        assert achievement["achievementType"] == "CertificateOfCompletion"
        assert achievement["name"] == "Bimtek Wirausaha Baru IKM Batik"
        assert [a["targetCode"] for a in achievement["alignment"]] == ["BTK.01", "BTK.02"]
        assert subject["activityStartDate"].startswith("2024-09-03")
        assert subject["activityEndDate"].startswith("2024-09-07")
        assert subject["source"]["name"] == "Yayasan Batik Indonesia" and subject["hours"] == 40
        # The recipient only as a salted hash of the name (Open Badges IdentityObject).
        (identity,) = subject["identifier"]
        assert identity["hashed"] is True and identity["identityType"] == "name"
        expected = hashlib.sha256(("siti rahmawati" + identity["salt"]).encode()).hexdigest()
        assert identity["identityHash"] == f"sha256${expected}"
        status_entry = claims["credentialStatus"]
        assert status_entry["type"] == "BitstringStatusListEntry"
        assert status_entry["statusPurpose"] == "revocation"
        assert (
            status_entry["statusListCredential"] == "https://sertifikat.example.id/status-lists/1"
        )

        # One character of the payload changed: the signature no longer holds.
        raw_payload = b64url_decode(signing_input.decode().split(".")[1]).decode()
        forged = raw_payload.replace("BTK.01", "BTK.07")
        assert forged != raw_payload and len(forged) == len(raw_payload)
        header_b64 = signing_input.decode().split(".")[0]
        with pytest.raises(InvalidSignature):
            verify_with_jwks(
                f"{header_b64}.{b64url_encode(forged.encode())}.{b64url_encode(signature)}", jwks
            )

        # --- stigma: nothing on the credential points at a facility, a prison or a person -----
        assert "Siti" not in raw_payload and str(siti.participant_id) not in raw_payload
        assert str(siti.session_id) not in raw_payload
        for text in (raw_payload, json.dumps(cert)):
            assert FACILITY_NAME not in text and "lapas" not in text.lower()

        # --- public verification by code, and by number only with the holder's name ----------
        code = cert["verification_code"]
        r = await client.get(f"/public/verify/{code}")
        assert r.status_code == 200
        v = r.json()
        assert v["result"] == "valid" and v["number"] == cert["number"]
        assert v["recipient_name"] == "Siti Rahmawati"
        assert v["program_title"] == "Bimtek Wirausaha Baru IKM Batik"
        assert v["issued_on"] == cert["issued_on"] and v["issuer"] == claims["issuer"]["name"]
        assert v["revoked_on"] is None
        assert r.headers["cache-control"] == "no-store"
        # What the paper shows, and nothing else: no ids, no code, no credential, no facility.
        assert set(v) == {
            "result",
            "number",
            "recipient_name",
            "program_code",
            "program_title",
            "competency_units",
            "hours",
            "start_date",
            "end_date",
            "issued_on",
            "issuer",
            "partner",
            "revoked_on",
            "replaced_by_number",
        }

        by_number = f"/public/verify/{quote(cert['number'], safe='')}"
        r = await client.get(by_number, params={"name": "  siti   RAHMAWATI "})
        assert r.json()["result"] == "valid" and r.json()["recipient_name"] == "Siti Rahmawati"
        for params in ({}, {"name": "Dewi Lestari"}, {"name": ""}):
            r = await client.get(by_number, params=params)
            assert r.status_code == 200 and r.json() == {"result": "unknown"}, params

        for unknown in (
            "tidak-ada-kode-seperti-ini",
            quote("IKMA/2024/999999", safe=""),
            "x" * 300,
        ):
            r = await client.get(f"/public/verify/{unknown}", params={"name": "Siti Rahmawati"})
            assert r.status_code == 200 and r.json() == {"result": "unknown"}

        page = await client.get(f"/verify/{code}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Sertifikat sah" in page.text and "Siti Rahmawati" in page.text
        assert "3 September 2024 s.d. 7 September 2024" in page.text
        assert FACILITY_NAME not in page.text and "noindex" in page.text
        page = await client.get("/verify/tidak-ada-kode-seperti-ini")
        assert "tidak dikenal" in page.text and "Siti" not in page.text

        # The page for an employer with only the paper: the number and the name typed in.
        form = await client.get("/verify")
        assert form.status_code == 200 and "name='nomor'" in form.text and "Siti" not in form.text
        page = await client.get(
            "/verify", params={"nomor": cert["number"], "nama": "Siti Rahmawati"}
        )
        assert "Sertifikat sah" in page.text and cert["number"] in page.text
        page = await client.get("/verify", params={"nomor": cert["number"], "nama": "Dewi"})
        assert "tidak dikenal" in page.text and "Siti" not in page.text
        page = await client.get("/verify", params={"nomor": cert["number"]})
        assert "tidak dikenal" in page.text and "Siti" not in page.text

        # --- a row altered after signing is no longer vouched for ----------------------------
        dewi_cert = next(c for c in body["data"] if c["recipient_name"] == "Dewi Lestari")
        d_header, d_payload, d_signature = dewi_cert["credential_jws"].split(".")
        d_claims = json.loads(b64url_decode(d_payload))
        d_claims["credentialSubject"]["hours"] = 400
        tampered = f"{d_header}.{b64url_encode(json.dumps(d_claims).encode())}.{d_signature}"
        async with app.state.db.session() as s:
            await s.execute(
                update(Certificate)
                .where(Certificate.id == uuid.UUID(dewi_cert["id"]))
                .values(credential_jws=tampered)
            )
            await s.commit()
        r = await client.get(f"/public/verify/{dewi_cert['verification_code']}")
        assert r.json() == {"result": "invalid"}

        # --- revocation ------------------------------------------------------------------------
        reason = {"reason": "Diterbitkan atas data kelulusan yang keliru"}
        officer = _token(settings, "industry", "training_officer")
        r = await client.post(
            f"/api/v1/certificates/{cert['id']}/revoke", json=reason, headers=officer
        )
        assert r.status_code == 403
        r = await client.post(
            f"/api/v1/certificates/{cert['id']}/revoke", json={"reason": ""}, headers=admin
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
        r = await client.get(f"/public/verify/{code}")
        assert r.json()["result"] == "valid"  # nothing was written by the refused attempts
        index = int(status_entry["statusListIndex"])
        assert not await _status_bit(client, jwks, index)
        r = await client.post(
            f"/api/v1/certificates/{cert['id']}/revoke", json=reason, headers=admin
        )
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        revoked_on = r.json()["revoked_on"]
        assert revoked_on
        r = await client.post(
            f"/api/v1/certificates/{cert['id']}/revoke", json=reason, headers=admin
        )
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        v = (await client.get(f"/public/verify/{code}")).json()
        assert v["result"] == "revoked" and v["revoked_on"] == revoked_on
        assert "Sertifikat telah dicabut" in (await client.get(f"/verify/{code}")).text
        assert await _status_bit(client, jwks, index)  # the published list says so at once
        records = await published(app, "certification.certificates", at_least=3)
        revoked = [p.event for p in records if isinstance(p.event, CertificateRevoked)]
        assert [(e.certificate_id, e.number, e.kind) for e in revoked] == [
            (uuid.UUID(cert["id"]), cert["number"], "revoked")
        ]
        assert revoked[0].revoked_on.isoformat() == revoked_on
        assert all(b"Diterbitkan atas data" not in p.raw() for p in records)  # reason kept here

        # --- the rate limit, per client ------------------------------------------------------
        async with (
            http_client(app, peer="203.0.113.7") as hammering,
            http_client(app, peer="198.51.100.4") as other,
        ):
            for _ in range(RATE_LIMIT):
                assert (await hammering.get(f"/public/verify/{code}")).status_code == 200
            r = await hammering.get(f"/public/verify/{code}")
            assert r.status_code == 429
            assert r.headers["content-type"] == "application/problem+json"
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert r.headers["cache-control"] == "no-store"
            assert r.json()["status"] == 429
            assert (await hammering.get(f"/verify/{code}")).status_code == 429
            presented = {"credential": cert["credential_jws"]}
            assert (await hammering.post("/public/verify", json=presented)).status_code == 429
            r = await other.post("/public/verify", json=presented)
            assert r.status_code == 200 and r.json()["result"] == "revoked"
            assert (await other.get(f"/public/verify/{code}")).status_code == 200


async def test_rotated_signing_key_keeps_earlier_certificates_verifiable(
    database_url, broker, make_settings, tmp_path
):
    old_key, new_key = tmp_path / "old.pem", tmp_path / "new.pem"
    base = certification_settings(
        make_settings, database_url, broker, tmp_path, consumer_auto_start=False
    )

    async def issue(app: FastAPI) -> Certificate:
        async with app.state.db.session() as s:
            cert, _ = await issue_certificate(
                session=s,
                event=participant_completed(),
                event_id=str(uuid.uuid4()),
                issuer=app.state.certificate_issuer,
            )
            await s.commit()
            return cert

    app = create_app(base.model_copy(update={"certificate_signing_key_file": old_key}))
    async with running(app):
        old_kid = app.state.certificate_signer.kid
        before = await issue(app)
    old_key.unlink()  # the private key is gone for good; its public half stays published

    app = create_app(base.model_copy(update={"certificate_signing_key_file": new_key}))
    async with running(app) as client:
        new_kid = app.state.certificate_signer.kid
        after = await issue(app)
        jwks = (await client.get("/.well-known/jwks.json")).json()
        did_doc = (await client.get("/.well-known/did.json")).json()
        results = [
            (await client.get(f"/public/verify/{c.verification_code}")).json()
            for c in (before, after)
        ]

    assert old_kid != new_kid
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]  # newest first
    assert jws_parts(before.credential_jws)[0]["kid"].endswith(f"#{old_kid}")
    assert jws_parts(after.credential_jws)[0]["kid"].endswith(f"#{new_kid}")
    # Checked independently: each with its own key from the JWKS, neither with the other's.
    verify_with_jwks(before.credential_jws, jwks)
    verify_with_jwks(after.credential_jws, jwks)
    only_new = {"keys": [k for k in jwks["keys"] if k["kid"] == new_kid]}
    with pytest.raises(ValueError):  # no key by that id: the old one is needed
        verify_with_jwks(before.credential_jws, only_new)
    jwk_methods = [m for m in did_doc["verificationMethod"] if m["type"] == "JsonWebKey"]
    assert [m["id"].split("#")[1] for m in jwk_methods] == [new_kid, old_kid]
    assert [r["result"] for r in results] == ["valid", "valid"]
    assert [r["number"] for r in results] == ["IKMA/2024/000001", "IKMA/2024/000002"]
