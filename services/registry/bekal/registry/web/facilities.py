"""Facilities: the list (anyone signed in, as the API lets anyone read them), and for the
register's admins registering, changing, deactivating and reactivating one. The API's service
functions under the API's rules (AnyPrincipal to read, RegistryAdmin to write)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry import domain
from bekal.registry.deps import SessionDep
from bekal.registry.domain import RuleBroken
from bekal.registry.models import Facility
from bekal.registry.schemas import FacilityCreate, FacilityUpdate
from bekal.registry.services import facilities
from bekal.registry.web.common import PAGE_SIZE, Admin, blank_to_none, pages
from bekal.shared.auth import Principal, Role
from bekal.shared.events.catalogue import FacilityClass, FacilityKind
from bekal.shared.idempotency import commit
from bekal.shared.problems import Problem
from bekal.shared.web import STAFF, FormErrors, PagePrincipal, flash, page_router

router = page_router(pages=pages)
KIND_NAMES = {
    FacilityKind.LAPAS: "Lapas",
    FacilityKind.RUTAN: "Rutan",
    FacilityKind.LPKA: "LPKA",
    FacilityKind.LAPAS_PEREMPUAN: "Lapas Perempuan",
}
LABELS = {
    "code": "Kode",
    "name": "Nama",
    "kind": "Jenis",
    "facility_class": "Kelas",
    "province": "Provinsi",
    "regional_office": "Kantor wilayah",
    "capacity": "Kapasitas",
    "active": "Aktif",
    "form": "Formulir",
}
ACTIVE = {"text": "Aktif", "kind": "ok"}
INACTIVE = {"text": "Nonaktif", "kind": "off"}
CREATE_FIELDS = (
    "code",
    "name",
    "kind",
    "facility_class",
    "province",
    "regional_office",
    "capacity",
)
EDIT_FIELDS = ("name", "facility_class", "regional_office", "capacity")


def _choices() -> dict[str, Any]:
    return {
        "kinds": [(k.value, KIND_NAMES[k]) for k in FacilityKind],
        "classes": [(c.value, f"Kelas {c.value}") for c in FacilityClass],
        "provinces": [(p, p) for p in domain.PROVINCES],
    }


@router.get("/fasilitas")
async def list_facilities(
    request: Request,
    session: SessionDep,
    principal: PagePrincipal,
    province: str = "",
    active: str = "",
    cursor: str | None = None,
) -> Response:
    errors = FormErrors()
    if province and province not in domain.PROVINCES:
        errors.add("province", "Pilih salah satu pilihan yang tersedia.")
        province = ""
    page = await facilities.list_facilities(
        session=session,
        code=None,
        province=province or None,
        active={"ya": True, "tidak": False}.get(active),
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    filters = {"province": province, "active": active}
    kept = {k: v for k, v in filters.items() if v}
    return pages.render(
        request,
        "fasilitas.html",
        title="Fasilitas",
        values=filters,
        errors=errors,
        admin=principal.has_role(Role.REGISTRY_ADMIN),
        provinces=_choices()["provinces"],
        rows=[
            [
                {"text": f.code, "href": f"{STAFF}/fasilitas/{f.id}"},
                f.name,
                KIND_NAMES[FacilityKind(f.kind)],
                f.province,
                f.capacity,
                ACTIVE if f.active else INACTIVE,
            ]
            for f in page.rows
        ],
        count=page.count,
        next_href=(
            f"?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
        ),
        first_href=f"?{urlencode(kept)}" if cursor else None,
    )


def _create_form(
    request: Request, *, values: Mapping[str, Any], errors: FormErrors, status_code: int = 200
) -> Response:
    return pages.render(
        request,
        "fasilitas-baru.html",
        status_code=status_code,
        title="Daftarkan fasilitas",
        values=values,
        errors=errors,
        labels=LABELS,
        **_choices(),
    )


@router.get("/fasilitas/baru")
async def create_form(request: Request, principal: Admin) -> Response:
    return _create_form(request, values={}, errors=FormErrors())


def _refusal(exc: Exception) -> FormErrors:
    if isinstance(exc, ValidationError):
        return FormErrors.of_validation(exc)
    if isinstance(exc, RuleBroken):
        return FormErrors.of_rule(exc.field, exc.message)
    assert isinstance(exc, Problem)
    return FormErrors.of_problem(exc)


@router.post("/fasilitas/baru")
async def create(request: Request, session: SessionDep, principal: Admin) -> Response:
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in CREATE_FIELDS}
    try:
        given = blank_to_none(form, *CREATE_FIELDS)
        # A field left empty is missing ("Wajib diisi"), not a null of the wrong type.
        data = FacilityCreate.model_validate({k: v for k, v in given.items() if v is not None})
        facility = await facilities.register_facility(session=session, data=data)
        await commit(session)
    except (ValidationError, RuleBroken, Problem) as exc:
        if isinstance(exc, Problem) and exc.status not in (409, 422):
            raise
        await session.rollback()
        return _create_form(request, values=values, errors=_refusal(exc), status_code=422)
    flash(request, f"Fasilitas {facility.code} terdaftar.")
    return RedirectResponse(f"{STAFF}/fasilitas/{facility.id}", status_code=303)


async def _facility_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    facility: Facility,
    *,
    values: Mapping[str, Any] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    return pages.render(
        request,
        "fasilitas-ubah.html",
        status_code=status_code,
        title=f"Fasilitas {facility.code}",
        facility=facility,
        kind_name=KIND_NAMES[FacilityKind(facility.kind)],
        admin=principal.has_role(Role.REGISTRY_ADMIN),
        values=values
        if values is not None
        else {name: str(getattr(facility, name)) for name in EDIT_FIELDS},
        errors=errors or FormErrors(),
        labels=LABELS,
        **_choices(),
    )


@router.get("/fasilitas/{facility_id}")
async def facility_page(
    request: Request, facility_id: uuid.UUID, session: SessionDep, principal: PagePrincipal
) -> Response:
    facility = await facilities.get_facility(session=session, facility_id=facility_id)
    return await _facility_page(request, session, principal, facility)


async def _update(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    facility_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    values: Mapping[str, Any] | None,
    done: str,
) -> Response:
    try:
        await facilities.update_facility(
            session=session,
            facility_id=facility_id,
            changes=FacilityUpdate.model_validate(changes),
        )
        await commit(session)
    except (ValidationError, RuleBroken, Problem) as exc:
        if isinstance(exc, Problem) and exc.status not in (409, 422):
            raise
        await session.rollback()
        facility = await facilities.get_facility(session=session, facility_id=facility_id)
        return await _facility_page(
            request,
            session,
            principal,
            facility,
            values=values,
            errors=_refusal(exc),
            status_code=422,
        )
    flash(request, done)
    return RedirectResponse(f"{STAFF}/fasilitas/{facility_id}", status_code=303)


@router.post("/fasilitas/{facility_id}")
async def update(
    request: Request, facility_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in EDIT_FIELDS}
    # Every field of the form is sent: what did not change publishes nothing (the service).
    changes = {name: value for name, value in blank_to_none(form, *EDIT_FIELDS).items()}
    missing = [name for name, value in changes.items() if value is None]
    if missing:
        errors = FormErrors({name: "Wajib diisi." for name in missing})
        facility = await facilities.get_facility(session=session, facility_id=facility_id)
        return await _facility_page(
            request, session, principal, facility, values=values, errors=errors, status_code=422
        )
    return await _update(
        request, session, principal, facility_id, changes, values=values, done="Perubahan disimpan."
    )


@router.post("/fasilitas/{facility_id}/nonaktifkan")
async def deactivate(
    request: Request, facility_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    return await _update(
        request,
        session,
        principal,
        facility_id,
        {"active": False},
        values=None,
        done="Fasilitas dinonaktifkan: tidak bisa lagi menerima penerimaan baru atau pindahan.",
    )


@router.post("/fasilitas/{facility_id}/aktifkan")
async def reactivate(
    request: Request, facility_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    return await _update(
        request,
        session,
        principal,
        facility_id,
        {"active": True},
        values=None,
        done="Fasilitas diaktifkan kembali.",
    )
