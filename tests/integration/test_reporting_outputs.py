"""Reporting's outputs: exports, targets, the public summary and open data (rounded).

A small history: Lapas Perempuan Tangerang (Banten) trains eight women, six pass and are
certified; Lapas Pontianak (Kalimantan Barat) trains three men, all pass, no certificate yet.
Three Tangerang graduates start a business (two with an NIB). The public outputs round every
count (Pontianak's three among them) to a multiple of 5.
"""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import date
from typing import Any

import pytest

from bekal.reporting.app import create_app
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    CompetencyUnit,
    FollowUpSituation,
    NotCompletedReason,
    Sex,
)
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
    PONTIANAK,
    TANGERANG,
    certificate_issued,
    certificate_number,
    facility_registered,
    follow_up_recorded,
    inmate_shared,
    participant_completed,
    participant_enrolled,
    participant_not_completed,
    program_published,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

F1, F2, P1, S1, S2 = (uuid.uuid4() for _ in range(5))
UNITS = [CompetencyUnit(code="BTK.01", title="Membatik tulis")]


def history() -> list[Event]:
    program = program_published(
        program_id=P1, title="Batik Tulis", partner=None, competency_units=UNITS
    )
    events: list[Event] = [
        facility_registered(TANGERANG, facility_id=F1, name="LPP Tangerang"),
        facility_registered(
            PONTIANAK, facility_id=F2, name="Lapas Pontianak", regional_office="Kanwil Kalbar"
        ),
        program,
        session_scheduled(
            program,
            session_id=S1,
            facility_id=F1,
            start_date=date(2024, 9, 2),
            end_date=date(2024, 9, 6),
            capacity=30,
        ),
        session_scheduled(
            program,
            session_id=S2,
            facility_id=F2,
            start_date=date(2024, 9, 9),
            end_date=date(2024, 9, 13),
            capacity=30,
        ),
    ]
    for n in range(11):
        session_id = S1 if n < 8 else S2
        person = inmate_shared(
            full_name="Nama",
            sex=Sex.FEMALE if n < 8 else Sex.MALE,
            facility_id=F1 if n < 8 else F2,
            admission_date=date(2023, 1, 1),
            expected_release_date=None,
        )
        enrolment = participant_enrolled(session_id, person, enrolled_on=date(2024, 8, 30))
        events += [person, enrolment]
        if n in (6, 7):
            events.append(
                participant_not_completed(
                    enrolment,
                    reason=NotCompletedReason.COMPETENCIES_NOT_MET,
                    attendance_share=0.9,
                )
            )
            continue
        done = participant_completed(
            enrolment,
            program,
            participant_name="Nama",
            start_date=date(2024, 9, 2),
            end_date=date(2024, 9, 6) if n < 8 else date(2024, 9, 13),
        )
        events.append(done)
        if n < 8:
            events.append(
                certificate_issued(
                    done, number=certificate_number(2024, n + 1), issued_on=date(2024, 9, 10)
                )
            )
        if n < 3:
            situation = (
                FollowUpSituation.BUSINESS_STARTED_WITH_NIB
                if n < 2
                else FollowUpSituation.BUSINESS_STARTED_WITHOUT_NIB
            )
            events.append(
                follow_up_recorded(enrolment, situation=situation, recorded_on=date(2025, 1, 10))
            )
    return events


def _headers(settings: Any, ministry: str, role: str) -> dict[str, str]:
    return bearer(settings, ministry=ministry, roles=[role])


async def test_exports_targets_and_rounded_public_outputs(database_url, broker, make_settings):
    settings = make_settings("reporting", database_url, broker)
    app = create_app(settings)
    events = history()
    async with running(app) as client:
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="reporting applying the history")
        admin = _headers(settings, "industry", "training_admin")
        viewer = _headers(settings, "corrections", "reporting_viewer")

        # --- CSV and XLSX of an indicator table, the filters in the file name.
        response = await client.get(
            "/api/v1/indicators.csv",
            headers=viewer,
            params={"group_by": "province,year", "year": "2024"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"] == (
            'attachment; filename="indikator_per-province-year_year-2024.csv"'
        )
        assert response.headers["x-data-as-of"]
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [r["province"] for r in rows] == ["Banten", "Kalimantan Barat", "total"]
        assert [
            (r["enrolled"], r["completed"], r["certified"], r["new_entrepreneurs"]) for r in rows
        ] == [("8", "6", "6", "3"), ("3", "3", "0", "0"), ("11", "9", "6", "3")]
        assert rows[0]["completion_rate"] == "0.75" and rows[1]["mean_days_to_certificate"] == ""
        assert rows[0]["mean_days_to_certificate"] == "4.0"  # 6 Sept to 10 Sept

        response = await client.get(
            "/api/v1/indicators.xlsx", headers=admin, params={"group_by": "facility", "sex": "F"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"] == (
            'attachment; filename="indikator_per-facility_sex-f.xlsx"'
        )
        with zipfile.ZipFile(io.BytesIO(response.content)) as book:
            strings = book.read("xl/sharedStrings.xml").decode()
            sheet = book.read("xl/worksheets/sheet1.xml").decode()
        for header in ("facility_code", "enrolled", "certification_rate", "LPP-TANGERANG"):
            assert f">{header}<" in strings
        assert "LAPAS-PONTIANAK" not in strings  # only women: Tangerang alone
        assert "<v>8</v>" in sheet and "<v>6</v>" in sheet

        # One facility's numbers stay with administrators, in files too.
        response = await client.get(
            "/api/v1/indicators.csv", headers=viewer, params={"group_by": "facility"}
        )
        assert response.status_code == 403

        # --- targets are data: the announced ones, then one set by an administrator.
        body = (await client.get("/api/v1/targets", headers=viewer)).json()
        assert [(t["year"], t["annual"], t["cumulative"]) for t in body["data"]] == [
            (2017, 5000, None),
            (2019, None, 20000),
        ]
        response = await client.put(
            "/api/v1/targets/2024", headers=admin, json={"annual": 10, "note": "Target uji"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["updated_by"] and response.json()["annual"] == 10
        for headers in (viewer, _headers(settings, "corrections", "registry_admin")):
            response = await client.put("/api/v1/targets/2024", headers=headers, json={"annual": 1})
            assert response.status_code == 403
        assert (await client.put("/api/v1/targets/2024", json={"annual": 1})).status_code == 401
        response = await client.put("/api/v1/targets/2024", headers=admin, json={"annual": -1})
        assert response.status_code == 422
        assert "annual" in response.json()["errors"][0]["field"]
        response = await client.put("/api/v1/targets/2024", headers=admin, json={"note": "x"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "annual"
        # A target beyond any national figure (and beyond its column) names the field.
        response = await client.put(
            "/api/v1/targets/2024", headers=admin, json={"cumulative": 100000000000000.0}
        )
        assert response.status_code == 422
        assert "cumulative" in response.json()["errors"][0]["field"]
        # Every edit is audited: who, when, the values before and after; refused ones are not.
        response = await client.put(
            "/api/v1/targets/2024", headers=admin, json={"annual": 10, "cumulative": 40}
        )
        assert response.status_code == 200
        body = (await client.get("/api/v1/targets/changes", headers=viewer)).json()
        assert body["count"] == 2
        changes = [
            {k: c[k] for k in ("year", "changed_by", "old_annual", "old_cumulative", "old_note")}
            | {k: c[k] for k in ("new_annual", "new_cumulative", "new_note")}
            for c in body["data"]
        ]
        subject = "industry-training_admin"
        assert changes == [
            {
                "year": 2024,
                "changed_by": subject,
                "old_annual": None,
                "old_cumulative": None,
                "old_note": None,
                "new_annual": 10,
                "new_cumulative": None,
                "new_note": "Target uji",
            },
            {
                "year": 2024,
                "changed_by": subject,
                "old_annual": 10,
                "old_cumulative": None,
                "old_note": "Target uji",
                "new_annual": 10,
                "new_cumulative": 40,
                "new_note": None,
            },
        ]
        assert body["data"][0]["changed_at"] <= body["data"][1]["changed_at"]
        assert (
            await client.get("/api/v1/targets/changes", headers=viewer, params={"year": 2017})
        ).json()["count"] == 0
        response = await client.put(
            "/api/v1/targets/2024", headers=admin, json={"annual": 10, "note": "Target uji"}
        )
        assert response.status_code == 200

        body = (await client.get("/api/v1/targets/progress", headers=viewer)).json()
        progress = {r["year"]: r for r in body["data"]}
        assert sorted(progress) == list(range(2017, 2025))
        assert progress[2017]["target_annual"] == 5000
        assert progress[2017]["new_entrepreneurs"] == 0
        assert progress[2019]["target_cumulative"] == 20000
        assert progress[2019]["progress_cumulative"] == 0.0
        assert progress[2024] | {"target_cumulative": None} == {
            "year": 2024,
            "target_annual": 10,
            "target_cumulative": None,
            "new_entrepreneurs": 3,
            "new_entrepreneurs_cumulative": 3,
            "certified": 6,
            "certified_cumulative": 6,
            "progress_annual": 0.3,
            "progress_cumulative": None,
        }
        assert body["data_as_of"]
        # The same table as files, with a header row.
        response = await client.get("/api/v1/targets/progress.csv", headers=viewer)
        assert response.status_code == 200
        assert 'filename="capaian-target.csv"' in response.headers["content-disposition"]
        lines = response.content.decode("utf-8-sig").splitlines()
        assert lines[0] == (
            "year,target_annual,target_cumulative,new_entrepreneurs,new_entrepreneurs_cumulative,"
            "certified,certified_cumulative,progress_annual,progress_cumulative"
        )
        assert lines[1] == "2017,5000,,0,0,0,0,0.0,"
        assert lines[-1] == "2024,10,,3,3,6,6,0.3,"
        response = await client.get("/api/v1/targets/progress.xlsx", headers=viewer)
        assert response.status_code == 200 and response.content[:2] == b"PK"
        assert (await client.get("/api/v1/targets/progress.csv")).status_code == 401

        # --- public outputs, no sign-in: every count rounded to a multiple of 5, by less than 5
        # (totals and margins on their own), the same on every request.
        def rounded(published: dict[str, Any], true: dict[str, int]) -> None:
            for counter, value in true.items():
                assert published[counter] % 5 == 0, (published, counter)
                assert abs(published[counter] - value) < 5, (published, counter)

        body = (await client.get("/public/summary")).json()
        assert body["data_as_of"]
        assert body["rounding"]["method"] == "random_rounding" and body["rounding"]["base"] == 5
        rounded(body["totals"], {"enrolled": 11, "completed": 9, "certified": 6})
        assert [r["year"] for r in body["by_year"]] == [2024]
        rounded(body["by_year"][0], {"enrolled": 11, "completed": 9, "certified": 6})
        assert [r["province"] for r in body["by_province"]] == ["Banten", "Kalimantan Barat"]
        rounded(body["by_province"][0], {"enrolled": 8, "completed": 6, "certified": 6})
        rounded(body["by_province"][1], {"enrolled": 3, "completed": 3, "certified": 0})
        assert body["by_province"][1]["certified"] == 0  # a zero stays zero
        assert (await client.get("/public/summary")).json() == body
        body = (await client.get("/public/open-data.json")).json()
        assert body["schema"] == "bekal.open-data/2"
        assert body["columns"] == [
            "year",
            "province",
            "sector",
            "sex",
            "enrolled",
            "completed",
            "certified",
        ]
        keys = [(r["year"], r["province"], r["sector"], r["sex"]) for r in body["rows"]]
        assert keys == [(2024, "Banten", "batik", "F"), (2024, "Kalimantan Barat", "batik", "M")]
        rounded(body["rows"][0], {"enrolled": 8, "completed": 6, "certified": 6})
        rounded(body["rows"][1], {"enrolled": 3, "completed": 3, "certified": 0})
        response = await client.get("/public/open-data.csv")
        assert response.status_code == 200
        assert response.headers["content-disposition"].endswith('"bekal-data-terbuka.csv"')
        lines = response.content.decode("utf-8-sig").splitlines()
        assert lines == [
            "year,province,sector,sex,enrolled,completed,certified",
            *(",".join(str(r[c]) for c in body["columns"]) for r in body["rows"]),
        ]
