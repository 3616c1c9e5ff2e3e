"""Programs: the list, one program, a new one and a new version (published as it is saved).
The API's rules: training staff read, training administrators publish."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from bekal.shared.auth import Principal, Role
from bekal.shared.idempotency import commit
from bekal.shared.problems import Problem
from bekal.shared.web import STAFF, FormErrors, flash, page_router
from bekal.training.deps import SessionDep
from bekal.training.models import Program
from bekal.training.schemas import ProgramCreate, ProgramUpdate
from bekal.training.services import programs
from bekal.training.web.common import Admin, Reader, form_values, pages, percent

router = page_router(pages=pages)

FIELDS = ("code", "title", "sector", "partner", "days", "hours", "min_attendance", "units")
LABELS = {
    "code": "Kode program",
    "title": "Judul",
    "sector": "Sektor",
    "partner": "Mitra",
    "days": "Jumlah hari",
    "hours": "Jumlah jam pelajaran",
    "min_attendance": "Kehadiran minimal (%)",
    "min_attendance_share": "Kehadiran minimal (%)",
    "units": "Unit kompetensi",
    "competency_units": "Unit kompetensi",
    "form": "Formulir",
}
PARTNERS = ("Yayasan Batik Indonesia", "Balai Besar Kerajinan dan Batik (BBKB)")


def _units_text(program: Program) -> str:
    return "\n".join(f"{u['code']} | {u['title']}" for u in program.competency_units)


def _values_of(program: Program) -> dict[str, str]:
    return {
        "code": program.code,
        "title": program.title,
        "sector": program.sector,
        "partner": program.partner or "",
        "days": str(program.days),
        "hours": str(program.hours),
        "min_attendance": f"{program.min_attendance_share * 100:g}",
        "units": _units_text(program),
    }


def _parse_units(text: str, errors: FormErrors) -> list[dict[str, str]]:
    units = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        code, sep, title = line.partition("|")
        if not sep or not code.strip() or not title.strip():
            errors.add(
                "units", f"Baris {n}: tulis kode, garis tegak, lalu judul (BTK.01 | Membatik)."
            )
            continue
        units.append({"code": code.strip(), "title": title.strip()})
    return units


def _body(values: Mapping[str, str], errors: FormErrors) -> dict[str, Any]:
    """The API's request body from the form: the share from a percentage, units from lines."""
    share: Any = values["min_attendance"]
    try:
        share = float(share.replace(",", ".")) / 100
    except ValueError:
        errors.add("min_attendance", "Isi dengan angka 0 sampai 100.")
    return {
        "title": values["title"],
        "sector": values["sector"],
        "partner": values["partner"] or None,
        "days": values["days"] or None,
        "hours": values["hours"] or None,
        "min_attendance_share": share,
        "competency_units": _parse_units(values["units"], errors),
    }


def _field_errors(errors: FormErrors) -> FormErrors:
    """The API's field names on the form's fields (units and the share are typed differently)."""
    mapped = FormErrors()
    for field, message in errors.items():
        if field.startswith("competency_units"):
            field = "units"
        elif field == "min_attendance_share":
            field = "min_attendance"
        mapped.add(field, message)
    return mapped


def _may_publish(principal: Principal) -> bool:
    return principal.has_role(Role.TRAINING_ADMIN)


@router.get("/program")
async def list_programs(
    request: Request, session: SessionDep, principal: Reader, cursor: str | None = None
) -> Response:
    page = await programs.list_programs(
        session=session, code=None, sector=None, limit=50, cursor=cursor or None
    )
    rows = [
        [
            {"text": p.code, "href": f"{STAFF}/program/{p.id}"},
            p.title,
            p.sector,
            p.partner or "—",
            f"{p.days} hari, {p.hours} JP",
            percent(p.min_attendance_share),
            str(p.version),
        ]
        for p in page.rows
    ]
    return pages.render(
        request,
        "program-daftar.html",
        title="Program pelatihan",
        rows=rows,
        count=page.count,
        next_href=f"?cursor={page.next_cursor}" if page.next_cursor else None,
        first_href="?" if cursor else None,
        may_publish=_may_publish(principal),
    )


def _form(
    request: Request,
    *,
    program: Program | None,
    values: Mapping[str, str],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    return pages.render(
        request,
        "program-form.html",
        status_code=status_code,
        title=f"Versi baru {program.code}" if program else "Program baru",
        program=program,
        values=values,
        errors=errors,
        labels=LABELS,
        partners=PARTNERS,
    )


@router.get("/program/baru")
async def new_program(request: Request, principal: Admin) -> Response:
    return _form(request, program=None, values={"min_attendance": "80"}, errors=FormErrors())


@router.post("/program/baru")
async def create_program(request: Request, session: SessionDep, principal: Admin) -> Response:
    values = form_values(await request.form(), *FIELDS)
    errors = FormErrors()
    body = _body(values, errors)
    try:
        data = ProgramCreate.model_validate({"code": values["code"], **body})
        if errors:
            raise Problem("Periksa isian formulir.", status=422)
        program = await programs.create_program(session=session, data=data)
        await commit(session)
    except ValidationError as exc:
        errors = _field_errors(FormErrors({**FormErrors.of_validation(exc), **errors}))
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        if not errors:
            errors = _field_errors(FormErrors.of_problem(exc))
    else:
        flash(request, f"Program {program.code} diterbitkan (versi {program.version}).")
        return RedirectResponse(f"{STAFF}/program/{program.id}", status_code=303)
    await session.rollback()
    return _form(request, program=None, values=values, errors=errors, status_code=422)


@router.get("/program/{program_id}")
async def show_program(
    request: Request, program_id: uuid.UUID, session: SessionDep, principal: Reader
) -> Response:
    program = await programs.get_program(session=session, program_id=program_id)
    return pages.render(
        request,
        "program.html",
        title=f"{program.code} — {program.title}",
        program=program,
        share=percent(program.min_attendance_share),
        units=[[u["code"], u["title"]] for u in program.competency_units],
        may_publish=_may_publish(principal),
    )


@router.get("/program/{program_id}/ubah")
async def edit_program(
    request: Request, program_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    program = await programs.get_program(session=session, program_id=program_id)
    return _form(request, program=program, values=_values_of(program), errors=FormErrors())


@router.post("/program/{program_id}/ubah")
async def publish_version(
    request: Request, program_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    program = await programs.get_program(session=session, program_id=program_id)
    values = {**form_values(await request.form(), *FIELDS), "code": program.code}
    errors = FormErrors()
    body = _body(values, errors)
    try:
        data = ProgramUpdate.model_validate(body)
        if errors:
            raise Problem("Periksa isian formulir.", status=422)
        program = await programs.publish_program_version(
            session=session, program_id=program_id, data=data
        )
        version, code = program.version, program.code
        await commit(session)
    except ValidationError as exc:
        errors = _field_errors(FormErrors({**FormErrors.of_validation(exc), **errors}))
    except Problem as exc:
        if exc.status not in (409, 422):
            raise
        if not errors:
            errors = _field_errors(FormErrors.of_problem(exc))
    else:
        flash(request, f"Program {code} versi {version} diterbitkan.")
        return RedirectResponse(f"{STAFF}/program/{program_id}", status_code=303)
    await session.rollback()
    program = await programs.get_program(session=session, program_id=program_id)
    return _form(request, program=program, values=values, errors=errors, status_code=422)
