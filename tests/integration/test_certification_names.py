"""Hard names, printed and verified: through the broker, the PDF and the public verification.

For each name the certificate is issued from a real ParticipantCompleted, its PDF is read back
with pypdf, and the name as read from the paper, and as an employer would type it (straight
apostrophe, no accents, other case and spacing), verifies by number; another name does not.
"""

from __future__ import annotations

import io
from html import escape
from urllib.parse import quote

import httpx
import pypdf
import pytest
from fastapi import FastAPI

from bekal.certification.app import create_app
from bekal.certification.models import Certificate
from tests.support.apps import bearer, running
from tests.support.certification import certification_settings
from tests.support.db import count
from tests.support.factories import participant_completed
from tests.support.kafka import publish
from tests.support.staff_pages import csrf_of
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# (the name as registered, how an employer types it from the paper)
NAMES = [
    ("Ma\u2019ruf Hidayat", "ma'ruf  hidayat"),
    ("Nur'aini", "NUR\u2019AINI"),
    ("Dédé", "Dede"),
    ("Nguyễn Thị Ánh", "Nguyen Thi Anh"),
    ("Çağla Y\u0131lmaz", "Cagla Yilmaz"),
    ("Łukasz Wójcik", "lukasz wojcik"),
    ("王小明", "王小明"),
]


async def _issued(app: FastAPI, n: int) -> bool:
    return await count(app.state.db, Certificate) == n


async def test_hard_names_print_exactly_and_verify_as_typed(
    database_url, broker, make_settings, tmp_path
):
    settings = certification_settings(
        make_settings, database_url, broker, tmp_path, verify_rate_limit_per_minute=1000
    )
    events = {name: participant_completed(participant_name=name) for name, _ in NAMES}
    staff = bearer(settings, ministry="industry", roles=["certification_admin"], subject="s-1")

    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, list(events.values()))
        await wait_until(lambda: _issued(app, len(NAMES)))

        for name, typed in NAMES:
            r = await client.get(
                "/api/v1/certificates",
                params={"participant_id": str(events[name].participant_id)},
                headers=staff,
            )
            (cert,) = r.json()["data"]
            assert cert["recipient_name"] == name

            r = await client.get(cert["pdf_url"], headers=staff)
            assert r.status_code == 200, r.text
            # pypdf gives U+0000 before each letter of the CJK font (see the unit test).
            lines = (
                pypdf.PdfReader(io.BytesIO(r.content))
                .pages[0]
                .extract_text()
                .replace("\x00", "")
                .splitlines()
            )
            assert name in lines, lines
            printed = lines[lines.index("diberikan kepada") + 1]

            by_number = f"/public/verify/{quote(cert['number'], safe='')}"
            for given in (printed, typed):
                v = (await client.get(by_number, params={"name": given})).json()
                assert v["result"] == "valid", (name, given)
                assert v["number"] == cert["number"] and v["recipient_name"] == name
                page = await client.get("/verify", params={"nomor": cert["number"], "nama": given})
                assert "Sertifikat sah" in page.text and escape(name) in page.text, given

            for other in ("Dodo", name + " Saputra", "Siti Rahmawati"):
                r = await client.get(by_number, params={"name": other})
                assert r.json() == {"result": "unknown"}, other
            page = await client.get("/verify", params={"nomor": cert["number"], "nama": "Dodo"})
            assert "Sertifikat tidak dikenal" in page.text and escape(name) not in page.text


# (the name as registered, what staff type into the search to find it)
SEARCHES = [
    ("Dédé Suhendar", ["Dede", "dede", "DÉDÉ", "dédé suhendar"]),
    ("Ma\u2019ruf Hidayat", ["ma'ruf", "Ma\u2019ruf", "MARUF", "hidayat", "ma`ruf h"]),
    ("Łukasz Wójcik", ["lukasz", "WOJCIK", "Łukasz"]),
]


async def test_staff_search_by_name_ignores_case_accents_and_apostrophes(
    database_url, broker, make_settings, tmp_path
):
    """The API's search and the staff page's, on SQLite and PostgreSQL: one folding, the one the
    public verification uses, applied to the name kept with each certificate."""
    settings = certification_settings(make_settings, database_url, broker, tmp_path)
    names = [name for name, _ in SEARCHES] + ["Dodo Sutisna"]
    events = [participant_completed(participant_name=name) for name in names]
    staff = bearer(settings, ministry="industry", roles=["training_officer"], subject="s-1")

    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, events)
        await wait_until(lambda: _issued(app, len(names)))

        async def found(q: str) -> list[str]:
            r = await client.get("/api/v1/certificates", params={"q": q}, headers=staff)
            assert r.status_code == 200, r.text
            return sorted(c["recipient_name"] for c in r.json()["data"])

        for name, typed in SEARCHES:
            for q in typed:
                assert await found(q) == [name], q
        assert await found("Dodo") == ["Dodo Sutisna"]  # a different name is not folded alike
        assert await found("Dedi") == []
        (dede,) = (
            await client.get("/api/v1/certificates", params={"q": "dede"}, headers=staff)
        ).json()["data"]
        assert await found(dede["number"]) == ["Dédé Suhendar"]  # the number, as before

        # The staff page searches the same way (signed in as the development preset; over
        # https, as the session cookie is Secure outside development).
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as browser:
            sign_in = await browser.get("/staf/masuk")
            r = await browser.post(
                "/staf/masuk/pengembang",
                data={"csrf_token": csrf_of(sign_in), "preset": "certification-admin"},
            )
            assert r.status_code == 303, r.text[:500]
            page = await browser.get("/staf/sertifikat", params={"q": "Dede"})
            assert page.status_code == 200
            assert escape("Dédé Suhendar") in page.text and "Dodo Sutisna" not in page.text
            page = await browser.get("/staf/sertifikat", params={"q": "ma'ruf"})
            assert escape("Ma\u2019ruf Hidayat") in page.text
            assert escape("Dédé") not in page.text
