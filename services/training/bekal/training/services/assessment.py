"""Assessment: competency unit results of a running session."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.db import insert_rows, table_of, utcnow
from bekal.training import domain
from bekal.training.domain import AssessmentResult, EnrollmentStatus, RuleBroken, SessionStatus
from bekal.training.models import Assessment
from bekal.training.schemas import AssessmentSheet
from bekal.training.services.common import enrolled_by_participant, invalid, refused
from bekal.training.services.sessions import get_session

_ASSESSMENTS = table_of(Assessment)


async def record_assessments(
    *, session: AsyncSession, session_id: uuid.UUID, sheet: AssessmentSheet
) -> int:
    """Record results; a unit assessed again keeps only its latest result."""
    ts = await get_session(session=session, session_id=session_id, lock=True)
    try:
        domain.check_running(SessionStatus(ts.status), "penilaian")
    except RuleBroken as rule:
        raise refused(rule) from rule
    unit_codes = {u["code"] for u in ts.competency_units}
    enrolled = await enrolled_by_participant(session=session, session_id=ts.id)
    seen: set[tuple[uuid.UUID, str]] = set()
    for i, result in enumerate(sheet.results):
        enrollment = enrolled.get(result.participant_id)
        if enrollment is None or enrollment.status != EnrollmentStatus.ENROLLED.value:
            raise invalid(
                f"results.{i}.participant_id", "Peserta tidak terdaftar aktif pada sesi ini."
            )
        if result.unit_code not in unit_codes:
            raise invalid(
                f"results.{i}.unit_code",
                f"Unit kompetensi '{result.unit_code}' bukan bagian dari program versi "
                f"{ts.program_version} sesi ini.",
            )
        if (result.participant_id, result.unit_code) in seen:
            raise invalid(
                f"results.{i}", "Hasil untuk peserta dan unit ini disebut lebih dari sekali."
            )
        seen.add((result.participant_id, result.unit_code))
    # One upsert on the unit's key, where each unit's current row was read into an ORM object
    # and each result staged and flushed on its own; a unit assessed again keeps its row.
    now = utcnow()
    await insert_rows(
        session,
        _ASSESSMENTS,
        [
            {
                "id": uuid.uuid4(),
                "session_id": ts.id,
                "enrollment_id": enrolled[result.participant_id].id,
                "unit_code": result.unit_code,
                "result": result.result.value,
                "assessor": sheet.assessor,
                "assessed_at": now,
            }
            for result in sheet.results
        ],
        key=("enrollment_id", "unit_code"),
        update=("result", "assessor", "assessed_at"),
    )
    ts.updated_at = now
    return len(sheet.results)


async def results_of(
    *, session: AsyncSession, session_id: uuid.UUID
) -> dict[uuid.UUID, dict[str, AssessmentResult]]:
    """Each enrolment's latest result per competency unit, for a session."""
    found: dict[uuid.UUID, dict[str, AssessmentResult]] = {}
    rows = await session.execute(
        select(Assessment.enrollment_id, Assessment.unit_code, Assessment.result).where(
            Assessment.session_id == session_id
        )
    )
    for enrollment_id, unit_code, result in rows:
        found.setdefault(enrollment_id, {})[unit_code] = AssessmentResult(result)
    return found
