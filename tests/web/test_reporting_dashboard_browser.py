"""Reporting's dashboard as a staff page in Debian's Chromium: a reporting viewer signed in
through Keycloak sees a session's figures (events through the broker, from the factories),
under the pages' own Content-Security-Policy; a certification officer also gets the link to the
certification pages, the viewer none. axe-core at 1280 px and 390 px, the security headers."""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bekal.reporting.app import create_app
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import Sex
from bekal.shared.messaging.models import InboxMessage
from tests.support.browser import Checker, chromium, needs_browser, sign_in
from tests.support.db import count
from tests.support.factories import (
    TANGERANG,
    certificate_issued,
    facility_registered,
    inmate_shared,
    participant_completed,
    participant_enrolled,
    program_published,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.keycloak import CERTIFIER, VIEWER, Keycloak
from tests.support.staff_pages import free_port, provider_settings, served
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CERTIFICATION_PAGES = "http://127.0.0.1:8003/staf"


def one_session() -> list[Event]:
    """Five women in a batik session at Tangerang: three pass and get their certificates."""
    tangerang, batik = facility_registered(TANGERANG), program_published(title="Batik Tulis")
    session = session_scheduled(
        batik, tangerang, start_date=date(2024, 9, 2), end_date=date(2024, 9, 6), capacity=30
    )
    events: list[Event] = [tangerang, batik, session]
    for n in range(5):
        person = inmate_shared(tangerang, sex=Sex.FEMALE)
        enrolment = participant_enrolled(session, person)
        events += [person, enrolment]
        if n < 3:
            completion = participant_completed(enrolment, batik, end_date=session.end_date)
            events += [completion, certificate_issued(completion, number=f"IKMA/2024/{n:06d}")]
    return events


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "halaman-pelaporan"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _figures(page: Any) -> dict[str, str]:
    await page.wait_for_selector("body[data-ready]", timeout=30000)
    assert await page.get_attribute("body", "data-ready") == "1", await page.text_content("#error")
    ids = ("total-enrolled", "total-completed", "total-certified", "completion-rate")
    return {i: (await page.text_content(f"#{i}") or "").strip() for i in ids}


async def test_the_dashboard_in_the_staff_pages_for_a_viewer(
    keycloak: Keycloak, broker, make_settings, tmp_path: Path, shots: Path
):
    needs_browser()

    port = free_port()
    settings = make_settings(
        "reporting",
        f"sqlite+aiosqlite:///{tmp_path / 'reporting.db'}",
        broker,
        web_base_url=f"http://127.0.0.1:{port}",
        certification_pages_url=CERTIFICATION_PAGES,
        **provider_settings(keycloak),
    )
    app = create_app(settings)
    events = one_session()
    async with served(app, port) as base:
        await asyncio.wait_for(app.state.messaging.ready.wait(), timeout=60)
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="reporting applying the session")

        async with chromium() as browser:
            # The viewer, with the pages' own policy enforced: the script must run under it.
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="id-ID"
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            refused: list[str] = []
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            answers: dict[str, dict[str, str]] = {}
            page.on(
                "response",
                lambda r: answers.__setitem__(r.url, r.headers) if "/staf/" in r.url else None,
            )
            await sign_in(page, base, VIEWER, start="/staf/dasbor")
            assert await _figures(page) == {
                "total-enrolled": "5",
                "total-completed": "3",
                "total-certified": "3",
                "completion-rate": "100%",
            }
            assert "Hendra Gunawan" in (await page.text_content("header") or "")
            provinces = await page.eval_on_selector_all(
                "#by-province .bar-row", "rows => rows.map(r => r.dataset.province)"
            )
            assert provinces == ["Banten"]
            width = await page.eval_on_selector("#by-province .bar", "b => b.style.width")
            assert width == "100%"
            programs = await page.eval_on_selector_all(
                "#by-program tr", "rows => rows.map(r => r.innerText.split('\\t')[0])"
            )
            assert programs == ["Batik Tulis"]
            # A reporting viewer may use no ministry's staff pages: no link to any.
            assert await page.locator(".ministry-pages").count() == 0
            # Filters in the address change the numbers, as on /dashboard.
            await page.goto(f"{base}/staf/dasbor?sex=M")
            assert (await _figures(page))["total-enrolled"] == "0"
            await context.close()
            dashboard = answers[f"{base}/staf/dasbor"]
            policy = dashboard.get("content-security-policy", "")
            assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
            assert dashboard.get("x-content-type-options") == "nosniff"
            assert dashboard.get("referrer-policy")
            assert any("/staf/dasbor/data/indicators" in url for url in answers)
            assert refused == [] and errors == []

            # A certification officer reads reports too, and gets the link to their pages.
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, bypass_csp=True, locale="id-ID"
            )
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            checker = Checker(page, shots)
            await sign_in(page, base, CERTIFIER, start="/staf/dasbor")
            assert (await _figures(page))["total-certified"] == "3"
            link = page.get_by_role("link", name="Sertifikat (Perindustrian)")
            assert await link.get_attribute("href") == CERTIFICATION_PAGES
            assert await page.get_by_role("link", name="Warga binaan").count() == 0
            await checker.check("dasbor")
            await context.close()
            assert checker.violations == [] and errors == []
