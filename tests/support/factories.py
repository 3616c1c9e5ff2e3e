"""Events and request bodies for tests, with the domain's own defaults, and a few histories.

The defaults are the course the articles describe: WUB IKM Batik (batik tulis and batik cap)
with Yayasan Batik Indonesia at Lapas Kelas I Cipinang, 3 to 7 September 2024. ``TANGERANG``
and ``PONTIANAK`` (with ``WOODCRAFT``, 13 to 18 May 2019) are the other places of the articles.

A test names only what it cares about, as keyword overrides. Related events are passed in
(``participant_enrolled(session, inmate)``) so that their ids agree. Every event is built
through its catalogue model, so it validates as the producing service's own does; an override
naming no field of the model is an error (the models themselves ignore unknown fields).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    AbsenceReason,
    CertificateIssued,
    CertificateReissued,
    CertificateRevocationKind,
    CertificateRevoked,
    CompetencyUnit,
    EnrollmentOutcome,
    EnrollmentWithdrawn,
    FacilityClass,
    FacilityKind,
    FacilityRegistered,
    FacilityUpdated,
    FollowUpRecorded,
    FollowUpSituation,
    InmateConsentWithdrawn,
    InmateDied,
    InmateErased,
    InmateReleased,
    InmateReturned,
    InmateShared,
    InmatesMerged,
    InmateTemporarilyAbsent,
    InmateTransferred,
    NotCompletedReason,
    OutcomeCorrected,
    ParticipantCompleted,
    ParticipantEnrolled,
    ParticipantLeftWaitlist,
    ParticipantNotCompleted,
    ParticipantWaitlisted,
    ProgramPublished,
    ReadinessRecorded,
    ReleaseKind,
    SessionCancelled,
    SessionCompleted,
    SessionOpened,
    SessionScheduled,
    SessionStarted,
    Sex,
    WithdrawalReason,
)

M = TypeVar("M", bound=BaseModel)


def build(model: type[M], defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> M:
    """``model`` from ``defaults`` with ``overrides`` on top, validated by the model."""
    unknown = set(overrides) - set(model.model_fields)
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    return model(**{**defaults, **overrides})


# --- the places, courses and people of the articles -----------------------------------------


@dataclass(frozen=True)
class FacilityProfile:
    """What the registry says of a facility, apart from its id."""

    code: str
    name: str
    kind: FacilityKind
    facility_class: FacilityClass
    province: str
    regional_office: str
    capacity: int
    active: bool = True


CIPINANG = FacilityProfile(
    code="LP-CIPINANG",
    name="Lapas Kelas I Cipinang",
    kind=FacilityKind.LAPAS,
    facility_class=FacilityClass.I,
    province="DKI Jakarta",
    regional_office="Kanwil Ditjenpas DKI Jakarta",
    capacity=1136,
)
TANGERANG = FacilityProfile(
    code="LPP-TANGERANG",
    name="Lapas Perempuan Kelas IIA Tangerang",
    kind=FacilityKind.LAPAS_PEREMPUAN,
    facility_class=FacilityClass.IIA,
    province="Banten",
    regional_office="Kanwil Banten",
    capacity=250,
)
PONTIANAK = FacilityProfile(
    code="LAPAS-PONTIANAK",
    name="Lapas Kelas IIA Pontianak",
    kind=FacilityKind.LAPAS,
    facility_class=FacilityClass.IIA,
    province="Kalimantan Barat",
    regional_office="Kanwil Kalimantan Barat",
    capacity=600,
)


@dataclass(frozen=True)
class ProgramProfile:
    """A course design as training publishes it, apart from its id and version."""

    code: str
    title: str
    sector: str
    partner: str | None
    days: int
    hours: int
    min_attendance_share: float
    competency_units: tuple[CompetencyUnit, ...]


BATIK = ProgramProfile(
    code="WUB-BATIK",
    title="Bimtek Wirausaha Baru IKM Batik",
    sector="batik",
    partner="Yayasan Batik Indonesia",
    days=5,
    hours=40,
    min_attendance_share=0.8,
    competency_units=(
        CompetencyUnit(code="BTK.01", title="Membatik tulis"),
        CompetencyUnit(code="BTK.02", title="Membatik cap"),
    ),
)
WOODCRAFT = ProgramProfile(
    code="KRJ-KAYU",
    title="Kerajinan Kayu",
    sector="kerajinan kayu",
    partner="Balai Besar Kerajinan dan Batik",
    days=6,
    hours=48,
    min_attendance_share=0.8,
    competency_units=(CompetencyUnit(code="KYU.01", title="Mengukir kayu"),),
)

COURSE_START, COURSE_END = date(2024, 9, 3), date(2024, 9, 7)  # the batik course at Cipinang
MEN = ["Budi Santoso", "Agus Wijaya", "Dedi Saputra", "Rudi Hidayat", "Joko Pratama"]
WOMEN = ["Siti Rahmawati", "Dewi Lestari", "Rina Wati", "Siti Aminah", "Ani Suryani"]


def person_name(n: int, sex: Sex = Sex.MALE) -> str:
    """The ``n``-th name (from 0) of a group of men or women; numbered past the list."""
    names = MEN if sex is Sex.MALE else WOMEN
    return names[n] if n < len(names) else f"{names[n % len(names)]} {n // len(names) + 1}"


def _profile(profile: FacilityProfile | ProgramProfile) -> dict[str, Any]:
    values = dataclasses.asdict(profile)
    if isinstance(profile, ProgramProfile):
        values["competency_units"] = list(profile.competency_units)
    return values


# --- registry events ---------------------------------------------------------------------


def facility_registered(
    profile: FacilityProfile = CIPINANG, **overrides: Any
) -> FacilityRegistered:
    return build(FacilityRegistered, {"facility_id": uuid.uuid4(), **_profile(profile)}, overrides)


def facility_updated(facility: FacilityRegistered, **overrides: Any) -> FacilityUpdated:
    """The facility's whole state again, with what changed."""
    return build(FacilityUpdated, facility.model_dump(), overrides)


def inmate_shared(facility: FacilityRegistered | None = None, **overrides: Any) -> InmateShared:
    """A consenting inmate near release; held at ``facility`` (with its code, as the registry
    sends it) or at a facility the test does not describe."""
    defaults: dict[str, Any] = {
        "participant_id": uuid.uuid4(),
        "full_name": MEN[0],
        "sex": Sex.MALE,
        "birth_year": 1990,
        "facility_id": facility.facility_id if facility else uuid.uuid4(),
        "admission_date": date(2022, 10, 1),
        "expected_release_date": date(2025, 1, 2),
    }
    if facility is not None:
        defaults["facility_code"] = facility.code
    return build(InmateShared, defaults, overrides)


def _inmate_ids(inmate: InmateShared | None) -> dict[str, Any]:
    if inmate is None:
        return {"participant_id": uuid.uuid4(), "facility_id": uuid.uuid4()}
    return {"participant_id": inmate.participant_id, "facility_id": inmate.facility_id}


def inmate_transferred(
    inmate: InmateShared | None = None,
    to: FacilityRegistered | None = None,
    **overrides: Any,
) -> InmateTransferred:
    ids = _inmate_ids(inmate)
    defaults: dict[str, Any] = {
        "participant_id": ids["participant_id"],
        "from_facility_id": ids["facility_id"],
        "to_facility_id": to.facility_id if to else uuid.uuid4(),
        "transferred_on": COURSE_START + timedelta(days=3),
    }
    if to is not None:
        defaults["to_facility_code"] = to.code
    if inmate is not None and inmate.facility_code is not None:
        defaults["from_facility_code"] = inmate.facility_code
    return build(InmateTransferred, defaults, overrides)


def inmate_released(inmate: InmateShared | None = None, **overrides: Any) -> InmateReleased:
    """Freed for good, on the course's last day unless told otherwise."""
    defaults = {**_inmate_ids(inmate), "release_kind": ReleaseKind.FREE, "released_on": COURSE_END}
    return build(InmateReleased, defaults, overrides)


def inmate_temporarily_absent(
    inmate: InmateShared | None = None, **overrides: Any
) -> InmateTemporarilyAbsent:
    defaults = {
        **_inmate_ids(inmate),
        "reason": AbsenceReason.COURT,
        "absent_from": COURSE_START + timedelta(days=1),
        "expected_return": COURSE_START + timedelta(days=1),
    }
    return build(InmateTemporarilyAbsent, defaults, overrides)


def inmate_returned(inmate: InmateShared | None = None, **overrides: Any) -> InmateReturned:
    defaults = {**_inmate_ids(inmate), "returned_on": COURSE_START + timedelta(days=2)}
    return build(InmateReturned, defaults, overrides)


def inmate_died(inmate: InmateShared | None = None, **overrides: Any) -> InmateDied:
    return build(InmateDied, {**_inmate_ids(inmate), "died_on": COURSE_END}, overrides)


def inmates_merged(
    old: InmateShared | uuid.UUID, survivor: InmateShared | uuid.UUID, **overrides: Any
) -> InmatesMerged:
    """``old``'s record merged into ``survivor``'s (the event is keyed by the old one)."""
    defaults = {
        "participant_id": _participant(old),
        "surviving_participant_id": _participant(survivor),
        "merged_on": COURSE_END,
    }
    return build(InmatesMerged, defaults, overrides)


def inmate_consent_withdrawn(
    inmate: InmateShared | uuid.UUID | None = None, **overrides: Any
) -> InmateConsentWithdrawn:
    defaults = {"participant_id": _participant(inmate), "withdrawn_on": COURSE_END}
    return build(InmateConsentWithdrawn, defaults, overrides)


def inmate_erased(inmate: InmateShared | uuid.UUID | None = None, **overrides: Any) -> InmateErased:
    return build(InmateErased, {"participant_id": _participant(inmate)}, overrides)


def _participant(inmate: InmateShared | uuid.UUID | None) -> uuid.UUID:
    if inmate is None:
        return uuid.uuid4()
    return inmate if isinstance(inmate, uuid.UUID) else inmate.participant_id


# --- training events ---------------------------------------------------------------------


def program_published(profile: ProgramProfile = BATIK, **overrides: Any) -> ProgramPublished:
    defaults = {"program_id": uuid.uuid4(), "program_version": 1, **_profile(profile)}
    return build(ProgramPublished, defaults, overrides)


def session_scheduled(
    program: ProgramPublished | None = None,
    facility: FacilityRegistered | None = None,
    **overrides: Any,
) -> SessionScheduled:
    """``program`` planned at ``facility``, 3 to 7 September 2024 unless told otherwise."""
    defaults = {
        "session_id": uuid.uuid4(),
        "program_id": program.program_id if program else uuid.uuid4(),
        "program_version": program.program_version if program else 1,
        "facility_id": facility.facility_id if facility else uuid.uuid4(),
        "start_date": COURSE_START,
        "end_date": COURSE_END,
        "capacity": 25,
    }
    return build(SessionScheduled, defaults, overrides)


def _session_id(session: SessionScheduled | uuid.UUID | None) -> uuid.UUID:
    if session is None:
        return uuid.uuid4()
    return session if isinstance(session, uuid.UUID) else session.session_id


def session_opened(
    session: SessionScheduled | uuid.UUID | None = None, **overrides: Any
) -> SessionOpened:
    defaults = {"session_id": _session_id(session), "opened_on": COURSE_START - timedelta(days=14)}
    return build(SessionOpened, defaults, overrides)


def session_started(
    session: SessionScheduled | uuid.UUID | None = None, **overrides: Any
) -> SessionStarted:
    start = session.start_date if isinstance(session, SessionScheduled) else COURSE_START
    return build(
        SessionStarted, {"session_id": _session_id(session), "started_on": start}, overrides
    )


def session_completed(
    session: SessionScheduled | uuid.UUID | None = None, **overrides: Any
) -> SessionCompleted:
    end = session.end_date if isinstance(session, SessionScheduled) else COURSE_END
    defaults = {
        "session_id": _session_id(session),
        "completed_on": end,
        "completed_count": 0,
        "not_completed_count": 0,
    }
    return build(SessionCompleted, defaults, overrides)


def session_cancelled(
    session: SessionScheduled | uuid.UUID | None = None, **overrides: Any
) -> SessionCancelled:
    defaults = {"session_id": _session_id(session), "reason": "Instruktur berhalangan"}
    return build(SessionCancelled, defaults, overrides)


# Any event of one enrolment: its ids are those of every later event of that enrolment.
Enrolment = ParticipantEnrolled | ParticipantWaitlisted | ParticipantCompleted


def _enrolment_ids(enrolment: Enrolment | None) -> dict[str, uuid.UUID]:
    if enrolment is None:
        return {
            "enrollment_id": uuid.uuid4(),
            "session_id": uuid.uuid4(),
            "participant_id": uuid.uuid4(),
        }
    return {
        "enrollment_id": enrolment.enrollment_id,
        "session_id": enrolment.session_id,
        "participant_id": enrolment.participant_id,
    }


def participant_enrolled(
    session: SessionScheduled | uuid.UUID | None = None,
    inmate: InmateShared | uuid.UUID | None = None,
    **overrides: Any,
) -> ParticipantEnrolled:
    """``inmate`` enrolled in ``session`` the day before it starts."""
    start = session.start_date if isinstance(session, SessionScheduled) else COURSE_START
    defaults = {
        "enrollment_id": uuid.uuid4(),
        "session_id": _session_id(session),
        "participant_id": _participant(inmate),
        "enrolled_on": start - timedelta(days=1),
    }
    return build(ParticipantEnrolled, defaults, overrides)


def participant_waitlisted(
    session: SessionScheduled | uuid.UUID | None = None,
    inmate: InmateShared | uuid.UUID | None = None,
    **overrides: Any,
) -> ParticipantWaitlisted:
    start = session.start_date if isinstance(session, SessionScheduled) else COURSE_START
    defaults = {
        "enrollment_id": uuid.uuid4(),
        "session_id": _session_id(session),
        "participant_id": _participant(inmate),
        "waitlisted_on": start - timedelta(days=7),
        "position": 1,
    }
    return build(ParticipantWaitlisted, defaults, overrides)


def participant_left_waitlist(
    entry: Enrolment | None = None, **overrides: Any
) -> ParticipantLeftWaitlist:
    defaults = {**_enrolment_ids(entry), "reason": "released", "left_on": COURSE_START}
    return build(ParticipantLeftWaitlist, defaults, overrides)


def enrollment_withdrawn(
    enrolment: Enrolment | None = None, **overrides: Any
) -> EnrollmentWithdrawn:
    defaults = {
        **_enrolment_ids(enrolment),
        "reason": WithdrawalReason.RELEASED,
        "withdrawn_on": COURSE_START + timedelta(days=2),
    }
    return build(EnrollmentWithdrawn, defaults, overrides)


def participant_completed(
    enrolment: Enrolment | None = None,
    program: ProgramPublished | None = None,
    **overrides: Any,
) -> ParticipantCompleted:
    """A pass, with the facts of ``program`` (the batik course by default). The course ends
    on 7 September 2024 and, unless ``start_date`` is given, began ``days - 1`` days before
    its ``end_date``."""
    course = program.model_dump() if program else _profile(BATIK) | {"program_id": uuid.uuid4()}
    end: date = overrides.get("end_date", COURSE_END)
    defaults = {
        **_enrolment_ids(enrolment),
        "participant_name": WOMEN[0],
        "program_id": course["program_id"],
        "program_code": course["code"],
        "program_title": course["title"],
        "sector": course["sector"],
        "partner": course["partner"],
        "competency_units": course["competency_units"],
        "hours": course["hours"],
        "start_date": end - timedelta(days=course["days"] - 1),
        "end_date": end,
        "attendance_share": 1.0,
    }
    return build(ParticipantCompleted, defaults, overrides)


def participant_not_completed(
    enrolment: Enrolment | None = None, **overrides: Any
) -> ParticipantNotCompleted:
    defaults = {
        **_enrolment_ids(enrolment),
        "reason": NotCompletedReason.ATTENDANCE_BELOW_MINIMUM,
        "attendance_share": 0.6,
    }
    return build(ParticipantNotCompleted, defaults, overrides)


def outcome_corrected(
    enrolment: Enrolment | None = None,
    outcome: EnrollmentOutcome = EnrollmentOutcome.COMPLETED,
    **overrides: Any,
) -> OutcomeCorrected:
    """The outcome turned to ``outcome`` from the other one."""
    passed = outcome is EnrollmentOutcome.COMPLETED
    defaults = {
        **_enrolment_ids(enrolment),
        "previous_outcome": EnrollmentOutcome.NOT_COMPLETED
        if passed
        else EnrollmentOutcome.COMPLETED,
        "outcome": outcome,
        "not_completed_reason": None if passed else NotCompletedReason.COMPETENCIES_NOT_MET,
        "attendance_share": 0.9,
        "reason": "Absensi salah input",
        "corrected_on": COURSE_END + timedelta(days=7),
    }
    return build(OutcomeCorrected, defaults, overrides)


def readiness_recorded(enrolment: Enrolment | None = None, **overrides: Any) -> ReadinessRecorded:
    """A complete checklist: identity card, bank account, NIB and starter tools."""
    defaults = {
        **_enrolment_ids(enrolment),
        "identity_card": True,
        "bank_account": True,
        "nib": True,
        "starter_tools": True,
        "recorded_on": COURSE_END + timedelta(days=14),
    }
    return build(ReadinessRecorded, defaults, overrides)


def follow_up_recorded(enrolment: Enrolment | None = None, **overrides: Any) -> FollowUpRecorded:
    """The 3-month follow-up: a business with its NIB."""
    defaults = {
        **_enrolment_ids(enrolment),
        "checkpoint_months": 3,
        "situation": FollowUpSituation.BUSINESS_STARTED_WITH_NIB,
        "recorded_on": date(2025, 4, 2),
    }
    return build(FollowUpRecorded, defaults, overrides)


# --- certification events -----------------------------------------------------------------


def certificate_number(year: int, n: int) -> str:
    return f"IKMA/{year}/{n:06d}"


def certificate_issued(of: Enrolment | None = None, **overrides: Any) -> CertificateIssued:
    """The certificate of a completion (issued the day after the course ended), or of an
    enrolment whose completion the test does not build."""
    completion = participant_completed() if of is None else of
    if isinstance(completion, ParticipantCompleted):
        program_id, issued_on = completion.program_id, completion.end_date + timedelta(days=1)
    else:
        program_id, issued_on = uuid.uuid4(), COURSE_END + timedelta(days=1)
    defaults = {
        "certificate_id": uuid.uuid4(),
        "number": certificate_number(issued_on.year, 1),
        "participant_id": completion.participant_id,
        "session_id": completion.session_id,
        "enrollment_id": completion.enrollment_id,
        "program_id": program_id,
        "issued_on": issued_on,
    }
    return build(CertificateIssued, defaults, overrides)


def certificate_revoked(
    certificate: CertificateIssued | CertificateReissued | None = None, **overrides: Any
) -> CertificateRevoked:
    if certificate is None:
        certificate = certificate_issued()
    defaults = {
        "certificate_id": certificate.certificate_id,
        "number": certificate.number,
        "enrollment_id": certificate.enrollment_id,
        "revoked_on": certificate.issued_on + timedelta(days=7),
        "kind": CertificateRevocationKind.REVOKED,
    }
    return build(CertificateRevoked, defaults, overrides)


def certificate_reissued(
    certificate: CertificateIssued | None = None, **overrides: Any
) -> CertificateReissued:
    """A corrected certificate under a new number, replacing ``certificate``."""
    if certificate is None:
        certificate = certificate_issued()
    defaults = {
        "certificate_id": uuid.uuid4(),
        "number": certificate.number + "-R",
        "replaces_certificate_id": certificate.certificate_id,
        "replaces_number": certificate.number,
        "participant_id": certificate.participant_id,
        "session_id": certificate.session_id,
        "enrollment_id": certificate.enrollment_id,
        "program_id": certificate.program_id,
        "issued_on": certificate.issued_on + timedelta(days=7),
    }
    return build(CertificateReissued, defaults, overrides)


def certificate_superseded(
    certificate: CertificateIssued, reissued: CertificateReissued, **overrides: Any
) -> CertificateRevoked:
    """The revocation that goes with ``reissued``: the old certificate is replaced."""
    defaults = {
        "revoked_on": reissued.issued_on,
        "kind": CertificateRevocationKind.SUPERSEDED,
        "replaced_by_certificate_id": reissued.certificate_id,
    }
    return certificate_revoked(certificate, **{**defaults, **overrides})


# --- request bodies: what staff send to create an entity -----------------------------------


def facility_body(profile: FacilityProfile = CIPINANG, **overrides: Any) -> dict[str, Any]:
    """``POST /api/v1/facilities`` (registry)."""
    body = {
        **_profile(profile),
        "kind": profile.kind.value,
        "facility_class": profile.facility_class.value,
    }
    return {**body, **overrides}


def inmate_body(facility_id: str | uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """``POST /api/v1/inmates`` (registry): a man near release who consents to both."""
    body = {
        "registration_number": f"BI.{uuid.uuid4().hex[:8].upper()}",
        "full_name": MEN[0],
        "nik": "3175011504900001",
        "sex": "M",
        "date_of_birth": "1990-04-15",
        "facility_id": str(facility_id),
        "admission_date": "2022-10-01",
        "expected_release_date": "2025-01-02",
        "consent": {"training": True, "data_sharing": True},
    }
    return {**body, **overrides}


def program_body(profile: ProgramProfile = BATIK, **overrides: Any) -> dict[str, Any]:
    """``POST /api/v1/programs`` (training)."""
    body = _profile(profile)
    body["competency_units"] = [u.model_dump() for u in profile.competency_units]
    return {**body, **overrides}


def session_body(
    program_id: str | uuid.UUID, facility_id: str | uuid.UUID, **overrides: Any
) -> dict[str, Any]:
    """``POST /api/v1/sessions`` (training): 3 to 7 September 2024, taught by YBI."""
    body = {
        "program_id": str(program_id),
        "facility_id": str(facility_id),
        "start_date": COURSE_START.isoformat(),
        "end_date": COURSE_END.isoformat(),
        "capacity": 25,
        "instructors": [{"name": "Instruktur YBI", "institution": "Yayasan Batik Indonesia"}],
    }
    return {**body, **overrides}


# --- histories ------------------------------------------------------------------------------


def facility_with_inmates(
    n: int, profile: FacilityProfile = CIPINANG, **inmate_overrides: Any
) -> tuple[FacilityRegistered, list[InmateShared]]:
    """A facility and ``n`` consenting inmates held there (women in a women's prison)."""
    facility = facility_registered(profile)
    sex = Sex.FEMALE if profile.kind is FacilityKind.LAPAS_PEREMPUAN else Sex.MALE
    inmates = [
        inmate_shared(
            facility, **{"full_name": person_name(i, sex), "sex": sex, **inmate_overrides}
        )
        for i in range(n)
    ]
    return facility, inmates


@dataclass
class Course:
    """One session and what happened in it, each list in the order it happened."""

    facility: FacilityRegistered
    inmates: list[InmateShared]
    program: ProgramPublished
    session: SessionScheduled
    enrolments: list[ParticipantEnrolled]
    completions: list[ParticipantCompleted] = field(default_factory=list)
    certificates: list[CertificateIssued] = field(default_factory=list)

    def events(self) -> list[Event]:
        """Everything, in the order the services would publish it."""
        return [
            self.facility,
            *self.inmates,
            self.program,
            self.session,
            *self.enrolments,
            *self.completions,
            *self.certificates,
        ]


def session_with_enrolments(
    facility: FacilityRegistered,
    inmates: Sequence[InmateShared],
    program: ProgramPublished | None = None,
    **session_overrides: Any,
) -> Course:
    """``program`` (the batik course by default) scheduled at ``facility``, every one of
    ``inmates`` enrolled."""
    program = program or program_published()
    session = session_scheduled(program, facility, **session_overrides)
    enrolments = [participant_enrolled(session, inmate) for inmate in inmates]
    return Course(facility, list(inmates), program, session, enrolments)


def completed_course(
    n: int = 3,
    profile: FacilityProfile = CIPINANG,
    program: ProgramPublished | None = None,
    **session_overrides: Any,
) -> Course:
    """``n`` inmates of a facility through a whole course: every one passed and certified."""
    facility, inmates = facility_with_inmates(n, profile)
    course = session_with_enrolments(facility, inmates, program, **session_overrides)
    end = course.session.end_date
    for i, (inmate, enrolment) in enumerate(zip(inmates, course.enrolments, strict=True)):
        done = participant_completed(
            enrolment,
            course.program,
            participant_name=inmate.full_name,
            start_date=course.session.start_date,
            end_date=end,
        )
        course.completions.append(done)
        course.certificates.append(
            certificate_issued(done, number=certificate_number(end.year, i + 1))
        )
    return course
