"""The corrections staff pages in Debian's Chromium through Playwright: a facility officer's
morning signed in through Keycloak's own form, axe-core on every page at 1280 px and 390 px,
one task by keyboard alone, and a screenshot of each page (BEKAL_SCREENSHOT_DIR)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from tests.support.browser import (
    Checker,
    assert_security_headers,
    chromium,
    needs_browser,
    open_tab,
    sign_in,
)
from tests.support.keycloak import INDUSTRY_USER, OFFICER, OTHER_OFFICER
from tests.web.conftest import Registry

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "halaman-staf"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_a_facility_officers_morning_in_the_browser(registry: Registry, shots: Path):
    needs_browser()

    base = registry.base
    async with chromium() as browser:
        tab = await open_tab(browser, base)
        page, errors, headers = tab.page, tab.errors, tab.headers
        checker = Checker(page, shots)

        await page.goto(f"{base}/staf/masuk")
        await checker.check("masuk")
        await sign_in(page, base, OFFICER)
        await checker.check("warga-binaan")

        # Find a person by a part of her name, typed without its accent.
        await page.fill("#f-q", "yosefina")
        await page.get_by_role("button", name="Tampilkan").click()
        await page.get_by_role("link", name="TGR.001").click()
        assert "Yosefína Kristanti" in await page.text_content("h1") or ""
        await checker.check("orang")

        # Register an admission: first with a mistake, then right.
        await page.get_by_role("link", name="Daftarkan penerimaan", exact=True).click()
        await checker.check("penerimaan")
        await page.fill("#f-registration_number", "TGR.300")
        await page.fill("#f-full_name", "Ani Suryani")
        await page.fill("#f-nik", "123")
        await page.check("#f-sex-1")
        await page.fill("#f-date_of_birth", "1990-02-03")
        await page.fill("#f-admission_date", date.today().isoformat())
        await page.fill("#f-expected_release_date", "2027-03-01")
        await page.get_by_role("button", name="Daftarkan").click()
        summary = page.locator(".error-summary")
        assert "NIK harus terdiri dari tepat 16 angka" in (await summary.text_content() or "")
        assert await page.input_value("#f-full_name") == "Ani Suryani"
        await checker.check("penerimaan-galat")
        await page.fill("#f-nik", "3603014302900001")
        await page.get_by_role("button", name="Daftarkan").click()
        await page.wait_for_url(f"{base}/staf/warga-binaan/*")
        assert "Ani Suryani (TGR.300) terdaftar." in (await page.text_content("main") or "")

        # Consent, a court absence and the return, then release on parole.
        await page.check("#f-training")
        await page.check("#f-data_sharing")
        await page.get_by_role("button", name="Simpan persetujuan").click()
        assert "Persetujuan dicatat." in (await page.text_content("main") or "")
        await page.get_by_label("Sidang pengadilan").check()
        await page.get_by_role("button", name="Catat keluar sementara").click()
        assert "Keluar sementara dicatat." in (await page.text_content("main") or "")
        await checker.check("orang-keluar-sementara")
        await page.get_by_role("button", name="Catat kembali").click()
        assert "Kepulangan dicatat." in (await page.text_content("main") or "")
        await page.get_by_label("Pembebasan bersyarat").check()
        await page.get_by_role("button", name="Catat pembebasan").click()
        main = await page.text_content("main") or ""
        assert "Pembebasan dicatat." in main and "Pembebasan bersyarat" in main

        # The candidates near release, and their CSV.
        await page.get_by_role("link", name="Kandidat pelatihan").click()
        assert "Siti Nurhaliza" in (await page.text_content("main") or "")
        await checker.check("kandidat")
        async with page.expect_download() as caught:
            await page.get_by_role("link", name="Unduh CSV").click()
        download = await caught.value
        assert download.suggested_filename.startswith("kandidat_LPP-TANGERANG_12-bulan")

        # One task by keyboard alone: search and open a person.
        await page.goto(f"{base}/staf/warga-binaan")
        for _ in range(40):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "f-q":
                break
        await page.keyboard.type("siti")
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/staf/warga-binaan?q=siti*")
        for _ in range(40):
            await page.keyboard.press("Tab")
            if (await page.evaluate("document.activeElement.textContent")).strip() == ("TGR.000"):
                break
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{base}/staf/warga-binaan/{registry.ids['Siti Nurhaliza']}")

        await page.goto(f"{base}/staf/warga-binaan/{registry.ids['pontianak']}")
        await checker.check("tidak-ditemukan")
        await page.context.close()

        assert_security_headers(headers)
        assert checker.violations == []
        assert errors == []


async def test_other_staff_in_the_browser(registry: Registry, shots: Path):
    needs_browser(axe=False)

    person = registry.ids["Siti Nurhaliza"]
    async with chromium() as browser:
        for user, status, text in (
            (OTHER_OFFICER, 404, "Halaman tidak ditemukan"),
            (INDUSTRY_USER, 403, "Akses ditolak"),
        ):
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await sign_in(page, registry.base, user)
            answer = await page.goto(f"{registry.base}/staf/warga-binaan/{person}")
            assert answer is not None and answer.status == status
            assert text in (await page.text_content("h1") or "")
            assert "Siti" not in (await page.text_content("main") or "")
            await page.screenshot(path=str(shots / f"ditolak-{user.username}.png"))
            await context.close()
