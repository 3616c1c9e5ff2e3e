"""The corrections side's staff pages, signed in through Keycloak: what each kind of staff may
see and do, answered as the API answers, with forms that keep the input and name the fields."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date

import httpx
import pytest
from sqlalchemy import select

from bekal.registry.models import AuditEntry, Facility, Inmate
from bekal.registry.web.common import pages
from tests.support.keycloak import INDUSTRY_USER, OFFICER, OTHER_OFFICER
from tests.support.staff_pages import csrf_of, post_form, signed_in
from tests.web.conftest import NAMES, SOON, Registry

pytestmark = pytest.mark.integration


async def test_an_officer_signs_in_through_keycloak_and_sees_only_their_facility(
    registry: Registry,
):
    async with signed_in(registry.base, OFFICER) as browser:
        page = await browser.get("/staf/warga-binaan")
        assert page.status_code == 200
        for name in NAMES:
            assert name in page.text
        assert "PTK.001" not in page.text
        assert "Sri Wahyuni" in page.text  # who is signed in, from the provider's token
        assert "LPP-TANGERANG" in page.text


@pytest.mark.parametrize("needle", ["yosefina", "YOSEFÍNA", "kristan", "tgr.001"])
async def test_search_by_name_or_number_ignores_accents_and_case(registry: Registry, needle):
    async with signed_in(registry.base, OFFICER) as browser:
        page = await browser.get("/staf/warga-binaan", params={"q": needle})
        assert "Yosefína Kristanti" in page.text
        assert "Siti Nurhaliza" not in page.text


async def test_a_list_past_the_count_limit_says_more_than_the_limit(registry: Registry):
    settings = registry.app.state.settings
    cap = settings.list_count_limit
    try:
        settings.list_count_limit = 2  # the officer's facility holds 3: past the cap
        async with signed_in(registry.base, OFFICER) as browser:
            page = await browser.get("/staf/warga-binaan")
            assert "Menampilkan 3 dari lebih dari 2 data." in page.text
            assert "Persempit pencarian" in page.text
            for name in NAMES:  # the page itself is whole
                assert name in page.text
            searched = await browser.get("/staf/warga-binaan", params={"q": "I"})
            assert "Menampilkan 3 dari lebih dari 2 data." in searched.text
            settings.list_count_limit = 3  # as many as the cap: the exact total
            page = await browser.get("/staf/warga-binaan")
            assert "Menampilkan 3 dari 3 data." in page.text
            assert "lebih dari" not in page.text
            one = await browser.get("/staf/warga-binaan", params={"q": "yosef"})
            assert "Menampilkan 1 dari 1 data." in one.text and "lebih dari" not in one.text
    finally:
        settings.list_count_limit = cap
    # The default cap, written as a number is in Indonesian.
    assert cap == 1000
    template = pages.env.from_string(
        '{% from "komponen.html" import pagination %}{{ pagination(1000, 25, capped=True) }}'
    )
    assert "Menampilkan 25 dari lebih dari 1.000 data." in template.render()


async def test_another_facilitys_officer_gets_404_as_the_api_answers(registry: Registry):
    person = registry.ids["Siti Nurhaliza"]
    async with signed_in(registry.base, OTHER_OFFICER) as browser:
        listing = await browser.get("/staf/warga-binaan")
        assert "PTK.001" in listing.text and "Siti Nurhaliza" not in listing.text
        for path in (
            f"/staf/warga-binaan/{person}",
            f"/staf/warga-binaan/{uuid.uuid4()}",
            f"/staf/fasilitas/{registry.ids['LPP-TANGERANG']}/kandidat",
        ):
            page = await browser.get(path)
            assert page.status_code == 404, path
            assert "Siti" not in page.text
        # Nor by a form: the officer's own page gives the token, the other person's a 404.
        answer = await post_form(
            browser,
            f"/staf/warga-binaan/{registry.ids['pontianak']}",
            f"/staf/warga-binaan/{person}/bebas",
            {"kind": "free", "released_on": date.today().isoformat()},
        )
        assert answer.status_code == 404


async def test_an_industry_user_cannot_use_the_corrections_pages(registry: Registry):
    async with signed_in(registry.base, INDUSTRY_USER) as browser:
        for path in ("/staf/warga-binaan", "/staf/penerimaan", "/staf/kandidat"):
            page = await browser.get(path)
            assert page.status_code == 403, path
            assert "Akses ditolak" in page.text


async def test_a_person_not_signed_in_is_sent_to_sign_in(registry: Registry):
    async with signed_in(registry.base, OFFICER) as browser:
        browser.cookies.clear()
        page = await browser.get("/staf/warga-binaan?q=siti")
        assert page.status_code == 303
        assert page.headers["location"] == "/staf/masuk?next=/staf/warga-binaan%3Fq%3Dsiti"


async def test_reading_a_person_is_audited_as_the_api_audits_it(registry: Registry):
    person = registry.ids["Dewi Ratnasari"]
    async with signed_in(registry.base, OFFICER) as browser:
        page = await browser.get(f"/staf/warga-binaan/{person}")
        assert page.status_code == 200 and "Dewi Ratnasari" in page.text
        assert "3603011504900002" not in page.text  # the NIK is never shown on this page
    async with registry.app.state.db.session() as session:
        reads = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.inmate_id == person, AuditEntry.action == "inmate.read"
                )
            )
        ).all()
    assert [r.actor for r in reads] != []


async def test_an_admission_with_mistakes_names_each_field_and_keeps_the_input(
    registry: Registry,
):
    async with signed_in(registry.base, OFFICER) as browser:
        answer = await post_form(
            browser,
            "/staf/penerimaan",
            "/staf/penerimaan",
            {
                "facility_id": str(registry.ids["LPP-TANGERANG"]),
                "registration_number": "TGR.100",
                "full_name": "Rina Marlina",
                "nik": "12345",
                "sex": "F",
                "date_of_birth": "1995-13-40",
                "admission_date": "2026-01-05",
            },
        )
        assert answer.status_code == 422
        html = answer.text
        assert 'href="#f-nik"' in html and "NIK harus terdiri dari tepat 16 angka" in html
        assert 'href="#f-date_of_birth"' in html and "Tanggal tidak valid" in html
        assert 'value="Rina Marlina"' in html and 'value="TGR.100"' in html
        assert "12345" not in html  # the NIK is never written back into a page
        assert 'aria-invalid="true"' in html

        taken = await post_form(
            browser,
            "/staf/penerimaan",
            "/staf/penerimaan",
            {
                "facility_id": str(registry.ids["LPP-TANGERANG"]),
                "registration_number": "TGR.000",
                "full_name": "Rina Marlina",
                "nik": "3603014101950001",
                "sex": "F",
                "date_of_birth": "1995-01-01",
                "admission_date": "2026-01-05",
            },
        )
        assert taken.status_code == 422
        assert "Nomor registrasi &#39;TGR.000&#39; sudah terdaftar." in taken.text


async def test_a_morning_of_admission_consent_absence_return_and_parole(registry: Registry):
    async with signed_in(registry.base, OFFICER) as browser:
        made = await post_form(
            browser,
            "/staf/penerimaan",
            "/staf/penerimaan",
            {
                "facility_id": str(registry.ids["LPP-TANGERANG"]),
                "registration_number": "TGR.200",
                "full_name": "Lestari Handayani",
                "nik": "3603014101950002",
                "sex": "F",
                "date_of_birth": "1995-01-01",
                "admission_date": "2026-01-05",
                "expected_release_date": SOON,
            },
        )
        assert made.status_code == 303, made.text[:2000]
        person_path = made.headers["location"]
        page = await browser.get(person_path)
        assert "Lestari Handayani (TGR.200) terdaftar." in page.text

        today = date.today().isoformat()
        steps: list[tuple[str, dict[str, str], str]] = [
            ("persetujuan", {"training": "ya", "data_sharing": "ya"}, "Persetujuan dicatat."),
            (
                "keluar-sementara",
                {"reason": "court", "absent_from": today, "expected_return": ""},
                "Keluar sementara dicatat.",
            ),
            ("kembali", {"returned_on": today}, "Kepulangan dicatat."),
            ("bebas", {"kind": "parole", "released_on": today}, "Pembebasan dicatat."),
        ]
        for action, data, done in steps:
            answer = await post_form(browser, person_path, f"{person_path}/{action}", data)
            assert answer.status_code == 303, (action, answer.text[:2000])
            page = await browser.get(person_path)
            assert done in page.text, action
        assert "Pembebasan bersyarat" in page.text

    inmate_id = uuid.UUID(person_path.rsplit("/", 1)[1])
    async with registry.app.state.db.session() as session:
        inmate = await session.get(Inmate, inmate_id)
        assert inmate is not None
        assert (inmate.status, inmate.release_kind, inmate.shared) == ("released", "parole", True)


async def test_a_refused_movement_is_shown_next_to_its_form(registry: Registry):
    person = registry.ids["Siti Nurhaliza"]
    path = f"/staf/warga-binaan/{person}"
    async with signed_in(registry.base, OFFICER) as browser:
        answer = await post_form(
            browser, path, f"{path}/keluar-sementara", {"reason": "", "absent_from": "kemarin"}
        )
        assert answer.status_code == 422
        assert 'href="#f-reason"' in answer.text and 'href="#f-absent_from"' in answer.text
        assert 'value="kemarin"' in answer.text


async def test_candidates_near_release_and_their_csv(registry: Registry):
    facility = registry.ids["LPP-TANGERANG"]
    async with signed_in(registry.base, OFFICER) as browser:
        chosen = await browser.get("/staf/kandidat")
        assert chosen.headers["location"] == f"/staf/fasilitas/{facility}/kandidat"
        page = await browser.get(f"/staf/fasilitas/{facility}/kandidat?months=12")
        assert page.status_code == 200 and "Siti Nurhaliza" in page.text
        download = await browser.get(f"/staf/fasilitas/{facility}/kandidat.csv?months=12")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert {r["full_name"] for r in rows} >= {"Siti Nurhaliza", "Dewi Ratnasari"}
    assert all(r["facility_code"] == "LPP-TANGERANG" for r in rows)


async def test_a_form_without_its_token_is_refused(registry: Registry):
    person = registry.ids["Siti Nurhaliza"]
    async with signed_in(registry.base, OFFICER) as browser:
        for token in (None, "forged"):
            data = {"kind": "free", "released_on": date.today().isoformat()}
            if token:
                data["csrf_token"] = token
            answer = await browser.post(f"/staf/warga-binaan/{person}/bebas", data=data)
            assert answer.status_code == 403
    async with registry.app.state.db.session() as session:
        inmate = await session.get(Inmate, person)
        assert inmate is not None and inmate.status == "in_custody"


async def test_signing_out_ends_the_page_session_and_the_providers(registry: Registry):
    async with signed_in(registry.base, OFFICER) as browser:
        page = await browser.get("/staf/warga-binaan")
        out = await browser.post("/staf/keluar", data={"csrf_token": csrf_of(page)})
        assert out.status_code == 303
        assert out.headers["location"].startswith(
            registry.app.state.settings.web_oidc_issuer + "/protocol/openid-connect/logout"
        )
        assert (await browser.get("/staf/warga-binaan")).status_code == 303
        ended = await browser.get(out.headers["location"], follow_redirects=True)
        assert ended.url.path == "/staf/masuk" and ended.status_code == 200
        # The provider asks for the password again: its session ended too.
        again = await browser.get("/staf/masuk/oidc", follow_redirects=True)
        assert 'id="kc-form-login"' in again.text


async def test_security_headers_on_every_page(registry: Registry):
    person = registry.ids["Siti Nurhaliza"]
    facility = registry.ids["LPP-TANGERANG"]
    async with signed_in(registry.base, OFFICER) as browser:
        for path in (
            "/staf/masuk",
            "/staf/warga-binaan",
            f"/staf/warga-binaan/{person}",
            "/staf/penerimaan",
            f"/staf/fasilitas/{facility}/kandidat",
            f"/staf/warga-binaan/{uuid.uuid4()}",
        ):
            page = await browser.get(path)
            policy = page.headers["content-security-policy"]
            assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy, path
            assert page.headers["x-content-type-options"] == "nosniff"
            assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
            assert "cache-control" in page.headers or page.status_code == 303
    async with httpx.AsyncClient(base_url=registry.base) as fresh:
        cookie = (await fresh.get("/staf/masuk")).headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "secure" in cookie.lower()


async def test_an_officer_finds_their_facility_among_a_national_list(registry: Registry):
    """The facility choices list every facility the person may see, not a first page: with
    530 facilities nationally, an officer whose facility sorts past the 500th found it
    missing from the admission form (and the people list's filter). (Last in this module: it
    leaves 520 more facilities in the module's registry.)"""
    async with registry.app.state.db.session() as s:
        for i in range(520):  # codes that sort before the officer's LPP-TANGERANG
            s.add(
                Facility(
                    code=f"LAPAS-A{i:04d}",
                    name=f"Lapas Uji {i}",
                    kind="lapas",
                    facility_class="IIA",
                    province="Jawa Barat",
                    regional_office="Kanwil Jawa Barat",
                    capacity=500,
                )
            )
        await s.commit()
    own = str(registry.ids["LPP-TANGERANG"])
    async with signed_in(registry.base, OFFICER) as browser:
        page = await browser.get("/staf/penerimaan")  # the admission form's choice
        assert page.status_code == 200
        assert f'value="{own}"' in page.text
        assert "LAPAS-A0000" not in page.text  # still only their own facility
