"""Training use cases: take the caller's transaction, apply the rules, write rows and events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    CompetencyUnit,
    EnrollmentWithdrawn,
    FacilityRegistered,
    FacilityUpdated,
    InmateReleased,
    InmateShared,
    InmateTransferred,
    ParticipantCompleted,
    ParticipantEnrolled,
    ParticipantNotCompleted,
    ProgramPublished,
    SessionCompleted,
    SessionScheduled,
    SessionStarted,
    WithdrawalReason,
)
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, paginate, parse_utc
from bekal.shared.problems import Conflict, NotFound, Problem, RuleViolation
from bekal.training import domain
from bekal.training.domain import (
    AssessmentResult,
    AttendanceStatus,
    EnrollmentStatus,
    ParticipantFacts,
    ParticipantStatus,
    RuleBroken,
    SessionStatus,
)
from bekal.training.models import (
    Assessment,
    AttendanceRecord,
    Enrollment,
    Facility,
    Participant,
    Program,
    TrainingSession,
)
from bekal.training.schemas import (
    AssessmentSheet,
    AttendanceSheet,
    ProgramCreate,
    ProgramUpdate,
    SessionCreate,
)

# An enrolment as shown: the row and the participant's name from the replica.
EnrollmentView = tuple[Enrollment, str | None]


def _refused(rule: RuleBroken) -> Problem:
    errors = [{"field": rule.field, "message": rule.message}]
    if rule.conflict:
        return Conflict(rule.message, errors=errors)
    return RuleViolation(rule.message, errors=errors)


def _invalid(field: str, message: str) -> RuleViolation:
    return RuleViolation(message, errors=[{"field": field, "message": message}])


def _is_stale(current: datetime | None, incoming: datetime | None) -> bool:
    """An event older than the one a replica row already reflects must not overwrite it."""
    return current is not None and incoming is not None and incoming < current


# --- replica of the registry (fed by events) -----------------------------------------------


async def apply_facility(
    *, session: AsyncSession, event: FacilityRegistered | FacilityUpdated, as_of: datetime | None
) -> None:
    row = await session.get(Facility, event.facility_id)
    if row is not None and _is_stale(row.as_of, as_of):
        return
    if row is None:
        row = Facility(id=event.facility_id)
        session.add(row)
    row.code = event.code
    row.name = event.name
    row.province = event.province
    row.active = event.active
    row.as_of = as_of or row.as_of
    row.updated_at = utcnow()


async def apply_inmate_shared(
    *, session: AsyncSession, event: InmateShared, as_of: datetime | None
) -> None:
    row = await session.get(Participant, event.participant_id)
    if row is not None and _is_stale(row.as_of, as_of):
        return
    if row is None:
        # Only people in custody are shared; a later release or transfer event moves them on.
        row = Participant(id=event.participant_id, status=ParticipantStatus.IN_CUSTODY.value)
        session.add(row)
    row.full_name = event.full_name
    row.sex = event.sex.value
    row.birth_year = event.birth_year
    row.facility_id = event.facility_id
    row.admission_date = event.admission_date
    row.expected_release_date = event.expected_release_date
    row.as_of = as_of or row.as_of
    row.updated_at = utcnow()


async def apply_inmate_released(
    *, session: AsyncSession, event: InmateReleased, as_of: datetime | None
) -> list[EnrollmentWithdrawn]:
    row = await session.get(Participant, event.participant_id)
    if row is not None and not _is_stale(row.as_of, as_of):
        row.status = ParticipantStatus.RELEASED.value
        row.released_on = event.released_on
        row.release_kind = event.release_kind.value
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()
    return await withdraw_from_open_sessions(
        session=session,
        participant_id=event.participant_id,
        reason=WithdrawalReason.RELEASED,
        on=event.released_on,
    )


async def apply_inmate_transferred(
    *, session: AsyncSession, event: InmateTransferred, as_of: datetime | None
) -> list[EnrollmentWithdrawn]:
    row = await session.get(Participant, event.participant_id)
    if row is not None and not _is_stale(row.as_of, as_of):
        row.facility_id = event.to_facility_id
        row.as_of = as_of or row.as_of
        row.updated_at = utcnow()
    return await withdraw_from_open_sessions(
        session=session,
        participant_id=event.participant_id,
        reason=WithdrawalReason.TRANSFERRED,
        on=event.transferred_on,
        moved_to_facility_id=event.to_facility_id,
    )


async def withdraw_from_open_sessions(
    *,
    session: AsyncSession,
    participant_id: uuid.UUID,
    reason: WithdrawalReason,
    on: date,
    moved_to_facility_id: uuid.UUID | None = None,
) -> list[EnrollmentWithdrawn]:
    """End the person's live enrolments in open sessions; each ending is published once.

    A second delivery finds nothing still ``enrolled`` and so publishes nothing.
    """
    session_ids = select(Enrollment.session_id).where(
        Enrollment.participant_id == participant_id,
        Enrollment.status == EnrollmentStatus.ENROLLED.value,
    )
    # Lock the sessions first (in id order, like every other writer) so a completion of the
    # same session cannot interleave with this withdrawal and overwrite it.
    sessions = {
        s.id: s
        for s in (
            await session.scalars(
                select(TrainingSession)
                .where(TrainingSession.id.in_(session_ids))
                .order_by(TrainingSession.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    if not sessions:
        return []
    enrollments = (
        await session.scalars(
            select(Enrollment)
            .where(
                Enrollment.participant_id == participant_id,
                Enrollment.session_id.in_(list(sessions)),
                Enrollment.status == EnrollmentStatus.ENROLLED.value,
            )
            .execution_options(populate_existing=True)
        )
    ).all()
    published: list[EnrollmentWithdrawn] = []
    for enrollment in enrollments:
        ts = sessions[enrollment.session_id]
        if not domain.is_withdrawable(
            enrollment_status=EnrollmentStatus(enrollment.status),
            session_status=SessionStatus(ts.status),
            session_facility_id=ts.facility_id,
            moved_to_facility_id=moved_to_facility_id,
        ):
            continue
        enrollment.status = EnrollmentStatus.WITHDRAWN.value
        enrollment.withdrawal_reason = reason.value
        enrollment.withdrawn_on = on
        enrollment.updated_at = utcnow()
        event = EnrollmentWithdrawn(
            enrollment_id=enrollment.id,
            session_id=enrollment.session_id,
            participant_id=participant_id,
            reason=reason,
            withdrawn_on=on,
        )
        add_event(session, event)
        published.append(event)
    return published


async def list_facilities(
    *,
    session: AsyncSession,
    code: str | None,
    province: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[Facility]:
    query = select(Facility)
    if code is not None:
        query = query.where(Facility.code == code)
    if province is not None:
        query = query.where(Facility.province == province)
    if active is not None:
        query = query.where(Facility.active == active)
    return await paginate(
        session, query, key=Facility.code, tiebreak=Facility.id, cursor=cursor, limit=limit
    )


async def get_facility(*, session: AsyncSession, facility_id: uuid.UUID) -> Facility:
    row = await session.get(Facility, facility_id)
    if row is None:
        raise NotFound("Lapas/rutan tidak dikenal di layanan pelatihan.")
    return row


async def list_participants(
    *,
    session: AsyncSession,
    facility_id: uuid.UUID | None,
    status: ParticipantStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[Participant]:
    query = select(Participant)
    if facility_id is not None:
        query = query.where(Participant.facility_id == facility_id)
    if status is not None:
        query = query.where(Participant.status == status.value)
    return await paginate(
        session,
        query,
        key=Participant.full_name,
        tiebreak=Participant.id,
        cursor=cursor,
        limit=limit,
    )


async def get_participant(*, session: AsyncSession, participant_id: uuid.UUID) -> Participant:
    row = await session.get(Participant, participant_id)
    if row is None:
        raise NotFound("Peserta tidak dikenal di layanan pelatihan.")
    return row


# --- programs ------------------------------------------------------------------------------


def _program_published(program: Program) -> ProgramPublished:
    return ProgramPublished(
        program_id=program.id,
        program_version=program.version,
        code=program.code,
        title=program.title,
        sector=program.sector,
        partner=program.partner,
        days=program.days,
        hours=program.hours,
        min_attendance_share=program.min_attendance_share,
        competency_units=[CompetencyUnit(**u) for u in program.competency_units],
    )


def _apply_rules(program: Program, data: ProgramCreate | ProgramUpdate) -> None:
    program.title = data.title
    program.sector = data.sector
    program.partner = data.partner
    program.days = data.days
    program.hours = data.hours
    program.min_attendance_share = data.min_attendance_share
    program.competency_units = [u.model_dump() for u in data.competency_units]


async def create_program(*, session: AsyncSession, data: ProgramCreate) -> Program:
    if await session.scalar(select(Program.id).where(Program.code == data.code)) is not None:
        raise Conflict(
            f"Kode program '{data.code}' sudah dipakai.",
            errors=[{"field": "code", "message": "kode program sudah dipakai"}],
        )
    now = utcnow()
    program = Program(id=uuid.uuid4(), code=data.code, version=1, created_at=now, updated_at=now)
    _apply_rules(program, data)
    session.add(program)
    add_event(session, _program_published(program))
    return program


async def publish_program_version(
    *, session: AsyncSession, program_id: uuid.UUID, data: ProgramUpdate
) -> Program:
    """A changed design is a new version; sessions already planned keep the rules they copied."""
    program = await session.scalar(
        select(Program).where(Program.id == program_id).with_for_update()
    )
    if program is None:
        raise NotFound("Program tidak ditemukan.")
    program.version += 1
    program.updated_at = utcnow()
    _apply_rules(program, data)
    add_event(session, _program_published(program))
    return program


async def get_program(*, session: AsyncSession, program_id: uuid.UUID) -> Program:
    program = await session.get(Program, program_id)
    if program is None:
        raise NotFound("Program tidak ditemukan.")
    return program


async def list_programs(
    *, session: AsyncSession, code: str | None, sector: str | None, limit: int, cursor: str | None
) -> Page[Program]:
    query = select(Program)
    if code is not None:
        query = query.where(Program.code == code)
    if sector is not None:
        query = query.where(Program.sector == sector)
    return await paginate(
        session, query, key=Program.code, tiebreak=Program.id, cursor=cursor, limit=limit
    )


# --- sessions ------------------------------------------------------------------------------


async def schedule_session(*, session: AsyncSession, data: SessionCreate) -> TrainingSession:
    try:
        domain.check_session_dates(data.start_date, data.end_date)
    except RuleBroken as rule:
        raise _refused(rule) from rule
    program = await session.get(Program, data.program_id)
    if program is None:
        raise _invalid("program_id", "Program tidak ditemukan.")
    facility = await session.get(Facility, data.facility_id)
    if facility is None:
        raise _invalid("facility_id", "Lapas/rutan belum dikenal (belum diterima dari registri).")
    if not facility.active:
        raise _invalid("facility_id", f"{facility.name} tidak aktif.")
    now = utcnow()
    ts = TrainingSession(
        id=uuid.uuid4(),
        program_id=program.id,
        program_version=program.version,
        program_code=program.code,
        program_title=program.title,
        sector=program.sector,
        partner=program.partner,
        hours=program.hours,
        min_attendance_share=program.min_attendance_share,
        competency_units=[dict(u) for u in program.competency_units],
        facility_id=facility.id,
        start_date=data.start_date,
        end_date=data.end_date,
        capacity=data.capacity,
        status=SessionStatus.PLANNED.value,
        instructors=[i.model_dump() for i in data.instructors],
        created_at=now,
        updated_at=now,
    )
    session.add(ts)
    add_event(
        session,
        SessionScheduled(
            session_id=ts.id,
            program_id=ts.program_id,
            program_version=ts.program_version,
            facility_id=ts.facility_id,
            start_date=ts.start_date,
            end_date=ts.end_date,
            capacity=ts.capacity,
        ),
    )
    return ts


async def get_session(
    *, session: AsyncSession, session_id: uuid.UUID, lock: bool = False
) -> TrainingSession:
    """A session; with ``lock`` its row is held until commit, so its writers take turns."""
    query: Select[TrainingSession] = select(TrainingSession).where(TrainingSession.id == session_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    ts = await session.scalar(query)
    if ts is None:
        raise NotFound("Sesi pelatihan tidak ditemukan.")
    return ts


async def list_sessions(
    *,
    session: AsyncSession,
    facility_id: uuid.UUID | None,
    program_id: uuid.UUID | None,
    status: SessionStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[TrainingSession]:
    query = select(TrainingSession)
    if facility_id is not None:
        query = query.where(TrainingSession.facility_id == facility_id)
    if program_id is not None:
        query = query.where(TrainingSession.program_id == program_id)
    if status is not None:
        query = query.where(TrainingSession.status == status.value)
    return await paginate(
        session,
        query,
        key=TrainingSession.created_at,
        tiebreak=TrainingSession.id,
        cursor=cursor,
        limit=limit,
        parse_key=parse_utc,
    )


async def enrollments_of(
    *, session: AsyncSession, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[EnrollmentView]]:
    """Enrolments of the given sessions with each participant's name, in enrolment order."""
    found: dict[uuid.UUID, list[EnrollmentView]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return found
    rows = await session.execute(
        select(Enrollment, Participant.full_name)
        .outerjoin(Participant, Participant.id == Enrollment.participant_id)
        .where(Enrollment.session_id.in_(list(session_ids)))
        .order_by(Enrollment.created_at, Enrollment.id)
        .execution_options(populate_existing=True)
    )
    for enrollment, name in rows:
        found[enrollment.session_id].append((enrollment, name))
    return found


async def enrol(
    *, session: AsyncSession, session_id: uuid.UUID, participant_ids: list[uuid.UUID], today: date
) -> list[EnrollmentView]:
    """Enrol the whole list or nobody (every problem is reported at once)."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    existing = (
        await session.execute(
            select(Enrollment.participant_id, Enrollment.status).where(
                Enrollment.session_id == ts.id
            )
        )
    ).all()
    taken = sum(1 for _, status in existing if status != EnrollmentStatus.WITHDRAWN.value)
    people = {
        p.id: p
        for p in (
            await session.scalars(
                select(Participant).where(Participant.id.in_(set(participant_ids)))
            )
        ).all()
    }
    known = {
        pid: ParticipantFacts(pid, ParticipantStatus(p.status), p.facility_id)
        for pid, p in people.items()
    }
    try:
        problems = domain.enrollment_problems(
            session_status=SessionStatus(ts.status),
            session_facility_id=ts.facility_id,
            capacity=ts.capacity,
            seats_taken=taken,
            already_enrolled=[pid for pid, _ in existing],
            candidates=participant_ids,
            known=known,
        )
    except RuleBroken as rule:
        raise _refused(rule) from rule
    if problems:
        errors = [
            {"field": p.field, "participant_id": str(p.participant_id), "message": p.message}
            for p in problems
        ]
        conflict_only = all(p.conflict for p in problems)
        raise Problem(
            f"Pendaftaran ditolak; tidak ada peserta yang didaftarkan ({len(problems)} masalah).",
            status=409 if conflict_only else 422,
            slug="enrollment-refused",
            title="Pendaftaran ditolak",
            errors=errors,
        )
    now = utcnow()
    created: list[EnrollmentView] = []
    for pid in participant_ids:
        enrollment = Enrollment(
            id=uuid.uuid4(),
            session_id=ts.id,
            participant_id=pid,
            status=EnrollmentStatus.ENROLLED.value,
            enrolled_on=today,
            created_at=now,
            updated_at=now,
        )
        session.add(enrollment)
        add_event(
            session,
            ParticipantEnrolled(
                enrollment_id=enrollment.id, session_id=ts.id, participant_id=pid, enrolled_on=today
            ),
        )
        created.append((enrollment, people[pid].full_name))
    ts.updated_at = now
    return created


async def start_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_can_start(SessionStatus(ts.status))
    except RuleBroken as rule:
        raise _refused(rule) from rule
    ts.status = SessionStatus.RUNNING.value
    ts.started_on = today
    ts.updated_at = utcnow()
    add_event(session, SessionStarted(session_id=ts.id, started_on=today))
    return ts


async def _enrollments_by_participant(
    session: AsyncSession, session_id: uuid.UUID
) -> dict[uuid.UUID, Enrollment]:
    rows = await session.scalars(select(Enrollment).where(Enrollment.session_id == session_id))
    return {e.participant_id: e for e in rows.all()}


async def record_attendance(
    *, session: AsyncSession, session_id: uuid.UUID, sheet: AttendanceSheet
) -> int:
    """Replace the day's attendance sheet with the one given (corrections re-send the day)."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "absensi")
        domain.check_attendance_date(sheet.date, ts.start_date, ts.end_date)
    except RuleBroken as rule:
        raise _refused(rule) from rule
    enrolled = await _enrollments_by_participant(session, ts.id)
    seen: set[uuid.UUID] = set()
    for i, record in enumerate(sheet.records):
        field = f"records.{i}.participant_id"
        if record.participant_id in seen:
            raise _invalid(field, "Peserta disebut lebih dari sekali untuk tanggal ini.")
        if record.participant_id not in enrolled:
            raise _invalid(field, "Peserta tidak terdaftar pada sesi ini.")
        seen.add(record.participant_id)
    await session.execute(
        delete(AttendanceRecord).where(
            AttendanceRecord.session_id == ts.id, AttendanceRecord.day == sheet.date
        )
    )
    now = utcnow()
    session.add_all(
        AttendanceRecord(
            id=uuid.uuid4(),
            session_id=ts.id,
            enrollment_id=enrolled[r.participant_id].id,
            day=sheet.date,
            status=r.status.value,
            recorded_at=now,
        )
        for r in sheet.records
    )
    ts.updated_at = now
    return len(sheet.records)


async def record_assessments(
    *, session: AsyncSession, session_id: uuid.UUID, sheet: AssessmentSheet
) -> int:
    """Record results; a unit assessed again keeps only its latest result."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "penilaian")
    except RuleBroken as rule:
        raise _refused(rule) from rule
    unit_codes = {u["code"] for u in ts.competency_units}
    enrolled = await _enrollments_by_participant(session, ts.id)
    seen: set[tuple[uuid.UUID, str]] = set()
    for i, result in enumerate(sheet.results):
        enrollment = enrolled.get(result.participant_id)
        if enrollment is None or enrollment.status != EnrollmentStatus.ENROLLED.value:
            raise _invalid(
                f"results.{i}.participant_id", "Peserta tidak terdaftar aktif pada sesi ini."
            )
        if result.unit_code not in unit_codes:
            raise _invalid(
                f"results.{i}.unit_code",
                f"Unit kompetensi '{result.unit_code}' bukan bagian dari program versi "
                f"{ts.program_version} sesi ini.",
            )
        if (result.participant_id, result.unit_code) in seen:
            raise _invalid(
                f"results.{i}", "Hasil untuk peserta dan unit ini disebut lebih dari sekali."
            )
        seen.add((result.participant_id, result.unit_code))
    ids = [enrolled[r.participant_id].id for r in sheet.results]
    current = {
        (a.enrollment_id, a.unit_code): a
        for a in (
            await session.scalars(select(Assessment).where(Assessment.enrollment_id.in_(set(ids))))
        ).all()
    }
    now = utcnow()
    for result in sheet.results:
        enrollment_id = enrolled[result.participant_id].id
        row = current.get((enrollment_id, result.unit_code))
        if row is None:
            row = Assessment(
                id=uuid.uuid4(),
                session_id=ts.id,
                enrollment_id=enrollment_id,
                unit_code=result.unit_code,
            )
            session.add(row)
        row.result = result.result.value
        row.assessor = sheet.assessor
        row.assessed_at = now
    ts.updated_at = now
    return len(sheet.results)


async def complete_session(
    *, session: AsyncSession, session_id: uuid.UUID, today: date
) -> TrainingSession:
    """Close the session: an outcome for every participant still enrolled, then SessionCompleted."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "penutupan")
    except RuleBroken as rule:
        raise _refused(rule) from rule
    enrollments = (
        await session.scalars(
            select(Enrollment)
            .where(
                Enrollment.session_id == ts.id, Enrollment.status == EnrollmentStatus.ENROLLED.value
            )
            .order_by(Enrollment.created_at, Enrollment.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    ids = [e.id for e in enrollments]
    attendance: dict[uuid.UUID, list[AttendanceStatus]] = defaultdict(list)
    results: dict[uuid.UUID, dict[str, AssessmentResult]] = defaultdict(dict)
    names: dict[uuid.UUID, str] = {}
    if ids:
        for enrollment_id, status in await session.execute(
            select(AttendanceRecord.enrollment_id, AttendanceRecord.status).where(
                AttendanceRecord.session_id == ts.id, AttendanceRecord.enrollment_id.in_(ids)
            )
        ):
            attendance[enrollment_id].append(AttendanceStatus(status))
        for enrollment_id, unit_code, result in await session.execute(
            select(Assessment.enrollment_id, Assessment.unit_code, Assessment.result).where(
                Assessment.enrollment_id.in_(ids)
            )
        ):
            results[enrollment_id][unit_code] = AssessmentResult(result)
        names = dict(
            (
                await session.execute(
                    select(Participant.id, Participant.full_name).where(
                        Participant.id.in_([e.participant_id for e in enrollments])
                    )
                )
            ).all()
        )
    days = domain.session_days(ts.start_date, ts.end_date)
    unit_codes = [u["code"] for u in ts.competency_units]
    units = [CompetencyUnit(**u) for u in ts.competency_units]
    now = utcnow()
    completed = not_completed = 0
    for enrollment in enrollments:
        outcome = domain.completion_outcome(
            days=days,
            attendance=attendance[enrollment.id],
            min_attendance_share=ts.min_attendance_share,
            unit_codes=unit_codes,
            results=results[enrollment.id],
        )
        enrollment.attendance_share = outcome.attendance_share
        enrollment.updated_at = now
        if outcome.completed:
            completed += 1
            enrollment.status = EnrollmentStatus.COMPLETED.value
            add_event(
                session,
                ParticipantCompleted(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=enrollment.participant_id,
                    participant_name=names.get(enrollment.participant_id, ""),
                    program_id=ts.program_id,
                    program_code=ts.program_code,
                    program_title=ts.program_title,
                    sector=ts.sector,
                    partner=ts.partner,
                    competency_units=units,
                    hours=ts.hours,
                    start_date=ts.start_date,
                    end_date=ts.end_date,
                    attendance_share=outcome.attendance_share,
                ),
            )
        else:
            assert outcome.reason is not None
            not_completed += 1
            enrollment.status = EnrollmentStatus.NOT_COMPLETED.value
            enrollment.not_completed_reason = outcome.reason.value
            add_event(
                session,
                ParticipantNotCompleted(
                    enrollment_id=enrollment.id,
                    session_id=ts.id,
                    participant_id=enrollment.participant_id,
                    reason=outcome.reason,
                    attendance_share=outcome.attendance_share,
                ),
            )
    ts.status = SessionStatus.COMPLETED.value
    ts.completed_on = today
    ts.updated_at = now
    add_event(
        session,
        SessionCompleted(
            session_id=ts.id,
            completed_on=today,
            completed_count=completed,
            not_completed_count=not_completed,
        ),
    )
    return ts
