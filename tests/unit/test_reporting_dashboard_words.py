"""The dashboard's words and links: sectors, reasons, sexes and programs by the names people read;
a link to each ministry's staff pages for the people who may use them, at the addresses
`bekal run` gives reporting."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from bekal.devtools.devrun import Platform
from bekal.reporting import labels
from bekal.reporting.settings import ReportingSettings
from bekal.reporting.web.dashboard import ministry_pages
from bekal.reporting.web.figures import angka, persen, read_filters, schedule
from bekal.shared.auth import Ministry, Principal, Role
from bekal.shared.events.catalogue import WithdrawalReason


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("kerajinan_kayu", "Kerajinan kayu"),
        ("kerajinan kayu", "Kerajinan kayu"),
        ("batik", "Batik"),
        ("pangan_olahan", "Pengolahan pangan"),
        ("fesyen", "Fesyen"),
        ("anyaman_bambu", "Anyaman bambu"),  # not listed: written out, never a raw code
        (None, "(belum diketahui)"),
    ],
)
def test_sectors_read_as_names(code: str | None, name: str) -> None:
    assert labels.sector_label(code) == name


def test_every_withdrawal_reason_has_a_name_of_its_own() -> None:
    names = [labels.withdrawal_label(r) for r in WithdrawalReason]
    assert names == ["Bebas", "Dipindahkan", "Mengundurkan diri", "Alasan lain"]


def test_programs_of_one_title_are_told_apart_by_code_and_year() -> None:
    assert (
        labels.program_label("Bimtek Batik", "WUB-BATIK", 2024) == "Bimtek Batik (WUB-BATIK, 2024)"
    )
    assert labels.program_label("Bimtek Batik", "BATIK-WARNA") == "Bimtek Batik (BATIK-WARNA)"
    assert labels.program_label(None, "KRJ-KAYU", 2019) == "KRJ-KAYU (2019)"
    assert labels.sex_label("F") == "Perempuan" and labels.sex_label(None) == "Belum dibagikan"


def test_numbers_read_as_written_in_indonesian() -> None:
    assert angka(25000) == "25.000" and angka("<5") == "<5"
    assert persen(1.0) == "100%" and persen(0.6667) == "66,7%" and persen(None) == "—"


def test_a_sessions_days_read_as_written() -> None:
    assert schedule(date(2024, 9, 2), date(2024, 9, 6)) == "2\u20136 September 2024"
    assert schedule(date(2024, 7, 30), date(2024, 8, 3)) == "30 Juli\u20133 Agustus 2024"
    assert schedule(date(2024, 12, 30), date(2025, 1, 3)) == "30 Desember 2024\u20133 Januari 2025"
    assert schedule(None, None) == "\u2014"


def test_filters_from_the_address_drop_empty_and_report_invalid_values() -> None:
    filters = read_filters({"year": "", "province": "Banten", "sex": "X", "program_id": "abc"})
    assert filters.values == {"province": "Banten", "sex": "X", "program_id": "abc"}
    assert filters.province == "Banten" and filters.sex is None and filters.program_id is None
    assert set(filters.errors) == {"sex", "program_id"}
    # Links carry only the valid filters.
    assert filters.link("/staf/dasbor/lapas") == "/staf/dasbor/lapas?province=Banten"


def test_bekal_run_tells_reporting_where_each_ministrys_pages_are(tmp_path: Path) -> None:
    ports = {"registry": 18001, "training": 18002, "certification": 18003, "reporting": 18004}
    env = Platform(root=tmp_path, ports=ports).service_env("reporting")
    assert env["REGISTRY_PAGES_URL"] == "http://127.0.0.1:18001/staf"
    assert env["TRAINING_PAGES_URL"] == "http://127.0.0.1:18002/staf"
    assert env["CERTIFICATION_PAGES_URL"] == "http://127.0.0.1:18003/staf"
    # The names are reporting's settings.
    settings = ReportingSettings(
        **{k.lower(): v for k, v in env.items() if k.endswith("_PAGES_URL")}
    )
    assert settings.training_pages_url == "http://127.0.0.1:18002/staf"


def _links(settings: ReportingSettings, ministry: Ministry, *roles: str) -> list[str]:
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings)))
    principal = Principal(
        subject="orang", ministry=ministry, roles=frozenset(roles), facilities=frozenset()
    )
    return [item.label for item in ministry_pages(request, principal)]  # type: ignore[arg-type]


def test_the_dashboard_links_only_to_pages_the_person_may_use() -> None:
    settings = ReportingSettings(
        registry_pages_url="http://r/staf",
        training_pages_url="http://t/staf",
        certification_pages_url="http://c/staf",
    )
    assert _links(settings, Ministry.INDUSTRY, Role.REPORTING_VIEWER) == []
    assert _links(settings, Ministry.CORRECTIONS, Role.REGISTRY_ADMIN) == [
        "Warga binaan (Pemasyarakatan)"
    ]
    assert _links(settings, Ministry.INDUSTRY, Role.TRAINING_ADMIN) == [
        "Pelatihan (Perindustrian)",
        "Sertifikat (Perindustrian)",
    ]
    assert _links(settings, Ministry.INDUSTRY, Role.CERTIFICATION_ADMIN) == [
        "Sertifikat (Perindustrian)"
    ]
    # A role of the other ministry's side gets nothing there.
    assert _links(settings, Ministry.CORRECTIONS, Role.TRAINING_ADMIN) == []
    # Pages whose address is not set get no link.
    assert _links(ReportingSettings(), Ministry.INDUSTRY, Role.TRAINING_ADMIN) == []
