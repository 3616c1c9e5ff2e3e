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
from typing import cast

import noto_cjk_sans_otc  # type: ignore[import-untyped]
import pymupdf_fonts  # type: ignore[import-untyped]
import segno
from fontTools.ttLib import TTCollection, TTFont
from fpdf import FPDF
from PIL import Image

from bekal.certification.domain import ISSUER, indonesian_date
from bekal.certification.settings import (
    PLACEHOLDER_SIGNATORY_NAME,
    PLACEHOLDER_SIGNATORY_NIP,
    PLACEHOLDER_SIGNATORY_POSITION,
)

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
    end_date: date  # the course's last day: the date of graduation printed
    issued_on: date  # the credential's: the date in the place and date line
    partner: str | None
    verification_url: str


@dataclass(frozen=True)
class Signatory:
    """The official whose name, position (jabatan) and NIP close the certificate."""

    name: str
    position: str
    nip: str


@dataclass(frozen=True)
class Paper:
    """What every certificate of a deployment carries besides its own facts (from settings)."""

    place: str
    signatory: Signatory
    emblem: bytes | None = None  # a PNG or JPEG (see emblem_image)


EXAMPLE_PAPER = Paper(
    place="Jakarta",
    signatory=Signatory(
        name=PLACEHOLDER_SIGNATORY_NAME,
        position=PLACEHOLDER_SIGNATORY_POSITION,
        nip=PLACEHOLDER_SIGNATORY_NIP,
    ),
)

EMBLEM_FORMATS = frozenset({"PNG", "JPEG"})


def emblem_image(path: Path) -> bytes:
    """The emblem file's bytes, once checked to be a PNG or JPEG image (ValueError if not)."""
    content = path.read_bytes()
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind = image.format
            image.verify()
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"emblem {path} is not an image: {exc}") from exc
    if kind not in EMBLEM_FORMATS:
        raise ValueError(f"emblem {path} is {kind}; PNG or JPEG expected")
    return content


def printed_nip(nip: str) -> str:
    """An 18-digit NIP in its printed groups: birth date, appointment, sex, sequence."""
    digits = nip.replace(" ", "")
    if len(digits) == 18 and digits.isdigit():
        return f"{digits[:8]} {digits[8:14]} {digits[14]} {digits[15:]}"
    return " ".join(nip.split())


def qr_png(url: str, *, scale: int = 8) -> bytes:
    """The QR code (error correction M, quiet zone 4) of ``url`` as a PNG."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


# The page, in mm. Text is set inside the inner frame's margins; the closing block (QR code
# on the left, the signatory on the right) sits on FOOTNOTE_TOP, the footnote below it.
MARGIN = 20
TEXT_WIDTH = 210 - 2 * MARGIN
BODY_TOP = 22
EMBLEM_BOX = (32.0, 24.0)  # width, height: the emblem is scaled to fit, keeping its proportions
QR_SIZE = 34
FOOTNOTE_TOP = 265
SIGNATURE_SPACE = 22  # for the signature and the stamp
SIGNATORY_X = 112
SIGNATORY_WIDTH = 210 - MARGIN - SIGNATORY_X
CLOSING_GAP = 6  # at least this much between the competency units and the closing block

NAME_SIZES = (24.0, 22.0, 20.0, 18.0, 16.0, 14.0)  # pt: the largest that keeps to two lines
TITLE_SIZES = (16.0, 15.0, 14.0, 13.0, 12.0)
# (columns, pt) for the competency units, tried in turn until they end above the closing block.
UNIT_STEPS = (
    (1, 10.0),
    (1, 9.0),
    (2, 9.0),
    (2, 8.0),
    (2, 7.0),
    (2, 6.0),
    (3, 6.0),
    (3, 5.0),
    (3, 4.0),
)
COLUMN_GAP = 6.0
SMALLEST_LEGIBLE = 6.0  # pt; smaller only for dozens of long competency units
SPACINGS = (1.6, 1.3, 1.0, 0.6)


def line_height(size: float) -> float:
    """mm per line of text set at ``size`` pt (about 1.4 times the size)."""
    return size * 0.5


@dataclass(frozen=True)
class Fit:
    """How one certificate is set so that it stays on one page."""

    name_size: float
    title_size: float
    unit_columns: int
    unit_size: float
    spacing: float = 1.0  # the vertical gaps between the parts, as a share of their full size


def render(cert: PrintedCertificate, paper: Paper = EXAMPLE_PAPER) -> bytes:
    """The certificate as a one-page A4 PDF: a long name, title or list of competency units is
    set smaller (the units in columns) rather than run onto a second page or the signature.

    Raises UnprintableText when a text (the name, most likely) has a letter no font has.
    """
    pdf = _document([*printed_texts(cert, paper)], f"Sertifikat {cert.number}")
    _page(pdf, cert, paper)
    return bytes(pdf.output())


def render_many(
    certs: Sequence[PrintedCertificate], *, title: str, paper: Paper = EXAMPLE_PAPER
) -> bytes:
    """Several certificates as one A4 PDF, a page each, to print at once (a session's).

    Each page is set as ``render`` sets it alone; the fonts and the emblem are embedded once.
    Raises UnprintableText when any text has a letter no font has.
    """
    pdf = _document([text for cert in certs for text in printed_texts(cert, paper)], title)
    for cert in certs:
        _page(pdf, cert, paper)
    return bytes(pdf.output())


def printed_texts(cert: PrintedCertificate, paper: Paper = EXAMPLE_PAPER) -> list[str]:
    """Every text of ``cert`` and ``paper`` that goes on the paper, besides our fixed wording."""
    texts = [ISSUER, cert.number, cert.recipient_name, cert.program_title, cert.verification_url]
    texts += [cert.partner or "", paper.place, paper.signatory.name, paper.signatory.position]
    texts += [paper.signatory.nip]
    texts += [part for unit in cert.competency_units for part in unit]
    return texts


def fit_for(cert: PrintedCertificate, paper: Paper = EXAMPLE_PAPER) -> Fit:
    """The largest setting at which ``cert`` ends above its closing block (measured, not drawn)."""
    pdf = _document(printed_texts(cert, paper), "")
    pdf.add_page()
    return _fit(pdf, cert, paper)


def _document(texts: Iterable[str], title: str) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    _use_fonts(pdf, texts)
    pdf.set_title(title)
    pdf.set_author(ISSUER)
    pdf.set_creator("Bekal")
    pdf.set_auto_page_break(auto=False)
    return pdf


def _page(pdf: FPDF, cert: PrintedCertificate, paper: Paper) -> None:
    pdf.add_page()
    fit = _fit(pdf, cert, paper)
    _frame(pdf)
    _body(pdf, cert, paper, fit, draw=True)
    _closing(pdf, cert, paper, draw=True)


def _fit(pdf: FPDF, cert: PrintedCertificate, paper: Paper) -> Fit:
    limit = _closing(pdf, cert, paper, draw=False) - CLOSING_GAP
    name_size = _largest(pdf, cert.recipient_name, NAME_SIZES, width=TEXT_WIDTH, lines=2)
    title_size = _largest(pdf, cert.program_title, TITLE_SIZES, width=TEXT_WIDTH, lines=2)
    # The competency units are set smaller and in columns before the name and the title are;
    # the vertical gaps open up when there is room and close in when there is not.
    legible = [step for step in UNIT_STEPS if step[1] >= SMALLEST_LEGIBLE]
    tries = [
        Fit(name_size, title_size, columns, size, spacing)
        for columns, size in legible
        for spacing in SPACINGS
    ]
    # Then the name and the title a step smaller at a time, with the gaps closed in.
    smaller = [n for n in NAME_SIZES if n < name_size]
    for step, name in enumerate(smaller, start=1):
        title = max(TITLE_SIZES[-1], title_size - step)
        tries += [Fit(name, title, columns, size, SPACINGS[-1]) for columns, size in legible]
    tries += [
        Fit(NAME_SIZES[-1], TITLE_SIZES[-1], columns, size, SPACINGS[-1])
        for columns, size in UNIT_STEPS
        if size < SMALLEST_LEGIBLE
    ]
    for fit in tries:
        if _body(pdf, cert, paper, fit, draw=False) <= limit:
            return fit
    return tries[-1]  # pragma: no cover - only with a hundred competency units or more


def _largest(pdf: FPDF, text: str, sizes: Sequence[float], *, width: float, lines: int) -> float:
    for size in sizes:
        pdf.set_font(FONT, style="B", size=size)
        if len(_lines(pdf, text, width, size)) <= lines:
            return size
    return sizes[-1]


def _lines(pdf: FPDF, text: str, width: float, size: float) -> list[str]:
    result = pdf.multi_cell(width, line_height(size), text, align="L", dry_run=True, output="LINES")
    return cast(list[str], result)


def _text(
    pdf: FPDF,
    text: str,
    *,
    y: float,
    size: float,
    draw: bool,
    style: str = "",
    x: float = MARGIN,
    width: float = TEXT_WIDTH,
    align: str = "C",
) -> float:
    """Set ``text`` from ``y`` (or only measure it); where it ends. Left or centred, never
    justified: a justified line of a certificate is stretched to the width."""
    pdf.set_font(FONT, style=style, size=size)
    height = line_height(size)
    if draw:
        pdf.set_xy(x, y)
        pdf.multi_cell(width, height, text, align=align)
    return y + height * len(_lines(pdf, text, width, size))


def _frame(pdf: FPDF) -> None:
    # A double frame, as printed certificates have.
    pdf.set_draw_color(90, 60, 20)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, pdf.w - 20, pdf.h - 20)
    pdf.set_line_width(0.3)
    pdf.rect(13, 13, pdf.w - 26, pdf.h - 26)


def _body(pdf: FPDF, cert: PrintedCertificate, paper: Paper, fit: Fit, *, draw: bool) -> float:
    """The letterhead, the holder, the course and the competency units; where they end."""
    gap = fit.spacing
    y: float = BODY_TOP
    if paper.emblem is not None:
        width, height = EMBLEM_BOX
        if draw:
            pdf.image(
                io.BytesIO(paper.emblem),
                x=(pdf.w - width) / 2,
                y=y,
                w=width,
                h=height,
                keep_aspect_ratio=True,
            )
        y += height + 3
    y = _text(
        pdf, "KEMENTERIAN PERINDUSTRIAN REPUBLIK INDONESIA", y=y, size=12, style="B", draw=draw
    )
    y = _text(
        pdf, "Direktorat Jenderal Industri Kecil, Menengah, dan Aneka", y=y, size=11, draw=draw
    )
    y += 9 * gap
    y = _text(pdf, "SERTIFIKAT", y=y, size=32, style="B", draw=draw)
    y = _text(pdf, f"Nomor: {cert.number}", y=y, size=11, draw=draw)
    y += 7 * gap
    y = _text(pdf, "diberikan kepada", y=y, size=12, draw=draw)
    y += 2 * gap
    y = _text(pdf, cert.recipient_name, y=y, size=fit.name_size, style="B", draw=draw)
    y += 4 * gap
    y = _text(pdf, "yang telah menyelesaikan bimbingan teknis", y=y, size=12, draw=draw)
    y += 1 * gap
    y = _text(pdf, cert.program_title, y=y, size=fit.title_size, style="B", draw=draw)
    y += 2 * gap
    period = f"{indonesian_date(cert.start_date)} s.d. {indonesian_date(cert.end_date)}"
    y = _text(pdf, f"pada {period} ({cert.hours} jam pelajaran)", y=y, size=11, draw=draw)
    if cert.partner:
        y = _text(pdf, f"bekerja sama dengan {cert.partner}", y=y, size=11, draw=draw)
    y += 1 * gap
    graduated = f"Tanggal kelulusan: {indonesian_date(cert.end_date)}"
    y = _text(pdf, graduated, y=y, size=11, style="B", draw=draw)
    y += 6 * gap
    y = _text(pdf, "Unit kompetensi yang dinyatakan kompeten:", y=y, size=11, style="B", draw=draw)
    y += 1 * gap
    return _units(pdf, cert.competency_units, y=y, fit=fit, draw=draw)


def _units(pdf: FPDF, units: Sequence[tuple[str, str]], *, y: float, fit: Fit, draw: bool) -> float:
    """The competency units, code then title, left-aligned in one to three columns (filled
    down, then across); a one-column list is centred as a block. Where they end."""
    if not units:
        return y
    size, columns = fit.unit_size, fit.unit_columns
    pdf.set_font(FONT, size=size)
    code_width = max(pdf.get_string_width(code) for code, _ in units) + 2.5
    column_width = (TEXT_WIDTH - COLUMN_GAP * (columns - 1)) / columns
    left = float(MARGIN)
    if columns == 1:
        # multi_cell keeps a cell margin on either side of the text.
        widest = max(pdf.get_string_width(title) for _, title in units) + 2 * pdf.c_margin + 0.5
        column_width = min(TEXT_WIDTH, code_width + widest)
        left = MARGIN + (TEXT_WIDTH - column_width) / 2
    title_width = column_width - code_width
    per_column = -(-len(units) // columns)
    bottom = y
    for column in range(columns):
        x = left + column * (column_width + COLUMN_GAP)
        row_y = y
        for code, title in units[column * per_column : (column + 1) * per_column]:
            if draw:
                pdf.set_font(FONT, size=size)
                pdf.set_xy(x, row_y)
                pdf.cell(code_width, line_height(size), code, align="L")
            row_y = _text(
                pdf,
                title,
                y=row_y,
                size=size,
                x=x + code_width,
                width=title_width,
                align="L",
                draw=draw,
            )
        bottom = max(bottom, row_y)
    return bottom


def _closing(pdf: FPDF, cert: PrintedCertificate, paper: Paper, *, draw: bool) -> float:
    """The QR code to the verification page on the left, the place, date and signatory on the
    right, both ending on FOOTNOTE_TOP, and the footnote; where the closing block begins."""
    signatory = paper.signatory

    def line(text: str, y: float, *, draw: bool, style: str = "") -> float:
        return _text(
            pdf,
            text,
            y=y,
            size=10,
            style=style,
            x=SIGNATORY_X,
            width=SIGNATORY_WIDTH,
            align="L",
            draw=draw,
        )

    def block(y: float, *, draw: bool) -> float:
        y = line(f"{paper.place}, {indonesian_date(cert.issued_on)}", y, draw=draw)
        y = line(signatory.position, y, draw=draw)
        y += SIGNATURE_SPACE
        y = line(signatory.name, y, style="BU", draw=draw)
        return line(f"NIP {printed_nip(signatory.nip)}", y, draw=draw)

    signatory_top = FOOTNOTE_TOP - block(0.0, draw=False)
    qr_top = FOOTNOTE_TOP - QR_SIZE
    if draw:
        block(signatory_top, draw=True)
        pdf.image(
            io.BytesIO(qr_png(cert.verification_url)), x=MARGIN, y=qr_top, w=QR_SIZE, h=QR_SIZE
        )
        _text(
            pdf,
            "Sertifikat ini ditandatangani secara digital. Pindai kode QR atau buka "
            f"{cert.verification_url} untuk memeriksa keasliannya.",
            y=FOOTNOTE_TOP + 4,
            size=8,
            style="I",
            align="L",
            draw=True,
        )
    return min(signatory_top, qr_top)
