"""The register's admins' pages, signed in through Keycloak: facilities, transfers and merges,
the SDP import, the audit trail, subject access and erasure, each under the API's rule and with
the API's audit; error pages in Bahasa Indonesia; the navigation marks the current section."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, timedelta

import httpx
import jwt
import pytest
from fastapi import Request

from bekal.registry.models import ImportJob
from bekal.shared.db import utcnow
from bekal.shared.web import page_router
from tests.support.keycloak import ADMIN, INDUSTRY_USER, OFFICER, Keycloak
from tests.support.staff_pages import csrf_of, post_form, signed_in
from tests.web.conftest import Registry
from tests.web.test_keycloak_realm import access_token

pytestmark = pytest.mark.integration

TODAY = date.today().isoformat()
COLUMNS = (
    "registration_number,full_name,nik,sex,date_of_birth,facility_code,admission_date,"
    "expected_release_date,consent_training,consent_data_sharing"
)


def sdp_export(prefix: str, lines: int, *, bad_at: int, facility: str = "LPP-TANGERANG") -> str:
    """An SDP export of ``lines`` people; the one on physical line ``bad_at`` has a short NIK."""
    rows = [COLUMNS]
    for n in range(lines):
        nik = "123" if n + 2 == bad_at else f"3603{prefix}{n:08d}"[:16].ljust(16, "0")
        rows.append(
            f"{prefix}.{n:05d},Warga {prefix} {n},{nik},{'FM'[n % 2]},1990-01-0{1 + n % 9},"
            f"{facility},2025-01-02,2027-06-01,ya,ya"
        )
    return "\n".join(rows) + "\n"


def _current_nav(page: httpx.Response) -> list[str]:
    return re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', page.text)


async def _subject(keycloak: Keycloak, user: object) -> str:
    token = await access_token(keycloak, user)  # type: ignore[arg-type]
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


async def test_facilities_are_created_changed_and_deactivated(registry: Registry):
    async with signed_in(registry.base, ADMIN) as admin:
        wrong = await post_form(
            admin,
            "/staf/fasilitas/baru",
            "/staf/fasilitas/baru",
            {"code": "", "name": "Lapas Kelas IIA Cipinang", "capacity": "banyak"},
        )
        assert wrong.status_code == 422
        assert 'href="#f-code"' in wrong.text and 'href="#f-capacity"' in wrong.text
        assert 'value="Lapas Kelas IIA Cipinang"' in wrong.text  # the input is kept
        made = await post_form(
            admin,
            "/staf/fasilitas/baru",
            "/staf/fasilitas/baru",
            {
                "code": "LAPAS-CIPINANG",
                "name": "Lapas Kelas I Cipinang",
                "kind": "lapas",
                "facility_class": "I",
                "province": "DKI Jakarta",
                "regional_office": "Kanwil Ditjenpas DKI Jakarta",
                "capacity": "880",
            },
        )
        assert made.status_code == 303, made.text[:2000]
        page_path = made.headers["location"]
        page = await admin.get(page_path)
        assert "Fasilitas LAPAS-CIPINANG terdaftar." in page.text
        assert _current_nav(page) == ["Fasilitas"]
        again = await post_form(admin, "/staf/fasilitas/baru", "/staf/fasilitas/baru", {
            "code": "LAPAS-CIPINANG", "name": "x", "kind": "lapas", "facility_class": "I",
            "province": "DKI Jakarta", "regional_office": "x", "capacity": "1",
        })  # fmt: skip
        assert again.status_code == 422 and "sudah terdaftar" in again.text

        changed = await post_form(
            admin,
            page_path,
            page_path,
            {
                "name": "Lapas Kelas I Cipinang Jakarta",
                "facility_class": "I",
                "regional_office": "Kanwil Ditjenpas DKI Jakarta",
                "capacity": "900",
            },
        )
        assert changed.status_code == 303
        page = await admin.get(page_path)
        assert "Perubahan disimpan." in page.text and "Lapas Kelas I Cipinang Jakarta" in page.text
        off = await post_form(admin, page_path, f"{page_path}/nonaktifkan", {})
        assert off.status_code == 303
        page = await admin.get(page_path)
        assert "Fasilitas dinonaktifkan" in page.text and "Aktifkan kembali" in page.text
        listing = await admin.get("/staf/fasilitas", params={"active": "tidak"})
        assert "LAPAS-CIPINANG" in listing.text and "LPP-TANGERANG" not in listing.text

    # An officer reads facilities (as the API lets anyone signed in) but changes none.
    async with signed_in(registry.base, OFFICER) as officer:
        listing = await officer.get("/staf/fasilitas")
        assert listing.status_code == 200 and "LAPAS-CIPINANG" in listing.text
        assert "Daftarkan fasilitas baru" not in listing.text
        refused = await post_form(officer, "/staf/fasilitas", f"{page_path}/aktifkan", {})
        assert refused.status_code == 403
        assert (await officer.get("/staf/fasilitas/baru")).status_code == 403


async def test_an_import_with_one_bad_line_ends_with_the_apis_counts(
    registry: Registry, keycloak: Keycloak
):
    export = sdp_export("7101", 40, bad_at=5)
    async with signed_in(registry.base, ADMIN) as admin:
        form = await admin.get("/staf/impor")
        assert _current_nav(form) == ["Impor SDP"]
        token = csrf_of(form)
        empty = await admin.post("/staf/impor", data={"csrf_token": token, "mode": "uji"})
        assert empty.status_code == 422 and "Pilih berkas CSV" in empty.text

        dry = await admin.post(
            "/staf/impor",
            data={"csrf_token": token, "mode": "uji"},
            files={"berkas": ("sdp.csv", export.encode(), "text/csv")},
        )
        assert dry.status_code == 303
        job_path = dry.headers["location"]
        page = await _finished(admin, job_path)
        assert "Uji coba selesai" in page.text
        # The bad line, by its number in the file (the header is line 1), field and reason.
        assert re.search(r'<th scope="row">\s*5\s*</th>\s*<td>\s*nik\s*</td>', page.text)
        assert "NIK harus terdiri dari tepat 16 angka" in page.text

        real = await admin.post(
            "/staf/impor",
            data={"csrf_token": token, "mode": "impor"},
            files={"berkas": ("sdp.csv", export.encode(), "text/csv")},
        )
        job_id = real.headers["location"].rsplit("/", 1)[1]
        page = await _finished(admin, real.headers["location"])
        assert "Impor selesai" in page.text
        history = await admin.get("/staf/impor")
        assert history.text.count("sdp.csv") == 2

    bearer = await access_token(keycloak, ADMIN)
    async with httpx.AsyncClient(base_url=registry.base) as api:
        answer = await api.get(
            f"/api/v1/imports/{job_id}", headers={"Authorization": f"Bearer {bearer}"}
        )
    job = answer.json()
    assert (job["created"], job["invalid"], job["status"]) == (39, 1, "done")
    shown = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]+)</dd>", page.text))
    assert shown["Dibuat"] == str(job["created"]) and shown["Baris salah"] == str(job["invalid"])
    assert shown["Tidak berubah"] == str(job["unchanged"])


async def test_an_import_in_the_wrong_encoding_is_refused_on_the_form_naming_the_line(
    registry: Registry,
):
    good = sdp_export("7102", 3, bad_at=0)
    latin_1 = good.replace("Warga 7102 1", "Warga José").encode("latin-1")  # é: line 3
    oversized = (good + "x" * (70 * 1024) + "\n").encode()  # line 5
    refused = {
        "latin-1": (latin_1, "Baris 3: bukan teks UTF-8 (byte 0xE9"),
        "utf-16": (good.encode("utf-16"), "Baris 1: berkas ini UTF-16 atau berkas biner"),
        "binary": (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "Baris 1:"),
        "oversized": (oversized, "Baris 5 lebih panjang dari 65.536 byte"),
    }
    async with signed_in(registry.base, ADMIN) as admin:
        token = csrf_of(await admin.get("/staf/impor"))
        before = (await admin.get("/staf/impor")).text.count("salah.csv")
        for case, (body, words) in refused.items():
            page = await admin.post(
                "/staf/impor",
                data={"csrf_token": token, "mode": "impor"},
                files={"berkas": ("salah.csv", body, "text/csv")},
            )
            assert page.status_code == 422, (case, page.text[:2000])
            assert 'href="#f-berkas"' in page.text and words in page.text, case
            assert "UTF-8" in page.text and "Kesalahan internal" not in page.text
        # No job was made for any of them.
        assert (await admin.get("/staf/impor")).text.count("salah.csv") == before

        # A byte-order mark (as Excel's "CSV UTF-8" writes) is accepted.
        marked = await admin.post(
            "/staf/impor",
            data={"csrf_token": token, "mode": "uji"},
            files={"berkas": ("bom.csv", "\ufeff".encode() + good.encode(), "text/csv")},
        )
        assert marked.status_code == 303, marked.text[:2000]
        page = await _finished(admin, marked.headers["location"])
        assert "Uji coba selesai" in page.text
        shown = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]+)</dd>", page.text))
        assert (shown["Akan dibuat"], shown["Baris salah"]) == ("3", "0")


async def _finished(client: httpx.AsyncClient, job_path: str) -> httpx.Response:
    import asyncio

    for _ in range(300):
        status = (await client.get(f"{job_path}/status.json")).json()
        if status["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.2)
    page = await client.get(job_path)
    assert page.status_code == 200
    return page


async def running_job(registry: Registry) -> uuid.UUID:
    """A job as it stands mid-run (40 %), beating: its page holds still for axe-core."""
    job_id = uuid.uuid4()
    async with registry.app.state.db.session() as session:
        session.add(
            ImportJob(
                id=job_id,
                status="running",
                dry_run=False,
                filename="sdp-2026-12-06.csv",
                total_lines=3000,
                processed_lines=1200,
                created_count=1180,
                unchanged_count=0,
                invalid_count=1,
                created_by="admin",
                created_at=utcnow() - timedelta(seconds=5),
                heartbeat_at=utcnow() + timedelta(minutes=10),
            )
        )
        await session.commit()
    return job_id


async def test_a_running_jobs_page_reloads_itself_without_javascript(registry: Registry):
    job_id = await running_job(registry)
    async with signed_in(registry.base, ADMIN) as admin:
        page = await admin.get(f"/staf/impor/{job_id}")
        assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.text
        assert 'href="?segar=tidak"' in page.text  # a way to stop it (WCAG 2.2.1)
        assert "/staf/static/job-progress.js" in page.text  # with JavaScript: in place
        assert 'value="40"' in page.text and "1.200 dari 3.000 baris" in page.text
        still = await admin.get(f"/staf/impor/{job_id}", params={"segar": "tidak"})
        assert 'http-equiv="refresh"' not in still.text
        status = (await admin.get(f"/staf/impor/{job_id}/status.json")).json()
        assert (status["status"], status["processed_lines"], status["progress"]) == (
            "running",
            1200,
            0.4,
        )


async def test_a_transfer_and_a_merge(registry: Registry):
    yosefina = registry.ids["Yosefína Kristanti"]
    async with signed_in(registry.base, OFFICER) as officer:
        person = f"/staf/warga-binaan/{yosefina}"
        refused = await post_form(officer, person, f"{person}/gabung", {"duplicate_id": "x"})
        assert refused.status_code == 403  # merges are the admins' (the API's rule)
        # One facility's officer has no authority over any destination: no form, and a
        # transfer posted anyway is refused on the form, naming the destination (the API's rule).
        page = await officer.get(person)
        assert "Catat pemindahan" not in page.text and "kantor wilayah" in page.text
        refused = await post_form(
            officer,
            person,
            f"{person}/pindah",
            {"to_facility_id": str(registry.ids["LAPAS-PONTIANAK"]), "transferred_on": TODAY},
        )
        assert refused.status_code == 403 and 'href="#f-to_facility_id"' in refused.text
        assert "LAPAS-PONTIANAK" in refused.text
        assert (await officer.get(person)).status_code == 200  # still hers to see: not moved

    async with signed_in(registry.base, ADMIN) as admin:
        wrong = await post_form(admin, person, f"{person}/pindah", {"transferred_on": TODAY})
        assert wrong.status_code == 422 and 'href="#f-to_facility_id"' in wrong.text
        moved = await post_form(
            admin,
            person,
            f"{person}/pindah",
            {"to_facility_id": str(registry.ids["LAPAS-PONTIANAK"]), "transferred_on": TODAY},
        )
        assert moved.status_code == 303
    async with signed_in(registry.base, OFFICER) as officer:
        # Now in another facility: the officer no longer sees her.
        assert (await officer.get(person)).status_code == 404

    async with signed_in(registry.base, ADMIN) as admin:
        survivor = f"/staf/warga-binaan/{registry.ids['pontianak']}"
        empty = await post_form(admin, survivor, f"{survivor}/gabung", {"merged_on": TODAY})
        assert empty.status_code == 422 and "Catatan ganda: Wajib diisi." in empty.text
        missing = await post_form(
            admin, survivor, f"{survivor}/gabung", {"duplicate_id": "TIDAK.ADA", "merged_on": TODAY}
        )
        assert missing.status_code == 422 and "Tidak ada catatan" in missing.text
        merged = await post_form(
            admin, survivor, f"{survivor}/gabung", {"duplicate_id": "TGR.001", "merged_on": TODAY}
        )
        assert merged.status_code == 303, merged.text[:2000]
        page = await admin.get(merged.headers["location"])
        assert "Catatan ganda digabungkan" in page.text
        duplicate = await admin.get(f"/staf/warga-binaan/{yosefina}")
        assert "Digabung" in duplicate.text and "Gabungkan catatan ganda" not in duplicate.text


async def test_the_audit_trail_shows_the_officers_reads(registry: Registry, keycloak: Keycloak):
    dewi = registry.ids["Dewi Ratnasari"]
    async with signed_in(registry.base, OFFICER) as officer:
        assert (await officer.get(f"/staf/warga-binaan/{dewi}")).status_code == 200
        assert (await officer.get("/staf/audit")).status_code == 403
    subject = await _subject(keycloak, OFFICER)
    async with signed_in(registry.base, ADMIN) as admin:
        trail = await admin.get(
            "/staf/audit", params={"inmate_id": str(dewi), "action": "inmate.read"}
        )
        assert trail.status_code == 200 and _current_nav(trail) == ["Jejak audit"]
        assert subject in trail.text and "Membuka data orang" in trail.text
        by_actor = await admin.get("/staf/audit", params={"actor": subject})
        assert str(dewi) in by_actor.text
        bad = await admin.get("/staf/audit", params={"inmate_id": "bukan-id"})
        assert 'href="#f-inmate_id"' in bad.text
        # The trail grows with every read: past the cap its total is "more than".
        settings = registry.app.state.settings
        cap = settings.list_count_limit
        try:
            settings.list_count_limit = 1
            capped = await admin.get("/staf/audit")
            assert "dari lebih dari 1 data." in capped.text
        finally:
            settings.list_count_limit = cap


async def test_subject_access_and_erasure(registry: Registry):
    siti = registry.ids["Siti Nurhaliza"]
    person = f"/staf/warga-binaan/{siti}"
    async with signed_in(registry.base, OFFICER) as officer:
        page = await officer.get(person)
        assert "Akses subjek data" not in page.text and "3603011504900000" not in page.text
        assert (await officer.get(f"{person}/akses-subjek.json")).status_code == 403
        assert (await officer.get(f"{person}/hapus")).status_code == 403
    async with signed_in(registry.base, ADMIN) as admin:
        page = await admin.get(person)
        assert "Akses subjek data" in page.text and "3603011504900000" not in page.text
        view = await admin.get(f"{person}/akses-subjek")
        assert "3603011504900000" in view.text  # the NIK: admins only, as the API
        download = await admin.get(f"{person}/akses-subjek.json")
        assert download.headers["content-disposition"].startswith("attachment;")
        export = json.loads(download.text)
        assert export["nik"] == "3603011504900000" and export["inmate"]["id"] == str(siti)
        trail = await admin.get(
            "/staf/audit",
            params={"inmate_id": str(siti), "action": "inmate.subject_access_exported"},
        )
        assert trail.text.count("Ekspor akses subjek") >= 2

        unconfirmed = await post_form(admin, f"{person}/hapus", f"{person}/hapus", {})
        assert unconfirmed.status_code == 422 and 'href="#f-konfirmasi"' in unconfirmed.text
        assert "Siti Nurhaliza" in (await admin.get("/staf/warga-binaan?q=siti")).text
        erased = await post_form(admin, f"{person}/hapus", f"{person}/hapus", {"konfirmasi": "ya"})
        assert erased.status_code == 303
        page = await admin.get(person)
        assert "telah dihapus" in page.text and "Siti Nurhaliza" not in page.text
        assert "Siti Nurhaliza" not in (await admin.get("/staf/warga-binaan?q=siti")).text


async def test_error_pages_are_pages_in_bahasa_indonesia(registry: Registry):
    boom = page_router()

    @boom.get("/uji-galat")
    async def fail(request: Request) -> None:
        raise RuntimeError("kaboom")

    registry.app.include_router(boom)
    async with signed_in(registry.base, ADMIN) as admin:
        for path, status, title in (
            ("/staf/tidak-ada", 404, "Halaman tidak ditemukan"),
            ("/staf/uji-galat", 500, "Terjadi kesalahan"),
            (f"/staf/warga-binaan/{uuid.uuid4()}", 404, "Halaman tidak ditemukan"),
        ):
            page = await admin.get(path)
            assert page.status_code == status, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert title in page.text and "kaboom" not in page.text
            assert "Menu utama" in page.text  # with the service's navigation
            if status == 500:  # the code the operator finds the error's log line by
                assert f"sebutkan kode kejadian {page.headers['x-request-id']}." in page.text
        api = await admin.get("/api/v1/tidak-ada")
        assert api.headers["content-type"] == "application/problem+json"


async def test_the_navigation_marks_the_section_of_every_page(registry: Registry):
    tangerang = registry.ids["LPP-TANGERANG"]
    async with signed_in(registry.base, ADMIN) as admin:
        for path, section in (
            ("/staf/warga-binaan", "Warga binaan"),
            (f"/staf/warga-binaan/{registry.ids['Dewi Ratnasari']}", "Warga binaan"),
            ("/staf/penerimaan", "Daftarkan penerimaan"),
            (f"/staf/fasilitas/{tangerang}/kandidat", "Kandidat pelatihan"),
            (f"/staf/fasilitas/{tangerang}", "Fasilitas"),
            ("/staf/fasilitas/baru", "Fasilitas"),
            ("/staf/impor", "Impor SDP"),
            ("/staf/audit", "Jejak audit"),
        ):
            assert _current_nav(await admin.get(path)) == [section], path
    async with signed_in(registry.base, INDUSTRY_USER) as industry:
        assert (await industry.get("/staf/impor")).status_code == 403
