"""Training's staff pages answer as training's API does: who may read, who may publish or
schedule, and that corrections staff cannot use them (signed in through Keycloak)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.keycloak import INDUSTRY_USER, OFFICER, Keycloak
from tests.support.staff_pages import csrf_of, signed_in
from tests.support.training_pages import TRAINING_ADMIN, Training, served_training

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def training_site(
    keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Training]:
    async with served_training(keycloak, tmp_path_factory.mktemp("training-pages")) as site:
        yield site


async def test_a_training_officer_neither_publishes_nor_schedules(training_site: Training):
    async with signed_in(training_site.base, INDUSTRY_USER, next_page="/staf/program") as browser:
        listing = await browser.get("/staf/program")
        assert listing.status_code == 200
        assert "Buat program baru" not in listing.text  # not offered to this role
        for path in ("/staf/program/baru", "/staf/sesi/baru"):
            page = await browser.get(path)
            assert page.status_code == 403, path
            assert "Akses ditolak" in page.text
        refused = await browser.post(
            "/staf/program/baru",
            data={"csrf_token": csrf_of(listing), "code": "X", "title": "X", "units": "A | B"},
        )
        assert refused.status_code == 403
        sessions = await browser.get("/staf/sesi")
        assert sessions.status_code == 200 and "Jadwalkan sesi baru" not in sessions.text


async def test_corrections_staff_cannot_use_the_training_pages(training_site: Training):
    async with signed_in(training_site.base, OFFICER, next_page="/staf/sesi") as browser:
        for path in ("/staf/program", "/staf/sesi", "/staf/lulusan"):
            page = await browser.get(path)
            assert page.status_code == 403, path


async def test_a_form_without_its_token_is_refused(training_site: Training):
    async with signed_in(training_site.base, TRAINING_ADMIN, next_page="/staf/program") as browser:
        answer = await browser.post("/staf/program/baru", data={"code": "WUB-X"})
        assert answer.status_code == 403
        assert "kedaluwarsa" in answer.text
        listing = await browser.get("/staf/program")
        assert "WUB-X" not in listing.text


async def test_a_person_not_signed_in_is_sent_to_sign_in(training_site: Training):
    async with signed_in(training_site.base, TRAINING_ADMIN, next_page="/staf/program") as browser:
        browser.cookies.clear()
        page = await browser.get("/staf/sesi?status=running")
        assert page.status_code == 303
        assert page.headers["location"] == "/staf/masuk?next=/staf/sesi%3Fstatus%3Drunning"


async def test_training_error_pages_are_staff_pages_with_the_menu(training_site: Training):
    async with signed_in(training_site.base, INDUSTRY_USER, next_page="/staf/sesi") as browser:
        answers = [
            (404, await browser.get(f"/staf/sesi/{uuid.uuid4()}")),
            (404, await browser.get("/staf/sesi/bukan-nomor-sesi")),
            (404, await browser.get("/staf/tidak-ada")),
            (403, await browser.get("/staf/sesi/baru")),
        ]
        for status, page in answers:
            assert page.status_code == status, (status, page.text[:300])
            assert 'aria-label="Menu utama"' in page.text, status
            assert 'href="/staf/sesi"' in page.text and "Sesi pelatihan" in page.text, status
