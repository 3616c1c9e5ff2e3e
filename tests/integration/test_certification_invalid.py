"""A tampered or forged credential is "invalid", told apart from "unknown" (never issued, or a
number asked for with someone else's name), in the JSON answer and on the public page."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import update

from bekal.certification.app import create_app
from bekal.certification.models import Certificate
from tests.support.apps import bearer, running
from tests.support.certification import b64url_encode, certification_settings, jws_parts
from tests.support.db import count
from tests.support.factories import participant_completed
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


async def _issued(app: FastAPI, n: int) -> bool:
    return await count(app.state.db, Certificate) == n


def _signed(payload: dict[str, Any], header: dict[str, Any], key: Ed25519PrivateKey) -> str:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return jwt.api_jws.encode(body, key, algorithm="EdDSA", headers=header)


async def test_tampered_and_forged_credentials_are_invalid_not_unknown(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(
        make_settings,
        database_url,
        broker,
        tmp_path,
        public_base_url="https://sertifikat.example.id/",
        verify_rate_limit_per_minute=1000,
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
        token = cert["credential_jws"]
        header, payload, _, _ = jws_parts(token)
        h64, p64, s64 = token.split(".")

        async def presented(credential: str) -> dict[str, Any]:
            r = await client.post("/public/verify", json={"credential": credential})
            assert r.status_code == 200, r.text
            return dict(r.json())

        assert (await presented(token))["result"] == "valid"

        # Altered payload, the issuer's signature kept.
        altered = json.loads(json.dumps(payload))
        altered["credentialSubject"]["hours"] = 400
        altered_token = f"{h64}.{b64url_encode(json.dumps(altered).encode())}.{s64}"
        # A broken signature.
        flipped = bytearray(jwt.utils.base64url_decode(s64))
        flipped[0] ^= 0x01
        bad_signature = f"{h64}.{p64}.{b64url_encode(bytes(flipped))}"
        # Signed by a key that is not the issuer's, naming the issuer's key id.
        stranger = Ed25519PrivateKey.generate()
        wrong_key = _signed(payload, {"kid": header["kid"], "typ": "JWT"}, stranger)
        # Signed by a key that is not the issuer's, naming its own key id.
        own_kid = _signed(payload, {"kid": f"{payload['iss']}#bukan-kunci-kami"}, stranger)
        # Signed with the issuer's own key, but a registered claim disagrees with the
        # credential (Open Badges: "the credential is not valid").
        signer = app.state.certificate_signer
        wrong_sub = {**payload, "sub": f"urn:uuid:{uuid.uuid4()}"}
        disagreeing = signer.sign_open_badge(wrong_sub, issuer_id=payload["iss"])

        for what, credential in (
            ("altered payload", altered_token),
            ("bad signature", bad_signature),
            ("wrong issuer key", wrong_key),
            ("unknown key", own_kid),
            ("claims disagree", disagreeing),
            ("not a credential", "bukan-kredensial-sama-sekali.x.y"),
        ):
            assert await presented(credential) == {"result": "invalid"}, what

        # Genuinely signed by us, but no certificate under that number: unknown, not invalid.
        never_issued = {**payload, "certificateNumber": "IKMA/2024/999999"}
        genuine = signer.sign_open_badge(never_issued, issuer_id=payload["iss"])
        assert await presented(genuine) == {"result": "unknown"}

        # --- a stored certificate altered in the database ---------------------------------------
        dewi_cert = next(c for c in certs if c["recipient_name"] == "Dewi Lestari")
        d_h64, _, d_s64 = dewi_cert["credential_jws"].split(".")
        d_payload = jws_parts(dewi_cert["credential_jws"])[1]
        d_payload["credentialSubject"]["hours"] = 400
        tampered = f"{d_h64}.{b64url_encode(json.dumps(d_payload).encode())}.{d_s64}"
        async with app.state.db.session() as session:
            await session.execute(
                update(Certificate)
                .where(Certificate.id == uuid.UUID(dewi_cert["id"]))
                .values(credential_jws=tampered)
            )
            await session.commit()
        code = dewi_cert["verification_code"]
        r = await client.get(f"/public/verify/{code}")
        assert r.json() == {"result": "invalid"}
        by_number = f"/public/verify/{quote(dewi_cert['number'], safe='')}"
        r = await client.get(by_number, params={"name": "Dewi Lestari"})
        assert r.json() == {"result": "invalid"}
        # Someone else's name tells nothing about the number, tampered or not.
        r = await client.get(by_number, params={"name": "Siti Rahmawati"})
        assert r.json() == {"result": "unknown"}
        assert (await client.get("/public/verify/tidak-ada-kode")).json() == {"result": "unknown"}

        page = await client.get(f"/verify/{code}")
        assert page.status_code == 200
        assert "Sertifikat tidak sah" in page.text
        assert "Sertifikat sah" not in page.text and "tidak dikenal" not in page.text
        assert "Dewi" not in page.text  # nothing read from it is shown
        page = await client.get("/verify", params={"nomor": dewi_cert["number"], "nama": "Siti"})
        assert "tidak dikenal" in page.text and "tidak sah" not in page.text
