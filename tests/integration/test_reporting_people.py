"""Indicators about people count each person once, however many courses they took.

Hand-computed history (one facility, programs A and B, sessions ending 2024-03-08 (A) and
2024-09-06 (B)):

| person | courses completed | released | latest follow-up per course |
|---|---|---|---|
| X | A and B | yes | A: business without NIB; B: business with NIB |
| Y | B | yes | B: business with NIB |
| Z | A and B | no | A: employed; B: employed |
| W | A (not completed) | yes | - |

Waiting lists of B: Y moved up from it (enrolled under the same id), V left it, W still waits:
3 entries, 1 waiting (not enrolments: enrolled stays 6).

X's readiness checklists are complete (ready to trade) for both courses; everyone else's
lacks the NIB.

New entrepreneurs: X and Y = 2 (X once, under A, the first course; without NIB as A says);
graduates released: X and Y = 2 (W did not complete), of whom ready to trade: X = 1, under A;
employed: Z = 1, under A.
Per enrolment these would have been 3, 3 and 2.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from bekal.reporting.app import create_app
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    CompetencyUnit,
    FollowUpSituation,
    InmateShared,
    ParticipantCompleted,
    ParticipantEnrolled,
    ReleaseKind,
    Sex,
    WithdrawalReason,
)
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
    TANGERANG,
    enrollment_withdrawn,
    facility_registered,
    follow_up_recorded,
    inmate_released,
    inmate_shared,
    inmates_merged,
    participant_completed,
    participant_enrolled,
    participant_left_waitlist,
    participant_not_completed,
    participant_waitlisted,
    program_published,
    readiness_recorded,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

F = uuid.uuid4()
PROGRAM = {"A": uuid.uuid4(), "B": uuid.uuid4()}
SESSION = {"A": uuid.uuid4(), "B": uuid.uuid4()}
END = {"A": date(2024, 3, 8), "B": date(2024, 9, 6)}
PERSON = {p: uuid.uuid4() for p in "XYZW"}
UNITS = [CompetencyUnit(code="U1", title="Unit")]
PROGRAMS = {
    course: program_published(
        program_id=PROGRAM[course],
        code=f"WUB-{course}",
        title=f"Kursus {course}",
        partner=None,
        competency_units=UNITS,
    )
    for course in "AB"
}


def shared(person: uuid.UUID) -> InmateShared:
    return inmate_shared(
        participant_id=person,
        full_name="Nama",
        sex=Sex.FEMALE,
        facility_id=F,
        admission_date=date(2023, 1, 1),
        expected_release_date=None,
    )


def enrolled(course: str, person: uuid.UUID, **overrides: object) -> ParticipantEnrolled:
    return participant_enrolled(
        SESSION[course], person, enrolled_on=END[course] - timedelta(days=10), **overrides
    )


def history() -> list[Event]:
    events: list[Event] = [facility_registered(TANGERANG, facility_id=F, name="LPP Tangerang")]
    for course in "AB":
        events += [
            PROGRAMS[course],
            session_scheduled(
                PROGRAMS[course],
                session_id=SESSION[course],
                facility_id=F,
                start_date=END[course] - timedelta(days=4),
                end_date=END[course],
                capacity=30,
            ),
        ]
    events += [shared(PERSON[person]) for person in "XYZW"]

    def completed(
        person: str,
        course: str,
        then: FollowUpSituation | None,
        *,
        ready: bool = False,
        waitlisted_first: bool = False,
    ) -> None:
        enrolment = enrolled(course, PERSON[person])
        if waitlisted_first:  # moved up from the waiting list: the same id enrols
            events.append(
                participant_waitlisted(
                    SESSION[course],
                    PERSON[person],
                    enrollment_id=enrolment.enrollment_id,
                    waitlisted_on=END[course] - timedelta(days=20),
                )
            )
        events.extend(
            [
                enrolment,
                participant_completed(
                    enrolment, PROGRAMS[course], participant_name="Nama", end_date=END[course]
                ),
            ]
        )
        # A checklist missing the NIB first, then (when ready) the whole of it.
        events.extend(
            readiness_recorded(enrolment, nib=nib, recorded_on=date(2024, 9, day))
            for day, nib in ((20, False), (25, True))[: 2 if ready else 1]
        )
        if then is not None:
            events.append(
                follow_up_recorded(enrolment, situation=then, recorded_on=date(2025, 1, 10))
            )

    # B is published first: the first course is found by its end date, not arrival order.
    completed("X", "B", FollowUpSituation.BUSINESS_STARTED_WITH_NIB, ready=True)
    completed("X", "A", FollowUpSituation.BUSINESS_STARTED_WITHOUT_NIB, ready=True)
    completed("Y", "B", FollowUpSituation.BUSINESS_STARTED_WITH_NIB, waitlisted_first=True)
    completed("Z", "A", FollowUpSituation.EMPLOYED_BY_IKM)
    completed("Z", "B", FollowUpSituation.EMPLOYED_BY_IKM)
    w = participant_enrolled(SESSION["A"], PERSON["W"], enrolled_on=date(2024, 2, 20))
    events += [w, participant_not_completed(w, attendance_share=0.5)]
    # Waiting lists of B: W still waits; V (not shared) left it.
    v = participant_waitlisted(SESSION["B"], waitlisted_on=date(2024, 8, 2), position=3)
    events += [
        participant_waitlisted(
            SESSION["B"], PERSON["W"], waitlisted_on=date(2024, 8, 1), position=2
        ),
        participant_left_waitlist(v, left_on=date(2024, 8, 20)),
        v,
    ]
    events += [
        inmate_released(
            participant_id=PERSON[person],
            facility_id=F,
            release_kind=ReleaseKind.PAROLE,
            released_on=date(2024, 10, 1),
        )
        for person in "XYW"
    ]
    return events


PEOPLE_COUNTERS = ("new_entrepreneurs", "business_with_nib", "business_without_nib")


def _people(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(
        row[k]
        for k in (
            *PEOPLE_COUNTERS,
            "graduates_released",
            "graduates_released_ready",
            "employed",
            "completed",
            "enrolled",
            "waitlisted",
            "waiting",
        )
    )


async def test_a_person_with_two_courses_and_one_business_is_one_new_entrepreneur(
    database_url: str, broker, make_settings
):
    settings = make_settings("reporting", database_url, broker)
    events = history()
    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="history applied")
        admin = bearer(settings, ministry="industry", roles=["training_admin"])
        body = (
            await client.get("/api/v1/indicators", headers=admin, params={"group_by": "program"})
        ).json()
        # (new entrepreneurs, with NIB, without NIB, released graduates, of whom ready to
        # trade, employed, completed, enrolled, waiting-list entries, still waiting)
        assert _people(body["totals"]) == (2, 1, 1, 2, 1, 1, 5, 6, 3, 1)
        by_program = {r["program_code"]: _people(r) for r in body["data"]}
        assert by_program == {
            "WUB-A": (1, 0, 1, 1, 1, 1, 2, 3, 0, 0),  # X (without NIB, released, ready), Z
            # Y only (X and Z were counted under A); waiting lists: Y moved up, V left, W waits
            "WUB-B": (1, 1, 0, 1, 0, 0, 3, 3, 3, 1),
        }
        progress = (await client.get("/api/v1/targets/progress", headers=admin)).json()
        assert next(r for r in progress["data"] if r["year"] == 2024)["new_entrepreneurs"] == 2


async def test_a_person_enrolled_twice_in_one_session_under_merged_records_counts_once(
    database_url: str, broker, make_settings
):
    """Training folds the duplicate (withdrawn, merged into the kept one): one enrolment counts.

    The duplicate had completed before the merge, and a late replay of that completion arrives
    after the fold: it must not count the duplicate again.
    """
    settings = make_settings("reporting", database_url, broker)
    base = history()[:4]  # the facility, program A and its session
    old, survivor = uuid.uuid4(), PERSON["X"]
    kept, folded = uuid.uuid4(), uuid.uuid4()

    def completion(enrolment: uuid.UUID, person: uuid.UUID) -> ParticipantCompleted:
        return participant_completed(
            program=PROGRAMS["A"],
            enrollment_id=enrolment,
            session_id=SESSION["A"],
            participant_id=person,
            participant_name="Nama",
            end_date=END["A"],
        )

    events: list[Event] = [
        *base,
        shared(survivor),
        shared(old),
        enrolled("A", survivor, enrollment_id=kept),
        enrolled("A", old, enrollment_id=folded),
        completion(folded, old),
        inmates_merged(old, survivor, merged_on=END["A"]),
        enrollment_withdrawn(
            enrollment_id=folded,
            session_id=SESSION["A"],
            participant_id=survivor,
            reason=WithdrawalReason.OTHER,
            withdrawn_on=END["A"],
            merged_into_enrollment_id=kept,
        ),
        completion(kept, survivor),
        completion(folded, survivor),  # a late replay of the duplicate's completion
    ]
    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=60, what="history applied")
        admin = bearer(settings, ministry="industry", roles=["training_admin"])
        totals = (await client.get("/api/v1/indicators", headers=admin)).json()["totals"]
        assert (totals["enrolled"], totals["completed"], totals["withdrawn"]) == (1, 1, 0)
        assert totals["withdrawn_by_reason"]["other"] == 0
