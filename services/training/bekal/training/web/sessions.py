"""Sessions: the list (by facility, status and dates), scheduling, one session with the moves
its status allows (open, start, complete, cancel; the reason shown for those it does not), and
nomination from the consenting candidates training's replica knows of.

Everything here reads training's own tables: the pages work while the registry is away."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Principal, Role
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import NotCompletedReason
from bekal.shared.idempotency import commit
from bekal.shared.problems import NotFound, Problem, RuleViolation
from bekal.shared.web import STAFF, FormErrors, flash, page_router
from bekal.training import domain
from bekal.training.deps import SessionDep
from bekal.training.domain import (
    EndReason,
    EnrollmentStatus,
    RuleBroken,
    SessionStatus,
)
from bekal.training.models import Participant, TrainingSession
from bekal.training.schemas import EnrollmentCreate, SessionCancel, SessionCreate
from bekal.training.services import enrolment, programs, replica, sessions
from bekal.training.services.enrolment import EnrollmentView
from bekal.training.web.common import (
    END_REASON,
    ENROLLMENT_STATUS,
    NOT_COMPLETED,
    SESSION_STATUS,
    Admin,
    Officer,
    Reader,
    facilities_known,
    form_values,
    in_dates,
    in_words,
    pages,
    percent,
    tag,
    tanggal,
    who,
)

router = page_router(pages=pages)

# Sessions on one page of the list (the rest behind "Halaman berikutnya").
PAGE_SIZE = 50
# The nomination page lists at most this many of a facility's people, those near release first.
CANDIDATES_SHOWN = 500

SCHEDULE_FIELDS = (
    "program_id",
    "facility_id",
    "start_date",
    "end_date",
    "capacity",
    "instructor_name",
    "instructor_institution",
)
LABELS = {
    "program_id": "Program",
    "facility_id": "Lapas/rutan",
    "start_date": "Tanggal mulai",
    "end_date": "Tanggal selesai",
    "capacity": "Kapasitas (orang)",
    "instructor_name": "Nama instruktur",
    "instructor_institution": "Lembaga instruktur",
    "instructors": "Instruktur",
    "reason": "Alasan pembatalan",
    "participant_ids": "Peserta",
    "status": "Status sesi",
    "form": "Formulir",
}


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("")
async def home() -> Response:
    return RedirectResponse(f"{STAFF}/sesi", status_code=303)


@router.get("/sesi")
async def list_sessions(
    request: Request,
    session: SessionDep,
    principal: Reader,
    facility_id: str = "",
    status: str = "",
    dari: str = "",
    sampai: str = "",
    cursor: str = "",
) -> Response:
    errors = FormErrors()
    facility_filter: uuid.UUID | None = None
    if facility_id:
        try:
            facility_filter = uuid.UUID(facility_id)
        except ValueError:
            errors.add("facility_id", "Pilih salah satu pilihan yang tersedia.")
    status_filter = SessionStatus(status) if status in set(SessionStatus) else None
    start, end = _parse_date(dari), _parse_date(sampai)
    if dari and start is None:
        errors.add("dari", "Tanggal tidak valid; isi dengan format HHHH-BB-TT.")
    if sampai and end is None:
        errors.add("sampai", "Tanggal tidak valid; isi dengan format HHHH-BB-TT.")
    try:
        page = await sessions.list_sessions(
            session=session,
            facility_id=facility_filter,
            program_id=None,
            status=status_filter,
            held_from=start,
            held_until=end,
            latest_first=True,
            limit=PAGE_SIZE,
            cursor=cursor or None,
        )
    except RuleViolation as exc:  # a cursor altered by hand names no page
        raise NotFound("Halaman daftar tidak ditemukan.") from exc
    rows = page.rows
    kept = {
        k: v
        for k, v in (
            ("facility_id", facility_id),
            ("status", status),
            ("dari", dari),
            ("sampai", sampai),
        )
        if v
    }
    known = await facilities_known(session)
    names = {f.id: f.code for f in known}
    found = await enrolment.enrollments_of(session=session, session_ids=[s.id for s in rows])
    table = []
    for s in rows:
        label, kind = SESSION_STATUS[SessionStatus(s.status)]
        seats = sum(
            1
            for e, _ in found[s.id]
            if e.status != EnrollmentStatus.WAITLISTED.value
            and e.status != EnrollmentStatus.WITHDRAWN.value
        )
        table.append(
            [
                {
                    "text": f"{s.program_code} · {tanggal(s.start_date)}",
                    "href": f"{STAFF}/sesi/{s.id}",
                },
                s.program_title,
                names.get(s.facility_id, "—"),
                f"{tanggal(s.start_date)} s.d. {tanggal(s.end_date)}",
                f"{seats}/{s.capacity}",
                tag(label, kind),
            ]
        )
    return pages.render(
        request,
        "sesi-daftar.html",
        title="Sesi pelatihan",
        values={"facility_id": facility_id, "status": status, "dari": dari, "sampai": sampai},
        errors=errors,
        facilities=[(str(f.id), f"{f.code} — {f.name}") for f in known],
        statuses=[(s.value, SESSION_STATUS[s][0]) for s in SessionStatus],
        rows=table,
        count=page.count,
        next_href=(
            f"?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
        ),
        first_href=f"?{urlencode(kept)}" if cursor else None,
        may_schedule=principal.has_role(Role.TRAINING_ADMIN),
    )


# --- scheduling ----------------------------------------------------------------------------


async def _schedule_form(
    request: Request,
    session: AsyncSession,
    *,
    values: Mapping[str, str],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    listed = await programs.list_programs(
        session=session, code=None, sector=None, limit=500, cursor=None
    )
    known = [f for f in await facilities_known(session) if f.active]
    return pages.render(
        request,
        "sesi-baru.html",
        status_code=status_code,
        title="Jadwalkan sesi",
        values=values,
        errors=errors,
        labels=LABELS,
        programs=[
            (str(p.id), f"{p.code} — {p.title} (v{p.version}, {p.days} hari)") for p in listed.rows
        ],
        facilities=[(str(f.id), f"{f.code} — {f.name}") for f in known],
    )


@router.get("/sesi/baru")
async def schedule_form(
    request: Request, session: SessionDep, principal: Admin, program_id: str = ""
) -> Response:
    return await _schedule_form(
        request, session, values={"program_id": program_id}, errors=FormErrors()
    )


@router.post("/sesi/baru")
async def schedule(request: Request, session: SessionDep, principal: Admin) -> Response:
    values = form_values(await request.form(), *SCHEDULE_FIELDS)
    instructors = []
    if values["instructor_name"] or values["instructor_institution"]:
        instructors.append(
            {"name": values["instructor_name"], "institution": values["instructor_institution"]}
        )
    try:
        data = SessionCreate.model_validate(
            {
                "program_id": values["program_id"] or None,
                "facility_id": values["facility_id"] or None,
                "start_date": values["start_date"] or None,
                "end_date": values["end_date"] or None,
                "capacity": values["capacity"] or None,
                "instructors": instructors,
            }
        )
        ts = await sessions.schedule_session(session=session, data=data)
        session_id = ts.id
        await commit(session)
    except ValidationError as exc:
        errors = FormErrors.of_validation(exc)
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        errors = FormErrors.of_problem(exc)
    else:
        flash(request, "Sesi dijadwalkan. Buka pendaftaran bila jadwal dan instruktur sudah pasti.")
        return RedirectResponse(f"{STAFF}/sesi/{session_id}", status_code=303)
    await session.rollback()
    fixed = FormErrors()
    for field, message in errors.items():
        if field.startswith("instructors"):
            field = "instructor_name" if field.endswith("name") else "instructor_institution"
        fixed.add(field, message)
    return await _schedule_form(request, session, values=values, errors=fixed, status_code=422)


# --- one session ---------------------------------------------------------------------------


def _refusal(check: Any, status: SessionStatus) -> str | None:
    try:
        check(status)
    except RuleBroken as rule:
        return in_words(rule.message)
    return None


def moves(ts: TrainingSession, principal: Principal) -> list[dict[str, Any]]:
    """Each move of the life cycle: offered when the rules and the person's role allow it,
    otherwise with the reason (the domain's own words)."""
    status = SessionStatus(ts.status)
    admin = principal.has_role(Role.TRAINING_ADMIN)
    officer = admin or principal.has_role(Role.TRAINING_OFFICER)
    only_admin = "Hanya admin pelatihan yang dapat membatalkan sesi."
    only_officer = "Perlu peran petugas atau admin pelatihan."
    return [
        {
            "action": "buka",
            "label": "Buka pendaftaran",
            "refused": _refusal(domain.check_can_open, status)
            or (None if officer else only_officer),
        },
        {
            "action": "mulai",
            "label": "Mulai sesi",
            "refused": _refusal(domain.check_can_start, status)
            or (None if officer else only_officer),
        },
        {
            "action": "penutupan",
            "label": "Tutup sesi dan tentukan kelulusan",
            "refused": _refusal(lambda s: domain.check_running(s, "penutupan"), status)
            or (None if officer else only_officer),
        },
        {
            "action": "batal",
            "label": "Batalkan sesi",
            "refused": _refusal(domain.check_can_cancel, status) or (None if admin else only_admin),
        },
    ]


def _enrollment_row(
    ts: TrainingSession, view: EnrollmentView, position: int | None, principal: Principal
) -> list[Any]:
    e, name = view
    label, kind = ENROLLMENT_STATUS[EnrollmentStatus(e.status)]
    note = "—"
    if e.status == EnrollmentStatus.WITHDRAWN.value:
        how = END_REASON.get(EndReason(e.withdrawal_reason), "") if e.withdrawal_reason else ""
        note = f"Keluar {tanggal(e.withdrawn_on)}" + (f" ({how})" if how else "")
    elif e.status == EnrollmentStatus.WAITLISTED.value and position:
        note = f"Urutan {position} di daftar tunggu"
    elif e.status == EnrollmentStatus.NOT_COMPLETED.value and e.not_completed_reason:
        note = NOT_COMPLETED[NotCompletedReason(e.not_completed_reason)]
    if e.override_reason:
        given = f"Pengecualian masa bebas oleh {who(e.override_by or '', principal)}: "
        given += e.override_reason
        note = given if note == "—" else f"{note}. {given}"
    return [
        name or "(nama dihapus)",
        tag(label, kind),
        tanggal(e.enrolled_on),
        percent(e.attendance_share),
        note,
    ]


async def _session_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    ts = await sessions.get_session(session=session, session_id=session_id)
    facility = await replica.get_facility(session=session, facility_id=ts.facility_id)
    views = (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
    position = 0
    rows = []
    for view in views:
        if view[0].status == EnrollmentStatus.WAITLISTED.value:
            position += 1
        rows.append(_enrollment_row(ts, view, position, principal))
    counts = _counts(ts, views)
    label, kind = SESSION_STATUS[SessionStatus(ts.status)]
    return pages.render(
        request,
        "sesi.html",
        status_code=status_code,
        title=f"{ts.program_code} di {facility.code}, {tanggal(ts.start_date)}",
        ts=ts,
        facility=facility,
        status_label=label,
        status_kind=kind,
        share=percent(ts.min_attendance_share),
        days=domain.session_days(ts.start_date, ts.end_date),
        moves=moves(ts, principal),
        rows=rows,
        counts=counts,
        running=ts.status == SessionStatus.RUNNING.value,
        enrolling=SessionStatus(ts.status) in domain.ENROLLING_STATUSES,
        errors=errors or FormErrors(),
        values=values or {},
        labels=LABELS,
    )


def _counts(ts: TrainingSession, views: list[EnrollmentView]) -> dict[str, int]:
    by: dict[str, int] = {}
    for e, _ in views:
        by[e.status] = by.get(e.status, 0) + 1
    taken = sum(v for k, v in by.items() if k not in ("waitlisted", "withdrawn"))
    return {
        "capacity": ts.capacity,
        "taken": taken,
        "free": domain.seats_free(capacity=ts.capacity, seats_taken=taken),
        "waiting": by.get("waitlisted", 0),
        "withdrawn": by.get("withdrawn", 0),
    }


@router.get("/sesi/{session_id}")
async def show_session(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Reader
) -> Response:
    return await _session_page(request, session, principal, session_id)


async def _move(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    action: str,
) -> Response:
    today = utcnow().date()
    values: dict[str, str] = {}
    try:
        if action == "buka":
            await sessions.open_session(session=session, session_id=session_id, today=today)
            done = "Pendaftaran dibuka."
        elif action == "mulai":
            await sessions.start_session(session=session, session_id=session_id, today=today)
            done = "Sesi dimulai. Absensi dan penilaian sekarang dapat dicatat."
        else:
            values = form_values(await request.form(), "reason")
            body = SessionCancel.model_validate({"reason": values["reason"]})
            await sessions.cancel_session(
                session=session, session_id=session_id, reason=body.reason, today=today
            )
            done = "Sesi dibatalkan; semua pendaftaran berakhir."
        await commit(session)
    except ValidationError as exc:
        errors = FormErrors.of_validation(exc)
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        errors = FormErrors({k: in_words(v) for k, v in FormErrors.of_problem(exc).items()})
    else:
        flash(request, done)
        return RedirectResponse(f"{STAFF}/sesi/{session_id}", status_code=303)
    await session.rollback()
    return await _session_page(
        request, session, principal, session_id, errors=errors, values=values, status_code=409
    )


@router.post("/sesi/{session_id}/buka")
async def open_session(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Officer
) -> Response:
    return await _move(request, session, principal, session_id, "buka")


@router.post("/sesi/{session_id}/mulai")
async def start_session(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Officer
) -> Response:
    return await _move(request, session, principal, session_id, "mulai")


@router.post("/sesi/{session_id}/batal")
async def cancel_session(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    return await _move(request, session, principal, session_id, "batal")


# --- nomination ----------------------------------------------------------------------------


async def _candidates(
    session: AsyncSession, ts: TrainingSession
) -> tuple[list[tuple[Participant, str | None, bool]], int]:
    """The facility's consenting people in custody, those near release first, each with what
    stands in the way of enrolling them (None if nothing) and whether it is only the release
    window; and how many there are in all (the page lists ``CANDIDATES_SHOWN`` at most)."""
    window = (
        ts.start_date,
        domain.add_months(ts.start_date, domain.DEFAULT_RELEASE_WINDOW_MONTHS),
    )
    people, total = await replica.nomination_candidates(
        session=session, facility_id=ts.facility_id, window=window, limit=CANDIDATES_SHOWN
    )
    preview = await enrolment.nomination_preview(
        session=session, ts=ts, participant_ids=[p.id for p in people]
    )
    found = []
    for p in people:
        problem: str | None = None
        window_only = False
        if p.id in preview.already:
            problem = "Sudah terdaftar pada sesi ini."
        elif p.id in preview.busy:
            problem = f"Terdaftar pada sesi lain yang jadwalnya bertumpuk ({preview.busy[p.id]})."
        else:
            problem = domain.release_window_problem(
                expected_release_date=p.expected_release_date,
                session_start=ts.start_date,
                months=domain.DEFAULT_RELEASE_WINDOW_MONTHS,
                spell=tanggal,
            )
            window_only = problem is not None
        found.append((p, problem, window_only))
    return found, total


async def _nomination_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    *,
    chosen: set[str] | None = None,
    reasons: Mapping[str, str] | None = None,
    waitlist: bool = False,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    ts = await sessions.get_session(session=session, session_id=session_id)
    facility = await replica.get_facility(session=session, facility_id=ts.facility_id)
    views = (await enrolment.enrollments_of(session=session, session_ids=[ts.id]))[ts.id]
    candidates, total = await _candidates(session, ts)
    return pages.render(
        request,
        "nominasi.html",
        status_code=status_code,
        title=f"Nominasi peserta — {ts.program_code} di {facility.code}",
        ts=ts,
        facility=facility,
        counts=_counts(ts, views),
        enrolling=SessionStatus(ts.status) in domain.ENROLLING_STATUSES,
        status_refusal=(
            None
            if SessionStatus(ts.status) in domain.ENROLLING_STATUSES
            else "Sesi masih direncanakan; buka pendaftaran dulu."
            if ts.status == SessionStatus.PLANNED.value
            else "Sesi sudah selesai atau dibatalkan; pendaftaran ditutup."
        ),
        candidates=[
            {
                "id": str(p.id),
                "name": p.full_name,
                "sex": "Perempuan" if p.sex == "F" else "Laki-laki",
                "birth_year": p.birth_year,
                "release": tanggal(p.expected_release_date),
                "absent": p.absent_from is not None,
                "problem": problem,
                "window_only": window_only,
            }
            for p, problem, window_only in candidates
        ],
        eligible=sum(1 for _, problem, _ in candidates if problem is None),
        candidates_total=total,
        may_override=principal.has_role(Role.TRAINING_ADMIN),
        chosen=chosen or set(),
        reasons=reasons or {},
        waitlist=waitlist,
        errors=errors or FormErrors(),
        labels=LABELS,
    )


@router.get("/sesi/{session_id}/nominasi")
async def nomination(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Officer
) -> Response:
    return await _nomination_page(request, session, principal, session_id)


@router.post("/sesi/{session_id}/nominasi")
async def nominate(
    request: Request, session_id: uuid.UUID, session: SessionDep, principal: Officer
) -> Response:
    form = await request.form()
    chosen = [str(v) for v in form.getlist("participant_ids")]
    waitlist = form.get("waitlist") == "ya"
    reasons = {
        key.removeprefix("override-"): str(value).strip()
        for key, value in form.items()
        if key.startswith("override-") and isinstance(value, str) and value.strip()
    }
    if form.get("semua") == "ya":
        # Everyone listed who may join, and those given an exception; beyond the seats left,
        # the waiting list (as the API does with ``waitlist``).
        ts = await sessions.get_session(session=session, session_id=session_id)
        chosen = [
            str(p.id)
            for p, problem, window_only in (await _candidates(session, ts))[0]
            if problem is None or (window_only and str(p.id) in reasons)
        ]
        waitlist = True
    # An exception counts for a person chosen; a reason left next to someone else is not sent.
    overrides = [
        {"participant_id": pid, "reason": reasons[pid]} for pid in chosen if pid in reasons
    ]
    try:
        data = EnrollmentCreate.model_validate(
            {"participant_ids": chosen, "waitlist": waitlist, "overrides": overrides}
        )
        created = await enrolment.enrol(
            session=session,
            session_id=session_id,
            participant_ids=data.participant_ids,
            today=utcnow().date(),
            data=data,
            principal=principal,
        )
        queued = sum(1 for e, _ in created if e.status == EnrollmentStatus.WAITLISTED.value)
        await commit(session)
    except ValidationError as exc:
        errors = _by_candidate(FormErrors.of_validation(exc), chosen, overrides)
        if "participant_ids" in errors:
            errors = FormErrors.of_rule("participant_ids", "Pilih paling sedikit satu orang.")
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        errors = _by_candidate(FormErrors.of_problem(exc), chosen, overrides)
    else:
        message = f"{len(created) - queued} orang didaftarkan"
        if queued:
            message += f", {queued} orang masuk daftar tunggu"
        flash(request, message + ".")
        return RedirectResponse(f"{STAFF}/sesi/{session_id}", status_code=303)
    await session.rollback()
    return await _nomination_page(
        request,
        session,
        principal,
        session_id,
        chosen=set(chosen),
        reasons=reasons,
        waitlist=waitlist,
        errors=errors,
        status_code=422,
    )


def _by_candidate(
    errors: FormErrors, chosen: list[str], overrides: list[dict[str, str]]
) -> FormErrors:
    """participant_ids.N names the N-th person chosen, overrides.N.… the N-th exception: each
    message goes next to that person."""
    mapped = FormErrors()
    for field, message in errors.items():
        parts = field.split(".")
        if len(parts) >= 2 and parts[1].isdigit():
            index = int(parts[1])
            if parts[0] == "participant_ids" and index < len(chosen):
                field = chosen[index]
            elif parts[0] == "overrides" and index < len(overrides):
                field = overrides[index]["participant_id"]
                if parts[-1] == "reason":
                    message = "Tulis alasan pengecualian, 5 sampai 500 huruf."
        mapped.add(field, in_dates(message))
    return mapped
