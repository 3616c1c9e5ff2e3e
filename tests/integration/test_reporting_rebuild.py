"""Replay: projections rebuilt from the beginning of the topics equal the live ones, twice over.

A live reporting service consumes a history (with a re-issued certificate, a merge and an
erasure) and keeps answering while two rebuilds fill fresh databases (one of them on the
parametrized database, so SQLite and PostgreSQL). The three sets of tables are identical; the
service restarted on a rebuilt database goes on consuming without counting anything twice.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bekal.reporting.app import create_app
from bekal.reporting.models import (
    Certificate,
    CertificateRevocation,
    Enrollment,
    ErasedParticipant,
    Facility,
    MergedParticipant,
    Participant,
    Program,
    ProjectionState,
    Target,
    TrainingSession,
)
from bekal.reporting.rebuild import NotFresh, rebuild
from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CertificateReissued,
    CertificateRevocationKind,
    CertificateRevoked,
    CompetencyUnit,
    FacilityClass,
    FacilityKind,
    FacilityRegistered,
    FacilityUpdated,
    InmateErased,
    InmateShared,
    InmatesMerged,
    ParticipantCompleted,
    ParticipantEnrolled,
    ProgramPublished,
    SessionScheduled,
    Sex,
)
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PROJECTIONS = (
    Facility,
    Program,
    TrainingSession,
    Enrollment,
    Certificate,
    CertificateRevocation,
    Participant,
    ErasedParticipant,
    MergedParticipant,
    Target,
    ProjectionState,
)
F1, P1, S1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PEOPLE = [uuid.uuid4() for _ in range(6)]
ENROLMENTS = [uuid.uuid4() for _ in range(6)]
CERTS = [uuid.uuid4() for _ in range(6)]
UNITS = [CompetencyUnit(code="U1", title="Unit")]


def history() -> list[Event]:
    facility = dict(
        facility_id=F1,
        code="LPP-TANGERANG",
        kind=FacilityKind.LAPAS_PEREMPUAN,
        facility_class=FacilityClass.IIA,
        province="Banten",
        regional_office="Kanwil Banten",
        capacity=250,
        active=True,
    )
    events: list[Event] = [
        FacilityRegistered(name="LPP Tangerang", **facility),
        FacilityUpdated(name="LPP Kelas IIA Tangerang", **facility),
        ProgramPublished(
            program_id=P1,
            program_version=1,
            code="WUB-BATIK",
            title="Batik",
            sector="batik",
            partner=None,
            days=5,
            hours=40,
            min_attendance_share=0.8,
            competency_units=UNITS,
        ),
        SessionScheduled(
            session_id=S1,
            program_id=P1,
            program_version=1,
            facility_id=F1,
            start_date=date(2024, 9, 2),
            end_date=date(2024, 9, 6),
            capacity=30,
        ),
    ]
    for n, (person, enrolment, cert) in enumerate(zip(PEOPLE, ENROLMENTS, CERTS, strict=True)):
        events += [
            InmateShared(
                participant_id=person,
                full_name="Nama",
                sex=Sex.FEMALE,
                birth_year=1990 + n,
                facility_id=F1,
                admission_date=date(2023, 1, 1),
                expected_release_date=None,
            ),
            ParticipantEnrolled(
                enrollment_id=enrolment,
                session_id=S1,
                participant_id=person,
                enrolled_on=date(2024, 8, 30),
            ),
            ParticipantCompleted(
                enrollment_id=enrolment,
                session_id=S1,
                participant_id=person,
                participant_name="Nama",
                program_id=P1,
                program_code="WUB",
                program_title="Batik",
                sector="batik",
                partner=None,
                competency_units=UNITS,
                hours=40,
                start_date=date(2024, 9, 2),
                end_date=date(2024, 9, 6),
                attendance_share=1.0,
            ),
            CertificateIssued(
                certificate_id=cert,
                number=f"IKMA/2024/{n:06d}",
                participant_id=person,
                session_id=S1,
                enrollment_id=enrolment,
                program_id=P1,
                issued_on=date(2024, 9, 9),
            ),
        ]
    reissued = uuid.uuid4()
    events += [
        CertificateReissued(
            certificate_id=reissued,
            number="IKMA/2024/000100",
            replaces_certificate_id=CERTS[0],
            replaces_number="IKMA/2024/000000",
            participant_id=PEOPLE[0],
            session_id=S1,
            enrollment_id=ENROLMENTS[0],
            program_id=P1,
            issued_on=date(2024, 9, 20),
        ),
        CertificateRevoked(
            certificate_id=CERTS[0],
            number="IKMA/2024/000000",
            enrollment_id=ENROLMENTS[0],
            revoked_on=date(2024, 9, 20),
            kind=CertificateRevocationKind.SUPERSEDED,
            replaced_by_certificate_id=reissued,
        ),
        InmatesMerged(
            participant_id=PEOPLE[1],
            surviving_participant_id=PEOPLE[2],
            merged_on=date(2024, 10, 1),
        ),
        InmateErased(participant_id=PEOPLE[3]),
    ]
    return events


async def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection row, in primary-key order, as plain values."""
    db = Database(url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        async with db.session() as s:
            for model in PROJECTIONS:
                columns = list(model.__table__.columns)
                rows = (
                    await s.execute(select(*columns).order_by(*model.__table__.primary_key.columns))
                ).all()
                out[model.__tablename__] = [tuple(r) for r in rows]
        return out
    finally:
        await db.dispose()


async def _applied(db: Database, n: int) -> None:
    async def done() -> bool:
        return await count(db, InboxMessage) >= n

    await wait_until(done, within=60, what=f"{n} events applied")


async def test_rebuilds_equal_the_live_projections_and_the_service_switches_over(
    tmp_path: Path, database_url: str, broker, make_settings
):
    live_url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    second_url = f"sqlite+aiosqlite:///{tmp_path / 'second.db'}"
    settings = make_settings("reporting", live_url, broker)
    events = history()
    app = create_app(settings)
    async with running(app) as client:
        admin = bearer(settings, ministry="industry", roles=["training_admin"])
        await publish(settings, events)
        await _applied(app.state.db, len(events))
        response = await client.put("/api/v1/targets/2024", headers=admin, json={"annual": 12})
        assert response.status_code == 200
        before = (
            await client.get("/api/v1/indicators", headers=admin, params={"group_by": "sex"})
        ).json()
        assert before["totals"]["enrolled"] == 6 and before["totals"]["certified"] == 6

        # The service keeps answering, with the same numbers, while a rebuild runs.
        seen: list[tuple[int, dict[str, Any]]] = []
        progress: list[tuple[int, int]] = []
        task = asyncio.create_task(
            rebuild(
                settings,
                database_url,
                targets_from=live_url,
                progress=lambda d, t: progress.append((d, t)),
            )
        )
        while not task.done():
            response = await client.get(
                "/api/v1/indicators", headers=admin, params={"group_by": "sex"}
            )
            seen.append((response.status_code, response.json()))
            await asyncio.sleep(0.05)
        first = await task
        assert seen and all(s == (200, before) for s in seen)
        assert first.records == len(events) and first.outcomes == {"handled": len(events)}
        assert progress[-1] == (len(events), len(events))

        second = await rebuild(settings, second_url, targets_from=live_url)
        assert second.records == len(events)
        live, one, two = await dump(live_url), await dump(database_url), await dump(second_url)
        assert one == two
        assert one == live
        assert [row[:3] for row in one["targets"]] == [
            (2017, 5000, None),
            (2019, None, 20000),
            (2024, 12, None),
        ]
        # The erased person is anonymous in the rebuild too; the merged one is filed under P3.
        assert str(PEOPLE[3]) not in repr(one["enrollments"] + one["participants"])
        assert len(one["participants"]) == 4

        # A rebuild starts from nothing: a database already filled is refused.
        with pytest.raises(NotFresh):
            await rebuild(settings, second_url)

    # Switch-over: the service restarted on the rebuilt database answers the same and goes on
    # consuming (its group re-reads nothing it would count twice).
    switched = create_app(settings.model_copy(update={"database_url": database_url}))
    async with running(switched) as client:
        body = (
            await client.get("/api/v1/indicators", headers=admin, params={"group_by": "sex"})
        ).json()
        assert body == before
        late = ParticipantEnrolled(
            enrollment_id=uuid.uuid4(),
            session_id=S1,
            participant_id=uuid.uuid4(),
            enrolled_on=date(2024, 9, 1),
        )
        await publish(settings, [late])
        await _applied(switched.state.db, len(events) + 1)
        await asyncio.sleep(0.5)
        body = (await client.get("/api/v1/indicators", headers=admin)).json()
        assert body["totals"]["enrolled"] == 7
        assert await count(switched.state.db, InboxMessage) == len(events) + 1
