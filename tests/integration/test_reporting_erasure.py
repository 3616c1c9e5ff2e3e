"""An erasure or a consent withdrawal changes no figure reporting publishes, and neither does a
rebuild from the beginning of the topics.

History (two facilities in two provinces, programs A and B, A's session ends 2024-03-08 and B's
2024-09-06):

| person | sex | courses completed | released | ready to trade | follow-up |
|---|---|---|---|---|---|
| X | F | A and B | yes | A and B | A: business without NIB; B: business with NIB |
| Y | M | A | yes | A | A: business with NIB |
| Z | F | B | no | - | B: employed |
| W | M | - (withdrawn from A) | yes | - | - |

X is erased: counted once (under A) in new entrepreneurs, released graduates and those ready to
trade, as before, and under her sex. Y withdraws consent: the same path. Every figure is read
before and after each, and after a rebuild: the indicators by every grouping (each subset of
the dimensions) with their totals, the target progress, the public summary and the open data
(JSON and CSV).
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, make_url, select, text

from bekal.reporting.app import create_app
from bekal.reporting.domain import Dimension
from bekal.reporting.models import Participant
from bekal.reporting.services.people import erasure_key
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    CompetencyUnit,
    FollowUpSituation,
    ParticipantEnrolled,
    ReleaseKind,
    Sex,
    WithdrawalReason,
)
from bekal.shared.messaging.models import DeadLetter, InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
    PONTIANAK,
    TANGERANG,
    certificate_issued,
    enrollment_withdrawn,
    facility_registered,
    follow_up_recorded,
    inmate_consent_withdrawn,
    inmate_erased,
    inmate_released,
    inmate_shared,
    participant_completed,
    participant_enrolled,
    program_published,
    readiness_recorded,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

FACILITY = {"A": uuid.uuid4(), "B": uuid.uuid4()}
PROGRAM = {"A": uuid.uuid4(), "B": uuid.uuid4()}
SESSION = {"A": uuid.uuid4(), "B": uuid.uuid4()}
END = {"A": date(2024, 3, 8), "B": date(2024, 9, 6)}
PERSON = {p: uuid.uuid4() for p in "XYZW"}
SEX = {"X": Sex.FEMALE, "Y": Sex.MALE, "Z": Sex.FEMALE, "W": Sex.MALE}
UNITS = [CompetencyUnit(code="U1", title="Unit")]
NAME = "Siti Erasa Contohwati"


def _shared(person: str) -> Event:
    return inmate_shared(
        participant_id=PERSON[person],
        full_name=NAME,
        sex=SEX[person],
        birth_year=1991,
        facility_id=FACILITY["A"],
        admission_date=date(2023, 1, 1),
        expected_release_date=None,
    )


def _released(person: str) -> Event:
    return inmate_released(
        participant_id=PERSON[person],
        facility_id=FACILITY["A"],
        release_kind=ReleaseKind.PAROLE,
        released_on=date(2024, 10, 1),
    )


def history() -> list[Event]:
    events: list[Event] = []
    programs = {}
    for course, facility in (("A", TANGERANG), ("B", PONTIANAK)):
        registered = facility_registered(facility, facility_id=FACILITY[course])
        programs[course] = program_published(
            program_id=PROGRAM[course],
            code=f"WUB-{course}",
            title=f"Kursus {course}",
            sector="Kriya" if course == "A" else "Pangan",
            partner=None,
            competency_units=UNITS,
        )
        events += [
            registered,
            programs[course],
            session_scheduled(
                programs[course],
                registered,
                session_id=SESSION[course],
                start_date=END[course] - timedelta(days=4),
                end_date=END[course],
                capacity=30,
            ),
        ]
    events += [_shared(person) for person in "XYZW"]

    def completed(
        person: str, course: str, then: FollowUpSituation, *, ready: bool
    ) -> ParticipantEnrolled:
        enrolment = participant_enrolled(
            SESSION[course], PERSON[person], enrolled_on=END[course] - timedelta(days=10)
        )
        done = participant_completed(
            enrolment, programs[course], participant_name=NAME, end_date=END[course]
        )
        events.extend(
            [
                enrolment,
                done,
                certificate_issued(done, issued_on=END[course] + timedelta(days=3)),
                readiness_recorded(enrolment, nib=ready, recorded_on=END[course]),
                follow_up_recorded(enrolment, situation=then, recorded_on=date(2025, 1, 10)),
            ]
        )
        return enrolment

    completed("X", "B", FollowUpSituation.BUSINESS_STARTED_WITH_NIB, ready=True)
    completed("X", "A", FollowUpSituation.BUSINESS_STARTED_WITHOUT_NIB, ready=True)
    completed("Y", "A", FollowUpSituation.BUSINESS_STARTED_WITH_NIB, ready=True)
    completed("Z", "B", FollowUpSituation.EMPLOYED_BY_IKM, ready=False)
    w = participant_enrolled(SESSION["A"], PERSON["W"], enrolled_on=date(2024, 2, 20))
    events += [
        w,
        enrollment_withdrawn(w, reason=WithdrawalReason.RELEASED, withdrawn_on=date(2024, 3, 1)),
    ]
    events += [_released(person) for person in "XYW"]
    return events


def _dead_letter(event: Event) -> DeadLetter:
    """As the consumer keeps a record it could not handle."""
    return DeadLetter(
        consumer_group="reporting",
        topic="registry.inmates",
        partition=0,
        offset=1,
        key=event.aggregate_id,
        headers=json.dumps({"ce_type": event.event_type(), "ce_subject": event.aggregate_id}),
        value=event.model_dump_json(),
        event_id=str(uuid.uuid4()),
        event_type=event.event_type(),
        reason="handler_failed",
        error="boom",
        attempts=5,
    )


def _unkeyed(participant_id: uuid.UUID) -> uuid.UUID:
    """The anonymous id as it was derived before it was keyed."""
    return uuid.uuid5(
        uuid.UUID("6f1f3c2e-2b1a-4b8e-9a57-2f0f6f1c0b7d"), f"erased-person:{participant_id}"
    )


async def _every_row(db: Any) -> dict[str, list[Any]]:
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        return {
            table: (await conn.execute(text(f"SELECT * FROM {table}"))).all() for table in tables
        }


def _groupings() -> list[str]:
    dims = [d.value for d in Dimension]
    return [",".join(c) for n in range(len(dims) + 1) for c in itertools.combinations(dims, n)]


def _without_time(value: Any) -> Any:
    """The figures only: ``data_as_of`` moves with every event, erasures included."""
    if isinstance(value, dict):
        return {k: _without_time(v) for k, v in value.items() if k != "data_as_of"}
    if isinstance(value, list):
        return [_without_time(v) for v in value]
    return value


async def figures(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    """Every figure reporting publishes, to officials and to the public."""
    out: dict[str, Any] = {}
    for grouping in _groupings():
        response = await client.get(
            "/api/v1/indicators", headers=admin, params={"group_by": grouping}
        )
        assert response.status_code == 200, response.text
        out[f"indicators?group_by={grouping}"] = _without_time(response.json())
    for path in ("/api/v1/targets/progress",):
        out[path] = _without_time((await client.get(path, headers=admin)).json())
    for path in ("/public/summary", "/public/open-data.json"):
        out[path] = _without_time((await client.get(path)).json())
    out["/public/open-data.csv"] = (await client.get("/public/open-data.csv")).text
    return out


def _differences(one: dict[str, Any], two: dict[str, Any]) -> list[str]:
    return [key for key in one if one[key] != two.get(key)]


async def _applied(app: Any, n: int) -> None:
    async def done() -> bool:
        return await count(app.state.projections.live.db, InboxMessage) >= n

    await wait_until(done, within=60, what=f"{n} events applied")


async def test_erasure_consent_withdrawal_and_rebuild_change_no_published_figure(
    database_url: str, broker, make_settings
):
    settings = make_settings("reporting", database_url, broker)
    events = history()
    app = create_app(settings)
    async with running(app) as client:
        admin = bearer(settings, ministry="industry", roles=["training_admin"])
        operator = bearer(settings, ministry="industry", roles=["operator"])
        await publish(settings, events)
        await _applied(app, len(events))
        before = await figures(client, admin)
        totals = before["indicators?group_by="]["totals"]
        # X once (under A), Y; released and ready to trade: X and Y; employed: Z.
        assert (
            totals["new_entrepreneurs"],
            totals["business_with_nib"],
            totals["business_without_nib"],
            totals["graduates_released"],
            totals["graduates_released_ready"],
            totals["employed"],
            totals["enrolled"],
        ) == (2, 1, 1, 2, 2, 1, 5)
        by_sex = {r["sex"]: r for r in before["indicators?group_by=sex"]["data"]}
        assert by_sex["F"]["graduates_released"] == 1 and by_sex["M"]["new_entrepreneurs"] == 1

        # Records that could not be handled wait in the dead letters: one about X (her name,
        # facility and dates beside her id), one about Z.
        live = app.state.projections.live.db
        async with live.session() as s:
            s.add(_dead_letter(_shared("X")))
            s.add(_dead_letter(_shared("Z").model_copy(update={"full_name": "Zahra Tetap Ada"})))
            await s.commit()

        # X is erased; then her share and her release are replayed late, as a new consumer
        # reading the history would meet them.
        erasure: list[Event] = [inmate_erased(PERSON["X"]), _shared("X"), _released("X")]
        await publish(settings, erasure)
        await _applied(app, len(events) + len(erasure))
        after_erasure = await figures(client, admin)
        assert _differences(before, after_erasure) == []

        withdrawal = [inmate_consent_withdrawn(PERSON["Y"], withdrawn_on=date(2025, 2, 1))]
        await publish(settings, withdrawal)
        await _applied(app, len(events) + len(erasure) + len(withdrawal))
        after_withdrawal = await figures(client, admin)
        assert _differences(before, after_withdrawal) == []

        # No row of any table holds the participant id of X or Y, nor an id derivable from it
        # without the secret (as the uuid5 of it once was); no birth year nor date of release
        # is left beside an id of theirs.
        forbidden = {str(i) for person in "XY" for i in (PERSON[person], _unkeyed(PERSON[person]))}
        for table, rows in (await _every_row(live)).items():
            text_of_rows = repr(rows)
            assert not any(f in text_of_rows for f in forbidden), table
            assert NAME not in text_of_rows, table
        async with live.session() as s:
            kept = {
                row.id: (row.birth_year, row.released_on)
                for row in await s.scalars(select(Participant))
            }
            dead = list(await s.scalars(select(DeadLetter.key)))
        # Only people not erased keep a birth year or a date of release (if their events
        # carry them to reporting at all).
        others = {PERSON["Z"], PERSON["W"]}
        assert {k: v for k, v in kept.items() if k not in others} == {
            erasure_key(settings).anonymous(PERSON[p]): (None, None) for p in "XY"
        }
        # X's dead letter went with her, Z's stays.
        assert dead == [str(PERSON["Z"])]
        async with live.session() as s:
            # Each erased person's row, under their anonymous id: the sex and "released" only.
            for person in "XY":
                row = (
                    await s.execute(
                        select(
                            Participant.sex,
                            Participant.birth_year,
                            Participant.released_on,
                            Participant.released,
                        ).where(Participant.id == erasure_key(settings).anonymous(PERSON[person]))
                    )
                ).one()
                assert tuple(row) == (SEX[person].value, None, None, True)

        # No page of a SQLite database or its log holds the name (reporting never stores it).
        if live.is_sqlite:
            await live.checkpoints_done()
            path = Path(make_url(live.url).database or "")
            for file in (path, path.with_name(path.name + "-wal")):
                assert not file.exists() or NAME.encode() not in file.read_bytes(), file

        # A rebuild from the beginning of the topics gives the same figures.
        response = await client.post("/api/v1/admin/projections/rebuild", headers=operator)
        assert response.status_code == 202

        async def switched() -> bool:
            status = (await client.get("/api/v1/admin/projections", headers=operator)).json()
            failed = [g for g in status["data"] if g["status"] == "failed"]
            assert not failed, failed
            return bool(status["live"] == 1)

        await wait_until(switched, within=120, what="generation 1 live")
        rebuilt = await figures(client, admin)
        assert _differences(before, rebuilt) == []
        for table, rows in (await _every_row(app.state.projections.live.db)).items():
            assert not any(f in repr(rows) for f in forbidden), table
