"""One course through the four services together, on a real broker, in Debian's Chromium with
Keycloak's sign-in: a trainer publishes a program, schedules a session at a facility, nominates
the 25 candidates the registry announced, and records the week; the registry's own pages record
a court absence and two releases, which the attendance sheet shows on its own. Certification
issues the graduates' certificates from training's events; a certification officer prints them
as one PDF and revokes one; an employer's phone sees the certificate valid, then revoked; the
reporting dashboard shows a viewer the figures the course makes, and the training administrator
the session's own page. axe-core on every page at 1280 px and 390 px, the security headers on
every page, a screenshot of each (BEKAL_SCREENSHOT_DIR)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bekal.certification.models import Certificate
from bekal.devtools.broker import EmbeddedBroker
from bekal.shared.events.catalogue import Sex
from bekal.shared.settings import Settings
from tests.support.browser import (
    Checker,
    Tab,
    assert_security_headers,
    chromium,
    needs_browser,
    open_tab,
    sign_in,
)
from tests.support.course_pages import (
    ProgramForm,
    ask_to_revoke,
    assess,
    complete_session,
    confirm_revocation,
    dashboard_figures,
    employer_phone,
    main_text,
    nominate_everyone,
    open_day,
    print_session,
    publish_program,
    record_day,
    save_day,
    schedule_session,
    sheet_row,
    start_session,
    verification,
)
from tests.support.db import count
from tests.support.factories import TANGERANG, person_name
from tests.support.keycloak import CERTIFIER, OFFICER, VIEWER, Keycloak
from tests.support.staff_pages import post_form, signed_in
from tests.support.staff_platform import StaffPlatform, served_platform
from tests.support.training_pages import TRAINING_ADMIN
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PEOPLE = 25
START = date.today()  # day 1 is today: the attendance page opens on it
DAYS = [START + timedelta(days=n) for n in range(5)]
NAMES = [person_name(n, Sex.FEMALE) for n in range(PEOPLE)]
AT_COURT = NAMES[3]  # away for a hearing on day 2
RELEASED = NAMES[5:7]  # paroled on day 3
NOT_YET = NAMES[4]  # not yet competent in one unit
REVOKED = NAMES[7]
GRADUATES = PEOPLE - len(RELEASED) - 1
PROGRAM = ProgramForm()


@pytest.fixture
async def platform(
    make_settings: Callable[..., Settings],
    keycloak: Keycloak,
    tansu: EmbeddedBroker,
    tmp_path: Path,
) -> AsyncIterator[StaffPlatform]:
    async with served_platform(make_settings, keycloak, tansu, tmp_path / "platform") as p:
        yield p


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "kursus-sampai-dasbor"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _registry_records(officer: Any, person: Any, action: str, **form: str) -> None:
    """A movement of ``person`` recorded on the registry's pages by the facility's ``officer``
    (signed in through Keycloak), answered with the pages' security headers."""
    page, action_url = f"/staf/warga-binaan/{person}", f"/staf/warga-binaan/{person}/{action}"
    answer = await post_form(officer, page, action_url, form)
    assert answer.status_code == 303, answer.text[:1000]
    assert_security_headers({str(answer.url): dict(answer.headers)})


def _names(text: str, name: str) -> bool:
    """Whether ``text`` names ``name``, not only someone whose name starts so ("Ani Suryani 2")."""
    return re.search(rf"{re.escape(name)}(?!\s*\d)", text) is not None


async def _sheet_shows(page: Any, session_url: str, day: date, name: str, seen: str) -> None:
    """``day``'s sheet, reloaded until ``name``'s row says ``seen`` (training has the event)."""

    async def shown() -> bool:
        await open_day(page, session_url, day)
        return seen in (await sheet_row(page, name).text_content() or "")

    await wait_until(shown, within=30, what=f"{name}'s row saying {seen!r}")


async def test_a_course_from_nomination_to_certificates_and_the_dashboard(
    platform: StaffPlatform, shots: Path, tmp_path: Path
):
    needs_browser()
    facility_id, people = await platform.admit(
        TANGERANG, NAMES, expected_release=START + timedelta(days=90)
    )
    assert facility_id
    training, certification = platform.training.base, platform.certification.base
    tabs: list[Tab] = []
    checkers: list[Checker] = []

    registry = signed_in(platform.registry.base, OFFICER)
    async with registry as corrections, chromium() as browser:
        # --- the trainer's week, on training's pages -----------------------------------------
        trainer = await open_tab(browser, training)
        tabs.append(trainer)
        page, checker = trainer.page, Checker(trainer.page, shots)
        checkers.append(checker)
        await sign_in(page, training, TRAINING_ADMIN, start="/staf/program")
        await checker.check("program-daftar")
        await page.get_by_role("link", name="Buat program baru").click()
        await checker.check("program-baru")
        await publish_program(page, PROGRAM, checker)
        session_url = await schedule_session(
            page,
            facility=f"{TANGERANG.code} — {TANGERANG.name}",
            days=DAYS,
            capacity=30,
            checker=checker,
        )
        seen = await nominate_everyone(page, session_url, PEOPLE, checker)
        assert "Sisa kursi 30" in seen and all(name in seen for name in NAMES)
        await start_session(page, checker)

        said = await record_day(page, session_url, DAYS[0])
        assert f"{PEOPLE} orang, 0 tidak hadir" in said, said
        await checker.check("absensi")

        # Day 2: the registry records a court hearing; the sheet shows her excused on its own.
        await _registry_records(
            corrections,
            people[AT_COURT],
            "keluar-sementara",
            reason="court",
            absent_from=DAYS[1].isoformat(),
            expected_return=DAYS[1].isoformat(),
        )
        await _sheet_shows(page, session_url, DAYS[1], AT_COURT, "Keluar sementara")
        assert await sheet_row(page, AT_COURT).get_by_label("Izin", exact=True).is_checked()
        await checker.check("absensi-keluar-sementara")
        said = await save_day(page)
        assert f"{PEOPLE} orang, 1 tidak hadir atau izin" in said, said
        await _registry_records(
            corrections, people[AT_COURT], "kembali", returned_on=DAYS[2].isoformat()
        )

        # Day 3: two people paroled by the registry are withdrawn on their own; from that day
        # their rows take no mark (the page says why), the day before still does.
        for name in RELEASED:
            await _registry_records(
                corrections, people[name], "bebas", kind="parole", released_on=DAYS[2].isoformat()
            )
        for name in RELEASED:
            await _sheet_shows(page, session_url, DAYS[2], name, "Keluar")
            row = sheet_row(page, name)
            assert "absensi tanggal" in (await row.text_content() or "")
            assert await row.locator("input").count() == 0
        await checker.check("absensi-keluar")
        await open_day(page, session_url, DAYS[1])
        assert await sheet_row(page, RELEASED[0]).get_by_label("Hadir", exact=True).count()
        for day in DAYS[2:]:
            said = await record_day(page, session_url, day)
            assert f"{PEOPLE - 2} orang, 0 tidak hadir" in said, said

        # Every unit of everyone; one person not yet competent in one; then completion.
        said = await assess(page, session_url, not_yet={NOT_YET: "BTK.02"}, checker=checker)
        assert f"Penilaian disimpan: {(PEOPLE - 2) * 2} hasil" in said, said
        outcomes, done = await complete_session(page, session_url, checker)
        assert "belum: BTK.02" in outcomes
        assert f"Sesi selesai: {GRADUATES} dari {PEOPLE - 2} peserta lulus." in done, done
        session_id = session_url.rstrip("/").rsplit("/", 1)[-1]

        # --- certification issues the certificates from training's events ---------------------
        async def issued() -> bool:
            db = platform.certification.app.state.db
            return await count(db, Certificate) >= GRADUATES

        await wait_until(issued, within=60, what=f"{GRADUATES} certificates issued")

        # --- the certification officer prints the session and revokes one ---------------------
        certifier = await open_tab(
            browser, certification, prefixes=("/staf", "/verify"), accept_downloads=True
        )
        tabs.append(certifier)
        page, checker = certifier.page, Checker(certifier.page, shots)
        checkers.append(checker)
        await sign_in(page, certification, CERTIFIER, start="/staf/sesi-pelatihan")
        await checker.check("sertifikat-sesi-daftar")
        await page.get_by_role("link", name=PROGRAM.title).click()
        assert page.url.endswith(f"/staf/sesi-pelatihan/{session_id}"), page.url
        await checker.check("sertifikat-sesi")
        printed = await print_session(page, tmp_path)
        assert len(printed.pages) == GRADUATES
        texts = [p.extract_text() for p in printed.pages]
        holders = [[n for n in NAMES if _names(text, n)] for text in texts]
        assert holders == [[n] for n in sorted(set(NAMES) - {*RELEASED, NOT_YET})]

        holder = page.get_by_role("cell", name=REVOKED, exact=True)
        await page.get_by_role("row").filter(has=holder).get_by_role("link").first.click()
        await page.wait_for_url(f"{certification}/staf/sertifikat/*")
        certificate_url = page.url
        assert REVOKED in await main_text(page)
        link = await page.get_by_role("link", name="buka halaman verifikasi").get_attribute("href")
        assert link and link.startswith(f"{certification}/verify/"), link
        await checker.check("sertifikat")
        # Her printed page carries the same link (beside its QR code), wherever a line breaks it.
        (printed_page,) = [text for text in texts if _names(text, REVOKED)]
        assert link in re.sub(r"\s", "", printed_page)

        # The employer, on a phone, opens the link: valid before the revocation.
        employer = await employer_phone(browser, certification, certifier.errors, certifier.headers)
        phone_checker = Checker(employer, shots)
        checkers.append(phone_checker)
        await employer.goto(link)
        assert "Sertifikat sah" in await verification(employer)
        assert REVOKED in await main_text(employer)
        await phone_checker.check("verifikasi-sah")

        await ask_to_revoke(page, "Nilai unit kompetensi keliru dicatat")
        assert "Cabut sertifikat" in (await page.text_content("h1") or "")
        await checker.check("sertifikat-cabut-konfirmasi")
        revoked = await confirm_revocation(page, certificate_url)
        assert "dicabut" in revoked and "Nilai unit kompetensi keliru dicatat" in revoked
        await checker.check("sertifikat-dicabut")

        await employer.reload()
        assert "Sertifikat telah dicabut" in await verification(employer)
        await phone_checker.check("verifikasi-dicabut")
        await employer.context.close()

        # The session now prints one page fewer.
        await page.goto(f"{certification}/staf/sesi-pelatihan/{session_id}")
        assert f"{GRADUATES - 1} halaman" in await main_text(page)

        # --- the dashboard, for a reporting viewer --------------------------------------------
        reporting = platform.reporting.base
        viewer = await open_tab(browser, reporting)
        tabs.append(viewer)
        page, checker = viewer.page, Checker(viewer.page, shots)
        checkers.append(checker)
        await sign_in(page, reporting, VIEWER, start="/staf/dasbor")
        want = {
            "total-enrolled": str(PEOPLE),
            "total-completed": str(GRADUATES),
            "total-certified": str(GRADUATES - 1),
            "completion-rate": "95,7%",  # 22 of the 23 with an outcome
            "total-withdrawn": str(len(RELEASED)),
        }
        figures: dict[str, str] = {}
        for _ in range(60):  # until reporting has the revocation too
            figures = await dashboard_figures(page)
            if figures == want:
                break
            await asyncio.sleep(0.5)
            await page.reload()
        assert figures == want
        # The program's row: the rate of graduates, and of their certificates still valid.
        program_row = page.get_by_role("row").filter(has_text=PROGRAM.title)
        cells = re.sub(r"\s", "", await program_row.inner_text())
        assert "95,7%" in cells and "95,5%" in cells, cells  # 22 of 23; 21 of 22
        await checker.check("dasbor")

        # The training administrator also reads the session's own figures, by facility.
        admin = await open_tab(browser, reporting)
        tabs.append(admin)
        page, checker = admin.page, Checker(admin.page, shots)
        checkers.append(checker)
        await sign_in(page, reporting, TRAINING_ADMIN, start="/staf/dasbor")
        await page.get_by_role("link", name="Lihat angka per lapas/rutan dan per sesi").click()
        await checker.check("dasbor-lapas-daftar")
        await page.get_by_role("link", name=TANGERANG.name).click()
        await checker.check("dasbor-lapas")
        await page.get_by_role("link", name=PROGRAM.title).click()
        assert page.url.endswith(f"/sesi/{session_id}"), page.url
        assert await dashboard_figures(page) == want
        released = page.get_by_role("row").filter(
            has=page.get_by_role("rowheader", name="Bebas", exact=True)
        )
        assert re.sub(r"\s", "", await released.inner_text()) == f"Bebas{len(RELEASED)}"
        await checker.check("dasbor-sesi")

    for tab in tabs:
        assert_security_headers(tab.headers)
        assert tab.errors == []
    assert any("/verify/" in url for url in certifier.headers)
    assert [v for c in checkers for v in c.violations] == []
