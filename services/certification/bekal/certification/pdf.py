"""The printable certificate: an A4 page in Bahasa Indonesia with a QR code to its verification.

Printed in Noto Sans (package ``pymupdf-fonts``), which has every Latin letter with its
diacritics (Vietnamese included) and the apostrophes and quotes of Arabic-derived names, with
Noto Sans CJK (package ``noto-cjk-sans-otc``) for the Chinese, Japanese and Korean letters
Noto Sans lacks. Both are SIL Open Font License 1.1 and embedded, subset, in the PDF: every
name prints exactly as the credential holds it, and a name no font can print is refused
rather than printed wrong (it would then fail verification by the printed name).
"""

from __future__ import annotations

import atexit
import io
import logging
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import noto_cjk_sans_otc  # type: ignore[import-untyped]
import pymupdf_fonts  # type: ignore[import-untyped]
import segno
from fontTools.ttLib import TTCollection, TTFont
from fpdf import FPDF

from bekal.certification.domain import ISSUER, indonesian_date

# fontTools reports, once per PDF, the hinting table it leaves out of a subset: not a fault.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

FONT = "notosans"
CJK_FONT = "notosanscjk"
# Faces of NotoSansCJK-Regular.ttc: 0 JP, 1 KR, 2 SC, 3 TC, 4 HK. Han characters take the
# Simplified Chinese forms; kana and hangul are the same in every face.
CJK_FACE = 2
_STYLES = {"": "notos", "B": "notosbo", "I": "notosit"}  # pymupdf_fonts' names


class UnprintableText(ValueError):
    """Text with letters that neither font has: printing it would change the name."""

    def __init__(self, characters: Iterable[str]) -> None:
        self.code_points = sorted({f"U+{ord(ch):04X}" for ch in characters})
        super().__init__("no font for " + ", ".join(self.code_points))


@dataclass(frozen=True)
class _Fonts:
    files: dict[str, Path]  # style -> Noto Sans file
    cjk_file: Path
    latin: frozenset[int]  # code points every style of Noto Sans has
    cjk: frozenset[int]


@cache
def _fonts() -> _Fonts:
    # fpdf2 reads fonts from files; pymupdf_fonts keeps Noto Sans inside a module, so it is
    # written once per process to a private temporary folder (the 1.4 MB of three styles).
    folder = Path(tempfile.mkdtemp(prefix="bekal-fonts-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    files: dict[str, Path] = {}
    latin: frozenset[int] | None = None
    for style, name in _STYLES.items():
        path = folder / f"{name}.ttf"
        path.write_bytes(pymupdf_fonts.fontbuffers[name]())
        files[style] = path
        cmap = frozenset(TTFont(path, lazy=True).getBestCmap())
        latin = cmap if latin is None else latin & cmap
    cjk_file = Path(str(noto_cjk_sans_otc.FONT_PATH))
    cjk = frozenset(TTCollection(cjk_file, lazy=True).fonts[CJK_FACE].getBestCmap())
    assert latin is not None
    return _Fonts(files=files, cjk_file=cjk_file, latin=latin, cjk=cjk)


def _needs_cjk(texts: Iterable[str]) -> bool:
    """Whether the CJK font must be embedded; raises UnprintableText if even it cannot help."""
    fonts = _fonts()
    beyond = {ch for text in texts for ch in text if ch != "\n" and ord(ch) not in fonts.latin}
    unprintable = {ch for ch in beyond if ord(ch) not in fonts.cjk}
    if unprintable:
        raise UnprintableText(unprintable)
    return bool(beyond)


def _use_fonts(pdf: FPDF, texts: Iterable[str]) -> None:
    fonts = _fonts()
    for style, path in fonts.files.items():
        pdf.add_font(FONT, style=style, fname=path)
    if _needs_cjk(texts):
        # Only when needed: parsing and subsetting the 19 MB collection takes a tenth of a
        # second. Its one (regular) weight also serves bold and italic text.
        pdf.add_font(CJK_FONT, fname=fonts.cjk_file, collection_font_number=CJK_FACE)
        pdf.set_fallback_fonts([CJK_FONT], exact_match=False)


@dataclass(frozen=True)
class PrintedCertificate:
    """What the paper shows. No facility, no session, no participant id: it goes to employers."""

    number: str
    recipient_name: str
    program_title: str
    competency_units: list[tuple[str, str]]
    hours: int
    start_date: date
    end_date: date
    issued_on: date
    partner: str | None
    verification_url: str


def qr_png(url: str, *, scale: int = 8) -> bytes:
    """The QR code (error correction M, quiet zone 4) of ``url`` as a PNG."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


QR_SIZE = 42  # mm
FOOTER_TOP = 297 - 24 - QR_SIZE - 10  # mm: where the issuer block and the QR code begin


UNIT_SIZES = (10.0, 9.0, 8.0, 7.0, 6.0, 5.0)  # pt, tried in turn for the competency units


def render(cert: PrintedCertificate) -> bytes:
    """The certificate as a one-page A4 PDF; a long list of competencies is set smaller.

    Raises UnprintableText when a text (the name, most likely) has a letter no font has.
    """
    for size in UNIT_SIZES:
        page, bottom = _layout(cert, unit_size=size)
        if bottom <= FOOTER_TOP:
            break
    return bytes(page.output())


def unit_size_for(cert: PrintedCertificate) -> float:
    """The largest font size at which the competency units end above the issuer and QR code."""
    for size in UNIT_SIZES:
        if _layout(cert, unit_size=size)[1] <= FOOTER_TOP:
            return size
    return UNIT_SIZES[-1]  # pragma: no cover - only with dozens of competency units


def printed_texts(cert: PrintedCertificate) -> list[str]:
    """Every text of ``cert`` that goes on the paper, besides our fixed wording."""
    texts = [cert.number, cert.recipient_name, cert.program_title, cert.verification_url]
    texts += [cert.partner or ""]
    texts += [part for unit in cert.competency_units for part in unit]
    return texts


def render_many(certs: Sequence[PrintedCertificate], *, title: str) -> bytes:
    """Several certificates as one A4 PDF, a page each, to print at once (a session's).

    Each page is set as ``render`` sets it alone; the fonts are embedded once. Raises
    UnprintableText when any text has a letter no font has.
    """
    pdf = _document([ISSUER, *(text for cert in certs for text in printed_texts(cert))], title)
    for cert in certs:
        _draw(pdf, cert, unit_size=unit_size_for(cert))
    return bytes(pdf.output())


def _document(texts: Iterable[str], title: str) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    _use_fonts(pdf, texts)
    pdf.set_title(title)
    pdf.set_author(ISSUER)
    pdf.set_creator("Bekal")
    pdf.set_auto_page_break(auto=False)
    return pdf


def _layout(cert: PrintedCertificate, *, unit_size: float) -> tuple[FPDF, float]:
    """The laid-out page (not yet written out) and where its competency units end."""
    pdf = _document([ISSUER, *printed_texts(cert)], f"Sertifikat {cert.number}")
    return pdf, _draw(pdf, cert, unit_size=unit_size)


def _draw(pdf: FPDF, cert: PrintedCertificate, *, unit_size: float) -> float:
    """Add ``cert``'s page to ``pdf``; where its competency units end."""
    pdf.add_page()
    width = pdf.w - 2 * 20

    # A double frame, as printed certificates have.
    pdf.set_draw_color(90, 60, 20)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, pdf.w - 20, pdf.h - 20)
    pdf.set_line_width(0.3)
    pdf.rect(13, 13, pdf.w - 26, pdf.h - 26)

    def line(text: str, size: float, *, style: str = "", height: float | None = None) -> None:
        pdf.set_font(FONT, style=style, size=size)
        pdf.set_x(20)
        pdf.multi_cell(width, height or size * 0.5, text, align="C")

    pdf.set_y(24)
    line("KEMENTERIAN PERINDUSTRIAN REPUBLIK INDONESIA", 12, style="B")
    line("Direktorat Jenderal Industri Kecil, Menengah, dan Aneka", 11)
    pdf.ln(10)
    line("SERTIFIKAT", 34, style="B")
    line(f"Nomor: {cert.number}", 11)
    pdf.ln(8)
    line("diberikan kepada", 12)
    pdf.ln(2)
    line(cert.recipient_name, 24, style="B")
    pdf.ln(4)
    line("yang telah menyelesaikan bimbingan teknis", 12)
    pdf.ln(1)
    line(cert.program_title, 16, style="B")
    pdf.ln(2)
    period = f"{indonesian_date(cert.start_date)} s.d. {indonesian_date(cert.end_date)}"
    line(f"pada {period} ({cert.hours} jam pelajaran)", 11)
    if cert.partner:
        line(f"bekerja sama dengan {cert.partner}", 11)
    pdf.ln(6)
    line("Unit kompetensi yang dinyatakan kompeten:", 11, style="B")
    for code, title in cert.competency_units:
        line(f"{code}  {title}", unit_size, height=unit_size * 0.55)
    content_bottom = pdf.get_y()

    # The issuer and the date on the left, the QR code to the verification page on the right.
    qr_size = QR_SIZE
    bottom = pdf.h - 24
    pdf.image(
        io.BytesIO(qr_png(cert.verification_url)),
        x=pdf.w - 20 - qr_size,
        y=bottom - qr_size - 10,
        w=qr_size,
        h=qr_size,
    )
    pdf.set_xy(20, bottom - qr_size - 6)
    pdf.set_font(FONT, size=10)
    pdf.multi_cell(
        width - qr_size - 8,
        5,
        f"Diterbitkan pada {indonesian_date(cert.issued_on)}\noleh {ISSUER}",
        align="L",
    )
    pdf.set_font(FONT, style="I", size=8)
    pdf.set_xy(20, bottom - 8)
    pdf.multi_cell(
        width,
        4,
        "Sertifikat ini ditandatangani secara digital. Pindai kode QR atau buka "
        f"{cert.verification_url} untuk memeriksa keasliannya.",
        align="L",
    )
    return content_bottom
