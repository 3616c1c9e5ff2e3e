"""Corrections of a completed session: a day's attendance or a unit's result fixed for one
person, with a reason, the outcomes decided again (the API's corrections, training admins
only), and the history of every correction shown on the same page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Principal, Role
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import EnrollmentOutcome
from bekal.shared.idempotency import commit
from bekal.shared.problems import Problem
from bekal.shared.web import STAFF, FormErrors, flash, page_router
from bekal.training import domain
from bekal.training.deps import SessionDep
from bekal.training.domain import AssessmentResult, AttendanceStatus
from bekal.training.schemas import CorrectionCreate
from bekal.training.services import attendance, corrections, enrolment, replica, sessions
from bekal.training.services.outcomes import DECIDED
from bekal.training.web.common import (
    ATTENDANCE,
    RESULT,
    Admin,
    Reader,
    attendance_corrections,
    form_values,
    in_dates,
    pages,
    tanggal,
    who,
)

router = page_router(pages=pages)

FIELDS = ("participant_id", "reason", "day", "status", "unit_code", "result", "assessor")
LABELS = {
    "participant_id": "Peserta",
    "reason": "Alasan koreksi",
    "day": "Hari absensi yang dikoreksi",
    "status": "Kehadiran yang benar",
    "unit_code": "Unit kompetensi yang dikoreksi",
    "result": "Hasil yang benar",
    "assessor": "Penilai",
    "form": "Koreksi",
}
OUTCOME = {EnrollmentOutcome.COMPLETED: "Lulus", EnrollmentOutcome.NOT_COMPLETED: "Tidak lulus"}


async def _page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    *,
    values: Mapping[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    ts = await sessions.get_session(session=session, session_id=session_id)
    facility = await replica.get_facility(session=session, facility_id=ts.facility_id)
    views = (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
    names = {e.id: name or "(nama dihapus)" for e, name in views}
    decided = [(e, name) for e, name in views if e.status in DECIDED]
    attendance_changes = attendance_corrections(
        await attendance.attendance_history(session=session, session_id=ts.id), names, principal
    )
    assessment_changes = [
        {
            "unit": change.unit_code,
            "name": names.get(change.enrollment_id, "(nama dihapus)"),
            "before": RESULT[AssessmentResult(change.previous_result)]
            if change.previous_result
            else "(belum dinilai)",
            "after": RESULT[AssessmentResult(change.result)],
            "assessor": change.assessor or "—",
            "by": who(change.changed_by, principal),
            "at": change.changed_at,
            "reason": change.reason,
        }
        for change in await corrections.assessment_history(session=session, session_id=ts.id)
    ]
    refusal = None
    try:
        domain.check_correctable(domain.SessionStatus(ts.status))
    except domain.RuleBroken:
        refusal = (
            "Koreksi hanya untuk sesi yang sudah selesai; sebelum itu, absensi dan penilaian "
            "diubah langsung di halamannya."
        )
    days = [
        ts.start_date + timedelta(days=n)
        for n in range(domain.session_days(ts.start_date, ts.end_date))
    ]
    return pages.render(
        request,
        "koreksi.html",
        status_code=status_code,
        title=f"Koreksi hasil — {ts.program_code} di {facility.code}",
        ts=ts,
        facility=facility,
        refusal=refusal,
        may_correct=principal.has_role(Role.TRAINING_ADMIN) and refusal is None and bool(decided),
        people=[(str(e.participant_id), name or "(nama dihapus)") for e, name in decided],
        days=[(d.isoformat(), f"Hari {n} — {tanggal(d)}") for n, d in enumerate(days, start=1)],
        statuses=[(s.value, ATTENDANCE[s]) for s in AttendanceStatus],
        units=[(u["code"], f"{u['code']} — {u['title']}") for u in ts.competency_units],
        results=[(r.value, RESULT[r]) for r in AssessmentResult],
        attendance_changes=attendance_changes,
        assessment_changes=assessment_changes,
        values=values or {},
        errors=errors or FormErrors(),
        labels=LABELS,
    )


@router.get("/sesi/{session_id}/koreksi")
async def correction_form(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Reader
) -> Response:
    return await _page(request, session, principal, session_id)


@router.post("/sesi/{session_id}/koreksi")
async def correct(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    values = form_values(await request.form(), *FIELDS)
    errors = FormErrors()
    if not values["day"] and not values["unit_code"]:
        errors.add("day", "Pilih hari absensi atau unit kompetensi yang dikoreksi.")
    if values["day"] and not values["status"]:
        errors.add("status", "Pilih kehadiran yang benar.")
    if values["unit_code"] and not values["result"]:
        errors.add("result", "Pilih hasil yang benar.")
    if not errors:
        person = values["participant_id"] or None
        try:
            data = CorrectionCreate.model_validate(
                {
                    "reason": values["reason"],
                    "attendance": [
                        {
                            "date": values["day"],
                            "participant_id": person,
                            "status": values["status"],
                        }
                    ]
                    if values["day"]
                    else [],
                    "assessor": values["assessor"] or None,
                    "assessments": [
                        {
                            "participant_id": person,
                            "unit_code": values["unit_code"],
                            "result": values["result"],
                        }
                    ]
                    if values["unit_code"]
                    else [],
                }
            )
            views = (await enrolment.enrollments_of(session=session, session_ids=[session_id]))[
                session_id
            ]
            names = {e.participant_id: name for e, name in views}
            changed = await corrections.correct_outcomes(
                session=session,
                session_id=session_id,
                data=data,
                changed_by=principal.subject,
                today=utcnow().date(),
            )
            outcomes = [
                f"{names.get(e.participant_id) or '(nama dihapus)'}: "
                f"{OUTCOME[before]} → {OUTCOME[after]}"
                for e, before, after in changed
                if before != after
            ]
            await commit(session)
        except ValidationError as exc:
            errors = _fields(FormErrors.of_validation(exc))
        except Problem as exc:
            if exc.status not in (409, 422):
                raise
            errors = _fields(FormErrors.of_problem(exc))
        else:
            message = "Koreksi disimpan dan hasil akhir dihitung ulang"
            message += f": {', '.join(outcomes)}." if outcomes else "; hasil akhir tidak berubah."
            flash(request, message)
            return RedirectResponse(f"{STAFF}/sesi/{session_id}/koreksi", status_code=303)
        await session.rollback()
    return await _page(
        request, session, principal, session_id, values=values, errors=errors, status_code=422
    )


def _fields(errors: FormErrors) -> FormErrors:
    """attendance.0.… and assessments.0.… name the one correction sent: each message goes next
    to the field of the form it came from."""
    where = {
        "participant_id": "participant_id",
        "date": "day",
        "status": "status",
        "unit_code": "unit_code",
        "result": "result",
    }
    mapped = FormErrors()
    for field, message in errors.items():
        last = field.split(".")[-1]
        name = where.get(last, last if last in FIELDS else "form")
        if field in ("attendance", "assessments"):
            name = "form"
        mapped.add(name, in_dates(message))
    return mapped
