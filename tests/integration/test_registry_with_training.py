"""Registry movements as the training service sees them, both apps running on one broker:
a temporary absence leaves a course participant enrolled, a permanent release withdraws them,
and a merged record's course history moves to the surviving id.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from bekal.registry.app import create_app as create_registry
from bekal.shared.events.catalogue import InmateTemporarilyAbsent
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.training import running_training
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

BOTH = {"training": True, "data_sharing": True}


async def test_absence_keeps_the_course_release_ends_it_and_a_merge_keeps_the_history(
    database_url: str, broker: Any, make_settings: Any, tmp_path: Path
):
    namespace = f"t{uuid.uuid4().hex[:8]}."
    reg_settings = make_settings(
        "registry", database_url, broker, kafka_namespace=namespace, pseudonym_secret="s-xt"
    )
    # Training has its own database, as in production; SQLite is enough on its side here.
    trn_settings = make_settings(
        "training",
        f"sqlite+aiosqlite:///{tmp_path}/training.db",
        broker,
        kafka_namespace=namespace,
    )
    corrections = bearer(reg_settings, ministry="corrections", roles=["registry_admin"])
    async with (
        running(create_registry(reg_settings)) as reg,
        running_training(trn_settings) as trn,
    ):
        industry = trn.token("training_admin", "training_officer")

        async def post(client: httpx.AsyncClient, url: str, body: Any, headers: Any) -> Any:
            r = await client.post(url, json=body, headers=headers)
            assert r.status_code in (200, 201), r.text
            return r.json()

        facility = await post(
            reg,
            "/api/v1/facilities",
            {
                "code": "LP-XSVC",
                "name": "Lapas Kelas IIA Bogor",
                "kind": "lapas",
                "facility_class": "IIA",
                "province": "Jawa Barat",
                "regional_office": "Kanwil Jawa Barat",
                "capacity": 800,
            },
            corrections,
        )
        people: dict[str, str] = {}
        for key, number, nik in (
            ("away", "X.1", "3201010101010001"),
            ("freed", "X.2", "3201010101010002"),
            ("survivor", "X.3", "3201010101010003"),
            ("duplicate", "X.3-DUP", "3201010101010004"),
        ):
            person = await post(
                reg,
                "/api/v1/inmates",
                {
                    "registration_number": number,
                    "full_name": f"Peserta {key}",
                    "nik": nik,
                    "sex": "M",
                    "date_of_birth": "1989-02-02",
                    "facility_id": facility["id"],
                    "admission_date": "2023-01-10",
                    "expected_release_date": "2025-06-30",
                    "consent": BOTH,
                },
                corrections,
            )
            people[key] = person["id"]

        async def replica_has_everyone() -> bool:
            r = await trn.client.get(
                "/api/v1/participants", params={"facility_id": facility["id"]}, headers=industry
            )
            return r.status_code == 200 and r.json()["count"] == 4

        await wait_until(replica_has_everyone, within=60, what="training replica filled")

        program = await post(
            trn.client,
            "/api/v1/programs",
            {
                "code": "WUB-KAYU",
                "title": "Penumbuhan WUB IKM Kerajinan Kayu",
                "sector": "woodcraft",
                "days": 5,
                "hours": 40,
                "min_attendance_share": 0.8,
                "competency_units": [{"code": "KYU-01", "title": "Mengukir kayu"}],
            },
            industry,
        )
        course = await post(
            trn.client,
            "/api/v1/sessions",
            {
                "program_id": program["id"],
                "facility_id": facility["id"],
                "start_date": "2024-09-02",
                "end_date": "2024-09-06",
                "capacity": 10,
                "instructors": [{"name": "Instruktur", "institution": "Balai Diklat Industri"}],
            },
            industry,
        )
        await post(trn.client, f"/api/v1/sessions/{course['id']}/open", None, industry)
        enrolled = [people["away"], people["freed"], people["duplicate"]]
        await post(
            trn.client,
            f"/api/v1/sessions/{course['id']}/enrollments",
            {"participant_ids": enrolled},
            industry,
        )
        await post(trn.client, f"/api/v1/sessions/{course['id']}/start", None, industry)

        # Registry movements: court hearing, parole, and the duplicate merged into its survivor.
        await post(
            reg,
            f"/api/v1/inmates/{people['away']}/absence",
            {"reason": "court", "absent_from": "2024-09-03", "expected_return": "2024-09-03"},
            corrections,
        )
        await post(
            reg,
            f"/api/v1/inmates/{people['freed']}/release",
            {"kind": "parole", "released_on": "2024-09-04"},
            corrections,
        )
        survivor = await post(
            reg,
            f"/api/v1/inmates/{people['survivor']}/merge",
            {"duplicate_id": people["duplicate"], "merged_on": "2024-09-04"},
            corrections,
        )
        assert survivor["id"] == people["survivor"]

        async def enrollments() -> dict[str, dict[str, Any]]:
            r = await trn.client.get(f"/api/v1/sessions/{course['id']}", headers=industry)
            assert r.status_code == 200, r.text
            return {e["participant_id"]: e for e in r.json()["enrollments"]}

        async def settled() -> bool:
            now = await enrollments()
            absence_handled = await trn.count(
                InboxMessage, InboxMessage.event_type == InmateTemporarilyAbsent.event_type()
            )
            return (
                absence_handled == 1
                and now.get(people["freed"], {}).get("status") == "withdrawn"
                and people["survivor"] in now
            )

        await wait_until(settled, within=60, what="training applied absence, release and merge")
        now = await enrollments()
        assert now[people["away"]]["status"] == "enrolled"
        assert now[people["freed"]]["withdrawal_reason"] == "released"
        # The duplicate's enrolment now belongs to the surviving id; the old id is gone.
        assert now[people["survivor"]]["status"] == "enrolled"
        assert people["duplicate"] not in now
        assert len(now) == 3
