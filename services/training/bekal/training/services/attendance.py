"""Attendance: one day's sheet at a time, every change kept in the history."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import among, insert_rows, table_of, utcnow
from bekal.shared.problems import Conflict, Problem
from bekal.training import domain
from bekal.training.domain import AttendanceStatus, EnrollmentStatus, RuleBroken, SessionStatus
from bekal.training.models import (
    AttendanceChange,
    AttendanceRecord,
    Enrollment,
    ParticipantAbsence,
    TrainingSession,
)
from bekal.training.schemas import AttendanceSheet
from bekal.training.services.common import (
    Enrolled,
    enrolled_by_participant,
    invalid,
    participant_names,
    refused,
)
from bekal.training.services.sessions import get_session

_RECORDS = table_of(AttendanceRecord)
_CHANGES = table_of(AttendanceChange)


async def write_day(
    *,
    session: AsyncSession,
    ts: TrainingSession,
    day: date,
    statuses: dict[uuid.UUID, AttendanceStatus],
    changed_by: str,
    reason: str | None,
    replace_day: bool,
    notes: dict[uuid.UUID, str] | None = None,
) -> set[uuid.UUID]:
    """Set the day's statuses (per enrolment id) and keep a history row for each change.

    With ``replace_day`` the day's sheet is replaced as a whole (enrolments left out lose their
    record); otherwise only the given enrolments change. ``notes`` (per enrolment id) are kept
    as the reason of that enrolment's change. Returns the enrolments that changed.

    The day's records are read as columns and written set-based, not as ORM objects: the
    history rows and the new records in one ``INSERT`` each, the changed records in one
    ``UPDATE`` per status and the removed ones in one ``DELETE`` (a day of 30 was 60 rows
    staged and flushed one by one).
    """
    current = {
        enrollment_id: (record_id, status)
        for enrollment_id, record_id, status in await session.execute(
            select(_RECORDS.c.enrollment_id, _RECORDS.c.id, _RECORDS.c.status).where(
                _RECORDS.c.session_id == ts.id, _RECORDS.c.day == day
            )
        )
    }
    now = utcnow()
    changed: set[uuid.UUID] = set()
    history: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    updated: dict[str, list[uuid.UUID]] = defaultdict(list)
    removed: list[uuid.UUID] = []
    targets = set(statuses) | (set(current) if replace_day else set())
    for enrollment_id in sorted(targets):
        found = current.get(enrollment_id)
        before = found[1] if found is not None else None
        after = statuses[enrollment_id].value if enrollment_id in statuses else None
        if before == after:
            continue
        changed.add(enrollment_id)
        history.append(
            {
                "id": uuid.uuid4(),
                "session_id": ts.id,
                "enrollment_id": enrollment_id,
                "day": day,
                "previous_status": before,
                "status": after,
                "changed_by": changed_by,
                "reason": (notes or {}).get(enrollment_id, reason),
                "changed_at": now,
            }
        )
        if after is None:
            assert found is not None
            removed.append(found[0])
        elif found is None:
            added.append(
                {
                    "id": uuid.uuid4(),
                    "session_id": ts.id,
                    "enrollment_id": enrollment_id,
                    "day": day,
                    "status": after,
                    "recorded_at": now,
                }
            )
        else:
            updated[after].append(found[0])
    await insert_rows(session, _CHANGES, history)
    if removed:
        await session.execute(delete(_RECORDS).where(among(session, _RECORDS.c.id, removed)))
    for status, ids in updated.items():
        await session.execute(
            update(_RECORDS)
            .where(among(session, _RECORDS.c.id, ids))
            .values(status=status, recorded_at=now)
        )
    await insert_rows(session, _RECORDS, added)
    return changed


async def record_attendance(
    *,
    session: AsyncSession,
    session_id: uuid.UUID,
    sheet: AttendanceSheet,
    changed_by: str = "unknown",
) -> int:
    """Replace the day's attendance sheet with the one given (corrections re-send the day).

    Every change is kept in the attendance history with who made it and when. A sheet naming
    someone who had left the course by that day (``domain.attendance_refusal``) is refused as a
    whole (409), every such person named, and nothing of it is written.
    """
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "absensi")
        domain.check_attendance_date(sheet.date, ts.start_date, ts.end_date)
    except RuleBroken as rule:
        raise refused(rule) from rule
    enrolled = await enrolled_by_participant(session=session, session_id=ts.id)
    seen: set[uuid.UUID] = set()
    refusals: list[tuple[int, Enrolled, str]] = []
    for i, record in enumerate(sheet.records):
        field = f"records.{i}.participant_id"
        if record.participant_id in seen:
            raise invalid(field, "Peserta disebut lebih dari sekali untuk tanggal ini.")
        found = enrolled.get(record.participant_id)
        if found is None or found.status == EnrollmentStatus.WAITLISTED.value:
            raise invalid(field, "Peserta tidak terdaftar pada sesi ini.")
        seen.add(record.participant_id)
        refusal = domain.attendance_refusal(
            day=sheet.date,
            enrollment_status=EnrollmentStatus(found.status),
            withdrawn_on=found.withdrawn_on,
            withdrawal_reason=(
                domain.EndReason(found.withdrawal_reason) if found.withdrawal_reason else None
            ),
        )
        if refusal is not None:
            refusals.append((i, found, refusal))
    if refusals:
        raise await _attendance_refused(session=session, day=sheet.date, refusals=refusals)
    await write_day(
        session=session,
        ts=ts,
        day=sheet.date,
        statuses={enrolled[r.participant_id].id: r.status for r in sheet.records},
        changed_by=changed_by,
        reason=None,
        replace_day=True,
        notes={enrolled[r.participant_id].id: r.note for r in sheet.records if r.note},
    )
    ts.updated_at = utcnow()
    return len(sheet.records)


async def _attendance_refused(
    *, session: AsyncSession, day: date, refusals: Sequence[tuple[int, Enrolled, str]]
) -> Problem:
    """409 for a sheet naming people who had left the course by ``day``: the whole sheet is
    refused, each of them named in ``errors`` with the day, and by name in the ``detail``."""
    names = await participant_names(session=session, enrollments=[e for _, e, _ in refusals])
    errors = [
        {
            "field": f"records.{i}.participant_id",
            "message": message,
            "participant_id": str(e.participant_id),
            "enrollment_id": str(e.id),
            "date": day.isoformat(),
            "withdrawn_on": e.withdrawn_on.isoformat() if e.withdrawn_on else None,
            "withdrawal_reason": e.withdrawal_reason,
        }
        for i, e, message in refusals
    ]
    who = ", ".join(
        f"{names.get(e.participant_id) or e.participant_id}"
        + (f" (keluar {e.withdrawn_on.isoformat()})" if e.withdrawn_on else "")
        for _, e, _ in refusals
    )
    return Conflict(
        f"Absensi tanggal {day.isoformat()} ditolak; tidak ada yang disimpan. "
        f"{len(refusals)} peserta sudah keluar dari sesi pada atau sebelum tanggal itu: {who}.",
        slug="attendance-refused",
        title="Absensi ditolak",
        errors=errors,
    )


async def attendance_history(
    *, session: AsyncSession, session_id: uuid.UUID
) -> list[tuple[AttendanceChange, uuid.UUID]]:
    """Every attendance change of a session, oldest first, with the participant it concerns."""
    ts = await get_session(session=session, session_id=session_id)
    rows = await session.execute(
        select(AttendanceChange, Enrollment.participant_id)
        .join(Enrollment, Enrollment.id == AttendanceChange.enrollment_id)
        .where(AttendanceChange.session_id == ts.id)
        .order_by(AttendanceChange.changed_at, AttendanceChange.day, AttendanceChange.id)
    )
    return [(change, pid) for change, pid in rows]


async def sheet_history(*, session: AsyncSession, session_id: uuid.UUID, day: date) -> list[Any]:
    """What a day's attendance screen shows of the history, as columns, oldest first: every
    correction of the session (a change with a previous status) and the day's changes with a
    reason (their notes). The rest of the history (every first entry of every day) is left in
    the database."""
    rows = await session.execute(
        select(
            _CHANGES.c.enrollment_id,
            _CHANGES.c.day,
            _CHANGES.c.previous_status,
            _CHANGES.c.status,
            _CHANGES.c.changed_by,
            _CHANGES.c.changed_at,
            _CHANGES.c.reason,
        )
        .where(
            _CHANGES.c.session_id == session_id,
            or_(
                _CHANGES.c.previous_status.is_not(None),
                and_(_CHANGES.c.day == day, _CHANGES.c.reason.is_not(None)),
            ),
        )
        .order_by(_CHANGES.c.changed_at, _CHANGES.c.day, _CHANGES.c.id)
    )
    return list(rows)


async def day_sheet(
    *, session: AsyncSession, session_id: uuid.UUID, day: date
) -> dict[uuid.UUID, AttendanceStatus]:
    """What is recorded for one day of a session, per enrolment id."""
    rows = await session.execute(
        select(AttendanceRecord.enrollment_id, AttendanceRecord.status).where(
            AttendanceRecord.session_id == session_id, AttendanceRecord.day == day
        )
    )
    return {enrollment_id: AttendanceStatus(status) for enrollment_id, status in rows}


async def absences_of(
    *, session: AsyncSession, participant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[date, date | None]]]:
    """The registry's temporary absences of these people, each (from, back on), by person."""
    found: dict[uuid.UUID, list[tuple[date, date | None]]] = {pid: [] for pid in participant_ids}
    if not participant_ids:
        return found
    rows = await session.execute(
        select(
            ParticipantAbsence.participant_id,
            ParticipantAbsence.absent_from,
            ParticipantAbsence.returned_on,
        )
        .where(ParticipantAbsence.participant_id.in_(list(participant_ids)))
        .order_by(ParticipantAbsence.absent_from)
    )
    for pid, since, back in rows:
        found[pid].append((since, back))
    return found


async def recorded_days(*, session: AsyncSession, session_id: uuid.UUID) -> set[date]:
    """The days of a session that carry any attendance."""
    rows = await session.scalars(
        select(AttendanceRecord.day).where(AttendanceRecord.session_id == session_id).distinct()
    )
    return set(rows.all())
