"""A course driven through the staff pages in Chromium, a step a function, each checked by what
the page then says: the trainer's steps on training's pages, the certification officer's and the
employer's on certification's. Buttons, links and fields are found by their accessible names, so
a page may change its layout without breaking the tests. With a ``Checker``, a step runs axe-core
on the pages it opens and keeps their screenshots, under the names given here."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pypdf

from tests.support.browser import Checker, record_headers

BATIK_UNITS = "BTK.01 | Membatik tulis\nBTK.02 | Membatik cap"


@dataclass(frozen=True)
class ProgramForm:
    """What a trainer types into the program form (the batik program of Yayasan Batik Indonesia)."""

    code: str = "WUB-BATIK-TGR"
    title: str = "Bimtek Wirausaha Baru IKM Batik"
    sector: str = "batik"
    partner: str = "Yayasan Batik Indonesia"
    days: int = 5
    hours: int = 40
    units: str = BATIK_UNITS


async def _check(checker: Checker | None, name: str) -> None:
    if checker is not None:
        await checker.check(name)


async def main_text(page: Any) -> str:
    return await page.text_content("main") or ""


def sheet_row(page: Any, name: str) -> Any:
    """The row of a sheet (attendance, assessment) whose heading names exactly ``name``: not
    "Siti Aminah 2" for "Siti Aminah"."""
    heading = re.compile(rf"(^|\s){re.escape(name)}(?!\s*\d)")
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=heading))


async def submit(page: Any, button: str) -> None:
    """Click the button named ``button`` and wait for the page the form answers with."""
    async with page.expect_navigation():
        await page.get_by_role("button", name=button).click()


# --- the trainer, on training's pages --------------------------------------------------------


async def fill_program(page: Any, form: ProgramForm, *, units: bool = True) -> None:
    """The program form filled in; its competency units left empty unless ``units``."""
    await page.get_by_label("Kode program").fill(form.code)
    await page.get_by_label("Judul").fill(form.title)
    await page.get_by_label("Sektor").fill(form.sector)
    await page.get_by_label("Mitra").fill(form.partner)
    await page.get_by_label("Jumlah hari").fill(str(form.days))
    await page.get_by_label("Jumlah jam pelajaran").fill(str(form.hours))
    await page.get_by_label("Unit kompetensi").fill(form.units if units else "")


async def publish_program(page: Any, form: ProgramForm, checker: Checker | None = None) -> None:
    """On the new program's form: filled in and published, its page shown ("program")."""
    await fill_program(page, form)
    await submit(page, "Terbitkan program")
    assert f"Program {form.code} diterbitkan (versi 1)." in await main_text(page)
    await _check(checker, "program")


async def schedule_session(
    page: Any,
    *,
    facility: str,
    days: Sequence[date],
    capacity: int,
    checker: Checker | None = None,
) -> str:
    """From a program's page: a session at ``facility`` (its option's text) scheduled, then
    opened for enrolment; its address. Starting is not offered before it is open."""
    await page.get_by_role("link", name="Jadwalkan sesi").click()
    await _check(checker, "sesi-baru")
    await page.get_by_label("Lapas/rutan").select_option(label=facility)
    await page.get_by_label("Tanggal mulai").fill(days[0].isoformat())
    await page.get_by_label("Tanggal selesai").fill(days[-1].isoformat())
    await page.get_by_label("Kapasitas").fill(str(capacity))
    await page.get_by_label("Nama instruktur").fill("Ibu Kartini Wulandari")
    await page.get_by_label("Lembaga instruktur").fill("Yayasan Batik Indonesia")
    await submit(page, "Jadwalkan")
    assert "/staf/sesi/" in page.url, page.url
    session_url: str = page.url
    main = await main_text(page)
    assert "Sesi dijadwalkan." in main
    assert "hanya sesi yang sudah dibuka untuk pendaftaran dapat dimulai" in main
    assert await page.get_by_role("button", name="Mulai sesi").is_disabled()
    await _check(checker, "sesi-direncanakan")
    await submit(page, "Buka pendaftaran")
    assert "Pendaftaran dibuka." in await main_text(page)
    return session_url


async def nominate_everyone(
    page: Any, session_url: str, people: int, checker: Checker | None = None
) -> str:
    """From the open session's page: every one of the ``people`` candidates nominated at once;
    what the nomination page said before."""
    await page.get_by_role("link", name="Nominasi peserta").click()
    seen = await main_text(page)
    await _check(checker, "nominasi")
    boxes = page.locator("input[name=participant_ids]")
    assert await boxes.count() == people
    for n in range(people):
        await boxes.nth(n).check()
    await submit(page, "Daftarkan yang dipilih")
    assert page.url == session_url
    assert f"{people} orang didaftarkan." in await main_text(page)
    return seen


async def start_session(page: Any, checker: Checker | None = None) -> None:
    """On the session's page: started."""
    await submit(page, "Mulai sesi")
    assert "Sesi dimulai." in await main_text(page)
    await _check(checker, "sesi-berjalan")


async def open_day(page: Any, session_url: str, day: date) -> None:
    await page.goto(f"{session_url}/absensi?tanggal={day.isoformat()}")
    assert "Absensi " in (await page.text_content("h1") or "")


async def mark(page: Any, name: str, status: str, note: str = "") -> None:
    """On the open sheet: ``name`` set to ``status`` ("Tidak hadir", "Izin", "Hadir"), with
    ``note``."""
    row = sheet_row(page, name)
    await row.get_by_label(status, exact=True).check()
    if note:
        await row.get_by_role("textbox").fill(note)


async def save_day(page: Any) -> str:
    """The open sheet saved; what the page then says."""
    await submit(page, "Simpan absensi")
    return await main_text(page)


async def record_day(
    page: Any, session_url: str, day: date, *, absent: Mapping[str, str] = {}
) -> str:
    """``day``'s sheet: everyone present but ``absent`` (name: note); what the page then says."""
    await open_day(page, session_url, day)
    for name, note in absent.items():
        await mark(page, name, "Tidak hadir", note)
    return await save_day(page)


async def assess(
    page: Any,
    session_url: str,
    *,
    not_yet: Mapping[str, str] = {},
    checker: Checker | None = None,
) -> str:
    """Every unit of everyone competent but ``not_yet`` (name: unit code); what the page says."""
    await page.goto(f"{session_url}/penilaian")
    await _check(checker, "penilaian")
    for name, unit in not_yet.items():
        await sheet_row(page, name).get_by_label(f"Belum kompeten ({unit})").check()
    await submit(page, "Simpan penilaian")
    return await main_text(page)


async def complete_session(
    page: Any, session_url: str, checker: Checker | None = None
) -> tuple[str, str]:
    """The session closed with the outcome each person gets: what the completion page said
    before (each outcome and why), and what the session's page said after."""
    await page.goto(session_url)
    await page.get_by_role("link", name="Tutup sesi dan tentukan kelulusan").click()
    outcomes = await main_text(page)
    await _check(checker, "penutupan")
    await submit(page, "Tutup sesi dan tetapkan hasil")
    done = await main_text(page)
    await page.goto(session_url)
    assert "Selesai" in await main_text(page)
    await _check(checker, "sesi-selesai")
    return outcomes, done


# --- the certification officer, on certification's pages -------------------------------------


async def print_session(page: Any, folder: Path, name: str = "sertifikat-sesi.pdf") -> Any:
    """On a session's certificates page: all of them printed as one PDF, read by pypdf."""
    async with page.expect_download() as caught:
        await page.get_by_role("link", name="Cetak semua sertifikat").click()
    saved = folder / name
    await (await caught.value).save_as(str(saved))
    return pypdf.PdfReader(io.BytesIO(saved.read_bytes()))


async def ask_to_revoke(page: Any, reason: str) -> None:
    """On a certificate's page: the revocation asked for with ``reason``, not yet confirmed."""
    await page.get_by_label("Alasan pencabutan", exact=True).fill(reason)
    await submit(page, "Lanjutkan pencabutan")


async def confirm_revocation(page: Any, certificate_url: str) -> str:
    """On the confirmation page: confirmed; the certificate's page then."""
    await submit(page, "Ya, cabut sertifikat")
    assert page.url == certificate_url, page.url
    return await main_text(page)


# --- the employer, on a phone -----------------------------------------------------------------


async def employer_phone(
    browser: Any, base: str, errors: list[str], headers: dict[str, dict[str, str]]
) -> Any:
    """A 390 px phone's page, in a context of its own (no staff sign-in), its script errors and
    the public pages' headers kept in ``errors`` and ``headers``."""
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844},
        bypass_csp=True,
        locale="id-ID",
        is_mobile=True,
        has_touch=True,
    )
    page = await phone.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    record_headers(page, base, headers, ("/verify",))
    return page


async def verification(page: Any) -> str:
    """What the verification page answers (its status)."""
    answer = page.get_by_role("status").filter(has_text="Sertifikat")
    return await answer.first.text_content() or ""


# --- the reporting dashboard ------------------------------------------------------------------

DASHBOARD_FIGURES = (
    "total-enrolled",
    "total-completed",
    "total-certified",
    "completion-rate",
    "total-withdrawn",
)
# The first figure shows a number, or the page's script gave up (and says why).
_FILLED = """id => {
  const figure = document.getElementById(id);
  const shown = figure !== null && !["", "\u2014"].includes(figure.textContent.trim());
  return shown || document.body.dataset.ready === "error";
}"""


async def dashboard_figures(page: Any, ids: Sequence[str] = DASHBOARD_FIGURES) -> dict[str, str]:
    """The dashboard's figures by the id of their card, once they are filled in (by the server,
    or by a script that marks the page ready), white space taken out ("95,7 %" is "95,7%")."""
    await page.wait_for_function(_FILLED, arg=ids[0], timeout=30000)
    assert await page.get_attribute("body", "data-ready") != "error", await main_text(page)
    return {i: re.sub(r"\s", "", await page.text_content(f"#{i}") or "") for i in ids}
