"""The event catalogue: every event any service publishes, as versioned pydantic models.

This module is the contract between the ministries. Events carry the minimal facts a
consumer needs (carried state), never the NIK and never offence data; people are named by a
pseudonymous ``participant_id`` issued by the registry.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from bekal.shared.events import topics
from bekal.shared.events.base import Event, EventRegistry
from bekal.shared.events.personal import Personal, key_owner

catalogue = EventRegistry()


class FacilityKind(StrEnum):
    LAPAS = "lapas"
    RUTAN = "rutan"
    LPKA = "lpka"
    LAPAS_PEREMPUAN = "lapas_perempuan"


class FacilityClass(StrEnum):
    I = "I"  # noqa: E741 - the official class name
    IIA = "IIA"
    IIB = "IIB"
    III = "III"


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"


class ReleaseKind(StrEnum):
    """Permanent releases: each ends any course the person is enrolled in."""

    FREE = "free"
    PAROLE = "parole"
    CONDITIONAL = "conditional"


class AbsenceReason(StrEnum):
    """Temporary absences: the person comes back, so a course goes on."""

    COURT = "court"
    HOSPITAL = "hospital"
    LEAVE = "leave"
    OTHER = "other"


class WithdrawalReason(StrEnum):
    RELEASED = "released"
    TRANSFERRED = "transferred"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OTHER = "other"


class NotCompletedReason(StrEnum):
    ATTENDANCE_BELOW_MINIMUM = "attendance_below_minimum"
    COMPETENCIES_NOT_MET = "competencies_not_met"


# --- registry (corrections) ---------------------------------------------------------------


class _FacilityEvent(Event):
    topic: ClassVar[str] = topics.REGISTRY_FACILITIES
    aggregate_field: ClassVar[str] = "facility_id"

    facility_id: uuid.UUID
    code: str
    name: str
    kind: FacilityKind
    facility_class: FacilityClass
    province: str
    regional_office: str
    capacity: int = Field(ge=0)
    active: bool


@catalogue.register
class FacilityRegistered(_FacilityEvent):
    """A facility was added to the registry; carries its whole state."""

    event_name: ClassVar[str] = "facility.registered"


@catalogue.register
class FacilityUpdated(_FacilityEvent):
    """A facility's details or active flag changed; carries its whole new state."""

    event_name: ClassVar[str] = "facility.updated"


class _InmateEvent(Event):
    topic: ClassVar[str] = topics.REGISTRY_INMATES
    aggregate_field: ClassVar[str] = "participant_id"

    participant_id: uuid.UUID = Field(description="Pseudonymous id; not derived from the NIK")


@catalogue.register
class InmateSharedV1(_InmateEvent):
    """An inmate gave consent to training and to sharing the minimum with the industry side.

    Superseded by version 2, which seals the name and birth year with the person's key: this
    version carried them in the clear. Readers still accept it (a consumer upcasts it to
    version 2) until the history is re-keyed (docs/runbook.md).
    """

    event_name: ClassVar[str] = "inmate.shared"

    full_name: str = Field(description="Needed on the certificate")
    sex: Sex
    birth_year: int = Field(ge=1900, le=2100)
    facility_id: uuid.UUID
    admission_date: date
    expected_release_date: date | None
    facility_code: str | None = Field(
        default=None, description="Added in v1 (optional): the facility code; older events lack it"
    )

    def upcast(self) -> InmateShared:
        return InmateShared.model_validate(self.model_dump())


@catalogue.register
class InmateShared(Personal, _InmateEvent):
    """An inmate gave consent to training and to sharing the minimum with the industry side.

    Published when consent is complete; only shared people ever appear on this topic. Published
    again, whole, when what it carries changes (a new expected release date): consumers keep the
    latest, so applying it twice changes nothing. The name and birth year travel sealed with the
    person's key (``personal``); sex stays in the clear, as reporting's figures are by sex.
    """

    event_name: ClassVar[str] = "inmate.shared"
    version: ClassVar[int] = 2
    personal_fields: ClassVar[tuple[str, ...]] = ("full_name", "birth_year")

    # Sealed in ``personal``; set here once opened (None when erased or withheld).
    full_name: SkipJsonSchema[str | None] = Field(default=None, exclude=True)
    birth_year: SkipJsonSchema[int | None] = Field(default=None, ge=1900, le=2100, exclude=True)
    sex: Sex
    facility_id: uuid.UUID
    admission_date: date
    expected_release_date: date | None
    facility_code: str | None = Field(default=None, description="The facility code")


@catalogue.register
class InmateTransferred(_InmateEvent):
    """Moved permanently to another facility."""

    event_name: ClassVar[str] = "inmate.transferred"

    from_facility_id: uuid.UUID
    to_facility_id: uuid.UUID
    transferred_on: date
    from_facility_code: str | None = Field(
        default=None, description="Added in v1 (optional); older events carry only the ids"
    )
    to_facility_code: str | None = Field(
        default=None, description="Added in v1 (optional); older events carry only the ids"
    )


@catalogue.register
class InmateReleased(_InmateEvent):
    """Permanently released (free, parole or conditional release): any course ends."""

    event_name: ClassVar[str] = "inmate.released"

    facility_id: uuid.UUID
    release_kind: ReleaseKind
    released_on: date


@catalogue.register
class InmateTemporarilyAbsent(_InmateEvent):
    """Left the facility for a while (court, hospital, leave): a course goes on."""

    event_name: ClassVar[str] = "inmate.temporarily_absent"

    facility_id: uuid.UUID
    reason: AbsenceReason
    absent_from: date
    expected_return: date | None = None


@catalogue.register
class InmateReturned(_InmateEvent):
    """Came back from a temporary absence."""

    event_name: ClassVar[str] = "inmate.returned"

    facility_id: uuid.UUID
    returned_on: date


@catalogue.register
class InmateDied(_InmateEvent):
    """Died in custody: any course ends (a permanent end, like a release)."""

    event_name: ClassVar[str] = "inmate.died"

    facility_id: uuid.UUID
    died_on: date


@catalogue.register
class InmatesMerged(_InmateEvent):
    """Two records were found to be the same person and merged.

    ``participant_id`` is the record that no longer exists (the event is keyed by it, after
    its own earlier events); everything held under it now belongs to
    ``surviving_participant_id``, which stays a shared id.
    """

    event_name: ClassVar[str] = "inmate.merged"

    surviving_participant_id: uuid.UUID
    merged_on: date


@catalogue.register
class InmateConsentWithdrawn(_InmateEvent):
    """Consent to training or to sharing was withdrawn: every other service anonymises the
    person (no name kept) and any open enrolment ends; counts may be kept without the name."""

    event_name: ClassVar[str] = "inmate.consent_withdrawn"

    withdrawn_on: date


@catalogue.register
class InmateErased(_InmateEvent):
    """An erasure request under the personal data protection law was granted: every other
    service anonymises the person. Carries the participant id only."""

    event_name: ClassVar[str] = "inmate.erased"


@catalogue.register
class PersonKeyPublishedV1(Event):
    """A person's data key, keyed by the participant id: superseded by version 2, keyed by the
    key's id (kid) so that a person may have several generations. Its records stay on the
    topic; a reader takes one as the 1st generation, whose kid is the participant id."""

    topic: ClassVar[str] = topics.REGISTRY_PERSON_KEYS
    event_name: ClassVar[str] = "person_key.published"
    aggregate_field: ClassVar[str] = "participant_id"

    participant_id: uuid.UUID = Field(description="The person, and the key's id (kid)")
    alg: Literal["A256GCM"] = Field(default="A256GCM", description="AES-256-GCM")
    key: str = Field(description="The 256-bit key, base64url without padding")

    def upcast(self) -> PersonKeyPublished:
        return PersonKeyPublished.model_validate(self.model_dump())


@catalogue.register
class PersonKeyDestroyedV1(Event):
    """The tombstone of a key keyed by the participant id: superseded by version 2 (by kid)."""

    topic: ClassVar[str] = topics.REGISTRY_PERSON_KEYS
    event_name: ClassVar[str] = "person_key.destroyed"
    aggregate_field: ClassVar[str] = "participant_id"
    tombstone: ClassVar[bool] = True

    participant_id: uuid.UUID

    def upcast(self) -> PersonKeyDestroyed:
        return PersonKeyDestroyed.model_validate(self.model_dump())


class _PersonKeyRecord(Event):
    """A record of registry.person-keys keyed by the key's id (kid), so that compaction keeps
    each generation of a person's key, or its tombstone, apart from the others."""

    topic: ClassVar[str] = topics.REGISTRY_PERSON_KEYS
    version: ClassVar[int] = 2
    aggregate_field: ClassVar[str] = "kid"

    participant_id: uuid.UUID = Field(description="The person whose key it is")
    kid: str = Field(
        description=(
            "The key's id, and the record's key: the participant id for the person's first "
            "key (as every version 1 record's), '<participant id>.<generation>' for each later "
            "one (a consent given again after a withdrawal)"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _first_generation_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kid") is None and "participant_id" in data:
            return {**data, "kid": str(data["participant_id"])}
        return data

    @model_validator(mode="after")
    def _kid_is_the_persons(self) -> _PersonKeyRecord:
        if key_owner(self.kid)[0] != str(self.participant_id):
            raise ValueError(f"key {self.kid!r} is not one of {self.participant_id}'s")
        return self


@catalogue.register
class PersonKeyPublished(_PersonKeyRecord):
    """A person's data key, which seals the personal fields of their events (crypto-shredding).

    On the compacted topic registry.person-keys, keyed by the kid, before the first event it
    seals. Read only by the services that need names (training, certification). A person has
    at most one live key; the one of the highest generation held is the one to seal with.
    """

    event_name: ClassVar[str] = "person_key.published"

    alg: Literal["A256GCM"] = Field(default="A256GCM", description="AES-256-GCM")
    key: str = Field(description="The 256-bit key, base64url without padding")


@catalogue.register
class PersonKeyDestroyed(_PersonKeyRecord):
    """The key is destroyed (the person erased, or their consent withdrawn): a tombstone (the
    record's value is null), keyed by the kid.

    Compaction then removes the key from the topic; every reader forgets its copy at once.
    """

    event_name: ClassVar[str] = "person_key.destroyed"
    tombstone: ClassVar[bool] = True


# --- training (industry) ------------------------------------------------------------------


class CompetencyUnit(BaseModel):
    """A unit of competency, e.g. a batik cap technique (a value inside events, not an event)."""

    model_config = ConfigDict(frozen=True)

    code: str
    title: str


@catalogue.register
class ProgramPublished(Event):
    """A course design was created or a new version of it published."""

    topic: ClassVar[str] = topics.TRAINING_PROGRAMS
    event_name: ClassVar[str] = "program.published"
    aggregate_field: ClassVar[str] = "program_id"

    program_id: uuid.UUID
    program_version: int = Field(ge=1)
    code: str
    title: str
    sector: str
    partner: str | None
    days: int = Field(ge=1)
    hours: int = Field(ge=1)
    min_attendance_share: float = Field(ge=0, le=1)
    competency_units: list[CompetencyUnit]


class _SessionEvent(Event):
    topic: ClassVar[str] = topics.TRAINING_SESSIONS
    aggregate_field: ClassVar[str] = "session_id"

    session_id: uuid.UUID


@catalogue.register
class SessionScheduled(_SessionEvent):
    """A program was planned at a facility on given dates."""

    event_name: ClassVar[str] = "session.scheduled"

    program_id: uuid.UUID
    program_version: int
    facility_id: uuid.UUID
    start_date: date
    end_date: date
    capacity: int = Field(ge=1)


@catalogue.register
class SessionOpened(_SessionEvent):
    """Nominations are accepted: from now on people can be enrolled (or queued) for the session."""

    event_name: ClassVar[str] = "session.opened"

    opened_on: date


@catalogue.register
class SessionStarted(_SessionEvent):
    event_name: ClassVar[str] = "session.started"

    started_on: date


@catalogue.register
class SessionCompleted(_SessionEvent):
    """The session was closed; one ParticipantCompleted/NotCompleted per participant precedes it."""

    event_name: ClassVar[str] = "session.completed"

    completed_on: date
    completed_count: int = Field(ge=0)
    not_completed_count: int = Field(ge=0)


@catalogue.register
class SessionCancelled(_SessionEvent):
    event_name: ClassVar[str] = "session.cancelled"

    reason: str


class _EnrollmentEvent(Event):
    topic: ClassVar[str] = topics.TRAINING_ENROLLMENTS
    aggregate_field: ClassVar[str] = "enrollment_id"

    enrollment_id: uuid.UUID
    session_id: uuid.UUID
    participant_id: uuid.UUID


@catalogue.register
class ParticipantEnrolled(_EnrollmentEvent):
    event_name: ClassVar[str] = "enrollment.enrolled"

    enrolled_on: date


@catalogue.register
class EnrollmentWithdrawn(_EnrollmentEvent):
    event_name: ClassVar[str] = "enrollment.withdrawn"

    reason: WithdrawalReason
    withdrawn_on: date
    # Set when the enrolment ended because the registry merged two records of one person who
    # were both in this session: the person's one enrolment is now this other one.
    merged_into_enrollment_id: uuid.UUID | None = None


@catalogue.register
class ParticipantCompletedV1(_EnrollmentEvent):
    """Passed: the facts a certificate needs. It names no facility, on purpose.

    Superseded by version 2, which seals the name with the person's key; readers upcast it.
    """

    event_name: ClassVar[str] = "enrollment.completed"

    participant_name: str
    program_id: uuid.UUID
    program_code: str
    program_title: str
    sector: str
    partner: str | None
    competency_units: list[CompetencyUnit]
    hours: int
    start_date: date
    end_date: date
    attendance_share: float

    def upcast(self) -> ParticipantCompleted:
        return ParticipantCompleted.model_validate(self.model_dump())


@catalogue.register
class ParticipantCompleted(Personal, _EnrollmentEvent):
    """Passed: the facts a certificate needs. It names no facility, on purpose.

    The name (for the certificate) travels sealed with the person's key (``personal``).
    """

    event_name: ClassVar[str] = "enrollment.completed"
    version: ClassVar[int] = 2
    personal_fields: ClassVar[tuple[str, ...]] = ("participant_name",)

    # Sealed in ``personal``; set here once opened (None when erased or withheld).
    participant_name: SkipJsonSchema[str | None] = Field(default=None, exclude=True)
    program_id: uuid.UUID
    program_code: str
    program_title: str
    sector: str
    partner: str | None
    competency_units: list[CompetencyUnit]
    hours: int
    start_date: date
    end_date: date
    attendance_share: float


@catalogue.register
class ParticipantNotCompleted(_EnrollmentEvent):
    event_name: ClassVar[str] = "enrollment.not_completed"

    reason: NotCompletedReason
    attendance_share: float


class EnrollmentOutcome(StrEnum):
    """The outcome of a completed session for one participant."""

    COMPLETED = "completed"
    NOT_COMPLETED = "not_completed"


class FollowUpSituation(StrEnum):
    """A graduate's situation at a follow-up after release (what the WUB targets count)."""

    BUSINESS_STARTED_WITH_NIB = "business_started_with_nib"
    BUSINESS_STARTED_WITHOUT_NIB = "business_started_without_nib"
    EMPLOYED_BY_IKM = "employed_by_ikm"
    NOT_WORKING = "not_working"
    UNREACHABLE = "unreachable"


@catalogue.register
class ParticipantWaitlisted(_EnrollmentEvent):
    """The session was full: the person joined its waiting list.

    Not an enrolment: a ParticipantEnrolled with the same enrollment_id follows if the person
    moves up when a place frees, or ParticipantLeftWaitlist if they never do.
    """

    event_name: ClassVar[str] = "enrollment.waitlisted"

    waitlisted_on: date
    position: int = Field(ge=1, description="Place on the waiting list when joining")


@catalogue.register
class ParticipantLeftWaitlist(_EnrollmentEvent):
    """A waiting-list entry ended without an enrolment (released, transferred, session closed)."""

    event_name: ClassVar[str] = "enrollment.left_waitlist"

    reason: str
    left_on: date


@catalogue.register
class OutcomeCorrected(_EnrollmentEvent):
    """A completed session's outcome for one participant was corrected by an administrator.

    Carries the new outcome; when it becomes ``completed`` a ParticipantCompleted with the same
    enrollment_id follows (so a certificate can be issued).
    """

    event_name: ClassVar[str] = "enrollment.outcome_corrected"

    previous_outcome: EnrollmentOutcome
    outcome: EnrollmentOutcome
    not_completed_reason: NotCompletedReason | None = None
    attendance_share: float
    reason: str
    corrected_on: date


@catalogue.register
class ReadinessRecorded(_EnrollmentEvent):
    """A graduate's readiness checklist before release (papers and tools to trade)."""

    event_name: ClassVar[str] = "enrollment.readiness_recorded"

    identity_card: bool
    bank_account: bool
    nib: bool = Field(description="Business registration number (Nomor Induk Berusaha)")
    starter_tools: bool
    recorded_on: date


@catalogue.register
class FollowUpRecorded(_EnrollmentEvent):
    """A field officer's follow-up of a graduate about 3, 6 or 12 months after release."""

    event_name: ClassVar[str] = "enrollment.follow_up_recorded"

    checkpoint_months: int = Field(description="3, 6 or 12")
    situation: FollowUpSituation
    recorded_on: date


# --- certification (industry) -------------------------------------------------------------


@catalogue.register
class CertificateIssued(Event):
    topic: ClassVar[str] = topics.CERTIFICATION_CERTIFICATES
    event_name: ClassVar[str] = "certificate.issued"
    aggregate_field: ClassVar[str] = "certificate_id"

    certificate_id: uuid.UUID
    number: str
    participant_id: uuid.UUID
    session_id: uuid.UUID
    enrollment_id: uuid.UUID
    program_id: uuid.UUID
    issued_on: date


class CertificateRevocationKind(StrEnum):
    """Why a certificate stopped being valid (the staff's own words are not published)."""

    REVOKED = "revoked"  # withdrawn: the person is no longer certified for that enrolment
    SUPERSEDED = "superseded"  # corrected: re-issued under a new number (CertificateReissued)


class CertificateRevocationCause(StrEnum):
    """What led the issuer itself to revoke (absent: a decision of certification staff)."""

    OUTCOME_CORRECTED = "outcome_corrected"  # training corrected the outcome to not completed
    ENROLLMENT_MERGED = "enrollment_merged"  # the same person's other enrolment carries it now


@catalogue.register
class CertificateRevoked(Event):
    """A certificate is no longer valid. ``superseded``: a corrected one replaces it."""

    topic: ClassVar[str] = topics.CERTIFICATION_CERTIFICATES
    event_name: ClassVar[str] = "certificate.revoked"
    aggregate_field: ClassVar[str] = "certificate_id"

    certificate_id: uuid.UUID
    number: str
    enrollment_id: uuid.UUID
    revoked_on: date
    kind: CertificateRevocationKind
    replaced_by_certificate_id: uuid.UUID | None = None
    cause: CertificateRevocationCause | None = None


@catalogue.register
class CertificateReissued(Event):
    """A corrected certificate under a new number replaces an earlier one (same enrolment)."""

    topic: ClassVar[str] = topics.CERTIFICATION_CERTIFICATES
    event_name: ClassVar[str] = "certificate.reissued"
    aggregate_field: ClassVar[str] = "certificate_id"

    certificate_id: uuid.UUID
    number: str
    replaces_certificate_id: uuid.UUID
    replaces_number: str
    participant_id: uuid.UUID
    session_id: uuid.UUID
    enrollment_id: uuid.UUID
    program_id: uuid.UUID
    issued_on: date
