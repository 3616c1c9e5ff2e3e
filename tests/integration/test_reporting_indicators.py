"""Reporting end to end on its own: a scripted history of real events in, indicators out.

The history: two facilities in two provinces, two programs, sessions ending in 2019 and 2024,
enrolments with completions, non-completions and withdrawals, certificates. One event is
delivered twice with the same id, a certificate and a completion arrive before their
enrolment, and a session arrives before its facility. Every expected number is counted by hand
from the table in ``History``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from bekal.reporting.app import create_app
from bekal.reporting.models import TrainingSession
from bekal.reporting.services.people import erasure_key
from bekal.shared import metrics
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CompetencyUnit,
    EnrollmentOutcome,
    FollowUpSituation,
    InmateShared,
    ParticipantCompleted,
    ParticipantEnrolled,
    ProgramPublished,
    ReleaseKind,
    SessionScheduled,
    Sex,
    WithdrawalReason,
)
from bekal.shared.messaging.models import InboxMessage
from bekal.shared.settings import Settings
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
    PONTIANAK,
    TANGERANG,
    certificate_issued,
    certificate_reissued,
    certificate_revoked,
    certificate_superseded,
    enrollment_withdrawn,
    facility_registered,
    facility_updated,
    follow_up_recorded,
    inmate_erased,
    inmate_released,
    inmate_shared,
    inmates_merged,
    outcome_corrected,
    participant_completed,
    participant_enrolled,
    participant_not_completed,
    program_published,
    session_completed,
    session_scheduled,
    session_started,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

READER_ROLES = ("reporting_viewer", "registry_admin", "training_admin", "certification_admin")

# The newest event of the history; it is published early, so data-as-of must be the maximum
# event time applied, not the time of the last one.
NEWEST = datetime(2024, 9, 12, 9, 30, tzinfo=UTC)
T0 = datetime(2024, 9, 10, 8, 0, tzinfo=UTC)

F1, F2 = uuid.uuid4(), uuid.uuid4()  # Lapas Perempuan Tangerang (Banten), Lapas Pontianak
P1, P2 = uuid.uuid4(), uuid.uuid4()  # WUB batik, woodcraft
S1, S2, S3, S4 = (uuid.uuid4() for _ in range(4))
E = {n: uuid.uuid4() for n in range(1, 16)}  # enrolments E1..E15
PERSON = {n: uuid.uuid4() for n in range(1, 16)}
SESSION_OF = {
    1: S1,
    2: S1,
    3: S1,
    4: S1,
    15: S1,
    5: S2,
    6: S2,
    7: S2,
    8: S2,
    9: S2,
    10: S2,
    11: S3,
    12: S3,
    13: S4,
    14: S4,
}
CERT = {n: uuid.uuid4() for n in range(1, 16)}  # the first certificate of each enrolment
NAME = "Siti Rahmawati"  # carried by ParticipantCompleted; reporting must not keep it
UNITS = [CompetencyUnit(code="U1", title="Membatik")]
SECTOR = {P1: "batik", P2: "kerajinan kayu"}


@dataclass
class Script:
    """Events in publishing order, each with its envelope id and time."""

    items: list[tuple[Event, str, datetime]] = field(default_factory=list)
    minute: int = 0

    def add(self, event: Event, *, at: datetime | None = None, event_id: str | None = None) -> str:
        self.minute += 1
        eid = event_id or str(uuid.uuid4())
        self.items.append((event, eid, at or T0 + timedelta(minutes=self.minute)))
        return eid


def _program(pid: uuid.UUID, version: int, code: str, title: str) -> ProgramPublished:
    return program_published(
        program_id=pid,
        program_version=version,
        code=code,
        title=title,
        sector=SECTOR[pid],
        partner="YBI",
        competency_units=UNITS,
    )


def _scheduled(
    sid: uuid.UUID, pid: uuid.UUID, fid: uuid.UUID, start: date, end: date
) -> SessionScheduled:
    return session_scheduled(
        session_id=sid, program_id=pid, facility_id=fid, start_date=start, end_date=end, capacity=30
    )


def _shared(n: int, sex: Sex) -> InmateShared:
    return inmate_shared(
        participant_id=PERSON[n],
        full_name=NAME,
        sex=sex,
        facility_id=F1 if sex is Sex.FEMALE else F2,
        admission_date=date(2018, 1, 1),
        expected_release_date=None,
    )


def _enrolled(n: int) -> ParticipantEnrolled:
    return participant_enrolled(
        SESSION_OF[n], PERSON[n], enrollment_id=E[n], enrolled_on=date(2019, 5, 1)
    )


def _completed(n: int, pid: uuid.UUID, end: date) -> ParticipantCompleted:
    # Reporting reads the program, its sector and the end date; the name it must not keep.
    return participant_completed(
        _enrolled(n), program_id=pid, sector=SECTOR[pid], participant_name=NAME, end_date=end
    )


def _not_completed(n: int) -> Event:
    return participant_not_completed(_enrolled(n), attendance_share=0.5)


def _withdrawn(n: int, reason: WithdrawalReason) -> Event:
    return enrollment_withdrawn(_enrolled(n), reason=reason, withdrawn_on=date(2024, 9, 5))


def _certificate(n: int, pid: uuid.UUID, number: str) -> CertificateIssued:
    return certificate_issued(
        _enrolled(n),
        certificate_id=CERT[n],
        number=number,
        program_id=pid,
        issued_on=date(2024, 9, 8),
    )


def history() -> tuple[Script, Script]:
    """Phase 1 holds the early arrivals; phase 2 everything else (and the duplicate).

    | session | facility (province)         | program  | year | enrolments and outcomes       |
    | S1      | F2 Pontianak (Kalbar)       | P2 kayu  | 2019 | E1 E2 completed+certificate,  |
    |         |                             |          |      | E3 E15 not completed,         |
    |         |                             |          |      | E4 withdrawn (released)       |
    | S2      | F1 Tangerang (Banten)       | P1 batik | 2024 | E5 E6 E7 completed+cert,      |
    |         |                             |          |      | E8 not completed, E9 released |
    |         |                             |          |      | E10 transferred               |
    | S3      | F1 Tangerang (Banten)       | P2 kayu  | 2024 | E11 completed+cert, E12 not   |
    | S4      | F2 Pontianak (Kalbar)       | P1 batik | 2024 | E13 enrolled, E14 released    |
    """
    early, rest = Script(), Script(minute=100)
    # A certificate before its enrolment's events, at the newest time of all.
    early.add(_certificate(7, P1, "IKMA/2024/000003"), at=NEWEST)
    # A completion before its enrolment; a session before its facility; a start before its plan.
    early.add(_completed(11, P2, date(2024, 7, 22)))
    early.add(_scheduled(S2, P1, F1, date(2024, 9, 3), date(2024, 9, 7)))
    early.add(session_started(S4, started_on=date(2024, 9, 2)))

    pontianak = facility_registered(PONTIANAK, facility_id=F2)
    rest.add(facility_registered(TANGERANG, facility_id=F1))
    rest.add(pontianak)
    rest.add(facility_updated(pontianak, name="Lapas Kelas IIA Pontianak (Kalbar)"))
    rest.add(_program(P1, 1, "WUB-BATIK", "Batik Tulis"))
    rest.add(_program(P1, 2, "WUB-BATIK", "Batik Tulis dan Cap"))
    rest.add(_program(P2, 1, "KRJ-KAYU", "Kerajinan Kayu"))
    for n in range(1, 15):  # P15 never gave consent to share: sex unknown
        rest.add(_shared(n, Sex.FEMALE if SESSION_OF[n] in (S2, S3) else Sex.MALE))
    rest.add(_scheduled(S1, P2, F2, date(2019, 5, 13), date(2019, 5, 18)))
    rest.add(_scheduled(S3, P2, F1, date(2024, 7, 17), date(2024, 7, 22)))
    rest.add(_scheduled(S4, P1, F2, date(2024, 9, 2), date(2024, 9, 6)))
    for n in range(1, 16):
        if n == 5:
            first = rest.add(_enrolled(5))
            # The same event delivered again, same id; E5's completion follows on its partition,
            # so once that is applied the duplicate has been seen (and dropped).
            rest.add(_enrolled(5), event_id=first)
        else:
            rest.add(_enrolled(n))
    rest.add(session_started(S1, started_on=date(2019, 5, 13)))
    for n in (1, 2):
        rest.add(_completed(n, P2, date(2019, 5, 18)))
    for n in (3, 15):
        rest.add(_not_completed(n))
    rest.add(_withdrawn(4, WithdrawalReason.RELEASED))
    rest.add(
        session_completed(
            S1, completed_on=date(2019, 5, 18), completed_count=2, not_completed_count=2
        )
    )
    for n in (5, 6, 7):
        rest.add(_completed(n, P1, date(2024, 9, 7)))
    rest.add(_not_completed(8))
    rest.add(_withdrawn(9, WithdrawalReason.RELEASED))
    rest.add(_withdrawn(10, WithdrawalReason.TRANSFERRED))
    rest.add(_not_completed(12))
    rest.add(_withdrawn(14, WithdrawalReason.RELEASED))
    rest.add(_certificate(1, P2, "IKMA/2019/000001"))
    rest.add(_certificate(2, P2, "IKMA/2019/000002"))
    rest.add(_certificate(5, P1, "IKMA/2024/000001"))
    rest.add(_certificate(6, P1, "IKMA/2024/000002"))
    rest.add(_certificate(11, P2, "IKMA/2024/000004"))
    return early, rest


def corrections() -> Script:
    """Phase 3: what changes afterwards, some of it twice or out of order.

    - E5's certificate is revoked: E5 stays completed, no longer certified.
    - E6's certificate is re-issued (corrected) on 20 September: the re-issue arrives before the
      revocation that supersedes the old one; E6 counts once, days from the first issue.
    - E8's outcome is corrected to completed (then its completion follows, as training sends it).
    - P1, P2 and P5 (graduates) are released; follow-ups: E1 not working at 3 months then a
      business with NIB at 6; E2 employed at 3; E5 a business without NIB at 12, and an older
      3-month follow-up of E5 arrives after it and changes nothing.
    - P13 turns out to be P1 (merged): counts unchanged.
    - P11 is erased (delivered twice, with two ids) and their InmateShared replayed late: every
      count stays, by sex too (the sex is kept under the person's anonymous id).
    """
    script = Script(minute=300)
    script.add(
        certificate_revoked(_certificate(5, P1, "IKMA/2024/000001"), revoked_on=date(2024, 9, 15))
    )
    first = _certificate(6, P1, "IKMA/2024/000002")
    reissued = certificate_reissued(first, number="IKMA/2024/000010", issued_on=date(2024, 9, 20))
    script.add(reissued)
    script.add(certificate_superseded(first, reissued))
    script.add(
        outcome_corrected(
            _enrolled(8),
            EnrollmentOutcome.COMPLETED,
            attendance_share=0.9,
            reason="Absensi salah input",
            corrected_on=date(2024, 9, 14),
        )
    )
    script.add(_completed(8, P1, date(2024, 9, 7)))
    for n in (1, 2, 5):
        script.add(
            inmate_released(
                participant_id=PERSON[n],
                facility_id=F1 if n == 5 else F2,
                release_kind=ReleaseKind.PAROLE,
                released_on=date(2024, 10, 1),
            )
        )

    def follow_up(n: int, months: int, situation: FollowUpSituation, on: date) -> None:
        script.add(
            follow_up_recorded(
                _enrolled(n), checkpoint_months=months, situation=situation, recorded_on=on
            )
        )

    follow_up(1, 3, FollowUpSituation.NOT_WORKING, date(2025, 1, 5))
    follow_up(1, 6, FollowUpSituation.BUSINESS_STARTED_WITH_NIB, date(2025, 4, 5))
    follow_up(2, 3, FollowUpSituation.EMPLOYED_BY_IKM, date(2025, 1, 6))
    follow_up(5, 12, FollowUpSituation.BUSINESS_STARTED_WITHOUT_NIB, date(2025, 10, 1))
    follow_up(5, 3, FollowUpSituation.UNREACHABLE, date(2025, 1, 7))
    script.add(inmates_merged(PERSON[13], PERSON[1], merged_on=date(2024, 10, 2)))
    script.add(inmate_erased(PERSON[11]))
    script.add(inmate_erased(PERSON[11]))
    script.add(_shared(11, Sex.FEMALE))
    return script


def counts(
    enrolled: int,
    *,
    completed: int = 0,
    not_completed: int = 0,
    released: int = 0,
    transferred: int = 0,
    certified: int = 0,
    rate: float | None,
    days: tuple[int, ...] = (),
    graduates_released: int = 0,
    with_nib: int = 0,
    without_nib: int = 0,
    employed: int = 0,
) -> dict[str, Any]:
    """The expected counters of a group; ``days``: completion to certificate, per certificate."""
    return {
        "enrolled": enrolled,
        "withdrawn": released + transferred,
        "withdrawn_by_reason": {
            "released": released,
            "transferred": transferred,
            "consent_withdrawn": 0,
            "other": 0,
        },
        "completed": completed,
        "not_completed": not_completed,
        "certified": certified,
        "completion_rate": rate,
        "certification_rate": round(certified / completed, 4) if completed else None,
        "mean_days_to_certificate": round(sum(days) / len(days), 1) if days else None,
        "days_to_certificate_count": len(days),
        "graduates_released": graduates_released,
        "graduates_released_ready": 0,
        "waitlisted": 0,
        "waiting": 0,
        "business_with_nib": with_nib,
        "business_without_nib": without_nib,
        "new_entrepreneurs": with_nib + without_nib,
        "employed": employed,
    }


# Days from each session's end to its certificates (all issued on 8 September 2024).
D1 = (date(2024, 9, 8) - date(2019, 5, 18)).days  # S1's
D2 = 1  # S2 ended on 7 September
D3 = (date(2024, 9, 8) - date(2024, 7, 22)).days  # S3's: 48

# Hand-counted from the table in history().
SESSION_S1 = counts(
    5, completed=2, not_completed=2, released=1, certified=2, rate=0.5, days=(D1, D1)
)
SESSION_S2 = counts(
    6,
    completed=3,
    not_completed=1,
    released=1,
    transferred=1,
    certified=3,
    rate=0.75,
    days=(D2, D2, D2),
)
SESSION_S3 = counts(2, completed=1, not_completed=1, certified=1, rate=0.5, days=(D3,))
SESSION_S4 = counts(2, released=1, rate=None)
TOTALS = counts(
    15,
    completed=6,
    not_completed=4,
    released=3,
    transferred=1,
    certified=6,
    rate=0.6,
    days=(D1, D1, D2, D2, D2, D3),
)
FACILITY_F1 = counts(
    8,
    completed=4,
    not_completed=2,
    released=1,
    transferred=1,
    certified=4,
    rate=0.6667,
    days=(D2, D2, D2, D3),
)  # S2 + S3
FACILITY_F2 = counts(
    7, completed=2, not_completed=2, released=2, certified=2, rate=0.5, days=(D1, D1)
)  # S1 + S4
PROGRAM_P1 = counts(
    8,
    completed=3,
    not_completed=1,
    released=2,
    transferred=1,
    certified=3,
    rate=0.75,
    days=(D2, D2, D2),
)  # S2 + S4
PROGRAM_P2 = counts(
    7, completed=3, not_completed=3, released=1, certified=3, rate=0.5, days=(D1, D1, D3)
)  # S1 + S3
YEAR_2019 = SESSION_S1
YEAR_2024 = counts(
    10,
    completed=4,
    not_completed=2,
    released=2,
    transferred=1,
    certified=4,
    rate=0.6667,
    days=(D2, D2, D2, D3),
)  # S2 + S3 + S4
# Sex: everyone in Tangerang (S2, S3) is a woman, in Pontianak a man; P15 was never shared.
SEX_F = FACILITY_F1
SEX_M = counts(
    6, completed=2, not_completed=1, released=2, certified=2, rate=0.6667, days=(D1, D1)
)  # S1 without E15, and S4
SEX_UNKNOWN = counts(1, not_completed=1, rate=0.0)  # E15

# After phase 3, hand-counted from the list in corrections().
TOTALS_3 = counts(
    15,
    completed=7,
    not_completed=3,
    released=3,
    transferred=1,
    certified=5,
    rate=0.7,
    days=(D1, D1, D2, D2, D3),
    graduates_released=3,
    with_nib=1,
    without_nib=1,
    employed=1,
)
SESSION_S2_3 = counts(
    6,
    completed=4,
    released=1,
    transferred=1,
    certified=2,
    rate=1.0,
    days=(D2, D2),
    graduates_released=1,
    without_nib=1,
)
SEX_F_3 = counts(
    8,
    completed=5,
    not_completed=1,
    released=1,
    transferred=1,
    certified=3,
    rate=0.8333,
    days=(D2, D2, D3),
    graduates_released=1,
    without_nib=1,
)  # E11 stays, erased or not
SEX_M_3 = counts(
    6,
    completed=2,
    not_completed=1,
    released=2,
    certified=2,
    rate=0.6667,
    days=(D1, D1),
    graduates_released=2,
    with_nib=1,
    employed=1,
)
SEX_UNKNOWN_3 = counts(1, not_completed=1, rate=0.0)  # E15


F1_KEYS = {
    "facility_id": str(F1),
    "facility_code": "LPP-TANGERANG",
    "facility_name": "Lapas Perempuan Kelas IIA Tangerang",
}
F2_KEYS = {
    "facility_id": str(F2),
    "facility_code": "LAPAS-PONTIANAK",
    "facility_name": "Lapas Kelas IIA Pontianak (Kalbar)",
}
P1_KEYS = {
    "program_id": str(P1),
    "program_code": "WUB-BATIK",
    "program_title": "Batik Tulis dan Cap",
}
P2_KEYS = {"program_id": str(P2), "program_code": "KRJ-KAYU", "program_title": "Kerajinan Kayu"}


# --- plumbing ---------------------------------------------------------------------------------


def _token(
    settings: Settings, ministry: str, *roles: str, facilities: list[str] | None = None
) -> dict[str, str]:
    return bearer(
        settings,
        ministry=ministry,
        roles=roles,
        facilities=facilities or (),
        subject=f"{ministry}-user",
    )


async def _publish(settings: Settings, script: Script) -> None:
    events, event_ids, times = zip(*script.items, strict=True)
    await publish(settings, events, event_ids=event_ids, times=times)


async def _inbox_count(app: Any) -> int:
    return await count(app.state.db, InboxMessage)


async def _wait_for_inbox(app: Any, n: int, within: float = 60.0) -> None:
    async def applied() -> bool:
        return await _inbox_count(app) >= n

    await wait_until(applied, within=within, what=f"reporting applying {n} events")


def _duplicates_seen(settings: Settings) -> float:
    # The topic label is namespaced, so the counter is this test's alone.
    topic = settings.topic("training.enrollments")
    return metrics.EVENTS_CONSUMED.labels("reporting", "reporting", topic, "duplicate")._value.get()


def _unique(script: Script) -> int:
    return len({event_id for _, event_id, _ in script.items})


async def _get(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> Any:
    response = await client.get("/api/v1/indicators", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- the tests --------------------------------------------------------------------------------


async def test_indicators_from_a_scripted_history_equal_the_hand_counted_values(
    database_url, broker, make_settings
):
    settings = make_settings("reporting", database_url, broker)
    app = create_app(settings)
    early, rest = history()
    async with running(app) as client:
        admin = _token(settings, "industry", "training_admin")
        # Early arrivals only: counted where what is known puts them.
        await _publish(settings, early)
        await _wait_for_inbox(app, _unique(early))
        body = await _get(client, admin, group_by="facility")
        assert body["totals"] == counts(1, completed=1, certified=1, rate=1.0, days=(D2,))
        assert body["data"] == [
            # E7's certificate: its session S2 is known, its facility F1 not yet described.
            {
                "facility_id": str(F1),
                "facility_code": None,
                "facility_name": None,
                **counts(0, certified=1, rate=None, days=(D2,)),
            },
            # E11's completion: its session S3 not known yet, so no facility.
            {
                "facility_id": None,
                "facility_code": None,
                "facility_name": None,
                **counts(1, completed=1, rate=1.0),
            },
        ]
        body = await _get(client, admin, group_by="program,year")
        # Both facts carry their program (E11 its end date too); programs not described yet
        # sort by id.
        assert body["data"] == sorted(
            [
                {
                    "program_id": str(P1),
                    "program_code": None,
                    "program_title": None,
                    "year": 2024,
                    **counts(0, certified=1, rate=None, days=(D2,)),
                },
                {
                    "program_id": str(P2),
                    "program_code": None,
                    "program_title": None,
                    "year": 2024,
                    **counts(1, completed=1, rate=1.0),
                },
            ],
            key=lambda row: row["program_id"],
        )

        # The rest of the history, with one duplicate delivery.
        await _publish(settings, rest)
        await _wait_for_inbox(app, _unique(early) + _unique(rest))
        await asyncio.sleep(0.5)  # nothing more may arrive: the duplicate adds nothing
        assert await _inbox_count(app) == _unique(early) + _unique(rest)
        assert _duplicates_seen(settings) == 1

        body = await _get(client, admin)
        assert body["group_by"] == [] and body["data"] == []
        assert body["totals"] == TOTALS
        assert datetime.fromisoformat(body["data_as_of"]) == NEWEST

        body = await _get(client, admin, group_by="facility")
        assert body["group_by"] == ["facility"]
        assert body["data"] == [{**F2_KEYS, **FACILITY_F2}, {**F1_KEYS, **FACILITY_F1}]
        assert body["totals"] == TOTALS

        body = await _get(client, admin, group_by="province")
        assert body["data"] == [
            {"province": "Banten", **FACILITY_F1},
            {"province": "Kalimantan Barat", **FACILITY_F2},
        ]

        body = await _get(client, admin, group_by="program")
        assert body["data"] == [{**P2_KEYS, **PROGRAM_P2}, {**P1_KEYS, **PROGRAM_P1}]

        body = await _get(client, admin, group_by="year")
        assert body["data"] == [{"year": 2019, **YEAR_2019}, {"year": 2024, **YEAR_2024}]

        body = await _get(client, admin, group_by="facility,province,program,year")
        assert body["group_by"] == ["facility", "province", "program", "year"]
        assert body["data"] == [
            {**F2_KEYS, "province": "Kalimantan Barat", **P2_KEYS, "year": 2019, **SESSION_S1},
            {**F2_KEYS, "province": "Kalimantan Barat", **P1_KEYS, "year": 2024, **SESSION_S4},
            {**F1_KEYS, "province": "Banten", **P2_KEYS, "year": 2024, **SESSION_S3},
            {**F1_KEYS, "province": "Banten", **P1_KEYS, "year": 2024, **SESSION_S2},
        ]
        assert body["totals"] == TOTALS

        body = await _get(client, admin, group_by="year,province")
        assert body["data"] == [
            {"year": 2019, "province": "Kalimantan Barat", **SESSION_S1},
            {"year": 2024, "province": "Banten", **FACILITY_F1},
            {"year": 2024, "province": "Kalimantan Barat", **SESSION_S4},
        ]

        # Filters narrow the facts before grouping.
        body = await _get(client, admin, year="2024")
        assert body["totals"] == YEAR_2024
        body = await _get(client, admin, province="Kalimantan Barat", group_by="year")
        assert body["data"] == [{"year": 2019, **SESSION_S1}, {"year": 2024, **SESSION_S4}]
        assert body["totals"] == FACILITY_F2
        body = await _get(client, admin, facility_id=str(F1), program_id=str(P1))
        assert body["totals"] == SESSION_S2
        body = await _get(client, admin, year="2019", program_id=str(P1))
        assert body["totals"] == counts(0, rate=None)

        # Every reader role of either ministry may read.
        for ministry, role in [
            ("corrections", "registry_admin"),
            ("industry", "training_admin"),
            ("industry", "certification_admin"),
            ("corrections", "reporting_viewer"),
        ]:
            body = await _get(client, _token(settings, ministry, role))
            assert body["totals"] == TOTALS

        # Sex (from registry.inmates) and sector, as dimensions and as filters; a reporting
        # viewer reads them, but not one facility's numbers.
        viewer = _token(settings, "industry", "reporting_viewer")
        body = await _get(client, viewer, group_by="sex")
        assert body["data"] == [
            {"sex": "F", **SEX_F},
            {"sex": "M", **SEX_M},
            {"sex": None, **SEX_UNKNOWN},
        ]
        body = await _get(client, viewer, group_by="sector")
        assert body["data"] == [
            {"sector": "batik", **PROGRAM_P1},
            {"sector": "kerajinan kayu", **PROGRAM_P2},
        ]
        body = await _get(client, viewer, sex="M", sector="kerajinan kayu", year="2019")
        assert body["totals"] == counts(
            4, completed=2, not_completed=1, released=1, certified=2, rate=0.6667, days=(D1, D1)
        )  # S1 - E15
        assert body["filters"] == {"year": "2019", "sector": "kerajinan kayu", "sex": "M"}
        # Per session: detail, for administrators.
        body = await _get(client, admin, group_by="session")
        assert body["data"] == [  # by start date
            {
                "session_id": str(S1),
                "session_start_date": "2019-05-13",
                "session_end_date": "2019-05-18",
                **SESSION_S1,
            },
            {
                "session_id": str(S3),
                "session_start_date": "2024-07-17",
                "session_end_date": "2024-07-22",
                **SESSION_S3,
            },
            {
                "session_id": str(S4),
                "session_start_date": "2024-09-02",
                "session_end_date": "2024-09-06",
                **SESSION_S4,
            },
            {
                "session_id": str(S2),
                "session_start_date": "2024-09-03",
                "session_end_date": "2024-09-07",
                **SESSION_S2,
            },
        ]
        for params in (
            {"group_by": "facility"},
            {"facility_id": str(F1)},
            {"group_by": "province,session"},
        ):
            response = await client.get("/api/v1/indicators", params=params, headers=viewer)
            assert response.status_code == 403, params
            assert response.headers["content-type"].startswith("application/problem+json")

        # Freshness: the consumer's lag per partition is on /metrics, 0 once caught up.
        exposition = (await client.get("/metrics")).text
        topic = settings.topic("training.enrollments")
        lag_lines = [
            line
            for line in exposition.splitlines()
            if line.startswith("bekal_consumer_lag{") and f'topic="{topic}"' in line
        ]
        assert lag_lines and all(line.endswith(" 0.0") for line in lag_lines), lag_lines

        # Phase 3: corrections, releases, follow-ups, a merge, an erasure.
        later_events = corrections()
        await _publish(settings, later_events)
        await _wait_for_inbox(app, _unique(early) + _unique(rest) + _unique(later_events))
        body = await _get(client, admin)
        assert body["totals"] == TOTALS_3
        body = await _get(client, admin, facility_id=str(F1), program_id=str(P1))
        assert body["totals"] == SESSION_S2_3
        body = await _get(client, viewer, group_by="sex")
        assert body["data"] == [
            {"sex": "F", **SEX_F_3},
            {"sex": "M", **SEX_M_3},
            {"sex": None, **SEX_UNKNOWN_3},
        ]

        # The whole history delivered again, in the same order per aggregate but with new
        # event ids (so the inbox cannot drop it): the upserts must change nothing.
        replayed = Script(
            items=[
                (event, str(uuid.uuid4()), at)
                for script in (early, rest, later_events)
                for event, _, at in script.items
            ]
        )
        await _publish(settings, replayed)
        await _wait_for_inbox(
            app, _unique(early) + _unique(rest) + _unique(later_events) + len(replayed.items)
        )
        body = await _get(client, admin)
        assert body["totals"] == TOTALS_3
        body = await _get(client, viewer, group_by="sex")
        assert body["data"] == [
            {"sex": "F", **SEX_F_3},
            {"sex": "M", **SEX_M_3},
            {"sex": None, **SEX_UNKNOWN_3},
        ]

        # A start that came before the plan is not undone by it.
        async with app.state.db.session() as s:
            status = await s.scalar(select(TrainingSession.status).where(TrainingSession.id == S4))
            assert status == "running"
            # Pseudonymous only: the name carried by ParticipantCompleted is stored nowhere,
            # and the erased person's id is nowhere, the tombstones included (they are keyed).
            for table in (
                "facilities",
                "programs",
                "sessions",
                "enrollments",
                "certificates",
                "participants",
                "erased_participants",
                "merged_participants",
                "inbox",
                "dead_letters",
            ):
                rows = (await s.execute(text(f"SELECT * FROM {table}"))).all()
                assert NAME not in repr(rows), table
                if table not in ("inbox", "dead_letters"):
                    assert str(PERSON[11]) not in repr(rows), table
            participants = (await s.execute(text("SELECT id FROM participants"))).scalars()
            # P13 merged into P1, P11 erased (under an anonymous id); P15 never shared.
            assert set(participants) == {str(PERSON[n]) for n in range(1, 15)} - {
                str(PERSON[11]),
                str(PERSON[13]),
            } | {str(erasure_key(settings).anonymous(PERSON[11]))}
            e13 = await s.scalar(
                text(f"SELECT participant_id FROM enrollments WHERE id = '{E[13]}'")
            )
            assert e13 == str(PERSON[1])
            dead = (await s.execute(text("SELECT count(*) FROM dead_letters"))).scalar()
            assert dead == 0


async def test_indicators_refuse_other_roles_and_name_a_bad_group_by(
    database_url, broker, make_settings
):
    settings = make_settings("reporting", database_url, broker)
    app = create_app(settings)
    async with running(app) as client:
        viewer = _token(settings, "industry", "reporting_viewer")

        # Before any event: zeros, no rate, no data-as-of.
        body = await _get(client, viewer, group_by="province")
        assert body == {
            "group_by": ["province"],
            "filters": {},
            "data": [],
            "totals": counts(0, rate=None),
            "data_as_of": None,
        }

        response = await client.get("/api/v1/indicators")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")

        officer = _token(settings, "corrections", "facility_officer", facilities=["LPP-TANGERANG"])
        response = await client.get("/api/v1/indicators", headers=officer)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
        response = await client.get(
            "/api/v1/indicators", headers=_token(settings, "industry", "training_officer")
        )
        assert response.status_code == 403

        response = await client.get(
            "/api/v1/indicators", params={"group_by": "province,gender"}, headers=viewer
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == 422
        assert [e["field"] for e in problem["errors"]] == ["group_by"]
        assert "gender" in problem["errors"][0]["message"]

        response = await client.get(
            "/api/v1/indicators", params={"year": "dua ribu"}, headers=viewer
        )
        assert response.status_code == 422
        assert "year" in response.json()["errors"][0]["field"]
        response = await client.get(
            "/api/v1/indicators", params={"facility_id": "not-a-uuid"}, headers=viewer
        )
        assert response.status_code == 422
        assert "facility_id" in response.json()["errors"][0]["field"]
