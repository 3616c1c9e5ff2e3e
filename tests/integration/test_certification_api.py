"""The certification API and public verification, against a real broker and both databases.

Certificates come from real ParticipantCompleted events; the signature is checked
independently from the JWKS served over HTTP; the verification pages, the rate limit,
revocation, auth and input validation are exercised through HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from urllib.parse import quote

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy import update

from bekal.certification.app import create_app
from bekal.certification.models import Certificate
from bekal.certification.services import issue_certificate
from bekal.shared.settings import Settings
from tests.support.apps import bearer, http_client, running
from tests.support.certification import certification_settings, completed
from tests.support.db import count
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

FACILITY_NAME = "Lapas Kelas I Cipinang"  # where the course was held: never on the certificate
RATE_LIMIT = 20


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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
    siti = completed(name="Siti Rahmawati")
    dewi = completed(session_id=siti.session_id, name="Dewi Lestari")
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
        header_b64, payload_b64, signature_b64 = cert["credential_jws"].split(".")
        header = json.loads(_b64decode(header_b64))
        assert header["alg"] == "EdDSA"
        (jwk,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
        assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
        canonical = json.dumps(
            {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]},
            separators=(",", ":"),
            sort_keys=True,
        )
        assert header["kid"] == _b64encode(hashlib.sha256(canonical.encode()).digest())  # RFC 7638

        public_key = Ed25519PublicKey.from_public_bytes(_b64decode(jwk["x"]))
        signature = _b64decode(signature_b64)
        public_key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
        claims = json.loads(_b64decode(payload_b64))
        assert claims["number"] == cert["number"] and claims["recipient_name"] == "Siti Rahmawati"
        assert claims["issuer"] == (
            "Direktorat Jenderal Industri Kecil, Menengah, dan Aneka, Kementerian Perindustrian"
        )
        assert claims["partner"] == "Yayasan Batik Indonesia" and claims["hours"] == 40
        assert [u["code"] for u in claims["competency_units"]] == ["BTK.01", "BTK.02"]
        assert claims["start_date"] == "2024-09-03" and claims["end_date"] == "2024-09-07"

        # One character of the payload changed: the signature no longer holds.
        raw_payload = _b64decode(payload_b64).decode()
        forged = raw_payload.replace("Siti Rahmawati", "Siti Rahmawatu")
        assert forged != raw_payload and len(forged) == len(raw_payload)
        with pytest.raises(InvalidSignature):
            public_key.verify(
                signature, f"{header_b64}.{_b64encode(forged.encode())}".encode("ascii")
            )

        # --- stigma: nothing on the credential points at a facility or a prison --------------
        assert not [k for k in claims if "facility" in k or "session" in k or "participant" in k]
        for text in (raw_payload, json.dumps(cert)):
            assert FACILITY_NAME not in text and "lapas" not in text.lower()

        # --- public verification by code and by number ---------------------------------------
        code = cert["verification_code"]
        r = await client.get(f"/public/verify/{code}")
        assert r.status_code == 200
        v = r.json()
        assert v["result"] == "valid" and v["number"] == cert["number"]
        assert v["recipient_name"] == "Siti Rahmawati"
        assert v["program_title"] == "Bimtek Wirausaha Baru IKM Batik"
        assert v["issued_on"] == cert["issued_on"] and v["issuer"] == claims["issuer"]
        assert v["revoked_on"] is None
        assert r.headers["cache-control"] == "no-store"

        r = await client.get(f"/public/verify/{quote(cert['number'], safe='')}")
        assert r.json()["result"] == "valid" and r.json()["recipient_name"] == "Siti Rahmawati"

        for unknown in (
            "tidak-ada-kode-seperti-ini",
            quote("IKMA/2024/999999", safe=""),
            "x" * 300,
        ):
            r = await client.get(f"/public/verify/{unknown}")
            assert r.status_code == 200 and r.json() == {"result": "unknown"}

        page = await client.get(f"/verify/{code}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Sertifikat sah" in page.text and "Siti Rahmawati" in page.text
        assert "3 September 2024 s.d. 7 September 2024" in page.text
        assert FACILITY_NAME not in page.text and "noindex" in page.text
        page = await client.get("/verify/tidak-ada-kode-seperti-ini")
        assert "tidak dikenal" in page.text and "Siti" not in page.text

        # --- a row altered after signing is no longer vouched for ----------------------------
        dewi_cert = next(c for c in body["data"] if c["recipient_name"] == "Dewi Lestari")
        d_header, d_payload, d_signature = dewi_cert["credential_jws"].split(".")
        d_claims = json.loads(_b64decode(d_payload))
        d_claims["hours"] = 400
        tampered = f"{d_header}.{_b64encode(json.dumps(d_claims).encode())}.{d_signature}"
        async with app.state.db.session() as s:
            await s.execute(
                update(Certificate)
                .where(Certificate.id == uuid.UUID(dewi_cert["id"]))
                .values(credential_jws=tampered)
            )
            await s.commit()
        r = await client.get(f"/public/verify/{dewi_cert['verification_code']}")
        assert r.json() == {"result": "unknown"}

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
                s,
                event=completed(),
                event_id=str(uuid.uuid4()),
                signer=app.state.certificate_signer,
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
        results = [
            (await client.get(f"/public/verify/{c.verification_code}")).json()
            for c in (before, after)
        ]

    assert old_kid != new_kid
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]  # newest first
    assert json.loads(_b64decode(before.credential_jws.split(".")[0]))["kid"] == old_kid
    assert json.loads(_b64decode(after.credential_jws.split(".")[0]))["kid"] == new_kid
    assert [r["result"] for r in results] == ["valid", "valid"]
    assert [r["number"] for r in results] == ["IKMA/2024/000001", "IKMA/2024/000002"]
