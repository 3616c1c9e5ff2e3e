"""Reporting's dashboard as staff pages in Debian's Chromium, rendered on the server: a reporting
viewer signed in through Keycloak reads a session's figures with JavaScript turned off and under
the pages' own Content-Security-Policy, filters them by keyboard alone, and may not open the
figures per facility; a certification administrator also gets the link to the certification
pages and goes from the dashboard to a facility and one of its sessions. axe-core at 1280 px and
390 px on every page, the security headers, a screenshot of each page at both widths."""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bekal.reporting.app import create_app
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import Sex, WithdrawalReason
from bekal.shared.messaging.models import InboxMessage
from tests.support.browser import (
    Checker,
    assert_security_headers,
    chromium,
    needs_browser,
    open_tab,
    sign_in,
)
from tests.support.db import count
from tests.support.factories import (
    TANGERANG,
    certificate_issued,
    enrollment_withdrawn,
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
TRAINING_PAGES = "http://127.0.0.1:8002/staf"
REGISTRY_PAGES = "http://127.0.0.1:8001/staf"


def one_session() -> list[Event]:
    """Five women in a batik session at Tangerang: three pass and get their certificates, one is
    released on the third day, one transferred."""
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
        else:
            reason = WithdrawalReason.RELEASED if n == 3 else WithdrawalReason.TRANSFERRED
            events.append(
                enrollment_withdrawn(enrolment, reason=reason, withdrawn_on=date(2024, 9, 4))
            )
    return events


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BEKAL_SCREENSHOT_DIR") or tmp_path) / "halaman-pelaporan"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _figures(page: Any) -> dict[str, str]:
    ids = ("total-enrolled", "total-completed", "total-certified", "completion-rate")
    return {i: (await page.text_content(f"#{i}") or "").strip() for i in ids}


async def _rows(page: Any, selector: str) -> list[list[str]]:
    return await page.eval_on_selector_all(
        selector, "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


async def test_the_dashboard_in_the_staff_pages(
    keycloak: Keycloak, broker, make_settings, tmp_path: Path, shots: Path
):
    needs_browser()

    port = free_port()
    settings = make_settings(
        "reporting",
        f"sqlite+aiosqlite:///{tmp_path / 'reporting.db'}",
        broker,
        web_base_url=f"http://127.0.0.1:{port}",
        registry_pages_url=REGISTRY_PAGES,
        training_pages_url=TRAINING_PAGES,
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
            # The viewer, without JavaScript and with the pages' own policy enforced.
            viewer = await open_tab(browser, base, bypass_csp=False, java_script_enabled=False)
            page = viewer.page
            refused: list[str] = []
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await sign_in(page, base, VIEWER, start="/staf/dasbor")
            assert await _figures(page) == {
                "total-enrolled": "5",
                "total-completed": "3",
                "total-certified": "3",
                "completion-rate": "100%",
            }
            assert "Hendra Gunawan" in (await page.text_content("header") or "")
            # Withdrawals by reason, not one figure for every way of leaving.
            assert await _rows(page, "#withdrawals tbody tr") == [
                ["Bebas", "1"],
                ["Dipindahkan", "1"],
                ["Mengundurkan diri", "0"],
                ["Alasan lain", "0"],
            ]
            assert (await _rows(page, "#by-sex tbody tr"))[0][:3] == ["Perempuan", "5", "2"]
            provinces = await page.eval_on_selector_all(
                "#by-province .bar-row", "rows => rows.map(r => r.dataset.province)"
            )
            assert provinces == ["Banten"]
            assert await page.get_attribute("#by-province .bar-fill", "width") == "100"
            programs = await _rows(page, "#by-program tbody tr")
            assert [p[:3] for p in programs] == [["Batik Tulis", "WUB-BATIK", "2024"]]
            assert (await _rows(page, "#by-sector tbody tr"))[0][0] == "Batik"
            # A year with a target and no graduate yet says so instead of an empty bar.
            targets = await page.text_content("#targets") or ""
            assert "Belum ada data tindak lanjut: belum ada lulusan tahun 2017." in targets
            # Years with neither a target nor a graduate are named once, not as empty bars.
            quiet = await page.text_content("#quiet-years") or ""
            assert quiet == "Tanpa target dan belum ada lulusan: 2018, 2020\u20132023."
            # A reporting viewer may use no ministry's staff pages, nor read one facility.
            assert await page.locator(".ministry-pages").count() == 0
            assert await page.get_by_role("link", name="Per lapas/rutan dan sesi").count() == 0
            refusal = await page.goto(f"{base}/staf/dasbor/lapas")
            assert refusal is not None and refusal.status == 403

            # Filters by keyboard alone: sex, then Tab to "Terapkan" and Enter.
            await page.goto(f"{base}/staf/dasbor")
            await page.focus("#f-sex")
            await page.keyboard.press("ArrowDown")  # Perempuan
            await page.keyboard.press("ArrowDown")  # Laki-laki
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.textContent") == "Terapkan"
            await page.keyboard.press("Enter")
            await page.wait_for_url("**/staf/dasbor?*sex=M")
            assert (await _figures(page))["total-enrolled"] == "0"
            assert await page.input_value("#f-sex") == "M"
            # Nonsense in the address is reported by the form, not a failure.
            await page.goto(f"{base}/staf/dasbor?year=abc&sex=F")
            assert "Tahun tidak valid" in (await page.text_content(".error-summary") or "")
            assert (await _figures(page))["total-enrolled"] == "5"
            await page.context.close()
            assert refused == [] and viewer.errors == []

            # A certification administrator reads detail too, and gets the link to their pages.
            admin = await open_tab(browser, base)
            page = admin.page
            checker = Checker(page, shots)
            await sign_in(page, base, CERTIFIER, start="/staf/dasbor")
            links = page.locator(".ministry-pages a")
            assert await links.count() == 1
            assert await links.first.text_content() == "Sertifikat (Perindustrian)"
            assert await links.first.get_attribute("href") == CERTIFICATION_PAGES
            await checker.check("dasbor")

            await page.get_by_role("link", name="Lihat angka per lapas/rutan dan per sesi").click()
            await page.wait_for_url("**/staf/dasbor/lapas")
            facilities = await _rows(page, "#by-facility tbody tr")
            assert [f[:4] for f in facilities] == [
                ["Lapas Perempuan Kelas IIA Tangerang (LPP-TANGERANG)", "Banten", "5", "2"]
            ]
            await checker.check("dasbor-lapas-daftar")

            await page.get_by_role("link", name="Lapas Perempuan Kelas IIA Tangerang").click()
            await page.wait_for_selector("#by-session")
            sessions = await _rows(page, "#by-session tbody tr")
            assert sessions == [
                [
                    "Batik Tulis (WUB-BATIK)",
                    "2\u20136 September 2024",
                    "5",
                    "1",
                    "1",
                    "0",
                    "3",
                    "0",
                    "3",
                    "100%",
                ]
            ]
            await checker.check("dasbor-lapas")

            await page.get_by_role("link", name="Batik Tulis (WUB-BATIK)").click()
            await page.wait_for_selector("#by-sex")
            assert await page.text_content("h1") == "Batik Tulis (WUB-BATIK)"
            assert (await _figures(page))["total-certified"] == "3"
            assert (await _rows(page, "#withdrawals tbody tr"))[:2] == [
                ["Bebas", "1"],
                ["Dipindahkan", "1"],
            ]
            await checker.check("dasbor-sesi")
            await page.context.close()
            assert checker.violations == [] and admin.errors == []
            assert_security_headers(viewer.headers | admin.headers)
