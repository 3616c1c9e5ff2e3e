"""The dashboard's body rendered on the server (GET /dashboard/isi, the staff page's body) on
SQLite and PostgreSQL: its figures read in several snapshots, one after the other, in the names
people read; a filter that is not a choice is reported, not a failure; no token, no figures."""

from __future__ import annotations

import re
from datetime import date

import pytest

from bekal.reporting.app import create_app
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import Sex, WithdrawalReason
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
    TANGERANG,
    WOODCRAFT,
    enrollment_withdrawn,
    facility_registered,
    inmate_shared,
    participant_completed,
    participant_enrolled,
    program_published,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def history() -> list[Event]:
    """Four women in woodcraft at Tangerang: two pass, one is released, one withdraws."""
    tangerang, woodcraft = facility_registered(TANGERANG), program_published(WOODCRAFT)
    session = session_scheduled(
        woodcraft, tangerang, start_date=date(2024, 9, 2), end_date=date(2024, 9, 7)
    )
    events: list[Event] = [tangerang, woodcraft, session]
    for n in range(4):
        person = inmate_shared(tangerang, sex=Sex.FEMALE)
        enrolment = participant_enrolled(session, person)
        events += [person, enrolment]
        if n < 2:
            events.append(participant_completed(enrolment, woodcraft, end_date=session.end_date))
        else:
            reason = (WithdrawalReason.RELEASED, WithdrawalReason.CONSENT_WITHDRAWN)[n - 2]
            events.append(enrollment_withdrawn(enrolment, reason=reason))
    return events


def _cell(page: str, row: str) -> list[str]:
    """The cells of the row whose header is ``row``, as text."""
    found = re.search(rf"<tr[^>]*>\s*<th scope=\"row\">{re.escape(row)}</th>(.*?)</tr>", page, re.S)
    assert found, row
    return [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1), re.S)]


async def test_the_dashboards_body_in_the_names_people_read(database_url, broker, make_settings):
    settings = make_settings("reporting", database_url, broker)
    app = create_app(settings)
    events = history()
    async with running(app) as client:
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="reporting applying the history")
        viewer = bearer(settings, ministry="industry", roles=["reporting_viewer"])

        answer = await client.get("/dashboard/isi", headers=viewer)
        assert answer.status_code == 200, answer.text
        page = answer.text
        assert '<dd class="value" id="total-enrolled">4</dd>' in page
        assert '<dd class="value" id="total-withdrawn">2</dd>' in page
        assert _cell(page, "Bebas") == ["1"] and _cell(page, "Mengundurkan diri") == ["1"]
        assert _cell(page, "Dipindahkan") == ["0"]
        assert _cell(page, "Kerajinan kayu")[:3] == ["4", "2", "2"]  # the sector, by name
        assert _cell(page, "Perempuan")[:3] == ["4", "2", "2"]
        assert '<option value="KRJ-KAYU"' not in page  # programs are chosen by id
        assert "Kerajinan Kayu (KRJ-KAYU)</option>" in page
        assert "kerajinan kayu</" not in page and "<script" not in page
        # Downloads keep the filters; the viewer reads no facility.
        assert "/api/v1/indicators.csv?group_by=province%2Cprogram%2Cyear" in page
        assert "/staf/dasbor/lapas" not in page

        filtered = (await client.get("/dashboard/isi?sex=M&year=", headers=viewer)).text
        assert '<dd class="value" id="total-enrolled">0</dd>' in filtered
        assert "/api/v1/indicators.csv?sex=M&amp;group_by=" in filtered
        wrong = await client.get("/dashboard/isi?sex=X&year=20x4", headers=viewer)
        assert wrong.status_code == 200
        assert "Tahun tidak valid" in wrong.text and 'id="total-enrolled">4<' in wrong.text

        assert (await client.get("/dashboard/isi")).status_code == 401
        stranger = bearer(settings, ministry="industry", roles=["training_officer"])
        assert (await client.get("/dashboard/isi", headers=stranger)).status_code == 403
