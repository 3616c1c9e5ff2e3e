"""The corrections staff pages in Debian's Chromium through Playwright: a facility officer's
morning signed in through Keycloak's own form, axe-core on every page at 1280 px and 390 px,
one task by keyboard alone, and a screenshot of each page (BEKAL_SCREENSHOT_DIR)."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.support.keycloak import INDUSTRY_USER, OFFICER, OTHER_OFFICER, User
from tests.web.conftest import Registry

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE = Path(__file__).resolve().parents[2] / "tools/axe-core/node_modules/axe-core/axe.min.js"
WIDTHS = {"lebar": 1280, "ponsel": 390}


def _needs(what: str, present: bool) -> None:
    if present:
        return
    if IN_CI:
        pytest.fail(f"{what} missing (CI=true: a missing dependency is a failure)", pytrace=False)
    pytest.skip(f"{what} missing")


class Checker:
    """Runs axe-core and takes a screenshot of a page at both widths."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots, self.violations = page, shots, []

    async def check(self, name: str) -> None:
        for label, width in WIDTHS.items():
            await self.page.set_viewport_size({"width": width, "height": 900})
            await self.page.add_script_tag(path=str(AXE))
            found = await self.page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ['violations']}))
                  .violations.filter(v => ['serious', 'critical'].includes(v.impact))
                  .map(v => v.id + ' ' + v.nodes.map(n => n.target.join(' ')).join(' | '))"""
            )
            self.violations += [f"{name} @{width}px: {v}" for v in found]
            overflow = await self.page.evaluate(
                "document.documentElement.scrollWidth > document.documentElement.clientWidth"
            )
            if overflow:
                self.violations.append(f"{name} @{width}px: the page scrolls sideways")
            await self.page.screenshot(path=str(self.shots / f"{name}-{label}.png"), full_page=True)
        await self.page.set_viewport_size({"width": 1280, "height": 900})


async def _sign_in(page: Any, base: str, user: User, start: str = "/staf/warga-binaan") -> Any:
    answer = await page.goto(f"{base}{start}")
    await page.get_by_role("link", name="Masuk dengan akun kementerian").click()
    await page.fill("#username", user.username)
    await page.fill("#password", user.password)
    await page.click("#kc-login")
    await page.wait_for_url(f"{base}{start}")
    return answer


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "halaman-staf"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_a_facility_officers_morning_in_the_browser(registry: Registry, shots: Path):
    _needs("Chromium (Debian package 'chromium'; `make browser`)", CHROMIUM is not None)
    _needs("axe-core (`make axe-install`)", AXE.is_file())
    from playwright.async_api import async_playwright

    base = registry.base
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            # axe is injected as a script: the pages' own policy would refuse it.
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, bypass_csp=True, locale="id-ID"
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            headers: dict[str, dict[str, str]] = {}
            page.on(
                "response",
                lambda r: (
                    headers.__setitem__(r.url, r.headers)
                    if r.url.startswith(base + "/staf") and "/static/" not in r.url
                    else None
                ),
            )
            checker = Checker(page, shots)

            await page.goto(f"{base}/staf/masuk")
            await checker.check("masuk")
            await _sign_in(page, base, OFFICER)
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
                if (await page.evaluate("document.activeElement.textContent")).strip() == (
                    "TGR.000"
                ):
                    break
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/staf/warga-binaan/{registry.ids['Siti Nurhaliza']}")

            await page.goto(f"{base}/staf/warga-binaan/{registry.ids['pontianak']}")
            await checker.check("tidak-ditemukan")
            await context.close()

            for url, got in headers.items():
                policy = got.get("content-security-policy", "")
                assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy, url
                assert got.get("x-content-type-options") == "nosniff", url
                assert got.get("referrer-policy"), url
            assert checker.violations == []
            assert errors == []
        finally:
            await browser.close()


async def test_other_staff_in_the_browser(registry: Registry, shots: Path):
    _needs("Chromium (Debian package 'chromium'; `make browser`)", CHROMIUM is not None)
    from playwright.async_api import async_playwright

    person = registry.ids["Siti Nurhaliza"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for user, status, text in (
                (OTHER_OFFICER, 404, "Halaman tidak ditemukan"),
                (INDUSTRY_USER, 403, "Akses ditolak"),
            ):
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await _sign_in(page, registry.base, user)
                answer = await page.goto(f"{registry.base}/staf/warga-binaan/{person}")
                assert answer is not None and answer.status == status
                assert text in (await page.text_content("h1") or "")
                assert "Siti" not in (await page.text_content("main") or "")
                await page.screenshot(path=str(shots / f"ditolak-{user.username}.png"))
                await context.close()
        finally:
            await browser.close()
