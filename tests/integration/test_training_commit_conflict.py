"""A unique key taken by another transaction before a training route commits is a 409, not a 500.

The race is made real on PostgreSQL: between the route's own check and its commit, a second
connection writes the conflicting row and commits first, so the unique violation surfaces at
the route's commit. Two requests at once on the same app are also tried on both databases.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, ParamSpec, TypeVar

import httpx
import pytest

from bekal.shared.db import utcnow
from bekal.shared.messaging.models import OutboxMessage
from bekal.training.models import Enrollment, Program, ReadinessChecklist, TrainingSession
from bekal.training.services import graduates, programs
from tests.support.training import Training

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
UNITS = [{"code": "BTK-01", "title": "Membuat pola batik"}]
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

P = ParamSpec("P")
R = TypeVar("R")


def program_body(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "title": "Penumbuhan WUB IKM Batik",
        "sector": "batik",
        "partner": None,
        "days": 5,
        "hours": 40,
        "min_attendance_share": 0.8,
        "competency_units": UNITS,
    }


def program_row(code: str) -> Program:
    now = utcnow()
    return Program(
        id=uuid.uuid4(),
        code=code,
        version=1,
        title="Program yang sama dari permintaan lain",
        sector="batik",
        partner=None,
        days=5,
        hours=40,
        min_attendance_share=0.8,
        competency_units=UNITS,
        created_at=now,
        updated_at=now,
    )


def then_before_commit(
    use_case: Callable[P, Awaitable[R]], write: Callable[[], Awaitable[None]]
) -> Callable[P, Awaitable[R]]:
    """``use_case`` as the route calls it, followed by ``write`` before the route commits."""

    async def racing(*args: P.args, **kwargs: P.kwargs) -> R:
        result = await use_case(*args, **kwargs)
        await write()
        return result

    return racing


def assert_duplicate(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 409
    assert problem["type"].endswith("/duplicate"), problem


@on_postgresql
async def test_a_program_code_taken_between_the_check_and_the_commit_is_a_409(
    training: Training, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = training
    monkeypatch.setattr(
        programs,
        "create_program",
        then_before_commit(programs.create_program, lambda: t.meanwhile(program_row("WUB-1"))),
    )

    r = await t.client.post(
        "/api/v1/programs", json=program_body("WUB-1"), headers=t.token("training_admin")
    )

    assert_duplicate(r)
    assert await t.count(Program) == 1
    assert await t.count(Program, Program.title == "Program yang sama dari permintaan lain") == 1
    # The losing request's ProgramPublished was rolled back with its row.
    assert await t.count(OutboxMessage) == 0


async def test_two_requests_creating_the_same_program_at_once_get_one_201_and_one_409(
    training: Training,
) -> None:
    t = training
    headers = t.token("training_admin")

    first, second = await asyncio.gather(
        t.client.post("/api/v1/programs", json=program_body("WUB-2"), headers=headers),
        t.client.post("/api/v1/programs", json=program_body("WUB-2"), headers=headers),
    )

    assert sorted([first.status_code, second.status_code]) == [201, 409], (
        first.text,
        second.text,
    )
    lost = first if first.status_code == 409 else second
    assert lost.headers["content-type"].startswith(PROBLEM)
    assert lost.json()["status"] == 409
    assert await t.count(Program, Program.code == "WUB-2") == 1


@on_postgresql
async def test_a_readiness_checklist_written_between_the_check_and_the_commit_is_a_409(
    training: Training, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUT readiness creates the checklist when there is none: a concurrent first write wins."""
    t = training
    program = program_row("WUB-3")
    course = TrainingSession(
        id=uuid.uuid4(),
        program_id=program.id,
        program_version=1,
        program_code=program.code,
        program_title=program.title,
        sector=program.sector,
        partner=None,
        hours=40,
        min_attendance_share=0.8,
        competency_units=UNITS,
        facility_id=uuid.uuid4(),
        start_date=date(2024, 9, 3),
        end_date=date(2024, 9, 7),
        capacity=4,
        status="completed",
        instructors=[],
        completed_on=date(2024, 9, 7),
    )
    graduate = Enrollment(
        id=uuid.uuid4(),
        session_id=course.id,
        participant_id=uuid.uuid4(),
        status="completed",
        enrolled_on=date(2024, 9, 2),
        attendance_share=1.0,
    )
    await t.meanwhile(program)
    await t.meanwhile(course)
    await t.meanwhile(graduate)
    theirs = ReadinessChecklist(
        enrollment_id=graduate.id,
        participant_id=graduate.participant_id,
        identity_card=False,
        bank_account=False,
        nib=False,
        starter_tools=False,
        recorded_by="another-field-officer",
        recorded_on=date(2024, 9, 8),
    )
    mine = {"identity_card": True, "bank_account": True, "nib": False, "starter_tools": True}
    url = f"/api/v1/enrollments/{graduate.id}/readiness"
    headers = t.token("field_officer")
    with monkeypatch.context() as patch:
        patch.setattr(
            graduates,
            "record_readiness",
            then_before_commit(graduates.record_readiness, lambda: t.meanwhile(theirs)),
        )
        r = await t.client.put(url, json=mine, headers=headers)

    assert_duplicate(r)
    assert await t.count(ReadinessChecklist) == 1
    stored = (await t.client.get(url, headers=headers)).json()
    assert stored["recorded_by"] == "another-field-officer"
    assert await t.count(OutboxMessage) == 0
    # Sent again, the request finds the other's checklist and changes it.
    again = await t.client.put(url, json=mine, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["identity_card"] is True
