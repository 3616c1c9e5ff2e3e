"""The leadership dashboard in a real headless Chromium: it renders, filters change the numbers.

/dashboard takes a bearer token: its script asks the server for the dashboard's body (the staff
page's, rendered on the server) with the token. The reporting service runs under uvicorn on a free
port, fed real events through the broker; Debian's Chromium is driven by Playwright (no browser
download). A screenshot is saved.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bekal.devtools.broker import free_port
from bekal.reporting.app import create_app
from bekal.shared.auth import mint_token
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import Sex
from bekal.shared.messaging.models import InboxMessage
from tests.support.db import count
from tests.support.factories import (
    PONTIANAK,
    TANGERANG,
    WOODCRAFT,
    facility_registered,
    follow_up_recorded,
    inmate_shared,
    participant_completed,
    participant_enrolled,
    program_published,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Where the screenshot goes: an artifact directory in CI if given, else the test's tmp dir.
SCREENSHOT_DIR = os.environ.get("BEKAL_SCREENSHOT_DIR")


def _browser() -> str:
    if CHROMIUM is None:
        message = "Chromium not installed (Debian package 'chromium'; `make browser`)"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing dependency is a failure)", pytrace=False)
        pytest.skip(message)
    return CHROMIUM


def history() -> list[Event]:
    """Banten: 8 women in batik, 6 pass, 2 start a business; Kalimantan Barat: 3 men in
    woodcraft, all pass."""
    tangerang, pontianak = facility_registered(TANGERANG), facility_registered(PONTIANAK)
    batik, woodcraft = program_published(title="Batik Tulis"), program_published(WOODCRAFT)
    in_batik = session_scheduled(
        batik, tangerang, start_date=date(2024, 9, 2), end_date=date(2024, 9, 6), capacity=30
    )
    in_woodcraft = session_scheduled(
        woodcraft, pontianak, start_date=date(2023, 9, 2), end_date=date(2023, 9, 6), capacity=30
    )
    events: list[Event] = [tangerang, pontianak, batik, woodcraft, in_batik, in_woodcraft]
    for n in range(11):
        in_banten = n < 8
        facility, program, session = (
            (tangerang, batik, in_batik) if in_banten else (pontianak, woodcraft, in_woodcraft)
        )
        person = inmate_shared(facility, sex=Sex.FEMALE if in_banten else Sex.MALE)
        enrolment = participant_enrolled(session, person, enrolled_on=date(2023, 8, 1))
        events += [person, enrolment]
        if n in (6, 7):
            continue  # still enrolled
        events.append(participant_completed(enrolment, program, end_date=session.end_date))
        if n < 2:
            events.append(follow_up_recorded(enrolment, recorded_on=date(2025, 1, 1)))
    return events


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app under uvicorn on a free local port (a browser needs a real socket)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started:
                break
            await asyncio.sleep(0.1)
        assert server.started, "uvicorn did not start"
        await asyncio.wait_for(app.state.messaging.ready.wait(), timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=60)


async def test_dashboard_renders_and_filters_change_the_numbers(
    tmp_path: Path, broker, make_settings
):
    chromium = _browser()
    from playwright.async_api import async_playwright

    settings = make_settings(
        "reporting", f"sqlite+aiosqlite:///{tmp_path / 'reporting.db'}", broker
    )
    app = create_app(settings)
    events = history()
    token = mint_token(
        settings, subject="pimpinan", ministry="industry", roles=["reporting_viewer"]
    )
    async with served(app) as base:
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="reporting applying the history")

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1400})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))

                async def open_(query: str) -> dict[str, str]:
                    await page.goto(f"{base}/dashboard{query}")
                    await page.wait_for_selector("body[data-ready]", timeout=30000)
                    assert await page.get_attribute("body", "data-ready") == "1", (
                        await page.text_content("#error")
                    )
                    ids = (
                        "total-enrolled",
                        "total-completed",
                        "total-certified",
                        "completion-rate",
                        "new-entrepreneurs",
                    )
                    return {i: (await page.text_content(f"#{i}") or "").strip() for i in ids}

                # The token comes once in the address's fragment (never sent to the server).
                everything = await open_(f"#token={token}")
                assert everything == {
                    "total-enrolled": "11",
                    "total-completed": "9",
                    "total-certified": "0",
                    "completion-rate": "100%",
                    "new-entrepreneurs": "2",
                }
                assert await page.title() == "Dasbor Bekal — Pelatihan Wirausaha Warga Binaan"
                assert "Peserta per provinsi" in (await page.text_content("body") or "")
                provinces = await page.eval_on_selector_all(
                    "#by-province .bar-row", "rows => rows.map(r => r.dataset.province)"
                )
                assert provinces == ["Banten", "Kalimantan Barat"]
                programs = await page.eval_on_selector_all(
                    "#by-program tbody tr", "rows => rows.map(r => r.innerText.split('\\t'))"
                )
                assert [p[:3] for p in programs] == [
                    ["Kerajinan Kayu", "KRJ-KAYU", "2023"],
                    ["Batik Tulis", "WUB-BATIK", "2024"],
                ]
                # Sectors and sexes by the names people read, not by their codes.
                sectors = await page.eval_on_selector_all(
                    "#by-sector tbody th", "cells => cells.map(c => c.innerText)"
                )
                assert sectors == ["Batik", "Kerajinan kayu"]
                sexes = await page.eval_on_selector_all(
                    "#by-sex tbody tr", "rows => rows.map(r => r.innerText.split('\\t'))"
                )
                assert [s[:2] for s in sexes] == [["Perempuan", "8"], ["Laki-laki", "3"]]
                targets = await page.text_content("#targets") or ""
                # A year with a target and no graduate yet says why its bar is empty.
                assert "2017 (tahunan)" in targets
                assert "Belum ada data tindak lanjut: belum ada lulusan tahun 2017." in targets
                assert "(belum ada data)" not in (await page.text_content("#data-as-of") or "")
                shot = Path(SCREENSHOT_DIR or tmp_path) / "dasbor-pelaporan.png"
                shot.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

                # Filters in the address change the numbers (the token stays in the tab).
                banten = await open_("?province=Banten")
                assert banten["total-enrolled"] == "8" and banten["total-completed"] == "6"
                assert banten["new-entrepreneurs"] == "2"
                assert await page.input_value("#f-province") == "Banten"
                men_2023 = await open_("?year=2023&sex=M")
                assert men_2023["total-enrolled"] == "3"
                assert men_2023["completion-rate"] == "100%"
                nobody = await open_("?year=2024&sex=M")
                assert nobody["total-enrolled"] == "0" and nobody["completion-rate"] == "—"

                # Choosing a filter in the form reloads with it in the address.
                await page.goto(f"{base}/dashboard")
                await page.wait_for_selector("body[data-ready='1']")
                await page.select_option("#f-sector", "batik")
                await page.click("#filters button[type=submit]")
                await page.wait_for_url("**/dashboard?sector=batik")
                await page.wait_for_selector("body[data-ready='1']")
                assert (await page.text_content("#total-enrolled") or "").strip() == "8"
                # The export buttons download the table with the filters in the file name.
                async with page.expect_download() as caught:
                    await page.click("a[data-export=csv]")
                download = await caught.value
                assert download.suggested_filename == (
                    "indikator_per-province-program-year_sector-batik.csv"
                )
                saved = tmp_path / download.suggested_filename
                await download.save_as(str(saved))
                lines = saved.read_text("utf-8-sig").splitlines()
                assert lines[0].startswith("province,program_id,program_code,program_title,year,")
                assert lines[1].startswith("Banten,") and lines[-1].startswith("total,")
                assert errors == []
            finally:
                await browser.close()
