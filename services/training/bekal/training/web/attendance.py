"""A running session's daily work: attendance (one day on one screen, "present" unless changed),
assessment of every competency unit for everyone at once, and completion with each person's
outcome and why. The API's rules: training officers and administrators record; staff read."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Principal, Role
from bekal.shared.db import utcnow
from bekal.shared.idempotency import commit
from bekal.shared.problems import Problem
from bekal.shared.web import STAFF, FormErrors, flash, page_router
from bekal.training import domain
from bekal.training.deps import SessionDep
from bekal.training.domain import (
    AssessmentResult,
    AttendanceStatus,
    EndReason,
    EnrollmentStatus,
    SessionStatus,
)
from bekal.training.models import TrainingSession
from bekal.training.schemas import AssessmentSheet, AttendanceSheet
from bekal.training.services import assessment, attendance, enrolment, outcomes, replica, sessions
from bekal.training.web.common import (
    ATTENDANCE,
    END_REASON,
    RESULT,
    Officer,
    Reader,
    attendance_corrections,
    in_dates,
    pages,
    percent,
    tag,
    tanggal,
)

router = page_router(pages=pages)

SHOWN_ON_SHEET = (
    EnrollmentStatus.ENROLLED.value,
    EnrollmentStatus.WITHDRAWN.value,
    EnrollmentStatus.COMPLETED.value,
    EnrollmentStatus.NOT_COMPLETED.value,
)


def _days(ts: TrainingSession) -> list[date]:
    return [
        ts.start_date + timedelta(days=n)
        for n in range(domain.session_days(ts.start_date, ts.end_date))
    ]


def _pick_day(ts: TrainingSession, value: str) -> date:
    days = _days(ts)
    try:
        chosen = date.fromisoformat(value) if value else utcnow().date()
    except ValueError:
        chosen = days[0]
    return chosen if chosen in days else days[0]


@dataclass(slots=True)
class _SheetRow:
    """One person's row of the attendance screen. An object, not a dict: the template reads
    each field a dozen times per row, and Jinja tries an attribute before a key (a dict's
    every read raised and caught an AttributeError first)."""

    id: str
    name: str
    status: str
    note: str
    recorded: bool
    refusal: str | None
    withdrawn: bool
    left: str
    absent_by_registry: bool


def _reason(e: Any) -> EndReason | None:
    return EndReason(e.withdrawal_reason) if e.withdrawal_reason else None


async def _attendance_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    day_value: str,
    *,
    posted: Mapping[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    ts = await sessions.get_session(session=session, session_id=session_id)
    facility = await replica.get_facility(session=session, facility_id=ts.facility_id)
    day = _pick_day(ts, day_value)
    # Enrolments and history as columns, not ORM objects: the screen changes none of them.
    views = [
        e
        for e in await enrolment.enrolment_rows(session=session, session_id=ts.id)
        if e.status in SHOWN_ON_SHEET and e.withdrawal_reason != EndReason.MERGED.value
    ]
    absences = await attendance.absences_of(
        session=session, participant_ids=[e.participant_id for e in views]
    )
    recorded = await attendance.day_sheet(session=session, session_id=ts.id, day=day)
    history = await attendance.sheet_history(session=session, session_id=ts.id, day=day)
    names = {e.id: e.full_name for e in views}
    notes = {
        change.enrollment_id: change.reason
        for change in history
        if change.day == day and change.reason
    }
    editable = ts.status == SessionStatus.RUNNING.value and (
        principal.has_role(Role.TRAINING_OFFICER) or principal.has_role(Role.TRAINING_ADMIN)
    )
    rows: list[_SheetRow] = []
    for e in views:
        refusal = domain.attendance_refusal(
            day=day,
            enrollment_status=EnrollmentStatus(e.status),
            withdrawn_on=e.withdrawn_on,
            withdrawal_reason=_reason(e),
            spell=tanggal,
        )
        # Judged by the period the registry recorded, so a past day entered after the person
        # came back still starts as excused.
        away = domain.absence_on(day, absences.get(e.participant_id, []))
        absent_by_registry = away is not None
        status = recorded.get(e.id)
        note = notes.get(e.id, "")
        if status is None:
            status = AttendanceStatus.EXCUSED if away else AttendanceStatus.PRESENT
            if away is not None:
                since, back = away
                note = f"Keluar sementara menurut registri sejak {tanggal(since)}"
                if back is not None:
                    note += f", kembali {tanggal(back)}"
        if posted is not None and not refusal:
            status = AttendanceStatus(posted.get(f"status-{e.id}") or status)
            note = posted.get(f"note-{e.id}", note)
        rows.append(
            _SheetRow(
                id=str(e.id),
                name=e.full_name or "(nama dihapus)",
                status=status.value,
                note=note,
                recorded=e.id in recorded,
                refusal=refusal,
                withdrawn=e.status == EnrollmentStatus.WITHDRAWN.value,
                left=(
                    f"Keluar {tanggal(e.withdrawn_on)} "
                    f"({END_REASON.get(_reason(e) or EndReason.OTHER, '')})"
                    if e.status == EnrollmentStatus.WITHDRAWN.value
                    else ""
                ),
                absent_by_registry=absent_by_registry,
            )
        )
    done_days = await attendance.recorded_days(session=session, session_id=ts.id)
    corrections = attendance_corrections(((change, None) for change in history), names, principal)
    counts = {
        label: sum(1 for r in rows if not r.refusal and r.status == status.value)
        for status, label in ATTENDANCE.items()
    }
    return pages.render(
        request,
        "absensi.html",
        status_code=status_code,
        title=f"Absensi {tanggal(day)} — {ts.program_code} di {facility.code}",
        ts=ts,
        facility=facility,
        day=day,
        day_number=_days(ts).index(day) + 1,
        days=[
            {"iso": d.isoformat(), "n": n, "label": tanggal(d), "done": d in done_days}
            for n, d in enumerate(_days(ts), start=1)
        ],
        rows=rows,
        counts=counts,
        choices=[(s.value, ATTENDANCE[s]) for s in AttendanceStatus],
        corrections=corrections,
        editable=editable,
        saved=bool(recorded),
        errors=errors or FormErrors(),
        labels={r.id: r.name for r in rows},
    )


@router.get("/sesi/{session_id}/absensi")
async def attendance_sheet(
    request: Request,
    session_id: uuid.UUID,
    session: SessionDep,
    principal: Reader,
    tanggal: str = "",
) -> Response:
    return await _attendance_page(request, session, principal, session_id, tanggal)


@router.post("/sesi/{session_id}/absensi")
async def save_attendance(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Officer
) -> Response:
    form = await request.form()
    posted = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    day_value = posted.get("tanggal", "")
    ts = await sessions.get_session(session=session, session_id=session_id)
    views = (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
    by_enrollment = {str(e.id): e for e, _ in views}
    records = []
    order: list[str] = []
    for key, value in posted.items():
        if not key.startswith("status-"):
            continue
        enrollment = by_enrollment.get(key.removeprefix("status-"))
        if enrollment is None:
            continue
        note = posted.get(f"note-{enrollment.id}") or None
        records.append({"participant_id": enrollment.participant_id, "status": value, "note": note})
        order.append(str(enrollment.id))
    try:
        sheet = AttendanceSheet.model_validate({"date": day_value, "records": records})
        await attendance.record_attendance(
            session=session, session_id=session_id, sheet=sheet, changed_by=principal.subject
        )
        await commit(session)
    except ValidationError as exc:
        errors = _by_person(FormErrors.of_validation(exc), order)
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        errors = _by_person(FormErrors.of_problem(exc), order)
    else:
        absent = sum(1 for r in sheet.records if r.status != AttendanceStatus.PRESENT)
        flash(
            request,
            f"Absensi {tanggal(sheet.date)} disimpan: {len(sheet.records)} orang, "
            f"{absent} tidak hadir atau izin.",
        )
        return RedirectResponse(
            f"{STAFF}/sesi/{session_id}/absensi?tanggal={sheet.date.isoformat()}",
            status_code=303,
        )
    await session.rollback()
    return await _attendance_page(
        request,
        session,
        principal,
        session_id,
        day_value,
        posted=posted,
        errors=errors,
        status_code=409 if any(e for e in errors) else 422,
    )


def _by_person(errors: FormErrors, order: list[str]) -> FormErrors:
    """records.N.… names the N-th row sent: the message goes next to that person."""
    mapped = FormErrors()
    for field, message in errors.items():
        parts = field.split(".")
        if len(parts) >= 2 and parts[0] == "records" and parts[1].isdigit():
            index = int(parts[1])
            field = order[index] if index < len(order) else "form"
        mapped.add(field, in_dates(message))
    return mapped


# --- assessment ----------------------------------------------------------------------------


async def _assessment_page(
    request: Request,
    session: AsyncSession,
    session_id: uuid.UUID,
    *,
    posted: Mapping[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    ts = await sessions.get_session(session=session, session_id=session_id)
    facility = await replica.get_facility(session=session, facility_id=ts.facility_id)
    views = [
        v
        for v in (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
        if v[0].status == EnrollmentStatus.ENROLLED.value
    ]
    results = await assessment.results_of(session=session, session_id=ts.id)
    units = ts.competency_units
    rows = []
    for e, name in views:
        cells = []
        for unit in units:
            key = f"r-{e.id}-{unit['code']}"
            current = results.get(e.id, {}).get(unit["code"])
            value = (posted or {}).get(key) or (
                current.value if current else AssessmentResult.COMPETENT.value
            )
            cells.append({"key": key, "code": unit["code"], "value": value, "saved": current})
        rows.append({"id": str(e.id), "name": name or "(nama dihapus)", "cells": cells})
    assessor = (posted or {}).get("assessor") or next((i["name"] for i in ts.instructors), "")
    return pages.render(
        request,
        "penilaian.html",
        status_code=status_code,
        title=f"Penilaian — {ts.program_code} di {facility.code}",
        ts=ts,
        facility=facility,
        units=units,
        rows=rows,
        choices=[(r.value, RESULT[r]) for r in AssessmentResult],
        running=ts.status == SessionStatus.RUNNING.value,
        any_saved=bool(results),
        values={"assessor": assessor},
        errors=errors or FormErrors(),
        labels={"assessor": "Penilai", **{r["id"]: r["name"] for r in rows}},
    )


@router.get("/sesi/{session_id}/penilaian")
async def assessment_sheet(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Reader
) -> Response:
    return await _assessment_page(request, session, session_id)


@router.post("/sesi/{session_id}/penilaian")
async def save_assessment(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Officer
) -> Response:
    form = await request.form()
    posted = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    ts = await sessions.get_session(session=session, session_id=session_id)
    views = (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
    results = []
    for e, _ in views:
        if e.status != EnrollmentStatus.ENROLLED.value:
            continue
        for unit in ts.competency_units:
            value = posted.get(f"r-{e.id}-{unit['code']}")
            if value:
                results.append(
                    {"participant_id": e.participant_id, "unit_code": unit["code"], "result": value}
                )
    try:
        sheet = AssessmentSheet.model_validate(
            {"assessor": posted.get("assessor", ""), "results": results}
        )
        count = await assessment.record_assessments(
            session=session, session_id=session_id, sheet=sheet
        )
        await commit(session)
    except ValidationError as exc:
        errors = FormErrors()
        for field, message in FormErrors.of_validation(exc).items():
            errors.add("assessor" if field == "assessor" else "form", message)
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        errors = FormErrors.of_problem(exc)
    else:
        flash(request, f"Penilaian disimpan: {count} hasil unit kompetensi.")
        return RedirectResponse(f"{STAFF}/sesi/{session_id}/penilaian", status_code=303)
    await session.rollback()
    return await _assessment_page(
        request, session, session_id, posted=posted, errors=errors, status_code=422
    )


# --- completion ----------------------------------------------------------------------------


@router.get("/sesi/{session_id}/penutupan")
async def completion(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Reader
) -> Response:
    return await _completion_page(request, session, principal, session_id)


async def _completion_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    """Before completion: the outcome each person would get now, and why; after: the outcome."""
    ts = await sessions.get_session(session=session, session_id=session_id)
    facility = await replica.get_facility(session=session, facility_id=ts.facility_id)
    views = [
        v
        for v in (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
        if v[0].status
        in (
            EnrollmentStatus.ENROLLED.value,
            EnrollmentStatus.COMPLETED.value,
            EnrollmentStatus.NOT_COMPLETED.value,
        )
    ]
    decided = await outcomes.decide(session=session, ts=ts, enrollments=[e for e, _ in views])
    results = await assessment.results_of(session=session, session_id=ts.id)
    units = [u["code"] for u in ts.competency_units]
    rows = []
    passed = 0
    for e, name in views:
        outcome = decided[e.id]
        if e.status in (EnrollmentStatus.COMPLETED.value, EnrollmentStatus.NOT_COMPLETED.value):
            completed = e.status == EnrollmentStatus.COMPLETED.value
            share = e.attendance_share
        else:
            completed, share = outcome.completed, outcome.attendance_share
        passed += completed
        mine = results.get(e.id, {})
        missing = [u for u in units if mine.get(u) != AssessmentResult.COMPETENT]
        why = []
        enough = share is not None and share + 1e-9 >= ts.min_attendance_share
        why.append(
            f"kehadiran {percent(share)} {'memenuhi' if enough else 'di bawah'} batas "
            f"{percent(ts.min_attendance_share)}"
        )
        why.append(
            f"{len(units) - len(missing)} dari {len(units)} unit kompeten"
            + (f" (belum: {', '.join(missing)})" if missing else "")
        )
        rows.append(
            [
                name or "(nama dihapus)",
                {
                    "text": "Lulus" if completed else "Tidak lulus",
                    "kind": "ok" if completed else "off",
                },
                percent(share),
                "; ".join(why) + ".",
            ]
        )
    for e, name in (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]:
        if e.status == EnrollmentStatus.WITHDRAWN.value:
            how = END_REASON.get(_reason(e) or EndReason.OTHER, "")
            rows.append(
                [
                    name or "(nama dihapus)",
                    tag("Keluar", "neutral"),
                    "—",
                    f"keluar dari sesi {tanggal(e.withdrawn_on)} ({how}); tidak dinilai.",
                ]
            )
    running = ts.status == SessionStatus.RUNNING.value
    may_complete = running and (
        principal.has_role(Role.TRAINING_OFFICER) or principal.has_role(Role.TRAINING_ADMIN)
    )
    return pages.render(
        request,
        "penutupan.html",
        status_code=status_code,
        title=f"Penutupan — {ts.program_code} di {facility.code}",
        ts=ts,
        facility=facility,
        rows=rows,
        passed=passed,
        total=len(rows),
        running=running,
        may_complete=may_complete,
        errors=errors or FormErrors(),
    )


@router.post("/sesi/{session_id}/selesai")
async def complete(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Officer
) -> Response:
    try:
        ts = await sessions.complete_session(
            session=session, session_id=session_id, today=utcnow().date()
        )
        views = (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
        graduates = sum(1 for e, _ in views if e.status == EnrollmentStatus.COMPLETED.value)
        decided = graduates + sum(
            1 for e, _ in views if e.status == EnrollmentStatus.NOT_COMPLETED.value
        )
        await commit(session)
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        await session.rollback()
        return await _completion_page(
            request,
            session,
            principal,
            session_id,
            errors=FormErrors.of_problem(exc),
            status_code=409,
        )
    flash(request, f"Sesi selesai: {graduates} dari {decided} peserta lulus.")
    return RedirectResponse(f"{STAFF}/sesi/{session_id}/penutupan", status_code=303)
