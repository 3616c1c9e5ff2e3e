"""Training through its HTTP API on SQLite and PostgreSQL, fed by real registry events.

Registry facts arrive only as events published to the broker (as the registry's relay would);
what training publishes is checked by reading its topics with a real consumer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from bekal.shared.events.catalogue import (
    EnrollmentWithdrawn,
    ParticipantCompleted,
    ParticipantEnrolled,
    ParticipantNotCompleted,
    ProgramPublished,
    ReleaseKind,
    SessionCompleted,
    SessionOpened,
    SessionScheduled,
    SessionStarted,
)
from bekal.shared.messaging.models import InboxMessage, OutboxMessage
from bekal.training.models import (
    Assessment,
    AttendanceRecord,
    Enrollment,
    Program,
    TrainingSession,
)
from tests.support.db import outbox_drained
from tests.support.factories import (
    facility_registered,
    facility_updated,
    inmate_released,
    inmate_shared,
    inmate_transferred,
)
from tests.support.factories import program_body as batik_program_body
from tests.support.factories import session_body as ybi_session_body
from tests.support.training import Training
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
START = date(2024, 9, 3)  # WUB IKM Batik at Lapas Cipinang, 3-7 September 2024
DAYS = [START + timedelta(days=i) for i in range(5)]
UNITS = [
    {"code": "BTK-01", "title": "Membuat pola batik"},
    {"code": "BTK-02", "title": "Membatik tulis"},
    {"code": "BTK-03", "title": "Membatik cap"},
]


def program_body(code: str = "WUB-BATIK", **changes: Any) -> dict[str, Any]:
    title = "Penumbuhan WUB IKM Batik (batik tulis dan batik cap)"
    return batik_program_body(
        **{"code": code, "title": title, "competency_units": UNITS, **changes}
    )


def session_body(program_id: str, facility_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    return ybi_session_body(program_id, facility_id, **{"capacity": 4, **changes})


def assert_problem(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert field in [e["field"] for e in body["errors"]], body
    return body


async def test_course_from_registry_events_to_completion_and_withdrawal(training: Training) -> None:
    t = training
    cipinang, salemba = uuid.uuid4(), uuid.uuid4()
    people = [uuid.uuid4() for _ in range(7)]
    names = [
        "Budi Santoso",
        "Agus Wijaya",
        "Dedi Saputra",
        "Rudi Hidayat",
        "Joko Pratama",
        "Andi Kusuma",
        "Hendra Nugroho",
    ]
    rutan = facility_registered(facility_id=salemba, code="RT-SALEMBA", name="Rutan Salemba")
    await t.publish(
        facility_registered(facility_id=cipinang),
        rutan,
        facility_updated(rutan, name="Rutan Kelas I Salemba"),
        *[
            inmate_shared(participant_id=pid, facility_id=cipinang, full_name=name)
            for pid, name in zip(people, names, strict=True)
        ],
    )

    # The replica fills from the events alone (the two topics are consumed independently).
    async def replica_filled() -> bool:
        got = (
            await t.client.get(f"/api/v1/participants?facility_id={cipinang}", headers=t.officer)
        ).json()
        renamed = (
            await t.client.get("/api/v1/facilities?code=RT-SALEMBA", headers=t.officer)
        ).json()
        return got["count"] == 7 and [f["name"] for f in renamed["data"]] == [
            "Rutan Kelas I Salemba"
        ]

    await wait_until(replica_filled)
    facilities = (await t.client.get("/api/v1/facilities", headers=t.officer)).json()
    assert facilities["count"] == 2
    assert {f["code"]: f["name"] for f in facilities["data"]} == {
        "LP-CIPINANG": "Lapas Kelas I Cipinang",
        "RT-SALEMBA": "Rutan Kelas I Salemba",
    }
    assert set(facilities["data"][0]) == {"id", "code", "name", "province", "active"}
    page = (
        await t.client.get(
            f"/api/v1/participants?facility_id={cipinang}&limit=4", headers=t.officer
        )
    ).json()
    assert page["count"] == 7 and len(page["data"]) == 4 and page["next_cursor"]
    rest = (
        await t.client.get(
            f"/api/v1/participants?facility_id={cipinang}&limit=4&cursor={page['next_cursor']}",
            headers=t.officer,
        )
    ).json()
    assert len(rest["data"]) == 3 and rest["next_cursor"] is None
    assert {p["id"] for p in page["data"] + rest["data"]} == {str(p) for p in people}
    budi = next(p for p in page["data"] + rest["data"] if p["id"] == str(people[0]))
    assert budi == {
        "id": str(people[0]),
        "full_name": "Budi Santoso",
        "sex": "M",
        "birth_year": 1990,
        "facility_id": str(cipinang),
        "status": "in_custody",
        "expected_release_date": "2025-01-02",
        "released_on": None,
    }

    # Program and session; the Idempotency-Key replays the first answer.
    r = await t.client.post("/api/v1/programs", json=program_body(), headers=t.admin)
    assert r.status_code == 201, r.text
    program = r.json()
    assert program["version"] == 1 and [u["code"] for u in program["competency_units"]] == [
        "BTK-01",
        "BTK-02",
        "BTK-03",
    ]
    key = {"Idempotency-Key": "session-cipinang-2024"}
    r = await t.client.post(
        "/api/v1/sessions", json=session_body(program["id"], cipinang), headers=t.admin | key
    )
    assert r.status_code == 201, r.text
    course = r.json()
    again = await t.client.post(
        "/api/v1/sessions", json=session_body(program["id"], cipinang), headers=t.admin | key
    )
    assert again.status_code == 201 and again.json()["id"] == course["id"]
    assert await t.count(TrainingSession) == 1
    assert (
        course["status"] == "planned"
        and course["program_version"] == 1
        and course["enrollments"] == []
    )

    # A later version of the program does not change the planned session's rules.
    r = await t.client.put(
        f"/api/v1/programs/{program['id']}",
        headers=t.admin,
        json={
            **{k: v for k, v in program_body().items() if k != "code"},
            "min_attendance_share": 1.0,
            "competency_units": [*UNITS, {"code": "BTK-04", "title": "Mewarnai kain batik"}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["min_attendance_share"] == 1.0

    # A planned session takes no nominations and cannot start: it is opened first.
    r = await t.client.post(
        f"/api/v1/sessions/{course['id']}/enrollments",
        headers=t.officer,
        json={"participant_ids": [str(people[0])]},
    )
    assert "belum dibuka" in assert_problem(r, 409, "status")["detail"]
    r = await t.client.post(f"/api/v1/sessions/{course['id']}/start", headers=t.officer)
    assert "dibuka" in assert_problem(r, 409, "status")["detail"]
    r = await t.client.post(f"/api/v1/sessions/{course['id']}/open", headers=t.officer)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["opened_on"] is not None
    r = await t.client.post(f"/api/v1/sessions/{course['id']}/open", headers=t.officer)
    assert_problem(r, 409, "status")
    assert await t.count(Enrollment) == 0

    # Enrolment: capacity 4 takes the first four; a fifth is refused and nothing is written.
    r = await t.client.post(
        f"/api/v1/sessions/{course['id']}/enrollments",
        headers=t.officer,
        json={"participant_ids": [str(p) for p in people[:4]]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 4
    assert {e["full_name"] for e in r.json()["data"]} == set(names[:4])
    r = await t.client.post(
        f"/api/v1/sessions/{course['id']}/enrollments",
        headers=t.officer,
        json={"participant_ids": [str(people[4])]},
    )
    body = assert_problem(r, 409, "participant_ids.0")
    assert body["errors"][0]["participant_id"] == str(people[4])
    assert await t.count(Enrollment) == 4

    r = await t.client.post(f"/api/v1/sessions/{course['id']}/start", headers=t.officer)
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert (
        await t.client.post(f"/api/v1/sessions/{course['id']}/start", headers=t.officer)
    ).status_code == 409

    # Attendance: p0 always there; p1 absent one day (exactly 0.8); p2 absent two days (0.6);
    # p3 always there but never assessed on one unit. Day 5 is first sent wrongly, then corrected.
    p0, p1, p2, p3 = (str(p) for p in people[:4])
    absent = {DAYS[1]: {p2}, DAYS[3]: {p2}, DAYS[4]: {p1}}
    for day in DAYS:
        records = [
            {"participant_id": p, "status": "absent" if p in absent.get(day, set()) else "present"}
            for p in (p0, p1, p2, p3)
        ]
        if day == DAYS[4]:
            wrong = [{"participant_id": p, "status": "present"} for p in (p0, p1, p2, p3)]
            r = await t.client.put(
                f"/api/v1/sessions/{course['id']}/attendance",
                headers=t.officer,
                json={"date": day.isoformat(), "records": wrong},
            )
            assert r.status_code == 200
        r = await t.client.put(
            f"/api/v1/sessions/{course['id']}/attendance",
            headers=t.officer,
            json={"date": day.isoformat(), "records": records},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"date": day.isoformat(), "count": 4}
    assert await t.count(AttendanceRecord) == 20

    results = [
        {"participant_id": p, "unit_code": u["code"], "result": "competent"}
        for p in (p0, p1, p2, p3)
        for u in UNITS
        if not (p == p3 and u["code"] == "BTK-03")
    ]
    results[1]["result"] = "not_yet_competent"  # p0's BTK-02 first, corrected below
    r = await t.client.put(
        f"/api/v1/sessions/{course['id']}/assessments",
        headers=t.officer,
        json={"assessor": "Instruktur YBI", "results": results},
    )
    assert r.status_code == 200 and r.json() == {"count": 11}
    r = await t.client.put(
        f"/api/v1/sessions/{course['id']}/assessments",
        headers=t.officer,
        json={
            "assessor": "Instruktur YBI",
            "results": [{"participant_id": p0, "unit_code": "BTK-02", "result": "competent"}],
        },
    )
    assert r.status_code == 200 and r.json() == {"count": 1}
    # BTK-04 exists only in version 2 of the program, not in the version this session runs.
    r = await t.client.put(
        f"/api/v1/sessions/{course['id']}/assessments",
        headers=t.officer,
        json={
            "assessor": "Instruktur YBI",
            "results": [{"participant_id": p0, "unit_code": "BTK-04", "result": "competent"}],
        },
    )
    assert_problem(r, 422, "results.0.unit_code")
    assert await t.count(Assessment) == 11

    r = await t.client.post(f"/api/v1/sessions/{course['id']}/complete", headers=t.officer)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["program_version"] == 1
    outcome = {
        e["participant_id"]: (e["status"], e["not_completed_reason"], e["attendance_share"])
        for e in done["enrollments"]
    }
    assert outcome == {
        p0: ("completed", None, 1.0),
        p1: ("completed", None, 0.8),
        p2: ("not_completed", "attendance_below_minimum", 0.6),
        p3: ("not_completed", "competencies_not_met", 1.0),
    }

    # Nothing changes after completion.
    for method, path, payload in [
        ("POST", "complete", None),
        ("POST", "start", None),
        ("POST", "enrollments", {"participant_ids": [str(people[4])]}),
        ("PUT", "attendance", {"date": DAYS[0].isoformat(), "records": []}),
        (
            "PUT",
            "assessments",
            {
                "assessor": "x",
                "results": [{"participant_id": p0, "unit_code": "BTK-01", "result": "competent"}],
            },
        ),
    ]:
        r = await t.client.request(
            method, f"/api/v1/sessions/{course['id']}/{path}", json=payload, headers=t.officer
        )
        assert r.status_code == 409, (path, r.text)

    # Events: one per enrolment and outcome; passers carry the certificate's facts, no facility.
    enrollment_events = await t.events("training.enrollments", expect=8)
    enrolled = [e for e in enrollment_events if isinstance(e, ParticipantEnrolled)]
    completed = [e for e in enrollment_events if isinstance(e, ParticipantCompleted)]
    not_completed = [e for e in enrollment_events if isinstance(e, ParticipantNotCompleted)]
    assert len(enrollment_events) == 8 and len(enrolled) == 4
    assert {str(e.participant_id): e.participant_name for e in completed} == {
        p0: names[0],
        p1: names[1],
    }
    first = completed[0]
    assert (
        first.program_code == "WUB-BATIK"
        and first.hours == 40
        and first.partner == "Yayasan Batik Indonesia"
    )
    assert [u.code for u in first.competency_units] == [
        "BTK-01",
        "BTK-02",
        "BTK-03",
    ]  # version 1's units
    assert (first.start_date, first.end_date) == (DAYS[0], DAYS[-1])
    assert not any("facility" in field for field in first.data())
    assert {str(e.participant_id): e.reason.value for e in not_completed} == {
        p2: "attendance_below_minimum",
        p3: "competencies_not_met",
    }
    session_events = await t.events("training.sessions", expect=4)
    assert [type(e) for e in session_events] == [
        SessionScheduled,
        SessionOpened,
        SessionStarted,
        SessionCompleted,
    ]
    last = session_events[-1]
    assert isinstance(last, SessionCompleted)
    assert (last.completed_count, last.not_completed_count) == (2, 2)
    programs = await t.events("training.programs", expect=2)
    assert [(type(e), e.program_version) for e in programs if isinstance(e, ProgramPublished)] == [
        (ProgramPublished, 1),
        (ProgramPublished, 2),
    ]

    # A second course, running, with people[4..6]; release and transfer end their enrolments.
    r = await t.client.post(
        "/api/v1/sessions", headers=t.admin, json=session_body(program["id"], cipinang, capacity=10)
    )
    second = r.json()
    assert second["program_version"] == 2 and second["min_attendance_share"] == 1.0
    p4, p5, p6 = people[4:7]
    await t.client.post(f"/api/v1/sessions/{second['id']}/open", headers=t.officer)
    r = await t.client.post(
        f"/api/v1/sessions/{second['id']}/enrollments",
        headers=t.officer,
        json={"participant_ids": [str(p4), str(p5), str(p6)]},
    )
    assert r.status_code == 201, r.text
    await t.client.post(f"/api/v1/sessions/{second['id']}/start", headers=t.officer)
    listed = (await t.client.get("/api/v1/sessions?limit=1", headers=t.officer)).json()
    assert listed["count"] == 2 and [s["id"] for s in listed["data"]] == [course["id"]]
    listed = (
        await t.client.get(
            f"/api/v1/sessions?limit=1&cursor={listed['next_cursor']}", headers=t.officer
        )
    ).json()
    assert [s["id"] for s in listed["data"]] == [second["id"]] and listed["next_cursor"] is None
    assert len(listed["data"][0]["enrollments"]) == 3
    running = (
        await t.client.get(
            f"/api/v1/sessions?status=running&facility_id={cipinang}", headers=t.officer
        )
    ).json()
    assert [s["id"] for s in running["data"]] == [second["id"]]
    release = inmate_released(
        participant_id=p4,
        facility_id=cipinang,
        release_kind=ReleaseKind.PAROLE,
        released_on=date(2024, 9, 5),
    )
    transfer = inmate_transferred(
        participant_id=p5,
        from_facility_id=cipinang,
        to_facility_id=salemba,
        transferred_on=date(2024, 9, 6),
    )
    # p0 completed the first course: releasing them leaves that outcome alone.
    release_done = inmate_released(
        participant_id=people[0], facility_id=cipinang, released_on=date(2024, 9, 10)
    )
    await t.publish(release, transfer, release_done)

    async def withdrawn() -> bool:
        s = (await t.client.get(f"/api/v1/sessions/{second['id']}", headers=t.officer)).json()
        return sum(e["status"] == "withdrawn" for e in s["enrollments"]) == 2

    await wait_until(withdrawn)
    second_now = (await t.client.get(f"/api/v1/sessions/{second['id']}", headers=t.officer)).json()
    state = {
        e["participant_id"]: (e["status"], e["withdrawal_reason"])
        for e in second_now["enrollments"]
    }
    assert state == {
        str(p4): ("withdrawn", "released"),
        str(p5): ("withdrawn", "transferred"),
        str(p6): ("enrolled", None),
    }
    p4_now = (await t.client.get(f"/api/v1/participants/{p4}", headers=t.officer)).json()
    assert (p4_now["status"], p4_now["released_on"]) == ("released", "2024-09-05")
    p5_now = (await t.client.get(f"/api/v1/participants/{p5}", headers=t.officer)).json()
    assert (p5_now["status"], p5_now["facility_id"]) == ("in_custody", str(salemba))

    # The same release delivered again under another event id: already withdrawn, nothing new.
    [again_id] = await t.publish(release)

    async def handled() -> bool:
        return await t.count(InboxMessage, InboxMessage.event_id == again_id) == 1

    await wait_until(handled)

    async def p0_released() -> bool:
        got = (await t.client.get(f"/api/v1/participants/{people[0]}", headers=t.officer)).json()
        return bool(got["status"] == "released")

    await wait_until(p0_released)
    first_now = (await t.client.get(f"/api/v1/sessions/{course['id']}", headers=t.officer)).json()
    assert {e["participant_id"]: e["status"] for e in first_now["enrollments"]}[p0] == "completed"
    enrollment_events = await t.events("training.enrollments", expect=8 + 3 + 2)
    withdrawals = [e for e in enrollment_events if isinstance(e, EnrollmentWithdrawn)]
    assert sorted(
        (str(e.participant_id), e.reason.value, e.withdrawn_on) for e in withdrawals
    ) == sorted(
        [(str(p4), "released", date(2024, 9, 5)), (str(p5), "transferred", date(2024, 9, 6))]
    )
    assert all(e.session_id == uuid.UUID(second["id"]) for e in withdrawals)
    assert len(enrollment_events) == 13


async def test_bad_input_is_refused_naming_the_field_and_writes_nothing(training: Training) -> None:
    t = training
    here, closed, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    inside, released, moved = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    pontianak = facility_registered(
        facility_id=here, code="LP-PONTIANAK", name="Lapas Kelas IIA Pontianak"
    )
    await t.publish(
        pontianak,
        facility_registered(facility_id=closed, code="LP-TUTUP", name="Lapas Lama", active=False),
        facility_registered(facility_id=elsewhere, code="LP-SINGKAWANG", name="Lapas Singkawang"),
        inmate_shared(participant_id=inside, facility_id=here, full_name="Eko Setiawan"),
        inmate_shared(participant_id=released, facility_id=here, full_name="Bayu Siregar"),
        inmate_shared(participant_id=moved, facility_id=elsewhere, full_name="Fajar Lubis"),
        inmate_released(participant_id=released, facility_id=here, released_on=date(2019, 5, 1)),
    )

    async def replica_filled() -> bool:
        people = (await t.client.get("/api/v1/participants", headers=t.officer)).json()
        places = (await t.client.get("/api/v1/facilities?active=false", headers=t.officer)).json()
        return (
            people["count"] == 3
            and places["count"] == 1
            and any(p["status"] == "released" for p in people["data"])
        )

    await wait_until(replica_filled)

    # A registry event redelivered late (older than what the replica shows) changes nothing.
    now = datetime.now(UTC)
    renamed = facility_updated(pontianak, name="Lapas Kelas IIA Pontianak Baru")
    stale = facility_registered(
        facility_id=here, code="LP-PONTIANAK", name="Lapas Pontianak (lama)"
    )
    [_, stale_id] = await t.publish(renamed, stale, times=[now, now - timedelta(hours=1)])

    async def stale_handled() -> bool:
        return await t.count(InboxMessage, InboxMessage.event_id == stale_id) == 1

    await wait_until(stale_handled)
    pontianak = (await t.client.get(f"/api/v1/facilities/{here}", headers=t.officer)).json()
    assert pontianak["name"] == "Lapas Kelas IIA Pontianak Baru"

    program = (
        await t.client.post("/api/v1/programs", headers=t.admin, json=program_body("KRJ-KAYU"))
    ).json()
    course = (
        await t.client.post(
            "/api/v1/sessions", headers=t.admin, json=session_body(program["id"], here)
        )
    ).json()
    opened = await t.client.post(f"/api/v1/sessions/{course['id']}/open", headers=t.officer)
    assert opened.status_code == 200, opened.text
    await wait_until(lambda: outbox_drained(t.app.state.db))

    async def snapshot() -> list[int]:
        return [
            await t.count(m)
            for m in (
                Program,
                TrainingSession,
                Enrollment,
                AttendanceRecord,
                Assessment,
                OutboxMessage,
            )
        ]

    before = await snapshot()
    sid = course["id"]
    cases: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
        (
            "POST",
            "/api/v1/programs",
            program_body("X-1", min_attendance_share=1.5),
            422,
            "min_attendance_share",
        ),
        (
            "POST",
            "/api/v1/programs",
            program_body("X-2", competency_units=[]),
            422,
            "competency_units",
        ),
        (
            "POST",
            "/api/v1/programs",
            program_body("X-3", competency_units=[UNITS[0], UNITS[0]]),
            422,
            "competency_units",
        ),
        ("POST", "/api/v1/programs", program_body("KRJ-KAYU"), 409, "code"),
        (
            "POST",
            "/api/v1/sessions",
            session_body(program["id"], here, end_date="2024-09-01"),
            422,
            "end_date",
        ),
        (
            "POST",
            "/api/v1/sessions",
            session_body(program["id"], here, capacity=0),
            422,
            "capacity",
        ),
        ("POST", "/api/v1/sessions", session_body(program["id"], closed), 422, "facility_id"),
        ("POST", "/api/v1/sessions", session_body(program["id"], uuid.uuid4()), 422, "facility_id"),
        ("POST", "/api/v1/sessions", session_body(str(uuid.uuid4()), here), 422, "program_id"),
        (
            "POST",
            f"/api/v1/sessions/{sid}/enrollments",
            {"participant_ids": [str(inside), str(released), str(moved), str(uuid.uuid4())]},
            422,
            "participant_ids.1",
        ),
        (
            "POST",
            f"/api/v1/sessions/{sid}/enrollments",
            {"participant_ids": ["not-a-uuid"]},
            422,
            "participant_ids.0",
        ),
        (
            "PUT",
            f"/api/v1/sessions/{sid}/attendance",
            {"date": DAYS[0].isoformat(), "records": []},
            409,
            "status",
        ),  # not started yet
        ("GET", "/api/v1/sessions?cursor=bm9wZQ", None, 422, "cursor"),
    ]
    for method, path, payload, status, field in cases:
        r = await t.client.request(
            method, path, json=payload, headers=t.officer if "/sessions/" in path else t.admin
        )
        body = assert_problem(r, status, field)
        assert body["detail"] and body["type"].startswith("https://bekal.id/problems/")
    r = await t.client.post(
        f"/api/v1/sessions/{sid}/enrollments",
        headers=t.officer,
        json={"participant_ids": [str(inside), str(released), str(moved)]},
    )
    refused = assert_problem(r, 422, "participant_ids.2")
    assert [e["participant_id"] for e in refused["errors"]] == [str(released), str(moved)]
    assert await snapshot() == before  # all or nothing: not even the eligible participant went in

    # Once running: attendance outside the dates, for a stranger, and unknown units are refused.
    assert (
        await t.client.post(
            f"/api/v1/sessions/{sid}/enrollments",
            headers=t.officer,
            json={"participant_ids": [str(inside)]},
        )
    ).status_code == 201
    assert (
        await t.client.post(f"/api/v1/sessions/{sid}/start", headers=t.officer)
    ).status_code == 200
    await wait_until(lambda: outbox_drained(t.app.state.db))
    before = await snapshot()
    for method, path, payload, status, field in [
        (
            "PUT",
            "attendance",
            {
                "date": "2024-09-08",
                "records": [{"participant_id": str(inside), "status": "present"}],
            },
            422,
            "date",
        ),
        (
            "PUT",
            "attendance",
            {
                "date": DAYS[0].isoformat(),
                "records": [
                    {"participant_id": str(inside), "status": "present"},
                    {"participant_id": str(moved), "status": "present"},
                ],
            },
            422,
            "records.1.participant_id",
        ),
        (
            "PUT",
            "attendance",
            {
                "date": DAYS[0].isoformat(),
                "records": [{"participant_id": str(inside), "status": "late"}],
            },
            422,
            "records.0.status",
        ),
        (
            "PUT",
            "assessments",
            {
                "assessor": "Edi",
                "results": [
                    {"participant_id": str(inside), "unit_code": "KYU-09", "result": "competent"}
                ],
            },
            422,
            "results.0.unit_code",
        ),
        (
            "PUT",
            "assessments",
            {
                "assessor": "Edi",
                "results": [
                    {"participant_id": str(inside), "unit_code": "BTK-01", "result": "excellent"}
                ],
            },
            422,
            "results.0.result",
        ),
    ]:
        r = await t.client.request(
            method, f"/api/v1/sessions/{sid}/{path}", json=payload, headers=t.officer
        )
        assert_problem(r, status, field)
    assert await snapshot() == before

    # Auth: the corrections side and non-training roles may not write; no token is a 401.
    corrections = t.token("registry_admin", "training_admin", ministry="corrections")
    viewer = t.token("reporting_viewer")
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/api/v1/programs", program_body("AUTH-1")),
        (
            "PUT",
            f"/api/v1/programs/{program['id']}",
            {k: v for k, v in program_body().items() if k != "code"},
        ),
        ("POST", "/api/v1/sessions", session_body(program["id"], here)),
        ("POST", f"/api/v1/sessions/{sid}/enrollments", {"participant_ids": [str(inside)]}),
        ("POST", f"/api/v1/sessions/{sid}/start", None),
        ("PUT", f"/api/v1/sessions/{sid}/attendance", {"date": DAYS[0].isoformat(), "records": []}),
        (
            "PUT",
            f"/api/v1/sessions/{sid}/assessments",
            {
                "assessor": "x",
                "results": [
                    {"participant_id": str(inside), "unit_code": "BTK-01", "result": "competent"}
                ],
            },
        ),
        ("POST", f"/api/v1/sessions/{sid}/complete", None),
    ]
    for method, path, payload in writes:
        for headers in (corrections, viewer):
            r = await t.client.request(method, path, json=payload, headers=headers)
            assert r.status_code == 403, (method, path, r.text)
            assert r.headers["content-type"].startswith(PROBLEM)
        assert (await t.client.request(method, path, json=payload)).status_code == 401
    # A training officer runs sessions but does not design programs or plan sessions.
    assert (
        await t.client.post("/api/v1/programs", json=program_body("AUTH-2"), headers=t.officer)
    ).status_code == 403
    assert (await t.client.get("/api/v1/participants", headers=corrections)).status_code == 403
    assert await snapshot() == before
