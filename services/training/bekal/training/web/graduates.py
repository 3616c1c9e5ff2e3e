"""After the course: graduates' readiness (identity card, bank account, NIB, starter tools)
and the follow-ups 3, 6 and 12 months after release, with what is due next. The API's rules:
field officers, training officers and administrators record readiness; follow-ups are for
field officers and administrators."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Principal, Role
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import FollowUpSituation
from bekal.shared.idempotency import commit
from bekal.shared.problems import NotFound, Problem
from bekal.shared.web import STAFF, FormErrors, flash, page_router
from bekal.training import domain
from bekal.training.deps import SessionDep
from bekal.training.domain import EnrollmentStatus
from bekal.training.models import Enrollment, FollowUp, Participant, ReadinessChecklist
from bekal.training.schemas import FollowUpIn, ReadinessIn
from bekal.training.services import graduates, sessions
from bekal.training.web.common import (
    SITUATION,
    FollowUpper,
    GraduateReader,
    pages,
    percent,
    tag,
    tanggal,
    who,
)

router = page_router(pages=pages)

READINESS = (
    ("identity_card", "KTP / kartu identitas"),
    ("bank_account", "Rekening bank"),
    ("nib", "NIB (Nomor Induk Berusaha)"),
    ("starter_tools", "Paket alat usaha"),
)
LABELS = {
    "checkpoint_months": "Tindak lanjut",
    "situation": "Keadaan lulusan",
    "recorded_on": "Tanggal tindak lanjut",
    "enrollment_id": "Lulusan",
    "form": "Formulir",
    **dict(READINESS),
}


def next_due(
    released_on: date | None,
    expected_release: date | None,
    readiness: ReadinessChecklist | None,
    done: set[int],
) -> str:
    """What is due next for a graduate, in words."""
    if released_on is None:
        missing = [label for key, label in READINESS if not getattr(readiness, key, False)]
        when = f" (perkiraan bebas {tanggal(expected_release)})" if expected_release else ""
        if missing:
            return f"Sebelum bebas{when}: lengkapi {', '.join(missing)}."
        return f"Kesiapan lengkap; tindak lanjut dimulai 3 bulan setelah bebas{when}."
    for months in domain.FOLLOW_UP_CHECKPOINTS:
        if months not in done:
            due = domain.add_months(released_on, months)
            return f"Tindak lanjut bulan ke-{months}, jatuh tempo {tanggal(due)}."
    return "Semua tindak lanjut (3, 6, 12 bulan) sudah dicatat."


async def _facts(
    session: AsyncSession, enrollment: Enrollment
) -> tuple[Participant | None, ReadinessChecklist | None, list[FollowUp]]:
    participant = await session.get(Participant, enrollment.participant_id)
    readiness = await session.get(ReadinessChecklist, enrollment.id)
    follow_ups = await graduates.list_follow_ups(session=session, enrollment_id=enrollment.id)
    return participant, readiness, follow_ups


@router.get("/lulusan")
async def list_graduates(
    request: Request, session: SessionDep, principal: GraduateReader, cursor: str | None = None
) -> Response:
    page, names = await graduates.list_enrollments(
        session=session,
        status=EnrollmentStatus.COMPLETED,
        participant_id=None,
        session_id=None,
        limit=50,
        cursor=cursor or None,
    )
    rows = []
    for e in page.rows:
        participant, readiness, follow_ups = await _facts(session, e)
        ready = sum(bool(getattr(readiness, key, False)) for key, _ in READINESS)
        released = participant.released_on if participant else None
        rows.append(
            [
                {
                    "text": names.get(e.participant_id) or "(nama dihapus)",
                    "href": f"{STAFF}/lulusan/{e.id}",
                },
                tag("Sudah bebas", "neutral") if released else tag("Masih dibina", "warn"),
                f"{ready} dari {len(READINESS)}",
                f"{len(follow_ups)} dari {len(domain.FOLLOW_UP_CHECKPOINTS)}",
                next_due(
                    released,
                    participant.expected_release_date if participant else None,
                    readiness,
                    {f.checkpoint_months for f in follow_ups},
                ),
            ]
        )
    return pages.render(
        request,
        "lulusan-daftar.html",
        title="Lulusan",
        rows=rows,
        count=page.count,
        next_href=f"?cursor={page.next_cursor}" if page.next_cursor else None,
        first_href="?" if cursor else None,
    )


async def _graduate_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    enrollment_id: uuid.UUID,
    *,
    action: str | None = None,
    values: Mapping[str, Any] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    enrollment = await session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.status != EnrollmentStatus.COMPLETED.value:
        raise NotFound("Lulusan tidak ditemukan.")
    ts = await sessions.get_session(session=session, session_id=enrollment.session_id)
    participant, readiness, follow_ups = await _facts(session, enrollment)
    released = participant.released_on if participant else None
    done = {f.checkpoint_months: f for f in follow_ups}
    checkpoints = []
    for months in domain.FOLLOW_UP_CHECKPOINTS:
        f = done.get(months)
        checkpoints.append(
            [
                f"Bulan ke-{months}",
                tanggal(domain.add_months(released, months)) if released else "setelah bebas",
                SITUATION[FollowUpSituation(f.situation)] if f else "—",
                f"{tanggal(f.recorded_on)} oleh {who(f.recorded_by, principal)}" if f else "—",
            ]
        )
    first_open = next((m for m in domain.FOLLOW_UP_CHECKPOINTS if m not in done), None)
    readiness_values = {key: "ya" for key, _ in READINESS if getattr(readiness, key, False)}
    return pages.render(
        request,
        "lulusan.html",
        status_code=status_code,
        title=f"Lulusan — {participant.full_name if participant else '(nama dihapus)'}",
        name=participant.full_name if participant else "(nama dihapus)",
        enrollment=enrollment,
        ts=ts,
        participant=participant,
        released=released,
        share=percent(enrollment.attendance_share),
        readiness=readiness,
        readiness_by=who(readiness.recorded_by, principal) if readiness else "",
        readiness_items=READINESS,
        checkpoints=checkpoints,
        next_due=next_due(
            released,
            participant.expected_release_date if participant else None,
            readiness,
            set(done),
        ),
        may_follow_up=principal.has_role(Role.FIELD_OFFICER)
        or principal.has_role(Role.TRAINING_ADMIN),
        action=action,
        readiness_values=values if action == "kesiapan" else readiness_values,
        follow_up_values=(
            values
            if action == "tindak-lanjut"
            else {
                "checkpoint_months": str(first_open or ""),
                "recorded_on": utcnow().date().isoformat(),
            }
        ),
        checkpoint_options=[(str(m), f"Bulan ke-{m}") for m in domain.FOLLOW_UP_CHECKPOINTS],
        situations=[(s.value, SITUATION[s]) for s in FollowUpSituation],
        errors=errors or FormErrors(),
        labels=LABELS,
    )


@router.get("/lulusan/{enrollment_id}")
async def graduate(
    request: Request, enrollment_id: uuid.UUID, session: SessionDep, principal: GraduateReader
) -> Response:
    return await _graduate_page(request, session, principal, enrollment_id)


@router.post("/lulusan/{enrollment_id}/kesiapan")
async def record_readiness(
    request: Request, enrollment_id: uuid.UUID, session: SessionDep, principal: GraduateReader
) -> Response:
    form = await request.form()
    values = {key: "ya" for key, _ in READINESS if form.get(key) == "ya"}
    try:
        await graduates.record_readiness(
            session=session,
            enrollment_id=enrollment_id,
            data=ReadinessIn(**{key: key in values for key, _ in READINESS}),
            recorded_by=principal.subject,
            today=utcnow().date(),
        )
        await commit(session)
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        errors = FormErrors.of_problem(exc)
    else:
        flash(request, "Kesiapan dicatat.")
        return RedirectResponse(f"{STAFF}/lulusan/{enrollment_id}", status_code=303)
    await session.rollback()
    return await _graduate_page(
        request,
        session,
        principal,
        enrollment_id,
        action="kesiapan",
        values=values,
        errors=errors,
        status_code=409,
    )


@router.post("/lulusan/{enrollment_id}/tindak-lanjut")
async def record_follow_up(
    request: Request, enrollment_id: uuid.UUID, session: SessionDep, principal: FollowUpper
) -> Response:
    form = await request.form()
    values = {
        name: str(form.get(name) or "").strip()
        for name in ("checkpoint_months", "situation", "recorded_on")
    }
    errors = FormErrors()
    months = int(values["checkpoint_months"]) if values["checkpoint_months"].isdigit() else 0
    if months not in domain.FOLLOW_UP_CHECKPOINTS:
        errors.add("checkpoint_months", "Pilih bulan ke-3, ke-6, atau ke-12.")
    try:
        data = FollowUpIn.model_validate(
            {"situation": values["situation"] or None, "recorded_on": values["recorded_on"] or None}
        )
        if errors:
            raise Problem("Periksa isian formulir.", status=422)
        await graduates.record_follow_up(
            session=session,
            enrollment_id=enrollment_id,
            checkpoint_months=months,
            data=data,
            recorded_by=principal.subject,
        )
        await commit(session)
    except ValidationError as exc:
        errors = FormErrors({**FormErrors.of_validation(exc), **errors})
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        if not errors:
            errors = FormErrors.of_problem(exc)
    else:
        flash(request, f"Tindak lanjut bulan ke-{months} dicatat.")
        return RedirectResponse(f"{STAFF}/lulusan/{enrollment_id}", status_code=303)
    await session.rollback()
    return await _graduate_page(
        request,
        session,
        principal,
        enrollment_id,
        action="tindak-lanjut",
        values=values,
        errors=errors,
        status_code=422,
    )
