"""The printable certificate: an A4 page in Bahasa Indonesia with a QR code to its verification."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import date

import segno
from fpdf import FPDF

from bekal.certification.domain import ISSUER, indonesian_date


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


def _latin1(text: str) -> str:
    # The PDF's built-in fonts cover Latin-1 only (no font file ships with the service):
    # other letters are printed without their accents rather than refused.
    out = []
    for ch in text:
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            out.append(base or "?")
    return "".join(out)


QR_SIZE = 42  # mm
FOOTER_TOP = 297 - 24 - QR_SIZE - 10  # mm: where the issuer block and the QR code begin


def render(cert: PrintedCertificate) -> bytes:
    """The certificate as a one-page A4 PDF; a long list of competencies is set smaller."""
    return _render(cert, unit_size=unit_size_for(cert))[0]


def unit_size_for(cert: PrintedCertificate) -> float:
    """The largest font size at which the competency units end above the issuer and QR code."""
    sizes = (10.0, 9.0, 8.0, 7.0, 6.0, 5.0)
    for size in sizes:
        if _render(cert, unit_size=size)[1] <= FOOTER_TOP:
            return size
    return sizes[-1]  # pragma: no cover - only with dozens of competency units


def _render(cert: PrintedCertificate, *, unit_size: float) -> tuple[bytes, float]:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(_latin1(f"Sertifikat {cert.number}"))
    pdf.set_author(_latin1(ISSUER))
    pdf.set_creator("Bekal")
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    width = pdf.w - 2 * 20

    # A double frame, as printed certificates have.
    pdf.set_draw_color(90, 60, 20)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, pdf.w - 20, pdf.h - 20)
    pdf.set_line_width(0.3)
    pdf.rect(13, 13, pdf.w - 26, pdf.h - 26)

    def line(text: str, size: float, *, style: str = "", height: float | None = None) -> None:
        pdf.set_font("helvetica", style=style, size=size)
        pdf.set_x(20)
        pdf.multi_cell(width, height or size * 0.5, _latin1(text), align="C")

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
    pdf.set_font("helvetica", size=10)
    pdf.multi_cell(
        width - qr_size - 8,
        5,
        _latin1(f"Diterbitkan pada {indonesian_date(cert.issued_on)}\noleh {ISSUER}"),
    )
    pdf.set_font("helvetica", style="I", size=8)
    pdf.set_xy(20, bottom - 8)
    pdf.multi_cell(
        width,
        4,
        _latin1(
            "Sertifikat ini ditandatangani secara digital. Pindai kode QR atau buka "
            f"{cert.verification_url} untuk memeriksa keasliannya."
        ),
        align="L",
    )
    return bytes(pdf.output()), content_bottom
