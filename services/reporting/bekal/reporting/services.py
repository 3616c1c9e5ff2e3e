"""Use cases: fold events into the projections, and compute indicators with SQL aggregation."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, reduce
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    case,
    func,
    literal_column,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bekal.reporting import privacy
from bekal.reporting.domain import (
    Counters,
    Dimension,
    EnrollmentStatus,
    IndicatorGroup,
    SessionStatus,
    TargetProgress,
    group_keys,
    is_later_follow_up,
    is_newer,
    later,
    merge_enrollment_status,
    merge_session_status,
    progress_by_year,
    ready_to_trade,
    reporting_year,
    sort_groups,
    withdrawn_column,
)
from bekal.reporting.models import (
    STATE_ROW_ID,
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
    TargetChange,
    TrainingSession,
    WaitlistEntry,
)
from bekal.reporting.privacy import OPEN_DATA_KEYS, PublicTables
from bekal.shared.db import among
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CertificateReissued,
    CertificateRevocationKind,
    CertificateRevoked,
    FacilityRegistered,
    FacilityUpdated,
    FollowUpRecorded,
    FollowUpSituation,
    InmateReleased,
    InmateShared,
    InmatesMerged,
    ParticipantLeftWaitlist,
    ParticipantWaitlisted,
    ProgramPublished,
    ReadinessRecorded,
    SessionScheduled,
    WithdrawalReason,
)

log = structlog.get_logger(__name__)

# Namespace of the anonymous ids erased people's enrolments are filed under.
ANONYMOUS_NAMESPACE = uuid.UUID("6f1f3c2e-2b1a-4b8e-9a57-2f0f6f1c0b7d")


# --- projections ------------------------------------------------------------------------------


async def apply_facility(
    session: AsyncSession, *, event: FacilityRegistered | FacilityUpdated, at: datetime | None
) -> None:
    """Both facility events carry the whole state: keep the newest."""
    row = await session.get(Facility, event.facility_id)
    if row is None:
        row = Facility(id=event.facility_id)
        session.add(row)
    elif not is_newer(at, row.as_of):
        return
    row.code = event.code
    row.name = event.name
    row.kind = event.kind.value
    row.facility_class = event.facility_class.value
    row.province = event.province
    row.regional_office = event.regional_office
    row.active = event.active
    row.as_of = at


async def apply_program(session: AsyncSession, *, event: ProgramPublished) -> None:
    """Reports label a program by its latest version; an older version arriving late is ignored."""
    row = await session.get(Program, event.program_id)
    if row is None:
        row = Program(id=event.program_id)
        session.add(row)
    elif row.version > event.program_version:
        return
    row.version = event.program_version
    row.code = event.code
    row.title = event.title
    row.sector = event.sector
    row.partner = event.partner
    row.hours = event.hours


async def schedule_session(session: AsyncSession, *, event: SessionScheduled) -> None:
    row = await session.get(TrainingSession, event.session_id)
    if row is None:
        row = TrainingSession(id=event.session_id)
        session.add(row)
    row.program_id = event.program_id
    row.program_version = event.program_version
    row.facility_id = event.facility_id
    row.start_date = event.start_date
    row.end_date = event.end_date
    row.year = reporting_year(event.end_date)
    row.end_day = event.end_date.toordinal()
    row.capacity = event.capacity
    row.status = merge_session_status(row.status, SessionStatus.PLANNED).value


async def change_session_status(
    session: AsyncSession, *, session_id: uuid.UUID, status: SessionStatus
) -> None:
    """A status event may come before the scheduling one: keep a row with only what is known."""
    row = await session.get(TrainingSession, session_id)
    if row is None:
        session.add(TrainingSession(id=session_id, status=status.value))
        return
    row.status = merge_session_status(row.status, status).value


@dataclass(frozen=True)
class EnrollmentFact:
    """What one enrolment event says about its enrolment (see ``record_enrollments``)."""

    enrollment_id: uuid.UUID
    session_id: uuid.UUID
    participant_id: uuid.UUID
    status: EnrollmentStatus
    withdrawal_reason: str | None = None
    not_completed_reason: str | None = None
    program_id: uuid.UUID | None = None
    end_date: date | None = None
    sector: str | None = None


async def record_enrollment(
    session: AsyncSession,
    *,
    enrollment_id: uuid.UUID,
    session_id: uuid.UUID,
    participant_id: uuid.UUID,
    status: EnrollmentStatus,
    withdrawal_reason: str | None = None,
    not_completed_reason: str | None = None,
    program_id: uuid.UUID | None = None,
    end_date: date | None = None,
    sector: str | None = None,
) -> None:
    """Upsert one enrolment from any of its events; an outcome is never undone by a late enrol."""
    await record_enrollments(
        session,
        facts=[
            EnrollmentFact(
                enrollment_id=enrollment_id,
                session_id=session_id,
                participant_id=participant_id,
                status=status,
                withdrawal_reason=withdrawal_reason,
                not_completed_reason=not_completed_reason,
                program_id=program_id,
                end_date=end_date,
                sector=sector,
            )
        ],
    )


async def record_enrollments(session: AsyncSession, *, facts: Sequence[EnrollmentFact]) -> None:
    """Apply enrolment facts in order, as ``record_enrollment`` would one by one.

    One statement reads the enrolments already known; the people of new ones are resolved
    together (merges and erasures do not change between facts of the same batch); the rest is
    done in order in memory and written when the transaction flushes. A later fact for the
    same enrolment in the same batch sees the row as the earlier one left it.
    """
    if not facts:
        return
    rows: dict[uuid.UUID, Enrollment] = {
        row.id: row
        for row in await session.scalars(
            select(Enrollment).where(
                among(session, Enrollment.id, {f.enrollment_id for f in facts})
            )
        )
    }
    new = [f for f in facts if f.enrollment_id not in rows]
    people = await identities(session, {f.participant_id for f in new}) if new else None
    for fact in facts:
        row = rows.get(fact.enrollment_id)
        if row is None:
            assert people is not None
            row = Enrollment(
                id=fact.enrollment_id,
                session_id=fact.session_id,
                participant_id=people.file_under(fact.participant_id, fact.enrollment_id),
            )
            session.add(row)
            rows[row.id] = row
            current = None
        else:
            current = row.status
        merged = merge_enrollment_status(current, fact.status)
        row.status = merged.value
        if merged is fact.status and fact.status is not EnrollmentStatus.ENROLLED:
            row.withdrawal_reason = fact.withdrawal_reason
            row.not_completed_reason = fact.not_completed_reason
        if fact.program_id is not None:
            row.program_id = fact.program_id
        if fact.end_date is not None:
            row.year = reporting_year(fact.end_date)
            row.end_day = fact.end_date.toordinal()
        if fact.sector is not None:
            row.sector = fact.sector


async def record_certificates(
    session: AsyncSession, *, events: Sequence[CertificateIssued | CertificateReissued]
) -> None:
    """Certificates are immutable facts, one row each; a re-issued one is another row.

    Applied in order, as one by one: the first event of a certificate id not yet known adds
    its row, any other changes nothing. One statement reads the known ids, the people of the
    new ones are resolved together.
    """
    if not events:
        return
    known = set(
        await session.scalars(
            select(Certificate.id).where(
                among(session, Certificate.id, {e.certificate_id for e in events})
            )
        )
    )
    new: dict[uuid.UUID, CertificateIssued | CertificateReissued] = {}
    for event in events:
        if event.certificate_id not in known:
            new.setdefault(event.certificate_id, event)
    if not new:
        return
    people = await identities(session, {e.participant_id for e in new.values()})
    session.add_all(
        Certificate(
            id=event.certificate_id,
            number=event.number,
            enrollment_id=event.enrollment_id,
            session_id=event.session_id,
            participant_id=people.file_under(event.participant_id, event.enrollment_id),
            program_id=event.program_id,
            issued_on=event.issued_on,
            issued_day=event.issued_on.toordinal(),
        )
        for event in new.values()
    )


async def record_revocation(session: AsyncSession, *, event: CertificateRevoked) -> None:
    if await session.get(CertificateRevocation, event.certificate_id) is not None:
        return
    session.add(
        CertificateRevocation(
            certificate_id=event.certificate_id,
            enrollment_id=event.enrollment_id,
            kind=event.kind.value,
            revoked_on=event.revoked_on,
            replaced_by_id=event.replaced_by_certificate_id,
        )
    )


async def record_follow_up(session: AsyncSession, *, event: FollowUpRecorded) -> None:
    """Keep the latest follow-up (later checkpoint, then later date): the graduate's situation."""
    row = await session.get(Enrollment, event.enrollment_id)
    if row is None:  # the enrolment's own events come first on its partition; guard anyway
        await record_enrollment(
            session,
            enrollment_id=event.enrollment_id,
            session_id=event.session_id,
            participant_id=event.participant_id,
            status=EnrollmentStatus.ENROLLED,
        )
        row = await session.get(Enrollment, event.enrollment_id)
        assert row is not None
    if is_later_follow_up(
        (event.checkpoint_months, event.recorded_on),
        (row.follow_up_checkpoint, row.follow_up_on),
    ):
        row.follow_up_situation = event.situation.value
        row.follow_up_checkpoint = event.checkpoint_months
        row.follow_up_on = event.recorded_on


async def record_readiness(session: AsyncSession, *, event: ReadinessRecorded) -> None:
    """Keep the latest readiness checklist (later date; on a tie, the readier one)."""
    row = await session.get(Enrollment, event.enrollment_id)
    if row is None:
        await record_enrollment(
            session,
            enrollment_id=event.enrollment_id,
            session_id=event.session_id,
            participant_id=event.participant_id,
            status=EnrollmentStatus.ENROLLED,
        )
        row = await session.get(Enrollment, event.enrollment_id)
        assert row is not None
    ready = ready_to_trade(
        identity_card=event.identity_card,
        bank_account=event.bank_account,
        nib=event.nib,
        starter_tools=event.starter_tools,
    )
    if (
        row.readiness_on is None
        or event.recorded_on > row.readiness_on
        or (event.recorded_on == row.readiness_on and ready)
    ):
        row.ready_to_trade = ready
        row.readiness_on = event.recorded_on


async def record_waitlist(
    session: AsyncSession, *, event: ParticipantWaitlisted | ParticipantLeftWaitlist
) -> None:
    """A waiting-list entry, joined or ended (either may arrive first)."""
    row = await session.get(WaitlistEntry, event.enrollment_id)
    if row is None:
        participant_id = await resolve_participant(
            session, participant_id=event.participant_id, enrollment_id=event.enrollment_id
        )
        row = WaitlistEntry(
            id=event.enrollment_id, session_id=event.session_id, participant_id=participant_id
        )
        session.add(row)
    if isinstance(event, ParticipantWaitlisted):
        row.waitlisted_on = event.waitlisted_on
    else:
        row.left_on = event.left_on


# --- people: merges and erasure -----------------------------------------------------------------


def anonymous_id(enrollment_id: uuid.UUID) -> uuid.UUID:
    """The id an erased person's enrolment is filed under: one per enrolment, so the person's
    enrolments can no longer be linked to each other, and the same on every rebuild."""
    return uuid.uuid5(ANONYMOUS_NAMESPACE, f"erased:{enrollment_id}")


# The advisory lock (any number of ours) ordering identity changes against new facts.
_IDENTITY_LOCK = 0x62656B616C


async def identity_lock(session: AsyncSession, *, exclusive: bool) -> None:
    """Order merges and erasures (exclusive) against facts filed under a participant id
    (shared), so a fact committed at the same time as an erasure or a merge is never filed
    under the old id. Replicas apply events concurrently on PostgreSQL; SQLite already takes
    one writer at a time (BEGIN IMMEDIATE). Held to the end of the transaction."""
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {function}(:key)"), {"key": _IDENTITY_LOCK})


async def resolve_participant(
    session: AsyncSession, *, participant_id: uuid.UUID, enrollment_id: uuid.UUID
) -> uuid.UUID:
    """The id to file a new fact under: the survivor of a merge, or anonymous once erased."""
    people = await identities(session, {participant_id})
    return people.file_under(participant_id, enrollment_id)


# Merges may chain; a cycle cannot happen but must not hang either.
_MAX_MERGE_HOPS = 10


@dataclass(frozen=True)
class Identities:
    """Who some participant ids are now: the survivor of each (after merges), and which
    survivors are erased."""

    survivors: dict[uuid.UUID, uuid.UUID]
    erased: frozenset[uuid.UUID]

    def file_under(self, participant_id: uuid.UUID, enrollment_id: uuid.UUID) -> uuid.UUID:
        """The id to file a new fact of this enrolment under: the survivor, or an anonymous
        id once the person is erased."""
        survivor = self.survivors.get(participant_id, participant_id)
        if survivor in self.erased:
            return anonymous_id(enrollment_id)
        return survivor


async def identities(session: AsyncSession, participant_ids: Collection[uuid.UUID]) -> Identities:
    """Resolve many participant ids at once (under the shared identity lock): one statement per
    step of the longest merge chain, one for the erased."""
    await identity_lock(session, exclusive=False)
    links: dict[uuid.UUID, uuid.UUID] = {}
    looked_up: set[uuid.UUID] = set()
    frontier = set(participant_ids)
    for _ in range(_MAX_MERGE_HOPS):
        frontier -= looked_up
        if not frontier:
            break
        looked_up |= frontier
        found = {
            old: survivor
            for old, survivor in await session.execute(
                select(MergedParticipant.id, MergedParticipant.surviving_id).where(
                    among(session, MergedParticipant.id, frontier)
                )
            )
        }
        links.update(found)
        frontier = set(found.values())
    survivors: dict[uuid.UUID, uuid.UUID] = {}
    for start in participant_ids:
        current = start
        for _ in range(_MAX_MERGE_HOPS):
            if current not in links:
                break
            current = links[current]
        survivors[start] = current
    erased = frozenset(
        await session.scalars(
            select(ErasedParticipant.id).where(
                among(session, ErasedParticipant.id, set(survivors.values()))
            )
        )
    )
    return Identities(survivors=survivors, erased=erased)


async def release_participant(session: AsyncSession, *, event: InmateReleased) -> None:
    people = await identities(session, {event.participant_id})
    participant_id = people.survivors[event.participant_id]
    if participant_id in people.erased:
        return
    row = await session.get(Participant, participant_id)
    if row is None:
        row = Participant(id=participant_id)
        session.add(row)
    row.released_on = event.released_on


async def merge_participants(session: AsyncSession, *, event: InmatesMerged) -> None:
    """Everything filed under the merged id moves to the survivor; counts of enrolments stay."""
    await identity_lock(session, exclusive=True)
    old, survivor = event.participant_id, event.surviving_participant_id
    if old == survivor or await session.get(MergedParticipant, old) is not None:
        return
    session.add(MergedParticipant(id=old, surviving_id=survivor))
    old_row = await session.get(Participant, old)
    if old_row is not None:
        kept = await session.get(Participant, survivor)
        if kept is None:
            session.add(
                Participant(
                    id=survivor,
                    sex=old_row.sex,
                    birth_year=old_row.birth_year,
                    released_on=old_row.released_on,
                )
            )
        await session.delete(old_row)
    await session.flush()
    await session.execute(
        update(Enrollment).where(Enrollment.participant_id == old).values(participant_id=survivor)
    )
    await session.execute(
        update(Certificate).where(Certificate.participant_id == old).values(participant_id=survivor)
    )
    await session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.participant_id == old)
        .values(participant_id=survivor)
    )
    if await session.get(ErasedParticipant, survivor) is not None:
        await erase_participant(session, participant_id=survivor)


async def erase_participant(session: AsyncSession, *, participant_id: uuid.UUID) -> None:
    """Erasure or consent withdrawn: nothing about the person remains, the counts stay.

    Sex and birth year go (their enrolments count under "unknown" sex from now on); each
    enrolment and certificate is re-filed under an anonymous id of its own.
    """
    await identity_lock(session, exclusive=True)
    if await session.get(ErasedParticipant, participant_id) is None:
        session.add(ErasedParticipant(id=participant_id))
    row = await session.get(Participant, participant_id)
    if row is not None:
        await session.delete(row)
    enrollments = (
        await session.scalars(select(Enrollment).where(Enrollment.participant_id == participant_id))
    ).all()
    for enrollment in enrollments:
        enrollment.participant_id = anonymous_id(enrollment.id)
    certificates = (
        await session.scalars(
            select(Certificate).where(Certificate.participant_id == participant_id)
        )
    ).all()
    for certificate in certificates:
        certificate.participant_id = anonymous_id(certificate.enrollment_id)
    entries = (
        await session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.participant_id == participant_id)
        )
    ).all()
    for entry in entries:
        entry.participant_id = anonymous_id(entry.id)


async def record_participants(session: AsyncSession, *, events: Sequence[InmateShared]) -> int:
    """Sex and birth year only: the name the event carries (for certificates) is not kept.

    Shares are applied in order, as one by one; returns how many were ignored (the person
    erased, or merged into another record).

    Three statements read what the whole batch needs (erased, merged, current rows); a later
    share of the same person in the batch wins; rows are written when the transaction flushes.
    """
    if not events:
        return 0
    await identity_lock(session, exclusive=False)
    ids = {e.participant_id for e in events}
    gone = set(
        await session.scalars(
            select(ErasedParticipant.id).where(among(session, ErasedParticipant.id, ids))
        )
    )
    gone |= set(
        await session.scalars(
            select(MergedParticipant.id).where(among(session, MergedParticipant.id, ids - gone))
        )
    )
    rows: dict[uuid.UUID, Participant] = {
        row.id: row
        for row in await session.scalars(
            select(Participant).where(among(session, Participant.id, ids - gone))
        )
    }
    ignored = 0
    for event in events:
        if event.participant_id in gone:
            ignored += 1
            continue
        row = rows.get(event.participant_id)
        if row is None:
            row = Participant(id=event.participant_id)
            session.add(row)
            rows[row.id] = row
        row.sex = event.sex.value
        row.birth_year = event.birth_year
    return ignored


async def advance_data_as_of(session: AsyncSession, *, at: datetime | None) -> None:
    """Data-as-of is the newest event time applied; events arriving out of order never lower it."""
    if at is None:
        return
    state = await session.get(ProjectionState, STATE_ROW_ID, with_for_update=True)
    if state is None:  # the migration makes it; this only guards a hand-made database
        session.add(ProjectionState(id=STATE_ROW_ID, data_as_of=at))
        return
    state.data_as_of = later(state.data_as_of, at)


def newest(times: Iterable[datetime | None]) -> datetime | None:
    """The newest of some event times (unknown ones left out): a batch's data-as-of."""
    return reduce(later, times, None)


# --- indicators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorFilters:
    year: int | None = None
    province: str | None = None
    facility_id: uuid.UUID | None = None
    program_id: uuid.UUID | None = None
    sector: str | None = None
    sex: str | None = None

    def describe(self) -> dict[str, str]:
        """The filters that are set, as text (for file names and headers)."""
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class IndicatorReport:
    group_by: list[Dimension]
    groups: list[IndicatorGroup]
    totals: Counters
    data_as_of: datetime | None


COUNTER_COLUMNS: tuple[str, ...] = (
    "enrolled",
    "withdrawn",
    *[withdrawn_column(r) for r in WithdrawalReason],
    "completed",
    "not_completed",
    "certified",
    "days_to_certificate_count",
    "days_to_certificate_total",
    "graduates_released",
    "graduates_released_ready",
    "waitlisted",
    "waiting",
    "business_with_nib",
    "business_without_nib",
    "employed",
)


def _one() -> Any:
    # Literal SQL, not bound parameters: PostgreSQL cannot infer the type of a parameter that
    # is only summed after a UNION.
    return literal_column("1", Integer)


def _zero() -> Any:
    return literal_column("0", Integer)


def _flag(condition: ColumnElement[bool]) -> Any:
    return case((condition, _one()), else_=_zero())


_WITHOUT_NIB = (FollowUpSituation.BUSINESS_STARTED_WITHOUT_NIB,)
_BUSINESS = (FollowUpSituation.BUSINESS_STARTED_WITH_NIB, *_WITHOUT_NIB)
# Sorts an enrolment whose end is not known yet after every known one.
_NO_DAY = 10**7


def _ranked_enrollments() -> Any:
    """Every enrolment with what its session says (facility, program, year), and for each rule
    about people its place among the person's completed enrolments meeting that rule.

    Indicators about people count each person once, under their first completed enrolment
    meeting the rule (by the day the course ended, then enrolment id). ``nth_*`` counts the
    person's completed enrolments meeting the rule up to this one in that order: 1 on a row
    that meets it makes it the first. All four counts share one window (one sort of the
    enrolments by person and day) instead of a lookup of the person's other enrolments per row.

    Erased people's enrolments carry an anonymous id each, so they count per enrolment.
    """
    s, e = TrainingSession, Enrollment
    completed = e.status == EnrollmentStatus.COMPLETED.value
    # A literal, not a parameter: SQLite shares one sort between windows only when their
    # expressions are identical, and four parameters are four different expressions.
    day = func.coalesce(s.end_day, e.end_day, literal_column(str(_NO_DAY), Integer))

    def rank(rule: ColumnElement[bool]) -> Any:
        # (day, id) orders a person's enrolments strictly: no two rows are peers.
        return func.sum(_flag(completed & rule)).over(
            partition_by=e.participant_id, order_by=(day, e.id), rows=(None, 0)
        )

    return (
        select(
            e.session_id,
            e.participant_id,
            e.status,
            e.withdrawal_reason,
            e.follow_up_situation,
            e.ready_to_trade,
            e.sector,
            s.facility_id.label("facility_id"),
            func.coalesce(s.program_id, e.program_id).label("program_id"),
            func.coalesce(s.year, e.year).label("year"),
            rank(true()).label("nth_completed"),
            rank(e.ready_to_trade.is_(True)).label("nth_ready"),
            rank(_in_situation(e, *_BUSINESS)).label("nth_business"),
            rank(_in_situation(e, FollowUpSituation.EMPLOYED_BY_IKM)).label("nth_employed"),
        )
        .select_from(e)
        .outerjoin(s, s.id == e.session_id)
        .subquery("ranked")
    )


def _in_situation(row: Any, *values: FollowUpSituation) -> ColumnElement[bool]:
    return row.follow_up_situation.in_([v.value for v in values])


def _certified_enrollments() -> Any:
    """One row per enrolment holding a certificate that counts.

    A certificate counts unless revoked; a superseded one counts until its replacement is
    known (then the replacement counts instead), so a correction never makes a gap. The first
    issue date of the enrolment's certificates gives the days from completion to certificate.
    """
    c, r = Certificate, CertificateRevocation
    replacement = aliased(Certificate)
    counts = r.certificate_id.is_(None) | (
        (r.kind == CertificateRevocationKind.SUPERSEDED.value) & replacement.id.is_(None)
    )
    return (
        select(
            c.enrollment_id.label("enrollment_id"),
            func.min(c.session_id).label("session_id"),
            func.min(c.program_id).label("program_id"),
            func.min(c.participant_id).label("participant_id"),
            func.min(c.issued_day).label("first_day"),
        )
        .select_from(c)
        .outerjoin(r, r.certificate_id == c.id)
        # At most one row: a certificate id is the key.
        .outerjoin(replacement, replacement.id == r.replaced_by_id)
        .group_by(c.enrollment_id)
        .having(func.sum(_flag(counts)) > 0)
        .subquery("certified")
    )


@cache  # the same statement every time; building it took longer than PostgreSQL ran it
def _facts() -> Any:
    """One row per enrolment and one per certified enrolment, each placed in its session's groups.

    The session gives facility, program and year; while it is unknown, a completion or a
    certificate still carries its program (and a completion its end date and sector) and counts
    there. Sex comes from the participant (registry.inmates), when shared and not erased.
    """
    s, e, p, person = TrainingSession, Enrollment, Program, Participant
    en = _ranked_enrollments()
    completed = en.c.status == EnrollmentStatus.COMPLETED.value
    released = person.released_on.is_not(None)
    withdrawn_by_reason = [
        _flag(
            (en.c.status == EnrollmentStatus.WITHDRAWN.value) & (en.c.withdrawal_reason == r.value)
        ).label(withdrawn_column(r))
        for r in WithdrawalReason
    ]

    def first(nth: Any) -> ColumnElement[bool]:
        # A person, not an enrolment: counted under their first completed course meeting the
        # rule ``nth`` ranks by, whatever else they took.
        return completed & (nth == 1)

    enrollments = (
        select(
            en.c.session_id.label("session_id"),
            en.c.facility_id.label("facility_id"),
            en.c.program_id.label("program_id"),
            en.c.year.label("year"),
            func.coalesce(p.sector, en.c.sector).label("sector"),
            person.sex.label("sex"),
            _one().label("enrolled"),
            _flag(en.c.status == EnrollmentStatus.WITHDRAWN.value).label("withdrawn"),
            *withdrawn_by_reason,
            _flag(completed).label("completed"),
            _flag(en.c.status == EnrollmentStatus.NOT_COMPLETED.value).label("not_completed"),
            _zero().label("certified"),
            _zero().label("days_to_certificate_count"),
            _zero().label("days_to_certificate_total"),
            _flag(first(en.c.nth_completed) & released).label("graduates_released"),
            _flag(first(en.c.nth_ready) & released & en.c.ready_to_trade.is_(True)).label(
                "graduates_released_ready"
            ),
            _zero().label("waitlisted"),
            _zero().label("waiting"),
            _flag(
                first(en.c.nth_business)
                & _in_situation(en.c, FollowUpSituation.BUSINESS_STARTED_WITH_NIB)
            ).label("business_with_nib"),
            _flag(first(en.c.nth_business) & _in_situation(en.c, *_WITHOUT_NIB)).label(
                "business_without_nib"
            ),
            _flag(
                first(en.c.nth_employed) & _in_situation(en.c, FollowUpSituation.EMPLOYED_BY_IKM)
            ).label("employed"),
        )
        .select_from(en)
        .outerjoin(p, p.id == en.c.program_id)
        .outerjoin(person, person.id == en.c.participant_id)
        .where(en.c.status != EnrollmentStatus.MERGED.value)
    )
    cert = _certified_enrollments()
    c_program = func.coalesce(s.program_id, cert.c.program_id)
    # Completion is the session's last day (or the one the completion carried).
    completed_day = func.coalesce(s.end_day, e.end_day)
    days_known = completed_day.is_not(None) & cert.c.first_day.is_not(None)
    certificates = (
        select(
            cert.c.session_id.label("session_id"),
            s.facility_id.label("facility_id"),
            c_program.label("program_id"),
            func.coalesce(s.year, e.year).label("year"),
            func.coalesce(p.sector, e.sector).label("sector"),
            person.sex.label("sex"),
            _zero().label("enrolled"),
            _zero().label("withdrawn"),
            *[_zero().label(withdrawn_column(r)) for r in WithdrawalReason],
            _zero().label("completed"),
            _zero().label("not_completed"),
            _one().label("certified"),
            _flag(days_known).label("days_to_certificate_count"),
            case((days_known, cert.c.first_day - completed_day), else_=_zero()).label(
                "days_to_certificate_total"
            ),
            _zero().label("graduates_released"),
            _zero().label("graduates_released_ready"),
            _zero().label("waitlisted"),
            _zero().label("waiting"),
            _zero().label("business_with_nib"),
            _zero().label("business_without_nib"),
            _zero().label("employed"),
        )
        .select_from(cert)
        .outerjoin(s, s.id == cert.c.session_id)
        .outerjoin(e, e.id == cert.c.enrollment_id)
        .outerjoin(p, p.id == c_program)
        .outerjoin(person, person.id == cert.c.participant_id)
    )
    w = WaitlistEntry
    # Moved up: the same id enrolled (at most one enrolment: the id is its key).
    moved_up = aliased(Enrollment)
    waitlist_counters = {
        "waitlisted": _one(),
        "waiting": _flag(w.left_on.is_(None) & moved_up.id.is_(None)),
    }
    waitlist = (
        select(
            w.session_id.label("session_id"),
            s.facility_id.label("facility_id"),
            s.program_id.label("program_id"),
            s.year.label("year"),
            p.sector.label("sector"),
            person.sex.label("sex"),
            # UNION ALL matches columns by position: the counters in COUNTER_COLUMNS' order.
            *[waitlist_counters.get(name, _zero()).label(name) for name in COUNTER_COLUMNS],
        )
        .select_from(w)
        .outerjoin(moved_up, moved_up.id == w.id)
        .outerjoin(s, s.id == w.session_id)
        .outerjoin(p, p.id == s.program_id)
        .outerjoin(person, person.id == w.participant_id)
    )
    return union_all(enrollments, certificates, waitlist).subquery("facts")


def indicator_query(dimensions: list[Dimension], filters: IndicatorFilters) -> Select[Any]:
    """SELECT <dimension columns>, SUM(<counters>) ... GROUP BY <dimension columns>."""
    facts = _facts()
    f, p = Facility, Program
    session = aliased(TrainingSession)
    columns: dict[Dimension, list[Any]] = {
        Dimension.FACILITY: [
            facts.c.facility_id.label("facility_id"),
            f.code.label("facility_code"),
            f.name.label("facility_name"),
        ],
        Dimension.PROVINCE: [f.province.label("province")],
        Dimension.PROGRAM: [
            facts.c.program_id.label("program_id"),
            p.code.label("program_code"),
            p.title.label("program_title"),
        ],
        Dimension.YEAR: [facts.c.year.label("year")],
        Dimension.SECTOR: [facts.c.sector.label("sector")],
        Dimension.SEX: [facts.c.sex.label("sex")],
        Dimension.SESSION: [
            facts.c.session_id.label("session_id"),
            session.start_date.label("session_start_date"),
            session.end_date.label("session_end_date"),
        ],
    }
    keys = [col for d in dimensions for col in columns[d]]
    stmt = (
        select(
            *keys,
            *[func.coalesce(func.sum(facts.c[name]), 0).label(name) for name in COUNTER_COLUMNS],
        )
        .select_from(facts)
        .outerjoin(f, f.id == facts.c.facility_id)
        .outerjoin(p, p.id == facts.c.program_id)
    )
    if Dimension.SESSION in dimensions:
        stmt = stmt.outerjoin(session, session.id == facts.c.session_id)
    if filters.year is not None:
        stmt = stmt.where(facts.c.year == filters.year)
    if filters.province is not None:
        stmt = stmt.where(f.province == filters.province)
    if filters.facility_id is not None:
        stmt = stmt.where(facts.c.facility_id == filters.facility_id)
    if filters.program_id is not None:
        stmt = stmt.where(facts.c.program_id == filters.program_id)
    if filters.sector is not None:
        stmt = stmt.where(facts.c.sector == filters.sector)
    if filters.sex is not None:
        stmt = stmt.where(facts.c.sex == filters.sex)
    if keys:
        stmt = stmt.group_by(*keys)
    return stmt


async def indicators(
    session: AsyncSession, *, group_by: list[Dimension], filters: IndicatorFilters
) -> IndicatorReport:
    """Counts by the requested dimensions and the totals, read from one consistent snapshot."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # The counts and data-as-of are two statements: one snapshot keeps them together.
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        # Past PostgreSQL's JIT threshold (a plan's estimated cost, which grows with the data)
        # every call compiles the query first: 1.7 of 2.2 s at 25,000 enrolments with the
        # earlier form of these queries. They are short reads: no JIT for them.
        await session.execute(text("SET LOCAL jit = off"))
    groups: list[IndicatorGroup] = []
    if group_by:
        rows = (await session.execute(indicator_query(group_by, filters))).mappings().all()
        groups = [
            IndicatorGroup(keys=group_keys(group_by, row), counters=Counters.from_row(row))
            for row in rows
        ]
        # Every fact is in exactly one group (a null key is a group too): the totals are the
        # groups' sums, without reading the facts a second time.
        total_row = {name: sum(int(row[name] or 0) for row in rows) for name in COUNTER_COLUMNS}
    else:
        total_row = dict((await session.execute(indicator_query([], filters))).mappings().one())
    data_as_of = await session.scalar(
        select(ProjectionState.data_as_of).where(ProjectionState.id == STATE_ROW_ID)
    )
    return IndicatorReport(
        group_by=group_by,
        groups=sort_groups(groups, group_by),
        totals=Counters.from_row(total_row),
        data_as_of=data_as_of,
    )


# --- targets ----------------------------------------------------------------------------------


async def list_targets(session: AsyncSession) -> list[Target]:
    return list((await session.scalars(select(Target).order_by(Target.year))).all())


async def set_target(
    session: AsyncSession,
    *,
    year: int,
    annual: int | None,
    cumulative: int | None,
    note: str | None,
    by: str,
) -> Target:
    """Create or replace the target of a year, and audit the change (the caller commits)."""
    row = await session.get(Target, year)
    if row is None:
        row = Target(year=year)
        session.add(row)
    now = datetime.now(UTC)
    session.add(
        TargetChange(
            year=year,
            changed_at=now,
            changed_by=by,
            old_annual=row.annual,
            old_cumulative=row.cumulative,
            old_note=row.note,
            new_annual=annual,
            new_cumulative=cumulative,
            new_note=note,
        )
    )
    row.annual = annual
    row.cumulative = cumulative
    row.note = note
    row.updated_at = now
    row.updated_by = by
    return row


async def target_changes(session: AsyncSession, *, year: int | None = None) -> list[TargetChange]:
    """The audit trail of target edits, oldest first."""
    stmt = select(TargetChange).order_by(TargetChange.changed_at, TargetChange.id)
    if year is not None:
        stmt = stmt.where(TargetChange.year == year)
    return list((await session.scalars(stmt)).all())


async def target_progress(
    session: AsyncSession, targets_session: AsyncSession
) -> tuple[list[TargetProgress], datetime | None]:
    """Each year with a target or data: new entrepreneurs (and certified) against the targets.

    Counts come from the projections, targets from the service's own database (``targets_session``):
    they are set by hand, so a rebuild never replaces them.
    """
    targets = {t.year: (t.annual, t.cumulative) for t in await list_targets(targets_session)}
    # End that transaction before reading the projections: on SQLite both may be one file, and
    # a transaction there holds the write lock.
    await targets_session.rollback()
    report = await indicators(session, group_by=[Dimension.YEAR], filters=IndicatorFilters())
    by_year = {g.keys["year"]: g.counters for g in report.groups if g.keys["year"] is not None}
    return (
        progress_by_year(
            {y: (c.new_entrepreneurs, c.certified) for y, c in by_year.items()},
            targets,
        ),
        report.data_as_of,
    )


# --- what is published outside the ministries -------------------------------------------------


async def public_tables(session: AsyncSession) -> tuple[PublicTables, datetime | None]:
    """The open-data cells (by year, province, sector and sex) and the summary's margins, with
    small counts suppressed across both."""
    dims = [Dimension.YEAR, Dimension.PROVINCE, Dimension.SECTOR, Dimension.SEX]
    report = await indicators(session, group_by=dims, filters=IndicatorFilters())
    rows = [
        {
            **{k: g.keys.get(k) for k in OPEN_DATA_KEYS},
            "enrolled": g.counters.enrolled,
            "completed": g.counters.completed,
            "certified": g.counters.certified,
        }
        for g in report.groups
    ]
    return privacy.public_tables(rows), report.data_as_of
