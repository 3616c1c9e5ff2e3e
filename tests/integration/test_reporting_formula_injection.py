"""Names that a spreadsheet program would run as formulas come out of reporting's files as text:
CSV cells get a leading apostrophe, XLSX cells are strings, never formulas (OWASP's CSV
injection guidance)."""

from __future__ import annotations

import csv
import io
import re
import uuid
import zipfile

import pytest

from bekal.reporting.app import create_app
from bekal.shared.events.base import Event
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
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

NAME = '=HYPERLINK("http://attacker.example/x","klik")'
PROVINCE = "@SUM(1+1)*cmd|' /C calc'!A0"
CODE = "+LP-TANGERANG"


def history() -> list[Event]:
    facility = facility_registered(
        facility_id=uuid.uuid4(), name=NAME, code=CODE, province=PROVINCE
    )
    program = program_published(program_id=uuid.uuid4())
    session = session_scheduled(program, facility, session_id=uuid.uuid4())
    events: list[Event] = [facility, program, session]
    for _ in range(6):  # enough people that the public outputs show the cell
        person = inmate_shared(facility)
        enrolment = participant_enrolled(session, person)
        events += [person, enrolment, participant_completed(enrolment, program)]
    return events


async def test_formula_payloads_leave_every_export_as_text(database_url, broker, make_settings):
    settings = make_settings("reporting", database_url, broker)
    app = create_app(settings)
    events = history()
    async with running(app) as client:
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="reporting applying the history")
        admin = bearer(settings, ministry="industry", roles=["training_admin"])

        response = await client.get(
            "/api/v1/indicators.csv", headers=admin, params={"group_by": "facility,province"}
        )
        assert response.status_code == 200, response.text
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        mine = next(r for r in rows if r["facility_name"].endswith(NAME))
        assert mine["facility_name"] == "'" + NAME
        assert mine["facility_code"] == "'" + CODE
        assert mine["province"] == "'" + PROVINCE
        assert mine["enrolled"] == "6"  # numbers stay numbers

        response = await client.get("/public/open-data.csv")
        assert response.status_code == 200, response.text
        provinces = [
            r["province"] for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
        ]
        assert "'" + PROVINCE in provinces and PROVINCE not in provinces

        response = await client.get(
            "/api/v1/indicators.xlsx", headers=admin, params={"group_by": "facility,province"}
        )
        assert response.status_code == 200, response.text
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            strings = book.read("xl/sharedStrings.xml").decode()
            sheet = book.read("xl/worksheets/sheet1.xml").decode()
        assert "<f>" not in sheet and "<f " not in sheet  # no formula anywhere
        assert f"<t>{NAME}</t>" in strings  # the payload kept whole, as a string cell
        assert re.search(r"<v>6</v>", sheet)
