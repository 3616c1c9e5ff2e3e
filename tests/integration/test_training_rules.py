"""Training's enrolment rules, waiting list, corrections, graduates and registry reactions,
through the HTTP API on SQLite and PostgreSQL, fed by real registry events on the broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    AbsenceReason,
    EnrollmentWithdrawn,
    FollowUpRecorded,
    InmateReleased,
    InmateShared,
    OutcomeCorrected,
    ParticipantCompleted,
    ParticipantEnrolled,
    ParticipantLeftWaitlist,
    ParticipantNotCompleted,
    ParticipantWaitlisted,
    ReadinessRecorded,
    ReleaseKind,
    SessionCancelled,
)
from bekal.shared.idempotency import IdempotencyRecord
from bekal.shared.messaging.models import DeadLetter, OutboxMessage
from bekal.training.app import create_app
from bekal.training.models import (
    Assessment,
    AttendanceChange,
    AttendanceRecord,
    Enrollment,
    Participant,
)
from tests.support.apps import running
from tests.support.db import count
from tests.support.factories import (
    facility_registered,
    inmate_consent_withdrawn,
    inmate_erased,
    inmate_released,
    inmate_shared,
    inmate_temporarily_absent,
    inmates_merged,
    program_body,
    session_body,
)
from tests.support.kafka import publish
from tests.support.training import Training

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
START = date(2024, 9, 3)  # WUB IKM Batik at Lapas Cipinang, 3-7 September 2024
DAYS = [START + timedelta(days=i) for i in range(5)]
UNITS = [
    {"code": "BTK-01", "title": "Membuat pola batik"},
    {"code": "BTK-02", "title": "Membatik cap"},
]


def inmate(
    pid: uuid.UUID, facility_id: uuid.UUID, name: str, release: date | None = date(2025, 1, 2)
) -> InmateShared:
    return inmate_shared(
        participant_id=pid, facility_id=facility_id, full_name=name, expected_release_date=release
    )


def released(pid: uuid.UUID, facility_id: uuid.UUID, on: date) -> InmateReleased:
    return inmate_released(participant_id=pid, facility_id=facility_id, released_on=on)


async def setup(
    t: Training, people: dict[str, date | None], *, elsewhere: tuple[str, ...] = ()
) -> tuple[uuid.UUID, dict[str, uuid.UUID], str]:
    """Cipinang (and Salemba for ``elsewhere``), the people, one program; returns their ids."""
    cipinang, salemba = uuid.uuid4(), uuid.uuid4()
    ids = {name: uuid.uuid4() for name in people}
    events: list[Event] = [
        facility_registered(facility_id=cipinang, code="CIPINANG"),
        facility_registered(facility_id=salemba, code="SALEMBA", name="Rutan Kelas I Salemba"),
    ]
    events += [
        inmate(ids[n], salemba if n in elsewhere else cipinang, n, release)
        for n, release in people.items()
    ]
    await t.handled(*await t.publish(*events))
    program = await t.post(
        "/api/v1/programs",
        program_body(
            code=f"WUB-BATIK-{uuid.uuid4().hex[:6]}",
            title="Penumbuhan WUB IKM Batik",
            competency_units=UNITS,
        ),
        expect=201,
    )
    return cipinang, ids, program["id"]


async def schedule(
    t: Training,
    program_id: str,
    facility_id: uuid.UUID,
    *,
    start: date = START,
    days: int = 5,
    capacity: int = 10,
    opened: bool = True,
) -> str:
    """A session planned at the facility, opened for nominations unless ``opened`` is False."""
    body = await t.post(
        "/api/v1/sessions",
        session_body(
            program_id,
            facility_id,
            start_date=start.isoformat(),
            end_date=(start + timedelta(days=days - 1)).isoformat(),
            capacity=capacity,
        ),
        expect=201,
    )
    if opened:
        await t.post(f"/api/v1/sessions/{body['id']}/open", headers=t.officer)
    return str(body["id"])


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    return body


def statuses(session: dict[str, Any]) -> dict[str, str]:
    return {e["participant_id"]: e["status"] for e in session["enrollments"]}


async def test_enrolment_rules_and_the_waiting_list(training: Training) -> None:
    t = training
    near = date(2025, 1, 2)
    cipinang, p, program = await setup(
        t,
        {
            "Andi": near,
            "Budi": near,
            "Cahyo": near,
            "Dedi": near,
            "Eko": date(2026, 1, 1),  # beyond 12 months after the start
            "Fajar": None,  # release date unknown
            "Gilang": near,  # held at Salemba
        },
        elsewhere=("Gilang",),
    )
    s = await schedule(t, program, cipinang, capacity=2)
    url = f"/api/v1/sessions/{s}/enrollments"

    # All or nothing: each refusal names its participant, and nothing is written.
    unknown = uuid.uuid4()
    r = await t.client.post(
        url,
        headers=t.officer,
        json={
            "participant_ids": [
                str(x) for x in (p["Andi"], p["Eko"], p["Fajar"], p["Gilang"], unknown)
            ]
        },
    )
    body = problem(r, 422)
    errors = {e["field"]: e for e in body["errors"]}
    assert set(errors) == {f"participant_ids.{i}" for i in (1, 2, 3, 4)}
    assert errors["participant_ids.1"]["participant_id"] == str(p["Eko"])
    assert "2026-01-01" in errors["participant_ids.1"]["message"]
    assert "tidak diketahui" in errors["participant_ids.2"]["message"]
    assert "tidak berada" in errors["participant_ids.3"]["message"]
    assert "Eko" in body["detail"] and "Gilang" in body["detail"]
    assert await count(t.app.state.db, Enrollment) == 0

    # An override needs a training admin and a reason.
    override = {
        "participant_ids": [str(p["Eko"])],
        "overrides": [{"participant_id": str(p["Eko"]), "reason": "Remisi diperkirakan"}],
    }
    problem(await t.client.post(url, headers=t.officer, json=override), 403)
    for reason in ("", "   "):
        r = await t.client.post(
            url,
            headers=t.admin,
            json={**override, "overrides": [{"participant_id": str(p["Eko"]), "reason": reason}]},
        )
        assert problem(r, 422)["errors"][0]["field"].endswith("overrides.0.reason")
    assert await count(t.app.state.db, Enrollment) == 0
    r = await t.client.post(
        url,
        headers=t.admin,
        json={
            "participant_ids": [str(p["Andi"])],
            "overrides": [{"participant_id": str(p["Eko"]), "reason": "Remisi diperkirakan"}],
        },
    )
    assert problem(r, 422)["errors"][0]["field"] == "overrides.0.participant_id"
    r = await t.client.post(
        url, headers=t.admin, json={**override, "participant_ids": [str(p["Eko"]), str(p["Andi"])]}
    )
    assert r.status_code == 201, r.text
    assert {
        e["participant_id"]: (e["override_reason"], e["override_by"]) for e in r.json()["data"]
    } == {
        str(p["Eko"]): ("Remisi diperkirakan", "admin-ikma"),
        str(p["Andi"]): (None, None),
    }

    # Full: without a waiting list it is refused (409); with one, Budi and Cahyo queue in order.
    r = await t.client.post(url, headers=t.officer, json={"participant_ids": [str(p["Budi"])]})
    assert problem(r, 409)["errors"][0]["participant_id"] == str(p["Budi"])
    r = await t.client.post(
        url,
        headers=t.officer,
        json={"participant_ids": [str(p["Budi"]), str(p["Cahyo"])], "waitlist": True},
    )
    assert r.status_code == 201, r.text
    assert [e["status"] for e in r.json()["data"]] == ["waitlisted", "waitlisted"]
    # A queue exists: a newcomer joins behind it even if asked without one? No: refused as full.
    problem(
        await t.client.post(url, headers=t.officer, json={"participant_ids": [str(p["Dedi"])]}), 409
    )

    # No one in two overlapping sessions (a place in a queue counts); a later session is fine.
    overlapping = await schedule(t, program, cipinang, start=START + timedelta(days=4), days=3)
    for who in ("Andi", "Budi"):
        r = await t.client.post(
            f"/api/v1/sessions/{overlapping}/enrollments",
            headers=t.officer,
            json={"participant_ids": [str(p[who])]},
        )
        body = problem(r, 409)
        assert body["errors"][0]["participant_id"] == str(p[who])
        assert "bertumpuk" in body["errors"][0]["message"] and s in body["errors"][0]["message"]
    later = await schedule(t, program, cipinang, start=START + timedelta(days=5), days=3)
    await t.post(
        f"/api/v1/sessions/{later}/enrollments",
        {"participant_ids": [str(p["Andi"])]},
        headers=t.officer,
        expect=201,
    )

    # Andi leaves: Budi (first in the queue) moves up, Cahyo keeps waiting.
    enrollment = {
        e["participant_id"]: e["id"] for e in (await t.get(f"/api/v1/sessions/{s}"))["enrollments"]
    }
    after = await t.post(
        f"/api/v1/sessions/{s}/enrollments/{enrollment[str(p['Andi'])]}/withdraw",
        None,
        headers=t.officer,
    )
    assert statuses(after) == {
        str(p["Eko"]): "enrolled",
        str(p["Andi"]): "withdrawn",
        str(p["Budi"]): "enrolled",
        str(p["Cahyo"]): "waitlisted",
    }
    await t.post(f"/api/v1/sessions/{s}/start", headers=t.officer)

    # A temporary absence does not withdraw; a release does, and Cahyo moves up.
    absent = inmate_temporarily_absent(
        participant_id=p["Budi"],
        facility_id=cipinang,
        reason=AbsenceReason.COURT,
        absent_from=START + timedelta(days=1),
        expected_return=None,
    )
    release = released(p["Eko"], cipinang, START + timedelta(days=2))
    ids = await t.publish(absent, release)
    await t.handled(*ids)
    now = await t.get(f"/api/v1/sessions/{s}")
    assert statuses(now) == {
        str(p["Eko"]): "withdrawn",
        str(p["Andi"]): "withdrawn",
        str(p["Budi"]): "enrolled",
        str(p["Cahyo"]): "enrolled",
    }
    reasons = {e["participant_id"]: e["withdrawal_reason"] for e in now["enrollments"]}
    assert (reasons[str(p["Eko"])], reasons[str(p["Andi"])]) == ("released", "other")

    # The same release again, under its own id and under a new one: nothing changes twice.
    before = await t.events(expect=8)
    again = await t.publish(release, release, event_ids=[ids[1], str(uuid.uuid4())])
    await t.handled(again[1])
    assert statuses(await t.get(f"/api/v1/sessions/{s}")) == statuses(now)
    events = await t.events(expect=len(before))
    assert len(events) == len(before)
    mine = [e for e in events if str(e.session_id) == s]
    # Partitions are ordered per key (the enrolment), not across keys.
    by_person: dict[uuid.UUID, list[str]] = {}
    for e in mine:
        by_person.setdefault(e.participant_id, []).append(type(e).__name__)
    assert by_person == {
        p["Eko"]: ["ParticipantEnrolled", "EnrollmentWithdrawn"],
        p["Andi"]: ["ParticipantEnrolled", "EnrollmentWithdrawn"],
        p["Budi"]: ["ParticipantWaitlisted", "ParticipantEnrolled"],
        p["Cahyo"]: ["ParticipantWaitlisted", "ParticipantEnrolled"],
    }
    waitlisted = {e.participant_id: e for e in mine if isinstance(e, ParticipantWaitlisted)}
    assert (waitlisted[p["Budi"]].position, waitlisted[p["Cahyo"]].position) == (1, 2)
    promoted = {
        e.participant_id: e.enrollment_id for e in mine if isinstance(e, ParticipantEnrolled)
    }
    assert all(promoted[pid] == w.enrollment_id for pid, w in waitlisted.items())
    withdrawn = {
        e.participant_id: e.reason.value for e in mine if isinstance(e, EnrollmentWithdrawn)
    }
    assert withdrawn == {p["Andi"]: "other", p["Eko"]: "released"}


async def test_only_live_enrolments_hold_a_seat_or_a_date(training: Training) -> None:
    """Seats and overlapping dates are counted from the enrolments read with the session
    locked: a withdrawn one frees its seat and its dates, yet still counts as enrolled once."""
    t = training
    near = date(2025, 1, 2)
    cipinang, p, program = await setup(t, {n: near for n in ("Andi", "Budi", "Cahyo", "Dedi")})
    s = await schedule(t, program, cipinang, capacity=2)
    url = f"/api/v1/sessions/{s}/enrollments"
    first = await t.post(
        url, {"participant_ids": [str(p["Andi"]), str(p["Budi"])]}, headers=t.officer, expect=201
    )
    andi = next(e["id"] for e in first["data"] if e["participant_id"] == str(p["Andi"]))
    await t.post(f"{url}/{andi}/withdraw", None, headers=t.officer)

    # Andi's seat is free again: Cahyo takes it; then the session is full for Dedi.
    taken = await t.post(url, {"participant_ids": [str(p["Cahyo"])]}, headers=t.officer, expect=201)
    assert [e["status"] for e in taken["data"]] == ["enrolled"]
    full = problem(
        await t.client.post(url, headers=t.officer, json={"participant_ids": [str(p["Dedi"])]}), 409
    )
    assert "Kapasitas" in full["errors"][0]["message"]
    # Withdrawn is still enrolled once in this session.
    again = problem(
        await t.client.post(url, headers=t.officer, json={"participant_ids": [str(p["Andi"])]}), 409
    )
    assert "sudah pernah" in again["errors"][0]["message"]

    # On overlapping dates: Andi's withdrawn enrolment does not hold them, Budi's does.
    overlapping = await schedule(t, program, cipinang, start=START + timedelta(days=2))
    other = f"/api/v1/sessions/{overlapping}/enrollments"
    await t.post(other, {"participant_ids": [str(p["Andi"])]}, headers=t.officer, expect=201)
    busy = problem(
        await t.client.post(
            other, headers=t.officer, json={"participant_ids": [str(p["Budi"]), str(p["Dedi"])]}
        ),
        409,
    )
    assert [e["participant_id"] for e in busy["errors"]] == [str(p["Budi"])]
    assert "bertumpuk" in busy["errors"][0]["message"] and s in busy["errors"][0]["message"]


async def test_history_lock_correction_and_graduates(training: Training) -> None:
    t = training
    cipinang, p, program = await setup(
        t, {"Hadi": date(2025, 1, 2), "Irfan": date(2025, 1, 2), "Joko": date(2025, 1, 2)}
    )
    s = await schedule(t, program, cipinang)
    people = [p["Hadi"], p["Irfan"], p["Joko"]]
    await t.post(
        f"/api/v1/sessions/{s}/enrollments",
        {"participant_ids": [str(x) for x in people]},
        headers=t.officer,
        expect=201,
    )
    await t.post(f"/api/v1/sessions/{s}/start", headers=t.officer)
    # Irfan misses the last two days (3/5 = 0.6 < 0.8); Joko is marked absent on day 1 by
    # mistake, and the sheet is sent again corrected.
    for i, day in enumerate(DAYS):
        records = [
            {"participant_id": str(p["Hadi"]), "status": "present"},
            {"participant_id": str(p["Irfan"]), "status": "absent" if i >= 3 else "present"},
            {"participant_id": str(p["Joko"]), "status": "absent" if i == 0 else "present"},
        ]
        await t.put(
            f"/api/v1/sessions/{s}/attendance",
            {"date": day.isoformat(), "records": records},
            headers=t.officer,
        )
    fixed = [{"participant_id": str(x), "status": "present"} for x in people]
    await t.put(
        f"/api/v1/sessions/{s}/attendance",
        {"date": DAYS[0].isoformat(), "records": fixed},
        headers=t.token("training_officer", subject="koordinator"),
    )
    history = (await t.get(f"/api/v1/sessions/{s}/attendance/history"))["data"]
    assert len(history) == 3 * 5 + 1
    [correction] = [h for h in history if h["previous_status"] is not None]
    assert correction == {
        **correction,
        "participant_id": str(p["Joko"]),
        "date": DAYS[0].isoformat(),
        "previous_status": "absent",
        "status": "present",
        "changed_by": "koordinator",
        "reason": None,
    }
    assert {h["changed_by"] for h in history} == {"petugas-pelatihan", "koordinator"}
    results = [
        {"participant_id": str(x), "unit_code": u["code"], "result": "competent"}
        for x in people
        for u in UNITS
    ]
    await t.put(
        f"/api/v1/sessions/{s}/assessments",
        {"assessor": "Asesor YBI", "results": results},
        headers=t.officer,
    )
    done = await t.post(f"/api/v1/sessions/{s}/complete", headers=t.officer)
    assert statuses(done) == {
        str(p["Hadi"]): "completed",
        str(p["Irfan"]): "not_completed",
        str(p["Joko"]): "completed",
    }

    # Locked: the ordinary routes refuse; the correction route needs an admin and a reason.
    day4 = {"date": DAYS[3].isoformat(), "records": fixed}
    problem(await t.client.put(f"/api/v1/sessions/{s}/attendance", headers=t.admin, json=day4), 409)
    fix = {
        "reason": "Daftar hadir hari ke-4 salah ketik",
        "attendance": [
            {"date": DAYS[3].isoformat(), "participant_id": str(p["Irfan"]), "status": "present"}
        ],
    }
    problem(
        await t.client.post(f"/api/v1/sessions/{s}/corrections", headers=t.officer, json=fix), 403
    )
    bad = {**fix, "attendance": [{**fix["attendance"][0], "participant_id": str(uuid.uuid4())}]}
    body = problem(
        await t.client.post(f"/api/v1/sessions/{s}/corrections", headers=t.admin, json=bad), 422
    )
    assert body["errors"][0]["field"] == "attendance.0.participant_id"
    bad = {**fix, "attendance": [{**fix["attendance"][0], "date": "2024-09-30"}]}
    body = problem(
        await t.client.post(f"/api/v1/sessions/{s}/corrections", headers=t.admin, json=bad), 422
    )
    assert body["errors"][0]["field"] == "attendance.0.date"
    corrected = await t.post(f"/api/v1/sessions/{s}/corrections", fix)
    # 4/5 = 0.8: exactly at the minimum, so Irfan now completes.
    assert corrected["data"] == [
        {
            "enrollment_id": corrected["data"][0]["enrollment_id"],
            "participant_id": str(p["Irfan"]),
            "previous_outcome": "not_completed",
            "outcome": "completed",
            "not_completed_reason": None,
            "attendance_share": 0.8,
        }
    ]
    # The same correction again changes nothing and publishes nothing.
    assert (await t.post(f"/api/v1/sessions/{s}/corrections", fix))["count"] == 0
    history = (await t.get(f"/api/v1/sessions/{s}/attendance/history"))["data"]
    assert history[-1]["reason"] == fix["reason"] and history[-1]["changed_by"] == "admin-ikma"
    assert len(history) == 3 * 5 + 2
    events = await t.events(expect=3 + 3 + 2)
    kinds = [type(e) for e in events]
    assert kinds.count(ParticipantCompleted) == 3 and kinds.count(ParticipantNotCompleted) == 1
    [oc] = [e for e in events if isinstance(e, OutcomeCorrected)]
    assert (oc.participant_id, oc.outcome.value, oc.reason) == (
        p["Irfan"],
        "completed",
        fix["reason"],
    )
    irfan = [type(e).__name__ for e in events if e.participant_id == p["Irfan"]]
    assert irfan == [
        "ParticipantEnrolled",
        "ParticipantNotCompleted",
        "OutcomeCorrected",
        "ParticipantCompleted",
    ]
    [passed] = [
        e for e in events if isinstance(e, ParticipantCompleted) and e.participant_id == p["Irfan"]
    ]
    assert passed.participant_name == "Irfan" and passed.attendance_share == 0.8

    # Graduates: a readiness checklist, then follow-ups only after release.
    ids = {
        e["participant_id"]: e["id"] for e in (await t.get(f"/api/v1/sessions/{s}"))["enrollments"]
    }
    hadi = ids[str(p["Hadi"])]
    ready = {"identity_card": True, "bank_account": True, "nib": False, "starter_tools": True}
    r = await t.client.put(f"/api/v1/enrollments/{hadi}/readiness", headers=t.field, json=ready)
    assert r.status_code == 200 and r.json()["recorded_by"] == "petugas-lapangan", r.text
    await t.put(f"/api/v1/enrollments/{hadi}/readiness", ready, headers=t.field)  # unchanged
    await t.put(f"/api/v1/enrollments/{hadi}/readiness", {**ready, "nib": True}, headers=t.field)
    assert (await t.get(f"/api/v1/enrollments/{hadi}/readiness"))["nib"] is True
    problem(
        await t.client.put(
            f"/api/v1/enrollments/{hadi}/readiness", headers=t.token("reporting_viewer"), json=ready
        ),
        403,
    )
    assert (
        await t.client.put(f"/api/v1/enrollments/{hadi}/readiness", json=ready)
    ).status_code == 401
    follow = {"situation": "business_started_with_nib", "recorded_on": "2025-04-02"}
    r = await t.client.put(f"/api/v1/enrollments/{hadi}/follow-ups/3", headers=t.field, json=follow)
    assert "belum bebas" in problem(r, 409)["detail"]
    await t.handled(*await t.publish(released(p["Hadi"], cipinang, date(2025, 1, 2))))
    r = await t.client.put(f"/api/v1/enrollments/{hadi}/follow-ups/4", headers=t.field, json=follow)
    assert problem(r, 422)["errors"][0]["field"] == "checkpoint_months"
    r = await t.client.put(
        f"/api/v1/enrollments/{hadi}/follow-ups/3", headers=t.officer, json=follow
    )
    problem(r, 403)
    r = await t.client.put(
        f"/api/v1/enrollments/{hadi}/follow-ups/3",
        headers=t.field,
        json={**follow, "situation": "self_employed"},
    )
    assert problem(r, 422)["errors"][0]["field"].endswith("situation")
    await t.put(f"/api/v1/enrollments/{hadi}/follow-ups/3", follow, headers=t.field)
    await t.put(
        f"/api/v1/enrollments/{hadi}/follow-ups/6",
        {"situation": "employed_by_ikm", "recorded_on": "2025-07-01"},
        headers=t.field,
    )
    listed = await t.get(f"/api/v1/enrollments/{hadi}/follow-ups")
    assert [(f["checkpoint_months"], f["situation"]) for f in listed["data"]] == [
        (3, "business_started_with_nib"),
        (6, "employed_by_ikm"),
    ]
    not_graduate = ids[str(p["Joko"])]
    await t.post(
        f"/api/v1/sessions/{s}/corrections",
        {
            "reason": "Unit BTK-02 belum kompeten menurut asesor",
            "assessor": "Asesor YBI",
            "assessments": [
                {
                    "participant_id": str(p["Joko"]),
                    "unit_code": "BTK-02",
                    "result": "not_yet_competent",
                }
            ],
        },
    )
    r = await t.client.put(
        f"/api/v1/enrollments/{not_graduate}/readiness", headers=t.field, json=ready
    )
    problem(r, 409)
    events = await t.events(expect=8 + 2 + 2 + 1)
    readiness = [e for e in events if isinstance(e, ReadinessRecorded)]
    assert [(e.enrollment_id, e.nib) for e in readiness] == [
        (uuid.UUID(hadi), False),
        (uuid.UUID(hadi), True),
    ]
    follow_ups = [e for e in events if isinstance(e, FollowUpRecorded)]
    assert [(e.checkpoint_months, e.situation.value, e.participant_id) for e in follow_ups] == [
        (3, "business_started_with_nib", p["Hadi"]),
        (6, "employed_by_ikm", p["Hadi"]),
    ]
    [last] = [
        e for e in events if isinstance(e, OutcomeCorrected) and e.participant_id == p["Joko"]
    ]
    assert (last.participant_id, last.outcome.value, last.not_completed_reason.value) == (  # type: ignore[union-attr]
        p["Joko"],
        "not_completed",
        "competencies_not_met",
    )

    # Field officers find the graduates to follow up, a page at a time.
    url = f"/api/v1/enrollments?status=completed&session_id={s}&limit=1"
    r = await t.client.get(url, headers=t.field)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["count"] == 2 and first["next_cursor"]
    r = await t.client.get(f"{url}&cursor={first['next_cursor']}", headers=t.field)
    second = r.json()
    assert second["next_cursor"] is None
    assert {e["full_name"] for e in first["data"] + second["data"]} == {"Hadi", "Irfan"}
    assert (await t.client.get(url, headers=t.token("reporting_viewer"))).status_code == 403

    # Erasure of a graduate: the name leaves the replica (the completion event kept in the
    # outbox never held it in the clear: sealed with the person's key); the outcome and the
    # follow-ups stay.
    async def names_in_outbox() -> list[str]:
        async with t.app.state.db.session() as db:
            return list((await db.scalars(select(OutboxMessage.payload))).all())

    completions = [x for x in await names_in_outbox() if '"personal"' in x]
    assert completions and not any("Hadi" in x for x in completions)
    await t.handled(*await t.publish(inmate_erased(p["Hadi"])))
    assert not any("Hadi" in x for x in await names_in_outbox())
    after = {e["id"]: e for e in (await t.get(f"/api/v1/sessions/{s}"))["enrollments"]}
    # Re-filed under a fresh anonymous id: the participant id leads nowhere any more.
    assert after[str(hadi)]["participant_id"] != str(p["Hadi"])
    assert (after[str(hadi)]["full_name"], after[str(hadi)]["status"]) == (None, "completed")
    assert (await t.get(f"/api/v1/enrollments/{hadi}/follow-ups"))["count"] == 2


def _old_share(pid: uuid.UUID, facility_id: uuid.UUID, name: str) -> str:
    return json.dumps(
        {
            "participant_id": str(pid),
            "full_name": name,
            "facility_id": str(facility_id),
            "admission_date": "2023-01-01",
        }
    )


def _dead_letter(*, key: str, value: str) -> DeadLetter:
    return DeadLetter(
        consumer_group="training",
        topic="registry.inmates",
        partition=0,
        offset=1,
        key=key,
        headers="{}",
        value=value,
        event_id=str(uuid.uuid4()),
        event_type="id.bekal.registry.inmate.shared.v1",
        reason="handler_failed",
        error="test",
        attempts=1,
    )


async def test_merge_consent_withdrawal_and_erasure(training: Training) -> None:
    t = training
    cipinang, p, program = await setup(
        t, {name: date(2025, 1, 2) for name in ("Kurnia", "Kurnia Duplikat", "Lukman", "Mulyadi")}
    )
    s = await schedule(t, program, cipinang)
    r = await t.client.post(
        f"/api/v1/sessions/{s}/enrollments",
        headers={**t.officer, "Idempotency-Key": "daftar-1"},
        json={"participant_ids": [str(p[n]) for n in ("Kurnia Duplikat", "Lukman", "Mulyadi")]},
    )
    assert r.status_code == 201, r.text
    await t.post(f"/api/v1/sessions/{s}/start", headers=t.officer)
    records = [
        {"participant_id": str(p[n]), "status": "present"}
        for n in ("Kurnia Duplikat", "Lukman", "Mulyadi")
    ]
    await t.put(
        f"/api/v1/sessions/{s}/attendance",
        {"date": DAYS[0].isoformat(), "records": records},
        headers=t.officer,
    )

    # Records about them that could not be handled: shares sent before names were sealed
    # (name, facility and dates beside the id), and one that did not parse, naming Mulyadi only
    # in its key.
    async with t.app.state.db.session() as db:
        for who in ("Kurnia", "Lukman", "Mulyadi"):
            db.add(_dead_letter(key=str(p[who]), value=_old_share(p[who], cipinang, who)))
        db.add(_dead_letter(key=str(p["Mulyadi"]), value="{not json"))
        await db.commit()

    merged = inmates_merged(p["Kurnia Duplikat"], p["Kurnia"], merged_on=DAYS[1])
    consent = inmate_consent_withdrawn(p["Lukman"], withdrawn_on=DAYS[1])
    erased = inmate_erased(p["Mulyadi"])
    between = datetime.now(UTC)  # after the sharing, before the erasure
    ids = await t.publish(merged, consent, erased)
    await t.handled(*ids)
    # Replays (same ids and new ids) change nothing a second time.
    again = await t.publish(
        merged, consent, erased, event_ids=[*ids[:1], str(uuid.uuid4()), str(uuid.uuid4())]
    )
    await t.handled(*again)
    # A sharing of Mulyadi older than the erasure, delivered late under a new id, does not
    # bring the name back.
    [old_share] = await publish(
        t.settings,
        [inmate(p["Mulyadi"], cipinang, "Mulyadi")],
        times=[between],
    )
    await t.handled(old_share)

    now = await t.get(f"/api/v1/sessions/{s}")
    state = {
        e["participant_id"]: (e["status"], e["withdrawal_reason"], e["full_name"])
        for e in now["enrollments"]
    }
    # Mulyadi's enrolment is under a fresh anonymous id, ended (as consent withdrawn).
    [anonymous] = set(state) - {str(p["Kurnia"]), str(p["Lukman"])}
    assert state == {
        str(p["Kurnia"]): ("enrolled", None, "Kurnia"),  # now under the surviving record
        str(p["Lukman"]): ("withdrawn", "consent_withdrawn", ""),
        anonymous: ("withdrawn", "consent_withdrawn", None),
    }
    async with t.app.state.db.session() as db:
        survivor = await db.scalar(
            select(Enrollment.id).where(Enrollment.participant_id == p["Kurnia"])
        )
        gone = await db.get(Participant, p["Kurnia Duplikat"])
        names = list((await db.scalars(select(Participant.full_name))).all())
        bodies = list((await db.scalars(select(IdempotencyRecord.body))).all())
        payloads = list((await db.scalars(select(OutboxMessage.payload))).all())
    assert survivor is not None and gone is None
    assert (
        await count(t.app.state.db, AttendanceRecord, AttendanceRecord.enrollment_id == survivor)
        == 1
    )
    assert "Lukman" not in names and "Mulyadi" not in names
    # The remembered answer that named Mulyadi's id went with the erasure.
    assert not any("Lukman" in b or "Mulyadi" in b or str(p["Mulyadi"]) in b for b in bodies)
    assert not any("Lukman" in x or "Mulyadi" in x for x in payloads)
    # Dead letters: Mulyadi's went with the erasure; Lukman's kept without the name (consent
    # withdrawn: the id stays in training); Kurnia's untouched.
    async with t.app.state.db.session() as db:
        letters = {k: v for k, v in (await db.execute(select(DeadLetter.key, DeadLetter.value)))}
    assert set(letters) == {str(p["Kurnia"]), str(p["Lukman"])}
    assert "Lukman" not in letters[str(p["Lukman"])]
    assert letters[str(p["Kurnia"])] == _old_share(p["Kurnia"], cipinang, "Kurnia")
    # Counts are kept: three enrolments, two withdrawals (consent, erasure) published once.
    events = await t.events(expect=5)
    assert [type(e) for e in events].count(EnrollmentWithdrawn) == 2
    assert [type(e) for e in events].count(ParticipantLeftWaitlist) == 0
    assert len(events) == 5

    # Lukman withdrew consent: no longer a candidate anywhere.
    later = await schedule(t, program, cipinang, start=START + timedelta(days=10))
    r = await t.client.post(
        f"/api/v1/sessions/{later}/enrollments",
        headers=t.officer,
        json={"participant_ids": [str(p["Lukman"])]},
    )
    assert "persetujuan" in problem(r, 422)["errors"][0]["message"]

    # Cancelling needs an admin and a reason; every live enrolment ends, once.
    cancel = {"reason": "Instruktur berhalangan, dijadwalkan ulang"}
    problem(
        await t.client.post(f"/api/v1/sessions/{s}/cancel", headers=t.officer, json=cancel), 403
    )
    r = await t.client.post(f"/api/v1/sessions/{s}/cancel", headers=t.admin, json={"reason": ""})
    assert problem(r, 422)["errors"][0]["field"].endswith("reason")
    cancelled = await t.post(f"/api/v1/sessions/{s}/cancel", cancel)
    assert (cancelled["status"], cancelled["cancellation_reason"]) == (
        "cancelled",
        cancel["reason"],
    )
    assert set(statuses(cancelled).values()) == {"withdrawn"}
    problem(await t.client.post(f"/api/v1/sessions/{s}/cancel", headers=t.admin, json=cancel), 409)
    events = await t.events(expect=6)
    assert [type(e) for e in events].count(EnrollmentWithdrawn) == 3
    sessions = await t.events("training.sessions", expect=4)
    assert [e.reason for e in sessions if isinstance(e, SessionCancelled)] == [cancel["reason"]]


async def test_enrols_and_completes_with_the_registry_absent(
    database_url,
    broker,
    make_settings,  # type: ignore[no-untyped-def]
) -> None:
    """Training needs only its replica: after the registry's events have arrived, a fresh start
    of the service (the registry not running, never called) enrols, runs and completes."""
    settings = make_settings("training", database_url, broker)
    app = create_app(settings)
    async with running(app) as client:
        t = Training(app, client, settings)
        cipinang, p, program = await setup(t, {"Nurdin": date(2025, 1, 2), "Oki": date(2025, 1, 2)})
    again = create_app(settings)  # a restart: the same database, no registry anywhere
    async with running(again) as client:
        t = Training(again, client, settings)
        s = await schedule(t, program, cipinang)
        people = [str(p["Nurdin"]), str(p["Oki"])]
        await t.post(f"/api/v1/sessions/{s}/enrollments", {"participant_ids": people}, expect=201)
        await t.post(f"/api/v1/sessions/{s}/start")
        for day in DAYS:
            await t.put(
                f"/api/v1/sessions/{s}/attendance",
                {
                    "date": day.isoformat(),
                    "records": [{"participant_id": x, "status": "present"} for x in people],
                },
            )
        await t.put(
            f"/api/v1/sessions/{s}/assessments",
            {
                "assessor": "Asesor YBI",
                "results": [
                    {"participant_id": x, "unit_code": u["code"], "result": "competent"}
                    for x in people
                    for u in UNITS
                ],
            },
        )
        done = await t.post(f"/api/v1/sessions/{s}/complete")
        assert set(statuses(done).values()) == {"completed"}
        events = await t.events(expect=4)
        assert sorted(
            e.participant_name for e in events if isinstance(e, ParticipantCompleted)
        ) == ["Nurdin", "Oki"]


async def test_a_merge_of_two_records_in_one_session_keeps_one_enrolment_and_a_tombstone(
    training: Training,
) -> None:
    """Rudi was registered twice ("Rudi Ganda") and enrolled under both ids in two sessions."""
    t = training
    cipinang, p, program = await setup(
        t, {name: date(2025, 1, 2) for name in ("Rudi", "Rudi Ganda", "Sari")}
    )
    rudi, twin = str(p["Rudi"]), str(p["Rudi Ganda"])

    # A, completed: under one id Rudi came the first three days and passed BTK-01; under the
    # other he came the last two and passed BTK-02. Each record alone fails.
    a = await schedule(t, program, cipinang)
    await t.post(f"/api/v1/sessions/{a}/enrollments", {"participant_ids": [rudi, twin]}, expect=201)
    await t.post(f"/api/v1/sessions/{a}/start", headers=t.officer)
    for i, day in enumerate(DAYS):
        here, away = (rudi, twin) if i < 3 else (twin, rudi)
        await t.put(
            f"/api/v1/sessions/{a}/attendance",
            {
                "date": day.isoformat(),
                "records": [
                    {"participant_id": here, "status": "present"},
                    {"participant_id": away, "status": "absent"},
                ],
            },
        )
    await t.put(
        f"/api/v1/sessions/{a}/assessments",
        {
            "assessor": "Asesor YBI",
            "results": [
                {"participant_id": rudi, "unit_code": "BTK-01", "result": "competent"},
                {"participant_id": rudi, "unit_code": "BTK-02", "result": "not_yet_competent"},
                {"participant_id": twin, "unit_code": "BTK-02", "result": "competent"},
            ],
        },
    )
    done = await t.post(f"/api/v1/sessions/{a}/complete")
    assert set(statuses(done).values()) == {"not_completed"}

    # B, open with two seats: both records hold one, Sari waits.
    b = await schedule(t, program, cipinang, start=START + timedelta(days=10), capacity=2)
    await t.post(
        f"/api/v1/sessions/{b}/enrollments",
        {"participant_ids": [rudi, twin, str(p["Sari"])], "waitlist": True},
        expect=201,
    )
    before = len(await t.events(expect=9))

    merged = inmates_merged(p["Rudi Ganda"], p["Rudi"], merged_on=DAYS[-1])
    [merge_id] = await t.publish(merged)
    await t.handled(merge_id)

    # A: one enrolment under Rudi's id, with both records' days and units: now completed.
    after_a = await t.get(f"/api/v1/sessions/{a}")
    by_person = {e["participant_id"]: e for e in after_a["enrollments"]}
    assert (by_person[rudi]["status"], by_person[rudi]["attendance_share"]) == ("completed", 1.0)
    assert (by_person[twin]["status"], by_person[twin]["withdrawal_reason"]) == (
        "withdrawn",
        "merged",
    )
    history = (await t.get(f"/api/v1/sessions/{a}/attendance/history"))["data"]
    folded = [h for h in history if h["changed_by"] == "registry-merge"]
    assert sorted((h["date"], h["previous_status"], h["status"]) for h in folded) == [
        (DAYS[3].isoformat(), "absent", "present"),
        (DAYS[4].isoformat(), "absent", "present"),
    ]
    # B: one seat for Rudi, the other goes to Sari.
    assert statuses(await t.get(f"/api/v1/sessions/{b}")) == {
        rudi: "enrolled",
        twin: "withdrawn",
        str(p["Sari"]): "enrolled",
    }
    graduates = await t.get(f"/api/v1/enrollments?participant_id={rudi}")
    assert sorted(e["status"] for e in graduates["data"]) == ["completed", "enrolled"]

    # Records come partition by partition: pick the merge's events by what they are about.
    everything = await t.events(expect=before + 5)
    rudi_a = by_person[rudi]["id"]
    rudi_b = next(
        e["id"]
        for e in (await t.get(f"/api/v1/sessions/{b}"))["enrollments"]
        if e["participant_id"] == rudi
    )
    folded_away = [
        e
        for e in everything
        if isinstance(e, EnrollmentWithdrawn) and e.merged_into_enrollment_id is not None
    ]
    assert sorted(str(e.merged_into_enrollment_id) for e in folded_away) == sorted([rudi_a, rudi_b])
    assert all(e.reason.value == "other" and str(e.participant_id) == twin for e in folded_away)
    [fixed] = [e for e in everything if isinstance(e, OutcomeCorrected)]
    assert (str(fixed.enrollment_id), fixed.outcome.value) == (rudi_a, "completed")
    [certified] = [e for e in everything if isinstance(e, ParticipantCompleted)]
    assert str(certified.enrollment_id) == rudi_a and certified.participant_name == "Rudi"
    moved_up = [e for e in everything if isinstance(e, ParticipantEnrolled)]
    assert [str(e.participant_id) for e in moved_up].count(str(p["Sari"])) == 1
    assert len(everything) == before + 5

    # The tombstone: the merge again (same id and a new one), a late sharing of the old record
    # and its release. The sharing does not bring it back; the release is Rudi's.
    again = await t.publish(merged, event_ids=[merge_id])
    replayed = await t.publish(
        merged,
        inmate(p["Rudi Ganda"], cipinang, "Rudi Ganda"),
        released(p["Rudi Ganda"], cipinang, START + timedelta(days=11)),
    )
    await t.handled(*replayed)
    assert again == [merge_id]
    async with t.app.state.db.session() as db:
        assert await db.get(Participant, p["Rudi Ganda"]) is None
        survivor = await db.get(Participant, p["Rudi"])
        assert survivor is not None and survivor.status == "released"
    assert statuses(await t.get(f"/api/v1/sessions/{b}")) == {
        rudi: "withdrawn",
        twin: "withdrawn",
        str(p["Sari"]): "enrolled",
    }
    everything = await t.events(expect=before + 6)
    assert len(everything) == before + 6  # the release's one withdrawal, nothing else
    [gone] = [
        e for e in everything if isinstance(e, EnrollmentWithdrawn) and e.reason.value == "released"
    ]
    assert (str(gone.enrollment_id), str(gone.participant_id)) == (rudi_b, rudi)
    # And the old id is no candidate of its own any more.
    c = await schedule(t, program, cipinang, start=START + timedelta(days=20))
    r = await t.client.post(
        f"/api/v1/sessions/{c}/enrollments", headers=t.officer, json={"participant_ids": [twin]}
    )
    assert "tidak dikenal" in problem(r, 422)["errors"][0]["message"]


async def test_a_completed_duplicate_enrolment_moves_to_the_surviving_id(
    training: Training,
) -> None:
    """Tono passed under his duplicate record and failed under his own: after the merge his one
    enrolment is the completed one, under his own id."""
    t = training
    cipinang, p, program = await setup(t, {name: date(2025, 1, 2) for name in ("Tono", "Tono G")})
    tono, twin = str(p["Tono"]), str(p["Tono G"])
    s = await schedule(t, program, cipinang)
    await t.post(f"/api/v1/sessions/{s}/enrollments", {"participant_ids": [tono, twin]}, expect=201)
    await t.post(f"/api/v1/sessions/{s}/start", headers=t.officer)
    for day in DAYS:
        await t.put(
            f"/api/v1/sessions/{s}/attendance",
            {
                "date": day.isoformat(),
                "records": [
                    {"participant_id": twin, "status": "present"},
                    {"participant_id": tono, "status": "absent"},
                ],
            },
        )
    await t.put(
        f"/api/v1/sessions/{s}/assessments",
        {
            "assessor": "Asesor YBI",
            "results": [
                {"participant_id": twin, "unit_code": u["code"], "result": "competent"}
                for u in UNITS
            ],
        },
    )
    done = await t.post(f"/api/v1/sessions/{s}/complete")
    ids = {e["participant_id"]: e["id"] for e in done["enrollments"]}
    assert statuses(done) == {tono: "not_completed", twin: "completed"}
    before = len(await t.events(expect=4))

    merged = inmates_merged(p["Tono G"], p["Tono"], merged_on=DAYS[-1])
    await t.handled(*await t.publish(merged, merged))

    after = await t.get(f"/api/v1/sessions/{s}")
    state = {
        e["id"]: (e["participant_id"], e["status"], e["withdrawal_reason"])
        for e in after["enrollments"]
    }
    assert state == {
        ids[twin]: (tono, "completed", None),  # the passed enrolment, now under Tono's id
        ids[tono]: (twin, "withdrawn", "merged"),  # the failed one, filed under the old id
    }
    graduates = await t.get(f"/api/v1/enrollments?participant_id={tono}&status=completed")
    assert [e["id"] for e in graduates["data"]] == [ids[twin]]
    events = await t.events(expect=before + 1)
    assert len(events) == before + 1  # one withdrawal; the kept outcome did not change
    [folded] = [e for e in events if isinstance(e, EnrollmentWithdrawn)]
    assert (str(folded.enrollment_id), str(folded.merged_into_enrollment_id)) == (
        ids[tono],
        ids[twin],
    )


async def test_attendance_is_refused_from_the_day_a_participant_left(training: Training) -> None:
    """Bayu is paroled on 5 September: his days before it can still be marked, the 5th and
    later are refused (409) for him alone or in a full sheet, and a refused sheet writes
    nothing at all."""
    t = training
    names = ("Bayu", "Dedi", "Fajar", "Gilang")
    cipinang, p, program = await setup(t, {n: date(2025, 1, 2) for n in names})
    s = await schedule(t, program, cipinang)
    everyone = [str(p[n]) for n in names]
    await t.post(f"/api/v1/sessions/{s}/enrollments", {"participant_ids": everyone}, expect=201)
    await t.post(f"/api/v1/sessions/{s}/start", headers=t.officer)
    url = f"/api/v1/sessions/{s}/attendance"

    def sheet(day: date, people: list[str]) -> dict[str, Any]:
        return {
            "date": day.isoformat(),
            "records": [{"participant_id": x, "status": "present"} for x in people],
        }

    await t.put(url, sheet(DAYS[0], everyone), headers=t.officer)
    paroled_on = date(2024, 9, 5)
    parole = inmate_released(
        participant_id=p["Bayu"],
        facility_id=cipinang,
        release_kind=ReleaseKind.PAROLE,
        released_on=paroled_on,
    )
    await t.handled(*await t.publish(parole))
    [bayu] = [
        e
        for e in (await t.get(f"/api/v1/sessions/{s}"))["enrollments"]
        if e["participant_id"] == everyone[0]
    ]
    assert (bayu["status"], bayu["withdrawn_on"]) == ("withdrawn", paroled_on.isoformat())

    # The day before the parole still takes him, and re-sending the first day keeps his record.
    assert await t.put(url, sheet(DAYS[1], everyone), headers=t.officer) == {
        "date": DAYS[1].isoformat(),
        "count": 4,
    }
    await t.put(url, sheet(DAYS[0], everyone), headers=t.officer)
    stored = await count(t.app.state.db, AttendanceRecord)
    history = (await t.get(f"/api/v1/sessions/{s}/attendance/history"))["count"]
    assert (stored, history) == (8, 8)

    async def refused(day: date, people: list[str]) -> dict[str, Any]:
        r = await t.client.put(url, headers=t.officer, json=sheet(day, people))
        body = problem(r, 409)
        assert body["type"].endswith("/attendance-refused") and body["title"] == "Absensi ditolak"
        return body

    # Alone, on the day after the parole: the incident's request.
    alone = await refused(date(2024, 9, 6), [everyone[0]])
    [error] = alone["errors"]
    assert error == {
        **error,
        "field": "records.0.participant_id",
        "participant_id": everyone[0],
        "enrollment_id": bayu["id"],
        "date": "2024-09-06",
        "withdrawn_on": "2024-09-05",
        "withdrawal_reason": "released",
    }
    assert "2024-09-06" in error["message"] and "bebas" in error["message"]
    assert "Bayu" in alone["detail"] and "2024-09-06" in alone["detail"]

    # In the full sheet (third of four): the whole sheet is refused, only he is named.
    batch = await refused(date(2024, 9, 6), [everyone[1], everyone[2], everyone[0], everyone[3]])
    assert [(e["field"], e["participant_id"]) for e in batch["errors"]] == [
        ("records.2.participant_id", everyone[0])
    ]
    assert "tidak ada yang disimpan" in batch["detail"]
    # The parole day itself is already refused.
    on_the_day = await refused(paroled_on, everyone)
    assert on_the_day["errors"][0]["date"] == paroled_on.isoformat()

    # Nothing of any refused sheet was written: no row, no history entry, for either day.
    assert await count(t.app.state.db, AttendanceRecord) == 8
    assert (
        await count(
            t.app.state.db,
            AttendanceRecord,
            AttendanceRecord.day.in_([paroled_on, date(2024, 9, 6)]),
        )
        == 0
    )
    assert (await t.get(f"/api/v1/sessions/{s}/attendance/history"))["count"] == 8

    # Without him the same day goes in.
    assert await t.put(url, sheet(date(2024, 9, 6), everyone[1:]), headers=t.officer) == {
        "date": "2024-09-06",
        "count": 3,
    }
    assert await count(t.app.state.db, AttendanceRecord) == 11


async def test_a_day_of_thirty_and_its_results_are_written_row_for_row(training: Training) -> None:
    """The sheets are written set-based: a day of 30 gives 30 records and 30 history rows; sent
    again with two people changed (one with a note) and one left out, only those three change
    (the records of the others keep their row and time), each with one history row; results
    sent again keep each unit's row and take the new result and assessor. Neither sheet
    publishes an event."""
    t = training
    names = [f"Peserta {n:02d}" for n in range(30)]
    cipinang, p, program = await setup(t, {n: date(2025, 1, 2) for n in names})
    s = await schedule(t, program, cipinang, capacity=30)
    everyone = [str(p[n]) for n in names]
    await t.post(f"/api/v1/sessions/{s}/enrollments", {"participant_ids": everyone}, expect=201)
    await t.post(f"/api/v1/sessions/{s}/start", headers=t.officer)
    outbox = await t.count(OutboxMessage)
    db = t.app.state.db
    day = DAYS[1]

    async def stored() -> dict[uuid.UUID, tuple[uuid.UUID, str, datetime]]:
        async with db.session() as session:
            rows = await session.execute(
                select(
                    Enrollment.participant_id,
                    AttendanceRecord.id,
                    AttendanceRecord.status,
                    AttendanceRecord.recorded_at,
                )
                .join(Enrollment, Enrollment.id == AttendanceRecord.enrollment_id)
                .where(AttendanceRecord.day == day)
            )
            return {pid: (rid, status, at) for pid, rid, status, at in rows}

    async def changes() -> list[tuple[uuid.UUID, str | None, str | None, str, str | None]]:
        async with db.session() as session:
            rows = await session.execute(
                select(
                    Enrollment.participant_id,
                    AttendanceChange.previous_status,
                    AttendanceChange.status,
                    AttendanceChange.changed_by,
                    AttendanceChange.reason,
                )
                .join(Enrollment, Enrollment.id == AttendanceChange.enrollment_id)
                .where(AttendanceChange.day == day)
                .order_by(AttendanceChange.changed_at, Enrollment.participant_id)
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]

    url = f"/api/v1/sessions/{s}/attendance"
    first = {
        "date": day.isoformat(),
        "records": [{"participant_id": x, "status": "present"} for x in everyone],
    }
    assert await t.put(url, first, headers=t.officer) == {"date": day.isoformat(), "count": 30}
    before = await stored()
    assert {pid: status for pid, (_, status, _) in before.items()} == {
        p[n]: "present" for n in names
    }
    history = await changes()
    assert sorted(history) == sorted(
        (p[n], None, "present", "petugas-pelatihan", None) for n in names
    )

    again = {
        "date": day.isoformat(),
        "records": [
            {"participant_id": everyone[0], "status": "absent", "note": "sakit"},
            {"participant_id": everyone[1], "status": "excused"},
            *({"participant_id": x, "status": "present"} for x in everyone[3:]),
        ],
    }
    coordinator = t.token("training_officer", subject="koordinator")
    assert await t.put(url, again, headers=coordinator) == {"date": day.isoformat(), "count": 29}
    after = await stored()
    assert set(after) == set(before) - {p[names[2]]}
    assert after[p[names[0]]][:2] == (before[p[names[0]]][0], "absent")
    assert after[p[names[1]]][:2] == (before[p[names[1]]][0], "excused")
    assert after[p[names[0]]][2] > before[p[names[0]]][2]
    assert {pid: after[pid] for pid in after if pid not in (p[names[0]], p[names[1]])} == {
        pid: before[pid] for pid in after if pid not in (p[names[0]], p[names[1]])
    }
    assert sorted((await changes())[30:]) == sorted(
        [
            (p[names[0]], "present", "absent", "koordinator", "sakit"),
            (p[names[1]], "present", "excused", "koordinator", None),
            (p[names[2]], "present", None, "koordinator", None),
        ]
    )
    # The same sheet once more changes nothing and keeps no history.
    await t.put(url, again, headers=coordinator)
    assert await stored() == after and len(await changes()) == 33

    async def results() -> dict[tuple[uuid.UUID, str], tuple[uuid.UUID, str, str]]:
        async with db.session() as session:
            rows = await session.execute(
                select(
                    Enrollment.participant_id,
                    Assessment.unit_code,
                    Assessment.id,
                    Assessment.result,
                    Assessment.assessor,
                ).join(Enrollment, Enrollment.id == Assessment.enrollment_id)
            )
            return {(pid, unit): (aid, result, who) for pid, unit, aid, result, who in rows}

    sheet = [
        {"participant_id": x, "unit_code": u["code"], "result": "competent"}
        for x in everyone
        for u in UNITS
    ]
    url = f"/api/v1/sessions/{s}/assessments"
    assert await t.put(url, {"assessor": "Asesor A", "results": sheet}, headers=t.officer) == {
        "count": 60
    }
    first_results = await results()
    assert {k: v[1:] for k, v in first_results.items()} == {
        (p[n], u["code"]): ("competent", "Asesor A") for n in names for u in UNITS
    }
    changed = [
        {"participant_id": everyone[0], "unit_code": "BTK-02", "result": "not_yet_competent"},
        {"participant_id": everyone[1], "unit_code": "BTK-01", "result": "competent"},
    ]
    assert await t.put(url, {"assessor": "Asesor B", "results": changed}, headers=t.officer) == {
        "count": 2
    }
    second = await results()
    assert {k: v[0] for k, v in second.items()} == {k: v[0] for k, v in first_results.items()}
    assert second[(p[names[0]], "BTK-02")][1:] == ("not_yet_competent", "Asesor B")
    assert second[(p[names[1]], "BTK-01")][1:] == ("competent", "Asesor B")
    untouched = set(second) - {(p[names[0]], "BTK-02"), (p[names[1]], "BTK-01")}
    assert {k: second[k] for k in untouched} == {k: first_results[k] for k in untouched}
    assert await t.count(OutboxMessage) == outbox
