"""The printed certificate, corrections and erasure, against a real broker and both databases.

The PDF is opened with pypdf and its QR code decoded with a real decoder (zxing-cpp); a
correction re-issues under a new number and revokes the old one, linked both ways; an erasure
leaves only the number and a content hash, and a credential the holder kept still verifies.
"""

from __future__ import annotations

import io
import uuid
from datetime import date
from urllib.parse import quote

import pypdf
import pytest
import zxingcpp
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select

from bekal.certification.app import create_app
from bekal.certification.domain import indonesian_date
from bekal.certification.models import Certificate, ErasedCertificate
from bekal.certification.pdf import qr_png
from bekal.shared.events.catalogue import CertificateReissued, CertificateRevoked
from bekal.shared.settings import Settings
from tests.support.apps import bearer, published, running
from tests.support.certification import (
    certification_settings,
    jws_parts,
    status_list_bit,
    verify_with_jwks,
)
from tests.support.db import count
from tests.support.factories import participant_completed
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

BASE_URL = "https://sertifikat.example.id"
SIGNATORY = {
    "certificate_signatory_name": "Dr. Ir. Hartati Wulandari, M.Sc.",
    "certificate_signatory_position": "Direktur Jenderal Industri Kecil, Menengah, dan Aneka",
    "certificate_signatory_nip": "196812171994032001",
}
FACILITY_NAME = "Lapas Perempuan Kelas IIA Tangerang"  # where the course was held


def _token(settings: Settings, *roles: str, ministry: str = "industry") -> dict[str, str]:
    return bearer(settings, ministry=ministry, roles=roles, subject="sertifikasi-1")


async def _issued(app: FastAPI, n: int) -> bool:
    return await count(app.state.db, Certificate) == n


def _qr_texts(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image)]


async def test_pdf_correction_and_erasure(database_url, broker, make_settings, tmp_path):
    settings = certification_settings(
        make_settings, database_url, broker, tmp_path, public_base_url=BASE_URL
    ).model_copy(update=SIGNATORY)
    misspelt = participant_completed(participant_name="Sity Rahmawati")
    other = participant_completed(session_id=misspelt.session_id, participant_name="Dewi Lestari")
    admin = _token(settings, "certification_admin")
    officer = _token(settings, "training_officer")

    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, [misspelt, other])
        await wait_until(lambda: _issued(app, 2))
        (cert,) = (
            await client.get(
                "/api/v1/certificates",
                params={"participant_id": str(misspelt.participant_id)},
                headers=admin,
            )
        ).json()["data"]

        # --- the printed certificate --------------------------------------------------------
        assert (await client.get(f"/api/v1/certificates/{cert['id']}/pdf")).status_code == 401
        wrong = _token(settings, "certification_admin", ministry="corrections")
        r = await client.get(f"/api/v1/certificates/{cert['id']}/pdf", headers=wrong)
        assert r.status_code == 403
        r = await client.get(f"/api/v1/certificates/{uuid.uuid4()}/pdf", headers=officer)
        assert r.status_code == 404
        r = await client.get(cert["pdf_url"], headers=officer)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert "sertifikat-IKMA-2024-" in r.headers["content-disposition"]
        reader = pypdf.PdfReader(io.BytesIO(r.content))
        assert len(reader.pages) == 1
        page = reader.pages[0]
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        text = page.extract_text()
        assert "SERTIFIKAT" in text and "Sity Rahmawati" in text and cert["number"] in text
        assert "Bimtek Wirausaha Baru IKM Batik" in text and "Membatik tulis" in text
        assert "3 September 2024 s.d. 7 September 2024" in text
        assert "Direktorat Jenderal Industri Kecil, Menengah, dan Aneka" in text
        assert "Yayasan Batik Indonesia" in text
        # Closed by the signatory of the settings, in Jakarta on the day it was issued; the
        # course's last day is the date of graduation.
        assert "Dr. Ir. Hartati Wulandari, M.Sc." in text and "NIP 19681217 199403 2 001" in text
        assert f"Jakarta, {indonesian_date(date.fromisoformat(cert['issued_on']))}" in text
        assert "Tanggal kelulusan: 7 September 2024" in text and cert["issued_on"] != "2024-09-07"
        for word in (FACILITY_NAME, "Lapas", "Tangerang", "pemasyarakatan"):
            assert word.lower() not in text.lower()

        # The QR code: as rendered for the page, and as extracted back out of the PDF.
        rendered = Image.open(io.BytesIO(qr_png(cert["verification_url"])))
        assert _qr_texts(rendered.convert("L")) == [cert["verification_url"]]
        (embedded,) = page.images
        assert _qr_texts(embedded.image.convert("L")) == [
            f"{BASE_URL}/verify/{cert['verification_code']}"
        ]

        # --- correction: a new number, the old one revoked, both linked ---------------------
        path = f"/api/v1/certificates/{cert['id']}/reissue"
        body = {"recipient_name": "Siti Rahmawati", "reason": "Salah ketik nama"}
        assert (await client.post(path, json=body, headers=officer)).status_code == 403
        r = await client.post(path, json={**body, "recipient_name": " "}, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "recipient_name"
        r = await client.post(
            path, json={**body, "recipient_name": "Sity  Rahmawati"}, headers=admin
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "recipient_name"
        r = await client.post(path, json=body, headers=admin)
        assert r.status_code == 201, r.text
        new = r.json()
        assert new["recipient_name"] == "Siti Rahmawati" and new["status"] == "valid"
        assert new["number"] == "IKMA/2024/000003" and new["revision"] == 2
        assert new["replaces_id"] == cert["id"] and new["enrollment_id"] == cert["enrollment_id"]
        assert new["verification_code"] != cert["verification_code"]
        old = (await client.get(f"/api/v1/certificates/{cert['id']}", headers=admin)).json()
        assert old["status"] == "revoked" and old["replaced_by_id"] == new["id"]
        r = await client.post(path, json=body, headers=admin)
        assert r.status_code == 409  # the old one is no longer valid to correct
        r = await client.get(cert["pdf_url"], headers=officer)
        assert r.status_code == 409 and r.json()["replaced_by_id"] == new["id"]
        r = await client.get(new["pdf_url"], headers=officer)
        assert r.status_code == 200 and "Siti Rahmawati" in (
            pypdf.PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
        )

        v = (await client.get(f"/public/verify/{cert['verification_code']}")).json()
        assert v["result"] == "revoked" and v["replaced_by_number"] == new["number"]
        v = (await client.get(f"/public/verify/{new['verification_code']}")).json()
        assert v["result"] == "valid" and v["recipient_name"] == "Siti Rahmawati"
        by_number = f"/public/verify/{quote(new['number'], safe='')}"
        assert (await client.get(by_number, params={"name": "Siti Rahmawati"})).json()[
            "result"
        ] == "valid"
        assert (await client.get(by_number, params={"name": "Sity Rahmawati"})).json() == {
            "result": "unknown"
        }
        jwks = (await client.get("/.well-known/jwks.json")).json()
        status_list = verify_with_jwks((await client.get("/status-lists/1")).text, jwks)
        encoded = status_list["credentialSubject"]["encodedList"]
        for c, revoked in ((cert, True), (new, False)):
            entry = jws_parts(c["credential_jws"])[1]["credentialStatus"]
            assert status_list_bit(encoded, int(entry["statusListIndex"])) is revoked

        assert (await client.get("/status-lists/2")).status_code == 404  # not opened yet
        assert (await client.get("/did.json")).json() == (
            await client.get("/.well-known/did.json")
        ).json()

        records = await published(app, "certification.certificates", at_least=4)
        events = [p.event for p in records]
        (revoked_event,) = [e for e in events if isinstance(e, CertificateRevoked)]
        (reissued,) = [e for e in events if isinstance(e, CertificateReissued)]
        assert revoked_event.kind == "superseded"
        assert revoked_event.replaced_by_certificate_id == uuid.UUID(new["id"])
        assert reissued.certificate_id == uuid.UUID(new["id"])
        assert reissued.replaces_certificate_id == uuid.UUID(cert["id"])
        assert (reissued.number, reissued.replaces_number) == (new["number"], cert["number"])
        assert reissued.enrollment_id == misspelt.enrollment_id
        assert all(b"Rahmawati" not in p.raw() for p in records)

        # --- erasure: only numbers and content hashes are left --------------------------------
        erase = f"/api/v1/participants/{misspelt.participant_id}/erasure"
        assert (await client.post(erase, headers=officer)).status_code == 403
        r = await client.post(erase, headers=admin)
        assert r.status_code == 200
        assert sorted(r.json()["erased_numbers"]) == sorted([cert["number"], new["number"]])
        r = await client.post(erase, headers=admin)
        assert r.json()["count"] == 0  # again: nothing left to erase

        async with app.state.db.session() as s:
            left = (await s.scalars(select(Certificate))).all()
            erased = (await s.scalars(select(ErasedCertificate))).all()
        assert [c.recipient_name for c in left] == ["Dewi Lestari"]
        assert {e.number for e in erased} == {cert["number"], new["number"]}
        assert all("Rahmawati" not in repr(vars(e)) for e in erased)
        r = await client.get(f"/api/v1/certificates/{new['id']}", headers=admin)
        assert r.status_code == 404
        assert (await client.get(f"/public/verify/{new['verification_code']}")).json() == {
            "result": "unknown"
        }

        # The credential the holder kept still verifies, and names nobody.
        r = await client.post("/public/verify", json={"credential": new["credential_jws"]})
        v = r.json()
        assert v["result"] == "valid" and v["number"] == new["number"], v
        assert v["holder_data_erased"] is True and "recipient_name" not in v
        r = await client.post("/public/verify", json={"credential": cert["credential_jws"]})
        assert r.json()["result"] == "revoked"
        # Any other document is unknown, even one signed by us for another number.
        other_cert = (
            await client.get(
                "/api/v1/certificates",
                params={"participant_id": str(other.participant_id)},
                headers=admin,
            )
        ).json()["data"][0]
        r = await client.post("/public/verify", json={"credential": other_cert["credential_jws"]})
        assert r.json()["result"] == "valid" and r.json()["recipient_name"] == "Dewi Lestari"
        forged = new["credential_jws"][:-3] + (
            "AAA" if not new["credential_jws"].endswith("AAA") else "BBB"
        )
        r = await client.post("/public/verify", json={"credential": forged})
        assert r.json() == {"result": "invalid"}  # a broken signature: forged, not unknown


async def test_a_sessions_certificates_are_found_and_print_as_one_pdf(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(
        make_settings, database_url, broker, tmp_path, public_base_url=BASE_URL
    )
    names = ["Rina Marlina", "Ani Suryani", "Yosefína Kristanti"]
    first = participant_completed(participant_name=names[0])
    graduates = [first] + [
        participant_completed(session_id=first.session_id, participant_name=name)
        for name in names[1:]
    ]
    elsewhere = participant_completed(participant_name="Dewi Lestari")
    admin = _token(settings, "certification_admin")
    officer = _token(settings, "training_officer")
    path = f"/api/v1/sessions/{first.session_id}/certificates/pdf"

    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, [*graduates, elsewhere])
        await wait_until(lambda: _issued(app, 4))

        # Search: by a part of the name (case ignored), the number, the program, the dates.
        r = await client.get("/api/v1/certificates", params={"q": "SURYANI"}, headers=officer)
        (ani,) = r.json()["data"]
        assert ani["recipient_name"] == "Ani Suryani"
        r = await client.get("/api/v1/certificates", params={"q": ani["number"]}, headers=admin)
        assert [c["id"] for c in r.json()["data"]] == [ani["id"]]
        r = await client.get("/api/v1/certificates", params={"program": "ikm batik"}, headers=admin)
        assert r.json()["count"] == 4
        r = await client.get("/api/v1/certificates", params={"program": "kayu"}, headers=admin)
        assert r.json()["count"] == 0
        issued_on = ani["issued_on"]
        r = await client.get(
            "/api/v1/certificates",
            params={"issued_from": issued_on, "issued_to": issued_on, "q": "%"},
            headers=admin,
        )
        assert r.json()["count"] == 0  # a wildcard typed in is a character, not a pattern
        r = await client.get(
            "/api/v1/certificates",
            params={"issued_from": "2000-01-01", "issued_to": "2000-12-31"},
            headers=admin,
        )
        assert r.json()["count"] == 0

        # The session's certificates in one PDF: a page each, by name.
        assert (await client.get(path)).status_code == 401
        r = await client.get(path, headers=_token(settings, "reporting_viewer"))
        assert r.status_code == 403
        r = await client.get(path, headers=officer)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        reader = pypdf.PdfReader(io.BytesIO(r.content))
        assert len(reader.pages) == len(graduates)
        texts = [page.extract_text() for page in reader.pages]
        assert [next(n for n in names if n in t) for t in texts] == sorted(names)
        assert all("Dewi Lestari" not in t and "Lapas" not in t for t in texts)

        # A revoked certificate is left out of the print.
        r = await client.post(
            f"/api/v1/certificates/{ani['id']}/revoke",
            json={"reason": "Nilai unit kompetensi keliru dicatat"},
            headers=admin,
        )
        assert r.status_code == 200
        r = await client.get(path, headers=admin)
        assert len(pypdf.PdfReader(io.BytesIO(r.content)).pages) == len(graduates) - 1
        r = await client.get(f"/api/v1/sessions/{uuid.uuid4()}/certificates/pdf", headers=admin)
        assert r.status_code == 404
