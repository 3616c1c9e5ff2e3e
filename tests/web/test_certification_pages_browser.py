"""The certification staff pages and the public verification page in Debian's Chromium: a
certification officer signed in through Keycloak finds a session's certificates, prints them as
one PDF and revokes one (a reason, then a confirmation); an employer on a 390 px phone opens a
certificate's verification link before and after. axe-core on every page at 1280 px and 390 px,
the security headers on every page, one task by keyboard alone, a screenshot of each page."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bekal.certification.app import create_app
from bekal.certification.services.issuing import issue_certificates
from bekal.certification.settings import CertificationSettings
from tests.support.browser import (
    Checker,
    assert_security_headers,
    chromium,
    needs_browser,
    open_tab,
    sign_in,
)
from tests.support.course_pages import (
    ask_to_revoke,
    confirm_revocation,
    employer_phone,
    print_session,
    verification,
)
from tests.support.factories import WOODCRAFT, participant_completed, program_published
from tests.support.keycloak import CERTIFIER, INDUSTRY_USER, OFFICER, Keycloak
from tests.support.staff_pages import free_port, provider_settings, served

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# One session of the batik course with three graduates, and one woodcraft graduate elsewhere.
GRADUATES = ["Rina Marlina", "Ani Suryani", "Yosefína Kristanti"]
BATIK_SESSION = uuid.uuid4()
# The pages whose headers are checked: the staff pages and the public verification.
PAGES = ("/staf", "/verify")


class Certification:
    def __init__(self, base: str, app: Any) -> None:
        self.base, self.app = base, app


@pytest.fixture(scope="module")
async def certification(
    keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Certification]:
    """Certification on a real port, its verification links pointing at itself, and the
    certificates its completion handler issues for the two sessions."""
    directory: Path = tmp_path_factory.mktemp("certification-pages")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = CertificationSettings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{directory / 'certification.db'}",
        kafka_bootstrap_servers="127.0.0.1:1",  # pages need no broker: events wait in the outbox
        auth_dev_key_file=directory / "dev.pem",
        certificate_signing_key_file=directory / "certificate.pem",
        web_base_url=base,
        public_base_url=base,
        verify_rate_limit_per_minute=1000,
        log_json=True,
        **provider_settings(keycloak),
    )
    app = create_app(settings)
    async with served(app, port):
        completions = [
            participant_completed(session_id=BATIK_SESSION, participant_name=name)
            for name in GRADUATES
        ]
        completions.append(
            participant_completed(
                program=program_published(WOODCRAFT), participant_name="Dewi Lestari"
            )
        )
        async with app.state.db.session() as session:
            await issue_certificates(
                session=session,
                completions=[(c, str(uuid.uuid4())) for c in completions],
                issuer=app.state.certificate_issuer,
            )
            await session.commit()
        yield Certification(base, app)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "halaman-sertifikasi"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_a_certification_officer_prints_and_revokes_and_an_employer_checks(
    certification: Certification, shots: Path, tmp_path: Path
):
    needs_browser()

    base = certification.base
    async with chromium() as browser:
        tab = await open_tab(browser, base, prefixes=PAGES, accept_downloads=True)
        page, errors, headers = tab.page, tab.errors, tab.headers
        checker = Checker(page, shots)

        await sign_in(page, base, CERTIFIER, start="/staf/sertifikat")
        assert "Agus Santoso" in (await page.text_content("header") or "")
        await checker.check("sertifikat")

        # Search by a part of the name, typed in lower case.
        await page.fill("#f-q", "suryani")
        await page.get_by_role("button", name="Cari").click()
        rows = page.locator("table tbody tr")
        assert await rows.count() == 1
        assert "Ani Suryani" in (await rows.first.text_content() or "")
        await checker.check("sertifikat-cari")

        # A wrong date is named next to its field, the input kept.
        await page.goto(f"{base}/staf/sertifikat?q=ani&dari=2024-13-01")
        assert "Terbit sejak" in (await page.text_content(".error-summary") or "")
        assert await page.input_value("#f-q") == "ani"
        await checker.check("sertifikat-galat")

        # The session's certificates, printed as one PDF: a page per graduate.
        await page.get_by_role("link", name="Cetak per sesi").click()
        await checker.check("sesi")
        await page.get_by_role("link", name="Bimtek Wirausaha Baru IKM Batik").click()
        await page.wait_for_url(f"{base}/staf/sesi-pelatihan/{BATIK_SESSION}")
        main = await page.text_content("main") or ""
        assert all(name in main for name in GRADUATES) and "Dewi Lestari" not in main
        await checker.check("sesi-detail")
        reader = await print_session(page, tmp_path)
        assert len(reader.pages) == len(GRADUATES)
        texts = [p.extract_text() for p in reader.pages]
        assert [next(n for n in GRADUATES if n in t) for t in texts] == sorted(GRADUATES)

        # One certificate: what it says, its status, its verification link.
        await page.get_by_role("link", name="IKMA/2024/", exact=False).first.click()
        await page.wait_for_url(f"{base}/staf/sertifikat/*")
        main = await page.text_content("main") or ""
        holder = next(n for n in GRADUATES if n in main)
        link = page.locator("main a[href*='/verify/']")
        verification_url = await link.get_attribute("href")
        assert verification_url and verification_url.startswith(f"{base}/verify/")
        certificate_url = page.url
        await checker.check("sertifikat-detail")

        # The employer, on a phone, before the revocation: valid.
        employer = await employer_phone(browser, base, errors, headers)
        employer_checker = Checker(employer, shots)
        await employer.goto(verification_url)
        assert "Sertifikat sah" in await verification(employer)
        assert holder in (await employer.text_content("main") or "")
        await employer_checker.check("verifikasi-sah")

        # Revoke: first without a usable reason, then with one, then confirm.
        await ask_to_revoke(page, "x")
        summary = await page.text_content(".error-summary") or ""
        assert "Alasan pencabutan" in summary
        assert await page.input_value("#f-reason") == "x"
        await checker.check("sertifikat-cabut-galat")
        await ask_to_revoke(page, "Nilai unit kompetensi keliru dicatat")
        assert "Cabut sertifikat" in (await page.text_content("h1") or "")
        await checker.check("sertifikat-cabut-konfirmasi")
        # Nothing is revoked before the confirmation.
        await employer.reload()
        assert "Sertifikat sah" in await verification(employer)
        main = await confirm_revocation(page, certificate_url)
        assert "dicabut" in main and "Nilai unit kompetensi keliru dicatat" in main
        assert "Agus Santoso (Anda)" in main  # who revoked, by name, not an account id
        assert await page.locator("text=Unduh PDF").count() == 0
        await checker.check("sertifikat-dicabut")

        # The employer again: revoked.
        await employer.reload()
        assert "Sertifikat telah dicabut" in await verification(employer)
        await employer_checker.check("verifikasi-dicabut")
        await employer.goto(f"{base}/verify/kode-yang-tidak-pernah-ada")
        assert "tidak dikenal" in (await employer.text_content(".result") or "")
        assert holder not in (await employer.text_content("body") or "")
        await employer_checker.check("verifikasi-tidak-dikenal")
        await employer.goto(f"{base}/verify")
        await employer_checker.check("verifikasi-formulir")
        # The number alone reveals nothing; with the name as printed it answers.
        number = (await page.text_content("h1") or "").strip()
        await employer.goto(f"{base}/verify?{urlencode({'nomor': number})}")
        assert "tidak dikenal" in (await employer.text_content(".result") or "")
        await employer.goto(f"{base}/verify")
        await employer.fill("#f-nomor", number)
        await employer.fill("#f-nama", holder.lower())
        await employer.get_by_role("button", name="Periksa").click()
        assert "Sertifikat telah dicabut" in (await employer.text_content(".result") or "")
        await employer.context.close()

        # The session now prints one page fewer.
        await page.goto(f"{base}/staf/sesi-pelatihan/{BATIK_SESSION}")
        reader = await print_session(page, tmp_path, "setelah-pencabutan.pdf")
        assert len(reader.pages) == len(GRADUATES) - 1

        # Re-issue after a correction of the name: a new number, the old one superseded.
        await page.goto(f"{base}/staf/sertifikat?q=Rina")
        await page.get_by_role("link", name="IKMA/2024/", exact=False).first.click()
        await page.fill("#f-recipient_name", "Rina Marlina Siregar")
        await page.fill("#f-alasan_koreksi", "Nama keluarga tertinggal pada data kelulusan")
        await page.get_by_role("button", name="Terbitkan ulang").click()
        main = await page.text_content("main") or ""
        assert "Sertifikat dikoreksi: nomor baru" in main and "Rina Marlina Siregar" in main
        assert "menggantikan" in main
        await checker.check("sertifikat-koreksi")

        # One task by keyboard alone: search a number and open the certificate.
        await page.goto(f"{base}/staf/sertifikat")
        for _ in range(40):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "f-q":
                break
        await page.keyboard.type(number)
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/staf/sertifikat?q=*")
        for _ in range(60):
            await page.keyboard.press("Tab")
            active = await page.evaluate("document.activeElement.textContent")
            if (active or "").strip() == number:
                break
        await page.keyboard.press("Enter")
        await page.wait_for_url(certificate_url)
        await page.context.close()

        assert_security_headers(headers)
        assert any("/verify/" in url for url in headers)
        assert checker.violations == [] and employer_checker.violations == []
        assert errors == []


async def test_who_may_use_the_certification_pages(certification: Certification, shots: Path):
    needs_browser(axe=False)

    async with chromium() as browser:
        # A trainer reads certificates (as the API lets them) but cannot revoke one.
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await sign_in(page, certification.base, INDUSTRY_USER, start="/staf/sertifikat")
        await page.get_by_role("link", name="IKMA/2024/", exact=False).first.click()
        await page.wait_for_url(f"{certification.base}/staf/sertifikat/*")
        assert await page.locator("#f-reason").count() == 0
        await context.close()
        # Corrections staff do not read certificates at all.
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await sign_in(page, certification.base, OFFICER, start="/staf/sertifikat")
        answer = await page.goto(f"{certification.base}/staf/sertifikat")
        assert answer is not None and answer.status == 403
        assert "Akses ditolak" in (await page.text_content("h1") or "")
        await page.screenshot(path=str(shots / "ditolak-petugas-pemasyarakatan.png"))
        await context.close()
