"""The printed certificate as an official document: the signatory (name, position, NIP), the
place and date of issue, the date of graduation, the optional emblem, and one A4 page whatever
the length of the name and of the list of competency units.

Read back from the PDF with pypdf (and with poppler's pdftotext where it is installed).
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pypdf
import pytest
from PIL import Image
from pydantic import ValidationError

from bekal.certification import pdf
from bekal.certification.services.printing import paper as paper_from_settings
from bekal.certification.settings import (
    PLACEHOLDER_SIGNATORY_NAME,
    PLACEHOLDER_SIGNATORY_NIP,
    PLACEHOLDER_SIGNATORY_POSITION,
    CertificationSettings,
)

SIGNATORY = pdf.Signatory(
    name="Dr. Ir. Hartati Wulandari, M.Sc.",
    position="Direktur Jenderal Industri Kecil, Menengah, dan Aneka",
    nip="196812171994032001",
)
PAPER = pdf.Paper(place="Jakarta", signatory=SIGNATORY)

CERTIFICATE = pdf.PrintedCertificate(
    number="IKMA/2024/000001",
    recipient_name="Siti Rahmawati",
    program_title="Bimtek Wirausaha Baru IKM Batik",
    competency_units=[("BTK.01", "Membatik tulis dengan canting"), ("BTK.02", "Pewarnaan alami")],
    hours=40,
    start_date=date(2024, 9, 3),
    end_date=date(2024, 9, 7),  # the course ended: the date of graduation
    issued_on=date(2024, 9, 16),  # signed later, in Jakarta
    partner="Yayasan Batik Indonesia",
    verification_url="https://sertifikat.example.id/verify/abc",
)
LONG_NAME = (
    "Raden Roro Nguy\u1ec5n Th\u1ecb \u00c1nh Ma\u2019ruf Hidayatullah Kusumawardhani "
    "Setyaningsih Purbaningrum"
)
MANY_UNITS = [
    (f"KYU.{i:02d}", "Mengoperasikan mesin serut dan amplas untuk finishing produk kayu olahan")
    for i in range(40)
]


def _reader(document: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(document))


def _text(document: bytes, page: int = 0) -> str:
    return " ".join(_reader(document).pages[page].extract_text().split())


def _pdftotext(document: bytes, tmp_path: Path) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    source = tmp_path / "certificate.pdf"
    source.write_bytes(document)
    done = subprocess.run(
        ["pdftotext", "-layout", str(source), "-"], capture_output=True, text=True, check=True
    )
    return " ".join(done.stdout.split())


def _image(kind: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 140, 30)).save(buffer, format=kind)
    return buffer.getvalue()


def test_the_certificate_closes_with_place_date_and_the_signatory(tmp_path):
    document = pdf.render(CERTIFICATE, PAPER)
    for text in filter(None, (_text(document), _pdftotext(document, tmp_path))):
        assert "Jakarta, 16 September 2024" in text  # the place and the date of issue
        assert "Dr. Ir. Hartati Wulandari, M.Sc." in text
        assert "Direktur Jenderal Industri Kecil, Menengah, dan Aneka" in text
        assert "NIP 19681217 199403 2 001" in text  # the NIP in its printed groups


def test_the_graduation_date_is_the_courses_last_day_not_the_issue_date(tmp_path):
    document = pdf.render(CERTIFICATE, PAPER)
    for text in filter(None, (_text(document), _pdftotext(document, tmp_path))):
        assert "Tanggal kelulusan: 7 September 2024" in text
        assert "Jakarta, 16 September 2024" in text
        assert "Tanggal kelulusan: 16 September 2024" not in text
        assert "Jakarta, 7 September 2024" not in text


def test_indonesian_month_names_in_the_place_and_date_line():
    for month, name in ((1, "Januari"), (2, "Februari"), (8, "Agustus"), (12, "Desember")):
        cert = dataclasses.replace(CERTIFICATE, issued_on=date(2025, month, 2))
        assert f"Jakarta, 2 {name} 2025" in _text(pdf.render(cert, PAPER))
    other_place = dataclasses.replace(PAPER, place="Surabaya")
    assert "Surabaya, 16 September 2024" in _text(pdf.render(CERTIFICATE, other_place))


def test_a_long_name_and_forty_competency_units_stay_on_one_a4_page(tmp_path):
    cert = dataclasses.replace(
        CERTIFICATE,
        recipient_name=LONG_NAME,
        program_title="Bimtek Wirausaha Baru Industri Kecil dan Menengah Kerajinan Kayu, "
        "Rotan, dan Bambu untuk Pasar Ekspor",
        competency_units=MANY_UNITS,
    )
    document = pdf.render(cert, dataclasses.replace(PAPER, emblem=_image("PNG", (300, 200))))
    reader = _reader(document)
    assert len(reader.pages) == 1
    page = reader.pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    text = _text(document)
    assert all(code in text for code, _ in MANY_UNITS)
    assert "NIP 19681217 199403 2 001" in text and "Jakarta, 16 September 2024" in text
    # The name wraps but prints whole, letter for letter (pdftotext joins the lines again).
    plain = _pdftotext(document, tmp_path)
    if plain is not None:
        assert LONG_NAME in plain


def test_long_lists_are_set_smaller_and_in_columns_before_the_name_shrinks():
    fit = pdf.fit_for(CERTIFICATE, PAPER)
    assert (fit.unit_columns, fit.unit_size, fit.name_size) == (1, 10, pdf.NAME_SIZES[0])
    twenty = dataclasses.replace(CERTIFICATE, competency_units=MANY_UNITS[:20])
    fit = pdf.fit_for(twenty, PAPER)
    assert fit.unit_columns > 1 or fit.unit_size < 10
    assert fit.unit_size >= pdf.SMALLEST_LEGIBLE and fit.name_size == pdf.NAME_SIZES[0]
    long_name = dataclasses.replace(CERTIFICATE, recipient_name=LONG_NAME)
    assert pdf.fit_for(long_name, PAPER).name_size < pdf.NAME_SIZES[0]  # two lines at most


def test_the_emblem_is_printed_only_when_set_keeping_its_proportions():
    assert len(_reader(pdf.render(CERTIFICATE, PAPER)).pages[0].images) == 1  # the QR code
    for kind in ("PNG", "JPEG"):
        wide = dataclasses.replace(PAPER, emblem=_image(kind, (300, 100)))
        images = _reader(pdf.render(CERTIFICATE, wide)).pages[0].images
        assert len(images) == 2
        emblem = next(i.image for i in images if i.image.size == (300, 100))
        assert emblem.size == (300, 100)


def test_the_emblem_file_must_be_a_png_or_a_jpeg(tmp_path):
    png = tmp_path / "lambang.png"
    png.write_bytes(_image("PNG", (40, 40)))
    assert pdf.emblem_image(png) == png.read_bytes()
    gif = tmp_path / "lambang.gif"
    gif.write_bytes(_image("GIF", (40, 40)))
    with pytest.raises(ValueError, match="PNG or JPEG"):
        pdf.emblem_image(gif)
    text = tmp_path / "lambang.png.txt"
    text.write_text("bukan gambar")
    with pytest.raises(ValueError, match="not an image"):
        pdf.emblem_image(text)


def test_the_paper_comes_from_settings(tmp_path):
    emblem = tmp_path / "lambang.jpg"
    emblem.write_bytes(_image("JPEG", (60, 80)))
    settings = CertificationSettings(
        certificate_place="Jakarta",
        certificate_signatory_name="Dr. Ir. Hartati Wulandari, M.Sc.",
        certificate_signatory_position="Direktur Jenderal Industri Kecil, Menengah, dan Aneka",
        certificate_signatory_nip="19681217 199403 2 001",
        certificate_emblem_file=emblem,
    )
    paper = paper_from_settings(settings)
    assert paper.signatory == dataclasses.replace(SIGNATORY, nip="19681217 199403 2 001")
    assert paper.emblem == emblem.read_bytes()
    assert paper_from_settings(CertificationSettings()).emblem is None


def test_development_prints_a_placeholder_signatory_that_production_refuses():
    text = _text(pdf.render(CERTIFICATE, paper_from_settings(CertificationSettings())))
    assert PLACEHOLDER_SIGNATORY_NAME in text and "(contoh)" in text
    production = {
        "environment": "production",
        "auth_jwks_url": "https://sso.example.go.id/certs",
        "auth_issuer": "https://sso.example.go.id/realms/bekal",
    }
    with pytest.raises(ValidationError, match="CERTIFICATE_SIGNATORY_NAME"):
        CertificationSettings(**production)  # type: ignore[arg-type]
    signatory = {
        "certificate_signatory_name": "Dr. Ir. Hartati Wulandari, M.Sc.",
        "certificate_signatory_position": "Direktur Jenderal Industri Kecil, Menengah, dan Aneka",
        "certificate_signatory_nip": "196812171994032001",
    }
    for name, placeholder in (
        ("certificate_signatory_name", PLACEHOLDER_SIGNATORY_NAME),
        ("certificate_signatory_position", PLACEHOLDER_SIGNATORY_POSITION),
        ("certificate_signatory_nip", PLACEHOLDER_SIGNATORY_NIP),
    ):
        with pytest.raises(ValidationError, match=name.upper()):
            CertificationSettings(**production, **{**signatory, name: placeholder})  # type: ignore[arg-type]
    CertificationSettings(**production, **signatory)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "nip", ["1968121719940320", "19681217199403200A", "NIP 196812171994032001"]
)
def test_a_nip_is_eighteen_digits(nip):
    with pytest.raises(ValidationError, match="CERTIFICATE_SIGNATORY_NIP"):
        CertificationSettings(certificate_signatory_nip=nip)


def test_a_sessions_pdf_keeps_one_page_per_certificate_each_with_its_closing():
    certs = [
        CERTIFICATE,
        dataclasses.replace(
            CERTIFICATE,
            number="IKMA/2024/000002",
            recipient_name=LONG_NAME,
            competency_units=MANY_UNITS,
        ),
        dataclasses.replace(CERTIFICATE, number="IKMA/2024/000003", recipient_name="Dédé"),
    ]
    document = pdf.render_many(certs, title="Sertifikat sesi", paper=PAPER)
    assert len(_reader(document).pages) == 3
    for page, cert in enumerate(certs):
        text = _text(document, page)
        assert cert.number in text and "NIP 19681217 199403 2 001" in text
        assert "Tanggal kelulusan: 7 September 2024" in text
        assert "Jakarta, 16 September 2024" in text
    assert "Dédé" in _text(document, 2)
