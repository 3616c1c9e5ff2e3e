"""Hard names, printed and verified: through the broker, the PDF and the public verification.

For each name the certificate is issued from a real ParticipantCompleted, its PDF is read back
with pypdf, and the name as read from the paper, and as an employer would type it (straight
apostrophe, no accents, other case and spacing), verifies by number; another name does not.
"""

from __future__ import annotations

import io
from html import escape
from urllib.parse import quote

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
