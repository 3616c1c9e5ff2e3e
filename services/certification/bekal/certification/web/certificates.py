"""Pages for certification officers (and the training staff who may read certificates):
search, a certificate with its history, its PDF, a session's certificates printed as one PDF,
revocation with a confirmation step, and re-issue after a correction. Each calls the service
functions the API calls, under the same rules (``READER_ROLES``, ``ADMIN_ROLES``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.certification.api.certificates import pdf_response
from bekal.certification.deps import (
    ADMIN_ROLES,
    READER_ROLES,
    STAFF_MINISTRY,
    IssuerDep,
    SessionDep,
)
from bekal.certification.domain import CertificateStatus, RevocationKind
from bekal.certification.models import Certificate
from bekal.certification.schemas import CertificateReissue, CertificateRevoke
from bekal.certification.services import printing, reading, revocation
from bekal.certification.services.corrections import TRAINING_CORRECTION_ACTOR
from bekal.shared.auth import Principal, admit
from bekal.shared.idempotency import commit
from bekal.shared.problems import Forbidden, NotFound, Problem
from bekal.shared.web import STAFF, FormErrors, NavItem, Pages, flash, page_require, page_router

PAGE_SIZE = 25
CERTIFICATES = f"{STAFF}/sertifikat"
SESSIONS = f"{STAFF}/sesi-pelatihan"
router = page_router()
Reader = Annotated[Principal, page_require(ministry=STAFF_MINISTRY, roles=READER_ROLES)]
Admin = Annotated[Principal, page_require(ministry=STAFF_MINISTRY, roles=ADMIN_ROLES)]
pages = Pages(
    Path(__file__).parent / "templates",
    nav=[
        NavItem("Sertifikat", CERTIFICATES, ministry=STAFF_MINISTRY, roles=READER_ROLES),
        NavItem("Cetak per sesi", SESSIONS, ministry=STAFF_MINISTRY, roles=READER_ROLES),
    ],
)

STATUS_NAMES = {CertificateStatus.VALID: "Berlaku", CertificateStatus.REVOKED: "Dicabut"}
STATUS_KIND = {CertificateStatus.VALID: "ok", CertificateStatus.REVOKED: "off"}
SEARCH_LABELS = {
    "q": "Nomor atau nama",
    "program": "Program",
    "dari": "Terbit sejak",
    "sampai": "Terbit sampai",
    "status": "Status",
}
ACTION_LABELS = {
    "reason": "Alasan pencabutan",
    "recipient_name": "Nama yang benar",
    "alasan_koreksi": "Alasan koreksi",
    "status": "Status",
    "form": "Formulir",
}


def _date(value: date | None) -> str:
    return pages.env.filters["tanggal"](value)


def _status(certificate: Certificate | Row[Any]) -> dict[str, str]:
    status = CertificateStatus(certificate.status)
    text = STATUS_NAMES[status]
    if certificate.revocation_kind == RevocationKind.SUPERSEDED.value:
        text = "Diganti (dikoreksi)"
    return {"text": text, "kind": STATUS_KIND[status]}


def _row(c: Certificate | Row[Any]) -> list[Any]:
    """A certificate as a list shows it: an object, or a row of ``reading.LISTED_COLUMNS``."""
    return [
        {"text": c.number, "href": f"{CERTIFICATES}/{c.id}"},
        c.recipient_name,
        c.program_title,
        _date(c.issued_on),
        _status(c),
    ]


def _may_administer(principal: Principal) -> bool:
    try:
        admit(principal, ministry=STAFF_MINISTRY, roles=ADMIN_ROLES)
    except Forbidden:
        return False
    return True


@router.get("")
async def home() -> Response:
    return RedirectResponse(CERTIFICATES, status_code=303)


# --- search ---------------------------------------------------------------------------------


def _day(value: str, field: str, errors: FormErrors) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.add(field, "Tanggal tidak valid; isi dengan format HHHH-BB-TT.")
        return None


@router.get("/sertifikat")
async def search(
    request: Request,
    session: SessionDep,
    _: Reader,
    q: str = "",
    program: str = "",
    dari: str = "",
    sampai: str = "",
    status: str = "",
    cursor: str | None = None,
) -> Response:
    errors = FormErrors()
    for name, value in (("q", q), ("program", program)):
        if len(value) > 100 or "\x00" in value:
            errors.add(name, "Paling banyak 100 karakter.")
    issued_from, issued_to = _day(dari, "dari", errors), _day(sampai, "sampai", errors)
    status_filter = CertificateStatus(status) if status in set(CertificateStatus) else None
    values = {"q": q, "program": program, "dari": dari, "sampai": sampai, "status": status}
    rows: Sequence[Row[Any]] = []
    count, next_cursor = 0, None
    if not errors:
        page = await reading.list_certificate_rows(
            session=session,
            q=q or None,
            program=program or None,
            issued_from=issued_from,
            issued_to=issued_to,
            status=status_filter,
            limit=PAGE_SIZE,
            cursor=cursor or None,
        )
        rows, count, next_cursor = page.rows, page.count, page.next_cursor
    kept = {k: v for k, v in values.items() if v}
    return pages.render(
        request,
        "sertifikat.html",
        status_code=422 if errors else 200,
        title="Sertifikat",
        values=values,
        errors=errors,
        labels=SEARCH_LABELS,
        statuses=[(s.value, STATUS_NAMES[s]) for s in CertificateStatus],
        rows=[_row(c) for c in rows],
        count=count,
        next_href=f"?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None,
        first_href=f"?{urlencode(kept)}" if cursor else None,
    )


# --- one certificate ------------------------------------------------------------------------


def _actor(by: str | None, principal: Principal) -> str | None:
    """Who revoked, in words: the stored subject is an account id, not a name."""
    if by is None:
        return None
    if by == TRAINING_CORRECTION_ACTOR:
        return "Koreksi dari pelatihan (otomatis)"
    if by == principal.subject:
        return f"{principal.claims.get('name') or principal.subject} (Anda)"
    return f"Petugas sertifikasi (akun {by[:8]})"


def _history(revisions: list[Certificate], principal: Principal) -> list[dict[str, Any]]:
    """What happened to the enrolment's certificate, oldest first, in words."""
    events: list[dict[str, Any]] = []
    by_id = {c.id: c for c in revisions}
    for c in revisions:
        replaces = by_id.get(c.replaces_id) if c.replaces_id else None
        what = f"Diterbitkan dengan nomor {c.number}"
        if replaces is not None:
            what += f", menggantikan {replaces.number} (koreksi)"
        events.append({"on": c.issued_on, "what": what, "by": None, "why": None, "id": c.id})
        if c.status == CertificateStatus.REVOKED.value:
            replaced_by = by_id.get(c.replaced_by_id) if c.replaced_by_id else None
            what = f"Nomor {c.number} dicabut"
            if replaced_by is not None:
                what += f" dan diganti dengan {replaced_by.number}"
            events.append(
                {
                    "on": c.revoked_on,
                    "what": what,
                    "by": _actor(c.revoked_by, principal),
                    "why": c.revocation_reason,
                    "id": c.id,
                }
            )
    return sorted(events, key=lambda e: e["on"] or date.min)


async def _certificate_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    certificate_id: uuid.UUID,
    *,
    action: str | None = None,
    values: Mapping[str, Any] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    c = await reading.get_certificate(session=session, certificate_id=certificate_id)
    revisions = await reading.enrollment_certificates(
        session=session, enrollment_id=c.enrollment_id
    )
    issuer = request.app.state.certificate_issuer
    valid = c.status == CertificateStatus.VALID.value
    return pages.render(
        request,
        "sertifikat-detail.html",
        status_code=status_code,
        title=f"Sertifikat {c.number}",
        c=c,
        status=_status(c),
        valid=valid,
        units=json.loads(c.competency_units or "[]"),
        verification_url=issuer.verification_url(c.verification_code),
        history=_history(revisions, principal),
        replaced_by=next((r for r in revisions if r.id == c.replaced_by_id), None),
        may_administer=_may_administer(principal) and valid,
        action=action,
        values=values or {},
        errors=errors or FormErrors(),
        labels=ACTION_LABELS,
    )


@router.get("/sertifikat/{certificate_id}")
async def certificate(
    request: Request, certificate_id: uuid.UUID, session: SessionDep, principal: Reader
) -> Response:
    return await _certificate_page(request, session, principal, certificate_id)


@router.get("/sertifikat/{certificate_id}/pdf")
async def certificate_pdf(
    certificate_id: uuid.UUID, session: SessionDep, issuer: IssuerDep, _: Reader
) -> Response:
    printed = await printing.certificate_pdf(
        session=session, certificate_id=certificate_id, issuer=issuer
    )
    return pdf_response(printed)


def _problem_errors(exc: Problem) -> FormErrors:
    if exc.status not in (409, 422):
        raise exc
    return FormErrors.of_problem(exc)


@router.post("/sertifikat/{certificate_id}/cabut")
async def revoke(
    request: Request, certificate_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    """First the reason (checked as the API checks it), then a confirmation page; only the
    confirmed form revokes."""
    form = await request.form()
    values = {"reason": str(form.get("reason") or "")}
    try:
        body = CertificateRevoke.model_validate(values)
        if form.get("konfirmasi") != "ya":
            c = await reading.get_certificate(session=session, certificate_id=certificate_id)
            if c.status != CertificateStatus.VALID.value:
                raise NotFound(f"Sertifikat {c.number} sudah dicabut.")
            return pages.render(
                request,
                "cabut.html",
                title=f"Cabut sertifikat {c.number}?",
                c=c,
                reason=body.reason,
            )
        c = await revocation.revoke_certificate(
            session=session,
            certificate_id=certificate_id,
            reason=body.reason,
            revoked_by=principal.subject,
        )
        await commit(session)
    except ValidationError as exc:
        errors = FormErrors.of_validation(exc)
    except Problem as exc:
        errors = _problem_errors(exc)
    else:
        flash(request, f"Sertifikat {c.number} dicabut. Verifikasi kini menyatakannya dicabut.")
        return RedirectResponse(f"{CERTIFICATES}/{certificate_id}", status_code=303)
    await session.rollback()
    return await _certificate_page(
        request,
        session,
        principal,
        certificate_id,
        action="cabut",
        values=values,
        errors=errors,
        status_code=422,
    )


@router.post("/sertifikat/{certificate_id}/koreksi")
async def reissue(
    request: Request,
    certificate_id: uuid.UUID,
    session: SessionDep,
    issuer: IssuerDep,
    principal: Admin,
) -> Response:
    form = await request.form()
    # The reason is "alasan_koreksi" on the page: the revocation form beside it has a "reason".
    values = {name: str(form.get(name) or "") for name in ("recipient_name", "alasan_koreksi")}
    try:
        body = CertificateReissue.model_validate(
            {"recipient_name": values["recipient_name"], "reason": values["alasan_koreksi"]}
        )
        new = await revocation.reissue_certificate(
            session=session,
            certificate_id=certificate_id,
            recipient_name=body.recipient_name,
            reason=body.reason,
            reissued_by=principal.subject,
            issuer=issuer,
        )
        await commit(session)
    except ValidationError as exc:
        errors = _correction_fields(FormErrors.of_validation(exc))
    except Problem as exc:
        errors = _correction_fields(_problem_errors(exc))
    else:
        flash(request, f"Sertifikat dikoreksi: nomor baru {new.number} diterbitkan.")
        return RedirectResponse(f"{CERTIFICATES}/{new.id}", status_code=303)
    await session.rollback()
    return await _certificate_page(
        request,
        session,
        principal,
        certificate_id,
        action="koreksi",
        values=values,
        errors=errors,
        status_code=422,
    )


def _correction_fields(errors: FormErrors) -> FormErrors:
    return FormErrors(
        {("alasan_koreksi" if field == "reason" else field): m for field, m in errors.items()}
    )


# --- sessions -------------------------------------------------------------------------------


@router.get("/sesi-pelatihan")
async def sessions(request: Request, session: SessionDep, _: Reader, program: str = "") -> Response:
    errors = FormErrors()
    if len(program) > 100 or "\x00" in program:
        errors.add("program", "Paling banyak 100 karakter.")
        program = ""
    found = await reading.list_sessions(session=session, program=program or None)
    return pages.render(
        request,
        "sesi.html",
        title="Cetak sertifikat per sesi",
        values={"program": program},
        errors=errors,
        rows=[
            [
                {"text": s.program_title, "href": f"{SESSIONS}/{s.session_id}"},
                s.program_code,
                f"{_date(s.start_date)} s.d. {_date(s.end_date)}",
                str(s.valid),
                str(s.revoked),
            ]
            for s in found
        ],
        limit=reading.SESSIONS_LIMIT,
    )


@router.get("/sesi-pelatihan/{session_id}")
async def session_page(
    request: Request, session_id: uuid.UUID, session: SessionDep, _: Reader
) -> Response:
    certificates = await reading.session_certificates(session=session, session_id=session_id)
    if not certificates:
        raise NotFound("Sesi ini tidak memiliki sertifikat.")
    first = certificates[0]
    valid = sum(c.status == CertificateStatus.VALID.value for c in certificates)
    return pages.render(
        request,
        "sesi-detail.html",
        title=f"Sertifikat {first.program_title}",
        first=first,
        valid=valid,
        revoked=len(certificates) - valid,
        pdf_href=f"{SESSIONS}/{session_id}/sertifikat.pdf",
        # One program: the column would repeat it on every row.
        rows=[[cell for n, cell in enumerate(_row(c)) if n != 2] for c in certificates],
    )


@router.get("/sesi-pelatihan/{session_id}/sertifikat.pdf")
async def session_pdf(
    session_id: uuid.UUID, session: SessionDep, issuer: IssuerDep, _: Reader
) -> Response:
    printed = await printing.session_pdf(session=session, session_id=session_id, issuer=issuer)
    return pdf_response(printed)
