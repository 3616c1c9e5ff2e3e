"""Names beyond Latin-1 on the printed certificate, and a name typed from the paper.

The PDF is read back with pypdf (and, where poppler's pdftotext is installed, with it too):
each hard name must come out exactly as given, letter for letter.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date

import pypdf
import pytest

from bekal.certification import domain, pdf

HARD_NAMES = [
    "Ma\u2019ruf Hidayat",  # typographic apostrophe, U+2019
    "Nur'aini",
    "Dédé",
    "Nguyễn Thị Ánh",
    "Çağla Y\u0131lmaz",
    "Łukasz Wójcik",
    "王小明",
]


def _certificate(name: str, **overrides: object) -> pdf.PrintedCertificate:
    values: dict[str, object] = {
        "number": "IKMA/2024/000009",
        "recipient_name": name,
        "program_title": "Bimtek Olahan Pangan",
        "competency_units": [("PGN.01", "Pengolahan makanan")],
        "hours": 30,
        "start_date": date(2023, 7, 17),
        "end_date": date(2023, 7, 22),
        "issued_on": date(2023, 7, 23),
        "partner": None,
        "verification_url": "https://sertifikat.example.id/verify/abc",
    }
    values.update(overrides)
    return pdf.PrintedCertificate(**values)  # type: ignore[arg-type]


def _pypdf_text(document: bytes) -> str:
    # pypdf reads the two-byte codes of a CID-keyed CFF font (Noto Sans CJK, as fpdf2 embeds it
    # with its own code map) one byte at a time and gives the high zero byte as U+0000 before
    # each letter; the font's ToUnicode map is right (pdftotext reads it as is). Only that
    # U+0000 is removed: a letter printed wrong or not at all still fails.
    return pypdf.PdfReader(io.BytesIO(document)).pages[0].extract_text().replace("\x00", "")


def _fonts(document: bytes) -> list[str]:
    resources = pypdf.PdfReader(io.BytesIO(document)).pages[0]["/Resources"]
    return sorted(str(f.get_object()["/BaseFont"]) for f in resources["/Font"].values())


@pytest.mark.parametrize("name", HARD_NAMES)
def test_every_hard_name_prints_exactly(name: str) -> None:
    document = pdf.render(_certificate(name))
    text = _pypdf_text(document)
    assert name in text.splitlines(), text
    assert "?" not in text
    if shutil.which("pdftotext"):
        out = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", "-", "-"],
            input=document,
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert name in out.splitlines(), out


def test_the_fonts_are_embedded_and_the_cjk_one_only_when_a_text_needs_it() -> None:
    latin = _fonts(pdf.render(_certificate("Nguyễn Thị Ánh")))
    assert latin and all("NotoSans" in f and "CJK" not in f for f in latin), latin
    assert not any("Helvetica" in f for f in latin)
    reader = pypdf.PdfReader(io.BytesIO(pdf.render(_certificate("Nguyễn Thị Ánh"))))
    for font in reader.pages[0]["/Resources"]["/Font"].values():
        descriptor = font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        assert "/FontFile2" in descriptor.get_object()  # embedded, not named for the viewer
    cjk = _fonts(pdf.render(_certificate("王小明")))
    assert any("NotoSansCJKSC" in f for f in cjk), cjk


def test_other_texts_beyond_latin_1_print_too() -> None:
    document = pdf.render(
        _certificate(
            "Siti Rahmawati",
            program_title="Bimtek Kerajinan \u201cSongket\u201d Palembang",
            partner="Koperasi Đặng & Qur\u2019ani",
            competency_units=[("KRJ.01", "Menenun songket \u2013 tingkat dasar")],
        )
    )
    text = _pypdf_text(document)
    assert "Bimtek Kerajinan \u201cSongket\u201d Palembang" in text
    assert "bekerja sama dengan Koperasi Đặng & Qur\u2019ani" in text
    assert "KRJ.01" in text and "Menenun songket \u2013 tingkat dasar" in text


def test_a_name_no_font_can_print_is_refused_not_printed_wrong() -> None:
    # Arabic script (U+0645 meem) and an emoji: neither Noto Sans nor Noto Sans CJK has them.
    with pytest.raises(pdf.UnprintableText) as refused:
        pdf.render(_certificate("Siti \u0645 \U0001f600"))
    assert refused.value.code_points == ["U+0645", "U+1F600"]


# --- a name typed from the paper ---------------------------------------------------------------

SAME = [
    ("Dédé", "Dede"),
    ("Dédé", "DEDE"),
    ("Dédé", "De\u0301de\u0301"),  # decomposed accents, as some keyboards send them
    ("Ma\u2019ruf Hidayat", "Ma'ruf Hidayat"),
    ("Ma\u2019ruf Hidayat", "ma\u02bcruf   hidayat"),  # modifier letter apostrophe
    ("Ma\u2019ruf Hidayat", "Ma`ruf Hidayat"),
    ("Ma\u2019ruf Hidayat", "Ma\u2018ruf Hidayat"),
    ("Ma\u2019ruf Hidayat", "Ma\u00b4ruf Hidayat"),  # the acute accent key
    # Decided: an apostrophe may be left out. Ma'ruf and Maruf, Nur'aini and Nuraini are the
    # same name written two ways, and the number already says which certificate is meant.
    ("Ma\u2019ruf Hidayat", "Maruf Hidayat"),
    ("Nur'aini", "Nuraini"),
    ("Nguyễn Thị Ánh", "nguyen thi anh"),
    ("Nguyễn Thị Ánh", "  Nguyen\tThi  Anh "),
    ("Çağla Y\u0131lmaz", "cagla yilmaz"),
    ("Łukasz Wójcik", "Lukasz Wojcik"),
    ("Đặng Văn Lâm", "Dang Van Lam"),
    ("Siti Rahmawati", "SITI RAHMAWATI"),
    ("王小明", "王小明"),
    ("王小明", " 王小明 "),
]

DIFFERENT = [
    ("Dede", "Dodo"),
    ("Dédé", "Dodo"),
    ("Ma\u2019ruf Hidayat", "Ma'ruf Hidayah"),
    ("Ma\u2019ruf Hidayat", "Ma'ruf"),  # part of the name is not the name
    ("Nur'aini", "Nur aini"),  # a space is not an apostrophe: another word
    ("Nguyễn Thị Ánh", "Nguyen Thi Anh Dewi"),
    ("Siti Rahmawati", "Siti Rahmawaty"),
    ("Siti Rahmawati", "SitiRahmawati"),
    ("王小明", "王小名"),
    ("Dede", ""),
    ("Dede", "'"),
]


@pytest.mark.parametrize(("printed", "typed"), SAME)
def test_a_name_typed_differently_still_matches(printed: str, typed: str) -> None:
    assert domain.typed_name_matches(printed, typed)
    assert domain.typed_name_matches(typed, printed)


@pytest.mark.parametrize(("printed", "typed"), DIFFERENT)
def test_a_different_name_does_not_match(printed: str, typed: str) -> None:
    assert not domain.typed_name_matches(printed, typed)


def test_the_credential_hash_stays_exact_while_typing_is_folded() -> None:
    # The salted identity hash signed into every credential is over the NFC, case-folded,
    # single-spaced name: unchanged, so the credentials already issued still verify.
    salt = "salt-1"
    stored = domain.identity_hash("Ma\u2019ruf Hidayat", salt)
    assert stored == domain.identity_hash("  ma\u2019ruf   HIDAYAT ", salt)
    assert stored != domain.identity_hash("Ma'ruf Hidayat", salt)
    assert domain.typed_name_key("Ma\u2019ruf  HIDAYAT") == "maruf hidayat"
