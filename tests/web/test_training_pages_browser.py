"""The training staff pages in Debian's Chromium through Playwright: a trainer's week signed in
through Keycloak's own form. Training's replica of the registry is fed by its own event handlers
with the factories' events (no registry runs: the pages work while it is away). axe-core on
every page at 1280 px and 390 px, the security headers, attendance by keyboard alone, and a
screenshot of each page (BEKAL_SCREENSHOT_DIR)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bekal.shared.events.catalogue import ReleaseKind
from tests.support.browser import (
    Checker,
    assert_security_headers,
    chromium,
    needs_browser,
    open_tab,
)
from tests.support.factories import (
    TANGERANG,
    inmate_released,
    inmate_returned,
    inmate_temporarily_absent,
)
from tests.support.keycloak import Keycloak
from tests.support.training_pages import (
    DAYS,
    PEOPLE,
    START,
    TRAINING_ADMIN,
    Training,
    served_training,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
async def training_site(
    keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Training]:
    async with served_training(keycloak, tmp_path_factory.mktemp("training-pages")) as site:
        yield site


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "halaman-pelatihan"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _main(page: Any) -> str:
    return await page.text_content("main") or ""


async def _row(page: Any, name: str) -> Any:
    """The sheet's row of the person named exactly ``name``."""
    exact = re.compile(f"^{re.escape(name)}$")
    return page.locator("table.sheet tbody tr").filter(
        has=page.locator(".person-name", has_text=exact)
    )


async def test_a_trainers_week_in_the_browser(training_site: Training, shots: Path):
    training = training_site
    needs_browser()

    base = training.base
    names = [p.full_name for p in training.people]
    async with chromium() as browser:
        tab = await open_tab(browser, base)
        page, errors, headers = tab.page, tab.errors, tab.headers
        checker = Checker(page, shots)

        # Sign in through Keycloak's own form.
        await page.goto(f"{base}/staf/program")
        await page.get_by_role("link", name="Masuk dengan akun kementerian").click()
        await page.fill("#username", TRAINING_ADMIN.username)
        await page.fill("#password", TRAINING_ADMIN.password)
        await page.click("#kc-login")
        await page.wait_for_url(f"{base}/staf/program")
        await checker.check("program-daftar")

        # Create and publish a program: first without its units, then right.
        await page.get_by_role("link", name="Buat program baru").click()
        await page.fill("#f-code", "WUB-BATIK-TGR")
        await page.fill("#f-title", "Bimtek Wirausaha Baru IKM Batik")
        await page.fill("#f-sector", "batik")
        await page.fill("#f-partner", "Yayasan Batik Indonesia")
        await page.fill("#f-days", "5")
        await page.fill("#f-hours", "40")
        await page.get_by_role("button", name="Terbitkan program").click()
        summary = await page.text_content(".error-summary") or ""
        assert "Unit kompetensi" in summary, summary
        assert await page.input_value("#f-title") == "Bimtek Wirausaha Baru IKM Batik"
        await checker.check("program-galat")
        await page.fill("#f-units", "BTK.01 | Membatik tulis\nBTK.02 | Membatik cap")
        await page.get_by_role("button", name="Terbitkan program").click()
        await page.wait_for_url(f"{base}/staf/program/*")
        assert "Program WUB-BATIK-TGR diterbitkan (versi 1)." in await _main(page)
        assert "Kehadiran minimal 80%" in await _main(page)
        await checker.check("program")
        await page.get_by_role("link", name="Ubah (terbitkan versi baru)").click()
        await checker.check("program-ubah")
        await page.fill("#f-hours", "42")
        await page.get_by_role("button", name="Terbitkan program").click()
        assert "versi 2 diterbitkan" in await _main(page)

        # Schedule a session at the facility, open it; starting is not offered yet.
        await page.get_by_role("link", name="Jadwalkan sesi").click()
        await checker.check("sesi-baru")
        await page.select_option("#f-facility_id", label="LPP-TANGERANG — " + TANGERANG.name)
        await page.fill("#f-start_date", DAYS[0].isoformat())
        await page.fill("#f-end_date", DAYS[-1].isoformat())
        await page.fill("#f-capacity", "30")
        await page.fill("#f-instructor_name", "Ibu Kartini Wulandari")
        await page.fill("#f-instructor_institution", "Yayasan Batik Indonesia")
        await page.get_by_role("button", name="Jadwalkan").click()
        await page.wait_for_url(f"{base}/staf/sesi/*")
        session_url = page.url
        main = await _main(page)
        assert "Sesi dijadwalkan." in main
        assert "hanya sesi yang sudah dibuka untuk pendaftaran dapat dimulai" in main
        assert await page.get_by_role("button", name="Mulai sesi").is_disabled()
        await checker.check("sesi-direncanakan")
        await page.get_by_role("button", name="Buka pendaftaran").click()
        assert "Pendaftaran dibuka." in await _main(page)

        # Nominate everyone from the candidates training knows of.
        await page.get_by_role("link", name="Nominasi peserta").click()
        main = await _main(page)
        assert "Sisa kursi 30" in main and names[0] in main
        await checker.check("nominasi")
        boxes = page.locator("input[name=participant_ids]")
        assert await boxes.count() == PEOPLE
        for n in range(PEOPLE):
            await boxes.nth(n).check()
        await page.get_by_role("button", name="Daftarkan yang dipilih").click()
        await page.wait_for_url(session_url)
        assert f"{PEOPLE} orang didaftarkan." in await _main(page)
        await page.get_by_role("button", name="Mulai sesi").click()
        assert "Sesi dimulai." in await _main(page)
        await checker.check("sesi-berjalan")
        await page.goto(f"{base}/staf/sesi?status=running")
        assert "WUB-BATIK-TGR" in await _main(page)
        await checker.check("sesi-daftar")

        # Day 1: everyone present but one, absent with a note.
        await page.goto(f"{session_url}/absensi")
        assert "Absensi " in (await page.text_content("h1") or "")
        row = await _row(page, names[1])
        await row.get_by_label("Tidak hadir").check()
        await row.locator("input[type=text]").fill("Sakit")
        await page.get_by_role("button", name="Simpan absensi").click()
        assert f"{PEOPLE} orang, 1 tidak hadir atau izin" in await _main(page)

        # Day 2: the registry records a court absence; the sheet shows her excused.
        absent = training.people[3]
        await training.deliver(
            inmate_temporarily_absent(absent, absent_from=DAYS[1], expected_return=DAYS[1])
        )
        await page.goto(f"{session_url}/absensi?tanggal={DAYS[1].isoformat()}")
        row = await _row(page, names[3])
        assert await row.get_by_label("Izin").is_checked()
        assert "Keluar sementara" in (await row.text_content() or "")
        await page.get_by_role("button", name="Simpan absensi").click()
        assert f"{PEOPLE} orang, 1 tidak hadir atau izin" in await _main(page)
        await training.deliver(inmate_returned(absent, returned_on=DAYS[2]))

        # A correction of day 1 keeps its history, shown with the note.
        await page.goto(f"{session_url}/absensi?tanggal={DAYS[0].isoformat()}")
        row = await _row(page, names[1])
        await row.get_by_label("Hadir", exact=True).check()
        await row.locator("input[type=text]").fill("Salah catat: hadir")
        await page.get_by_role("button", name="Simpan absensi").click()
        history = await page.text_content("main") or ""
        assert "Riwayat koreksi" in history and "Salah catat: hadir" in history

        # Two people released by the registry from day 3: withdrawn on their own, and no
        # day from then on can carry their attendance (the page says why).
        released = training.people[5:7]
        for person in released:
            await training.deliver(
                inmate_released(person, release_kind=ReleaseKind.PAROLE, released_on=DAYS[2])
            )
        await page.goto(f"{session_url}/absensi?tanggal={DAYS[1].isoformat()}")
        assert await (await _row(page, names[5])).get_by_label("Hadir", exact=True).count()

        # Day 3 by keyboard alone: to one person's choices, absent, a note, save.
        await page.goto(f"{session_url}/absensi?tanggal={DAYS[2].isoformat()}")
        for person in released:
            row = await _row(page, person.full_name)
            text = await row.text_content() or ""
            assert "Keluar" in text and "absensi tanggal" in text, text
            assert await row.locator("input").count() == 0
        for _ in range(200):
            await page.keyboard.press("Tab")
            focused = await page.evaluate(
                "document.activeElement.type + '|' + (document.activeElement"
                ".closest('tr')?.querySelector('.person-name')?.textContent || '')"
            )
            if focused == f"radio|{names[2]}":
                break
        else:
            raise AssertionError("the keyboard never reached the sheet")
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Izin keluarga")
        # The sheet posts back to the address it is at: wait for that navigation itself.
        async with page.expect_navigation(url=f"**/absensi?tanggal={DAYS[2].isoformat()}"):
            await page.keyboard.press("Enter")
        assert f"{PEOPLE - 2} orang, 1 tidak hadir atau izin" in await _main(page)
        row = await _row(page, names[2])
        assert await row.get_by_label("Tidak hadir").is_checked()
        await checker.check("absensi")

        # Days 4 and 5: nobody missing.
        for day in DAYS[3:]:
            await page.goto(f"{session_url}/absensi?tanggal={day.isoformat()}")
            await page.get_by_role("button", name="Simpan absensi").click()
            assert f"{PEOPLE - 2} orang, 0 tidak hadir" in await _main(page)

        # Every unit of everyone at once; one person not yet competent in one unit.
        await page.goto(f"{session_url}/penilaian")
        await checker.check("penilaian")
        row = await _row(page, names[4])
        await row.get_by_label("Belum kompeten (BTK.02)").check()
        await page.get_by_role("button", name="Simpan penilaian").click()
        assert f"Penilaian disimpan: {(PEOPLE - 2) * 2} hasil" in await _main(page)

        # Completion: the outcome each person gets and why, then closed.
        await page.goto(session_url)
        await page.get_by_role("link", name="Tutup sesi dan tentukan kelulusan").click()
        main = await _main(page)
        assert "belum: BTK.02" in main and "kehadiran 80% memenuhi batas 80%" in main
        await checker.check("penutupan")
        await page.get_by_role("button", name="Tutup sesi dan tetapkan hasil").click()
        assert f"Sesi selesai: {PEOPLE - 3} dari {PEOPLE - 2} peserta lulus." in (await _main(page))
        await page.goto(session_url)
        assert "Selesai" in await _main(page)
        await checker.check("sesi-selesai")

        # After release: readiness, then the 3-month follow-up once she is out.
        await page.get_by_role("link", name="Lulusan", exact=True).click()
        await checker.check("lulusan-daftar")
        await page.get_by_role("link", name=names[0], exact=True).click()
        await page.get_by_label("KTP / kartu identitas").check()
        await page.get_by_label("Rekening bank").check()
        await page.get_by_role("button", name="Simpan kesiapan").click()
        main = await _main(page)
        assert "Kesiapan dicatat." in main and "lengkapi NIB" in main
        assert "Tindak lanjut dicatat setelah lulusan bebas." in main
        await training.deliver(
            inmate_released(training.people[0], release_kind=ReleaseKind.FREE, released_on=START)
        )
        await page.reload()
        assert "Tindak lanjut bulan ke-3, jatuh tempo" in await _main(page)
        await page.get_by_label("Memulai usaha, sudah punya NIB").check()
        await page.get_by_role("button", name="Simpan tindak lanjut").click()
        main = await _main(page)
        assert "Tindak lanjut bulan ke-3 dicatat." in main
        assert "Tindak lanjut bulan ke-6, jatuh tempo" in main
        await checker.check("lulusan")
        await page.context.close()

        assert_security_headers(headers)
        assert checker.violations == []
        assert errors == []
