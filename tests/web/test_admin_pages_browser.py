"""The register's admins' pages in Debian's Chromium through Playwright, signed in through
Keycloak's own form: an SDP import with one bad line (the dry run names it, the real run shows
its progress and ends with the API's counts), facilities, a transfer and a merge, the audit
trail of an officer's reads, subject access and erasure (by keyboard alone), the 404 and 500
pages. axe-core on every page at 1280 px and 390 px, the security headers on every answer, a
screenshot of each page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from sqlalchemy import update

from bekal.registry.models import ImportJob
from bekal.shared.web import page_router
from tests.support.browser import (
    Checker,
    assert_security_headers,
    chromium,
    needs_browser,
    open_tab,
    sign_in,
)
from tests.support.keycloak import ADMIN, OFFICER, Keycloak
from tests.web.conftest import Registry
from tests.web.test_keycloak_realm import access_token
from tests.web.test_registry_admin_pages import running_job, sdp_export

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LINES = 3000  # long enough that the page meets the job still running


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    import os

    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "halaman-admin"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _main(page: Any) -> str:
    return await page.text_content("main") or ""


async def test_an_administrators_day_in_the_browser(
    registry: Registry, keycloak: Keycloak, shots: Path, tmp_path: Path
):
    needs_browser()
    boom = page_router()

    @boom.get("/uji-galat-browser")
    async def fail(request: Request) -> None:
        raise RuntimeError("kaboom")

    registry.app.include_router(boom)

    base = registry.base
    export = tmp_path / "sdp-2026-12-06.csv"
    export.write_text(sdp_export("7102", LINES, bad_at=7))
    siti = registry.ids["Siti Nurhaliza"]
    async with chromium() as browser:
        # An officer reads a person's record: the admin will find the read in the trail.
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await sign_in(page, base, OFFICER, start=f"/staf/warga-binaan/{siti}")
        await context.close()

        tab = await open_tab(browser, base, accept_downloads=True)
        page, errors, headers = tab.page, tab.errors, tab.headers
        checker = Checker(page, shots)
        await sign_in(page, base, ADMIN, start="/staf/impor")
        await checker.check("impor")

        # The dry run names the bad line; nothing is written.
        await page.set_input_files("#f-berkas", str(export))
        await page.get_by_role("button", name="Uji coba (tidak menyimpan)").click()
        await page.wait_for_url(f"{base}/staf/impor/*")
        await page.get_by_role("heading", name="Uji coba selesai").wait_for(timeout=120_000)
        bad = page.get_by_role("row").filter(has_text="NIK harus terdiri")
        assert (await bad.locator("th").text_content() or "").strip() == "7"
        await checker.check("impor-uji-coba")

        # The real run: its page follows the progress, then shows the counts.
        await page.get_by_role("link", name="Unggah berkas lain").click()
        await page.set_input_files("#f-berkas", str(export))
        await page.get_by_role("button", name="Impor", exact=True).click()
        await page.wait_for_url(f"{base}/staf/impor/*")
        job_id = page.url.rsplit("/", 1)[1]
        # Running or, on a quick machine, already done when the page first loads.
        assert (await page.text_content("h1") or "").strip() in ("Impor berjalan", "Impor selesai")
        seen = [int(await page.get_attribute("#kemajuan", "value") or 0)]
        await page.screenshot(path=str(shots / "impor-berjalan-langsung.png"))
        for _ in range(600):
            heading = await page.text_content("h1") or ""
            if "selesai" in heading:
                break
            seen.append(int(await page.get_attribute("#kemajuan", "value") or 0))
            await page.wait_for_timeout(100)
        assert "Impor selesai" in (await page.text_content("h1") or "")
        assert await page.get_attribute("#kemajuan", "value") == "100"
        # Whether the page meets the job running, below 100 %, depends on how fast the machine
        # imports; what it showed never went back. The held job below proves the live page.
        assert seen == sorted(seen), seen
        shown = {
            (await row.locator("dt").text_content() or "").strip(): (
                await row.locator("dd").text_content() or ""
            ).strip()
            for row in await page.locator("#hitungan .summary-row").all()
        }
        await checker.check("impor-selesai")
        bearer = await access_token(keycloak, ADMIN)
        async with httpx.AsyncClient(base_url=base) as api:
            job = (
                await api.get(
                    f"/api/v1/imports/{job_id}",
                    headers={"Authorization": f"Bearer {bearer}"},
                )
            ).json()
        assert job["status"] == "done" and job["invalid"] == 1
        for label, name in (
            ("Dibuat", "created"),
            ("Diperbarui", "updated"),
            ("Dipindahkan", "transferred"),
            ("Dibebaskan", "released"),
            ("Tidak berubah", "unchanged"),
            ("Dilewati", "skipped"),
            ("Baris salah", "invalid"),
        ):
            assert shown[label] == f"{job[name]:,}".replace(",", "."), (label, shown, job)

        # A job mid-run, held still, and the history.
        running = await running_job(registry)
        await page.goto(f"{base}/staf/impor/{running}")
        assert await page.get_attribute("#kemajuan", "value") == "40"
        await checker.check("impor-berjalan")
        # Then the job moves on: the bar follows it in place (job-progress.js), no reload.
        loads = "performance.getEntriesByType('navigation').length"
        page_loads = await page.evaluate(loads)
        async with registry.app.state.db.session() as session:
            await session.execute(
                update(ImportJob).where(ImportJob.id == running).values(processed_lines=2400)
            )
            await session.commit()
        await page.wait_for_function(
            "document.getElementById('kemajuan').value == 80", timeout=15_000
        )
        assert "2.400 dari 3.000 baris" in (await page.text_content("#kemajuan-teks") or "")
        assert await page.evaluate(loads) == page_loads
        assert "Impor berjalan" in (await page.text_content("h1") or "")
        await page.goto(f"{base}/staf/impor")
        assert await page.get_by_role("link", name="sdp-2026-12-06.csv").count() == 0
        assert await page.get_by_role("cell", name="sdp-2026-12-06.csv").count() == 3

        # Facilities: register one, change it, deactivate it.
        await page.get_by_role("link", name="Fasilitas", exact=True).click()
        await checker.check("fasilitas")
        await page.get_by_role("link", name="Daftarkan fasilitas baru").click()
        await checker.check("fasilitas-baru")
        await page.fill("#f-code", "LAPAS-CIPINANG")
        await page.fill("#f-name", "Lapas Kelas I Cipinang")
        await page.select_option("#f-kind", "lapas")
        await page.select_option("#f-facility_class", "I")
        await page.select_option("#f-province", "DKI Jakarta")
        await page.fill("#f-regional_office", "Kanwil Ditjenpas DKI Jakarta")
        await page.get_by_role("button", name="Daftarkan").click()
        assert "Kapasitas: Wajib diisi." in (await page.text_content(".error-summary") or "")
        await checker.check("fasilitas-baru-galat")
        await page.fill("#f-capacity", "880")
        await page.get_by_role("button", name="Daftarkan").click()
        assert "Fasilitas LAPAS-CIPINANG terdaftar." in await _main(page)
        await page.fill("#f-capacity", "900")
        await page.get_by_role("button", name="Simpan perubahan").click()
        assert "Perubahan disimpan." in await _main(page)
        await checker.check("fasilitas-ubah")
        await page.get_by_role("button", name="Nonaktifkan fasilitas").click()
        assert "Fasilitas dinonaktifkan" in await _main(page)
        assert "Nonaktif" in (await page.text_content(".tag") or "")

        # A transfer, then a merge of the duplicate record it turned out to be.
        await page.goto(f"{base}/staf/warga-binaan/{registry.ids['Dewi Ratnasari']}")
        await checker.check("orang-admin")
        await page.select_option("#f-to_facility_id", str(registry.ids["LAPAS-PONTIANAK"]))
        await page.get_by_role("button", name="Catat pemindahan").click()
        assert "Pemindahan dicatat." in await _main(page)
        assert "LAPAS-PONTIANAK" in (await page.text_content(".caption") or "")
        await page.goto(f"{base}/staf/warga-binaan/{registry.ids['pontianak']}")
        await page.fill("#f-duplicate_id", "TGR.002")
        await page.get_by_role("button", name="Gabungkan").click()
        assert "Catat gabungan" not in await _main(page)
        assert "Catatan ganda digabungkan ke catatan ini." in await _main(page)

        # The audit trail shows the officer's read.
        await page.goto(f"{base}/staf/warga-binaan/{siti}")
        await page.get_by_role("link", name="Jejak audit orang ini").click()
        await page.select_option("#f-action", "inmate.read")
        await page.get_by_role("button", name="Tampilkan").click()
        rows = page.get_by_role("row").filter(has_text="Petugas fasilitas")
        assert await rows.count() >= 1
        assert "Membuka data orang" in (await rows.first.text_content() or "")
        await checker.check("audit")

        # Subject access: the page (the NIK) and the download.
        await page.goto(f"{base}/staf/warga-binaan/{siti}")
        await page.get_by_role("link", name="Akses subjek data").click()
        assert "3603011504900000" in await _main(page)
        await checker.check("akses-subjek")
        async with page.expect_download() as caught:
            await page.get_by_role("link", name="Unduh ekspor lengkap (JSON)").click()
        download = await caught.value
        assert download.suggested_filename.startswith("akses-subjek_TGR.000_")
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        assert json.loads(saved.read_text())["nik"] == "3603011504900000"

        # Erasure asks first, then, by keyboard alone, erases.
        await page.goto(f"{base}/staf/warga-binaan/{siti}")
        await page.get_by_role("link", name="Hapus data atas permintaan").click()
        await checker.check("hapus")
        await page.get_by_role("button", name="Hapus data").click()
        assert "Centang pernyataan ini" in (await page.text_content(".error-summary") or "")
        assert "Siti Nurhaliza" in await _main(page)  # not erased yet
        await checker.check("hapus-galat")
        for _ in range(60):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "f-konfirmasi":
                break
        await page.keyboard.press("Space")
        for _ in range(5):
            await page.keyboard.press("Tab")
            if (await page.evaluate("document.activeElement.textContent")).strip() == (
                "Hapus data"
            ):
                break
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{base}/staf/warga-binaan/{siti}")
        assert "telah dihapus" in await _main(page)
        await page.goto(f"{base}/staf/warga-binaan?q=siti")
        assert "Tidak ada warga binaan yang cocok." in await _main(page)

        await page.goto(f"{base}/staf/tidak-ada")
        await checker.check("galat-404")
        # An error no page expected: the 500 page, in the service's layout.
        answer = await page.goto(f"{base}/staf/uji-galat-browser")
        assert answer is not None and answer.status == 500
        assert "Terjadi kesalahan" in await _main(page)
        await checker.check("galat-500")
        await page.context.close()

        assert_security_headers(headers)
        assert checker.violations == []
        assert errors == []
