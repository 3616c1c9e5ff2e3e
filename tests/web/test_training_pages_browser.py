"""The training staff pages in Debian's Chromium through Playwright: a trainer's week signed in
through Keycloak's own form. Training's replica of the registry is fed by its own event handlers
with the factories' events (no registry runs: the pages work while it is away). axe-core on
every page at 1280 px and 390 px, the security headers, attendance by keyboard alone, and a
screenshot of each page (BEKAL_SCREENSHOT_DIR)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bekal.shared.events.catalogue import ReleaseKind, Sex
from tests.support.browser import (
    Checker,
    assert_security_headers,
    chromium,
    needs_browser,
    open_tab,
    sign_in,
)
from tests.support.course_pages import (
    ProgramForm,
    assess,
    complete_session,
    fill_program,
    main_text,
    mark,
    open_day,
    publish_program,
    record_day,
    save_day,
    schedule_session,
    sheet_row,
    start_session,
    submit,
)
from tests.support.factories import (
    TANGERANG,
    inmate_released,
    inmate_returned,
    inmate_shared,
    inmate_temporarily_absent,
    inmate_transferred,
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

PROGRAM = ProgramForm()


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
        await sign_in(page, base, TRAINING_ADMIN, start="/staf/program")
        await checker.check("program-daftar")

        # Create and publish a program: first without its units, then right.
        await page.get_by_role("link", name="Buat program baru").click()
        await fill_program(page, PROGRAM, units=False)
        await submit(page, "Terbitkan program")
        summary = await page.text_content(".error-summary") or ""
        assert "Unit kompetensi" in summary, summary
        assert await page.get_by_label("Judul").input_value() == PROGRAM.title
        await checker.check("program-galat")
        await publish_program(page, PROGRAM, checker)
        assert "Kehadiran minimal 80%" in await main_text(page)
        await page.get_by_role("link", name="Ubah (terbitkan versi baru)").click()
        await checker.check("program-ubah")
        await page.get_by_label("Jumlah jam pelajaran").fill("42")
        await submit(page, "Terbitkan program")
        assert "versi 2 diterbitkan" in await main_text(page)

        # Schedule a session at the facility, open it; starting is not offered yet.
        session_url = await schedule_session(
            page,
            facility=f"{TANGERANG.code} — {TANGERANG.name}",
            days=DAYS,
            capacity=30,
            checker=checker,
        )

        # Nominate everyone from the candidates training knows of, by "select all" from the
        # keyboard. One more woman is to be released only in a year: outside the release
        # window, "select all" leaves her out, and only an administrator's reason lets her in.
        late = inmate_shared(
            training.facility,
            full_name="Sri Lambat Bebas",
            sex=Sex.FEMALE,
            expected_release_date=START + timedelta(days=400),
        )
        await training.deliver(late)
        await page.get_by_role("link", name="Nominasi peserta").click()
        seen = await main_text(page)
        assert "Sisa kursi 30" in seen and names[0] in seen
        assert "lebih dari 12 bulan setelah sesi dimulai" in seen
        assert (START + timedelta(days=400)).isoformat() not in seen  # the pages' own dates
        reason = page.get_by_label("Alasan pengecualian untuk Sri Lambat Bebas")
        assert await reason.count() == 1
        await checker.check("nominasi")
        assert await page.locator("input[name=participant_ids]").count() == PEOPLE + 1
        everyone = page.get_by_role("button", name=f"Pilih semua dan daftarkan ({PEOPLE} orang)")
        await everyone.focus()
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert page.url == session_url
        assert f"{PEOPLE} orang didaftarkan." in await main_text(page)
        await page.get_by_role("link", name="Nominasi peserta").click()
        await page.get_by_role("checkbox", name="Sri Lambat Bebas").check()
        await reason.fill("Remisi khusus diperkirakan; disetujui Kabid")
        await submit(page, "Daftarkan yang dipilih")
        main = await main_text(page)
        assert "1 orang didaftarkan." in main
        assert "Pengecualian masa bebas oleh Anda: Remisi khusus diperkirakan" in main
        await checker.check("sesi-pengecualian")
        # Transferred away before the course starts: withdrawn, so the week counts the PEOPLE
        # nominated by "select all".
        await training.deliver(inmate_transferred(late, transferred_on=START))
        await page.reload()
        await start_session(page, checker)
        await page.goto(f"{base}/staf/sesi?status=running")
        assert "WUB-BATIK-TGR" in await main_text(page)
        await checker.check("sesi-daftar")

        # Day 1 (the sheet opens on today): everyone present but one, absent with a note.
        await page.goto(f"{session_url}/absensi")
        assert "Absensi " in (await page.text_content("h1") or "")
        await mark(page, names[1], "Tidak hadir", "Sakit")
        assert f"{PEOPLE} orang, 1 tidak hadir atau izin" in await save_day(page)

        # Day 2: the registry records a court absence; the sheet shows her excused.
        absent = training.people[3]
        await training.deliver(
            inmate_temporarily_absent(absent, absent_from=DAYS[1], expected_return=DAYS[1])
        )
        await open_day(page, session_url, DAYS[1])
        row = sheet_row(page, names[3])
        assert await row.get_by_label("Izin").is_checked()
        assert "Keluar sementara" in (await row.text_content() or "")
        assert f"{PEOPLE} orang, 1 tidak hadir atau izin" in await save_day(page)
        await training.deliver(inmate_returned(absent, returned_on=DAYS[2]))

        # A correction of day 1 keeps its history, shown with the note.
        await open_day(page, session_url, DAYS[0])
        await mark(page, names[1], "Hadir", "Salah catat: hadir")
        history = await save_day(page)
        assert "Riwayat koreksi" in history and "Salah catat: hadir" in history

        # Two people released by the registry from day 3: withdrawn on their own, and no
        # day from then on can carry their attendance (the page says why).
        released = training.people[5:7]
        for person in released:
            await training.deliver(
                inmate_released(person, release_kind=ReleaseKind.PAROLE, released_on=DAYS[2])
            )
        await open_day(page, session_url, DAYS[1])
        assert await sheet_row(page, names[5]).get_by_label("Hadir", exact=True).count()

        # Day 3 by keyboard alone: to one person's choices, absent, a note, save.
        await open_day(page, session_url, DAYS[2])
        for person in released:
            row = sheet_row(page, person.full_name)
            text = await row.text_content() or ""
            assert "Keluar" in text and "absensi tanggal" in text, text
            assert DAYS[2].isoformat() not in text  # "6 September 2024", as everywhere
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
        assert f"{PEOPLE - 2} orang, 1 tidak hadir atau izin" in await main_text(page)
        assert await sheet_row(page, names[2]).get_by_label("Tidak hadir").is_checked()
        await checker.check("absensi")

        # Days 4 and 5: nobody missing.
        for day in DAYS[3:]:
            said = await record_day(page, session_url, day)
            assert f"{PEOPLE - 2} orang, 0 tidak hadir" in said

        # Every unit of everyone at once; one person not yet competent in one unit.
        said = await assess(page, session_url, not_yet={names[4]: "BTK.02"}, checker=checker)
        assert f"Penilaian disimpan: {(PEOPLE - 2) * 2} hasil" in said

        # Completion: the outcome each person gets and why, then closed.
        outcomes, done = await complete_session(page, session_url, checker)
        assert "belum: BTK.02" in outcomes and "kehadiran 80% memenuhi batas 80%" in outcomes
        assert f"Sesi selesai: {PEOPLE - 3} dari {PEOPLE - 2} peserta lulus." in done

        # A correction after completion: one unit of one graduate, with a reason; her outcome
        # is decided again and the page keeps the change in its history.
        await page.get_by_role("link", name="Koreksi absensi dan penilaian").click()
        await page.get_by_label("Peserta", exact=True).select_option(label=names[8])
        await page.get_by_label("Alasan koreksi").fill("Berita acara uji ulang no. 7")
        await page.get_by_label("Unit kompetensi yang dikoreksi").select_option(value="BTK.02")
        await page.get_by_label("Hasil yang benar").select_option(value="not_yet_competent")
        await page.get_by_label("Penilai", exact=True).fill("Ibu Kartini Wulandari")
        await submit(page, "Simpan koreksi")
        main = await main_text(page)
        assert f"{names[8]}: Lulus → Tidak lulus." in main, main
        assert "Berita acara uji ulang no. 7" in main
        await checker.check("koreksi")

        # After release: readiness, then the 3-month follow-up once she is out.
        await page.get_by_role("link", name="Lulusan", exact=True).click()
        await checker.check("lulusan-daftar")
        await page.get_by_role("link", name=names[0], exact=True).click()
        await page.get_by_label("KTP / kartu identitas").check()
        await page.get_by_label("Rekening bank").check()
        await page.get_by_role("button", name="Simpan kesiapan").click()
        main = await main_text(page)
        assert "Kesiapan dicatat." in main and "lengkapi NIB" in main
        assert "Tindak lanjut dicatat setelah lulusan bebas." in main
        await training.deliver(
            inmate_released(training.people[0], release_kind=ReleaseKind.FREE, released_on=START)
        )
        await page.reload()
        assert "Tindak lanjut bulan ke-3, jatuh tempo" in await main_text(page)
        await page.get_by_label("Memulai usaha, sudah punya NIB").check()
        await page.get_by_role("button", name="Simpan tindak lanjut").click()
        main = await main_text(page)
        assert "Tindak lanjut bulan ke-3 dicatat." in main
        assert "Tindak lanjut bulan ke-6, jatuh tempo" in main
        await checker.check("lulusan")
        await page.context.close()

        assert_security_headers(headers)
        assert checker.violations == []
        assert errors == []
