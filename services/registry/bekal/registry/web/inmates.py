"""Pages for corrections staff: people in custody, a person, admission, consent, absences,
release, candidates near release. Each calls the service functions the API calls, under the
same rule (``STAFF_MINISTRY``, ``STAFF_ROLES``) and with the same audit of reads."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry.deps import SessionDep
from bekal.registry.domain import InmateStatus, InvalidValue, RuleBroken
from bekal.registry.models import Facility, Inmate
from bekal.registry.schemas import (
    AbsenceIn,
    ConsentIn,
    InmateCreate,
    InmatePublic,
    MergeIn,
    ReleaseIn,
    ReturnIn,
    TransferIn,
)
from bekal.registry.services import audit, facilities, inmates, movements
from bekal.registry.web.common import PAGE_SIZE, Admin, Staff, blank_to_none, pages
from bekal.registry.web.common import tanggal as _date
from bekal.shared.auth import Principal, Role
from bekal.shared.events.catalogue import AbsenceReason, ReleaseKind, Sex
from bekal.shared.idempotency import commit
from bekal.shared.pagination import Page
from bekal.shared.problems import Problem
from bekal.shared.web import STAFF, FormErrors, flash, page_router

router = page_router(pages=pages)

STATUS_NAMES = {
    InmateStatus.IN_CUSTODY: "Di dalam",
    InmateStatus.TEMPORARILY_ABSENT: "Keluar sementara",
    InmateStatus.RELEASED: "Bebas",
    InmateStatus.DECEASED: "Meninggal",
    InmateStatus.MERGED: "Digabung",
}
STATUS_KIND = {
    InmateStatus.IN_CUSTODY: "ok",
    InmateStatus.TEMPORARILY_ABSENT: "warn",
    InmateStatus.RELEASED: "neutral",
    InmateStatus.DECEASED: "off",
    InmateStatus.MERGED: "off",
}
SEX_NAMES = {Sex.FEMALE: "Perempuan", Sex.MALE: "Laki-laki"}
ABSENCE_NAMES = {
    AbsenceReason.COURT: "Sidang pengadilan",
    AbsenceReason.HOSPITAL: "Rumah sakit",
    AbsenceReason.LEAVE: "Cuti / izin",
    AbsenceReason.OTHER: "Lainnya",
}
RELEASE_NAMES = {
    ReleaseKind.FREE: "Bebas murni",
    ReleaseKind.PAROLE: "Pembebasan bersyarat",
    ReleaseKind.CONDITIONAL: "Cuti bersyarat",
}
ADMISSION_LABELS = {
    "registration_number": "Nomor registrasi",
    "full_name": "Nama lengkap",
    "nik": "NIK",
    "sex": "Jenis kelamin",
    "date_of_birth": "Tanggal lahir",
    "education_level": "Pendidikan terakhir",
    "facility_id": "Fasilitas",
    "admission_date": "Tanggal masuk",
    "expected_release_date": "Perkiraan tanggal bebas",
    "form": "Formulir",
}
ACTION_LABELS = {
    "training": "Persetujuan pelatihan",
    "data_sharing": "Persetujuan berbagi data",
    "reason": "Alasan keluar",
    "absent_from": "Tanggal keluar",
    "expected_return": "Perkiraan tanggal kembali",
    "returned_on": "Tanggal kembali",
    "kind": "Jenis pembebasan",
    "released_on": "Tanggal bebas",
    "to_facility_id": "Fasilitas tujuan",
    "transferred_on": "Tanggal pindah",
    "duplicate_id": "Catatan ganda",
    "merged_on": "Tanggal penggabungan",
    "form": "Formulir",
}


# A facility as the pages offer it: id, code, name, province, active.
FacilityChoice = Row[uuid.UUID, str, str, str, bool]


async def _visible_facilities(session: AsyncSession, principal: Principal) -> list[FacilityChoice]:
    """Every facility the person may see, by code: all of them (about 530 nationally), not a
    first page, or an officer of a facility past it would find their own missing.

    As rows of the five columns the pages show, not ORM objects: every page with a facility
    choice reads them all, and building an object for each of 530 cost more than the read."""
    f = Facility
    rows = await session.execute(
        select(f.id, f.code, f.name, f.province, f.active).order_by(f.code)
    )
    return [row for row in rows if principal.may_see_facility(row.code)]


def _row(inmate: Inmate | Row[Any]) -> list[Any]:
    """A person as the list shows them: a search's object, or a row of
    ``inmates.LISTED_COLUMNS``."""
    status = InmateStatus(inmate.status)
    code = inmate.facility.code if isinstance(inmate, Inmate) else inmate.facility_code
    return [
        {"text": inmate.registration_number, "href": f"{STAFF}/warga-binaan/{inmate.id}"},
        inmate.full_name,
        code,
        {"text": STATUS_NAMES[status], "kind": STATUS_KIND[status]},
        _date(inmate.expected_release_date),
    ]


@router.get("")
async def home() -> Response:
    return RedirectResponse(f"{STAFF}/warga-binaan", status_code=303)


@router.get("/warga-binaan")
async def list_people(
    request: Request,
    session: SessionDep,
    principal: Staff,
    q: str = "",
    status: str = "",
    facility_id: str = "",
    cursor: str | None = None,
) -> Response:
    errors = FormErrors()
    status_filter = InmateStatus(status) if status in set(InmateStatus) else None
    facility_filter: uuid.UUID | None = None
    if facility_id:
        try:
            facility_filter = uuid.UUID(facility_id)
        except ValueError:
            errors.add("facility_id", "Pilih salah satu pilihan yang tersedia.")
    if len(q) > 100 or "\x00" in q:
        errors.add("q", "Paling banyak 100 karakter.")
        q = ""
    page: Page[Inmate] | Page[Row[Any]]
    if q:
        page = await inmates.list_inmates(
            session=session,
            principal=principal,
            facility_id=facility_filter,
            status=status_filter,
            q=q,
            limit=PAGE_SIZE,
            cursor=cursor or None,
            count_limit=request.app.state.settings.list_count_limit,
        )
    else:  # the list as it opens: the columns shown, as rows
        page = await inmates.list_inmate_rows(
            session=session,
            principal=principal,
            facility_id=facility_filter,
            status=status_filter,
            limit=PAGE_SIZE,
            cursor=cursor or None,
            count_limit=request.app.state.settings.list_count_limit,
        )
    await audit.audit_reads(
        session=session, principal=principal, action="inmate.listed", inmates=page.rows
    )
    visible = await _visible_facilities(session, principal)
    await commit(session)
    filters = {"q": q, "status": status, "facility_id": facility_id}
    kept = {k: v for k, v in filters.items() if v}
    return pages.render(
        request,
        "daftar.html",
        title="Warga binaan",
        values=filters,
        errors=errors,
        statuses=[(s.value, STATUS_NAMES[s]) for s in InmateStatus],
        facilities=[(str(f.id), f"{f.code} — {f.name}") for f in visible],
        rows=[_row(i) for i in page.rows],
        count=page.count,
        count_capped=page.count_capped,
        next_href=(
            f"?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
        ),
        first_href=f"?{urlencode(kept)}" if cursor else None,
    )


# --- admission ----------------------------------------------------------------------------


async def _admission_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    *,
    values: Mapping[str, Any],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    visible = [f for f in await _visible_facilities(session, principal) if f.active]
    return pages.render(
        request,
        "penerimaan.html",
        status_code=status_code,
        title="Daftarkan penerimaan",
        values=values,
        errors=errors,
        labels=ADMISSION_LABELS,
        facilities=[(str(f.id), f"{f.code} — {f.name}") for f in visible],
        sexes=[(s.value, SEX_NAMES[s]) for s in Sex],
    )


@router.get("/penerimaan")
async def admission_form(request: Request, session: SessionDep, principal: Staff) -> Response:
    visible = [f for f in await _visible_facilities(session, principal) if f.active]
    values = {"facility_id": str(visible[0].id)} if len(visible) == 1 else {}
    return await _admission_form(request, session, principal, values=values, errors=FormErrors())


@router.post("/penerimaan")
async def register_admission(request: Request, session: SessionDep, principal: Staff) -> Response:
    form = await request.form()
    fields = (
        "registration_number",
        "full_name",
        "nik",
        "sex",
        "date_of_birth",
        "education_level",
        "facility_id",
        "admission_date",
        "expected_release_date",
    )
    # The input comes back as typed, except the NIK: it is never written into a page again.
    values = {name: str(form.get(name) or "") for name in fields if name != "nik"}
    consent = {name: form.get(name) == "ya" for name in ("training", "data_sharing")}
    values.update({k: "ya" for k, v in consent.items() if v})
    try:
        data = InmateCreate.model_validate(
            {
                **blank_to_none(form, *fields),
                "consent": ConsentIn(**consent) if any(consent.values()) else None,
            }
        )
        inmate = await inmates.register_inmate(
            session=session,
            data=data,
            principal=principal,
            secret=request.app.state.settings.pseudonym_secret,
        )
        await commit(session)
    except ValidationError as exc:
        errors = FormErrors.of_validation(exc)
    except RuleBroken as exc:
        errors = FormErrors.of_rule(exc.field, exc.message)
    except Problem as exc:
        if exc.status not in (403, 409, 422):
            raise
        errors = FormErrors.of_problem(exc)
    else:
        flash(request, f"{inmate.full_name} ({inmate.registration_number}) terdaftar.")
        return RedirectResponse(f"{STAFF}/warga-binaan/{inmate.id}", status_code=303)
    await session.rollback()
    return await _admission_form(
        request, session, principal, values=values, errors=errors, status_code=422
    )


# --- one person ---------------------------------------------------------------------------


async def _person_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    inmate_id: uuid.UUID,
    *,
    action: str | None = None,
    values: Mapping[str, Any] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    inmate = await inmates.get_inmate(session=session, inmate_id=inmate_id, principal=principal)
    public = InmatePublic.of(inmate)
    # A transfer goes only to an active facility the asker also has authority over (the API's
    # rule): a regional office's staff or an administrator; one facility's officer is offered none.
    targets = [
        f
        for f in await _visible_facilities(session, principal)
        if f.active and f.id != public.facility_id
    ]
    await commit(session)
    return pages.render(
        request,
        "orang.html",
        admin=principal.has_role(Role.REGISTRY_ADMIN),
        transfer_targets=[(str(f.id), f"{f.code} — {f.name}") for f in targets],
        status_code=status_code,
        title=f"{public.full_name} ({public.registration_number})",
        person=public,
        status_name=STATUS_NAMES[public.status],
        status_kind=STATUS_KIND[public.status],
        sex_name=SEX_NAMES[public.sex],
        absence_name=ABSENCE_NAMES[public.absence.reason] if public.absence else None,
        release_name=RELEASE_NAMES[public.release_kind] if public.release_kind else None,
        absence_reasons=[(r.value, ABSENCE_NAMES[r]) for r in AbsenceReason],
        release_kinds=[(k.value, RELEASE_NAMES[k]) for k in ReleaseKind],
        action=action,
        values=values or {},
        errors=errors or FormErrors(),
        labels=ACTION_LABELS,
        today=date.today().isoformat(),
    )


@router.get("/warga-binaan/{inmate_id}")
async def person(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Staff
) -> Response:
    return await _person_page(request, session, principal, inmate_id)


async def _act(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    inmate_id: uuid.UUID,
    *,
    action: str,
    fields: tuple[str, ...],
    done: str,
) -> Response:
    """Check the form into the API's schema, call the API's service function, commit; on a
    refusal show the person's page again with the form's errors and input."""
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in fields}
    status_code = 422
    try:
        if action == "persetujuan":
            await inmates.record_consent(
                session=session,
                inmate_id=inmate_id,
                consent=ConsentIn(
                    training=form.get("training") == "ya",
                    data_sharing=form.get("data_sharing") == "ya",
                ),
                principal=principal,
            )
        elif action == "keluar-sementara":
            await movements.record_absence(
                session=session,
                inmate_id=inmate_id,
                absence=AbsenceIn.model_validate(blank_to_none(form, *fields)),
                principal=principal,
            )
        elif action == "pindah":
            await movements.transfer_inmate(
                session=session,
                inmate_id=inmate_id,
                transfer=TransferIn.model_validate(blank_to_none(form, *fields)),
                principal=principal,
            )
        elif action == "gabung":
            given = blank_to_none(form, *fields)
            given["duplicate_id"] = await _record_id(
                session, principal, given.get("duplicate_id") or ""
            )
            survivor = await movements.merge_inmates(
                session=session,
                inmate_id=inmate_id,
                merge=MergeIn.model_validate(given),
                principal=principal,
            )
            # The record that stays may be the other one (the domain's choice): show that one.
            inmate_id = survivor.id
        elif action == "kembali":
            await movements.record_return(
                session=session,
                inmate_id=inmate_id,
                back=ReturnIn.model_validate(blank_to_none(form, *fields)),
                principal=principal,
            )
        else:
            await movements.release_inmate(
                session=session,
                inmate_id=inmate_id,
                release=ReleaseIn.model_validate(blank_to_none(form, *fields)),
                principal=principal,
            )
        await commit(session)
    except ValidationError as exc:
        errors = FormErrors.of_validation(exc)
    except RuleBroken as exc:
        errors = FormErrors.of_rule(exc.field, exc.message)
    except Problem as exc:
        # 403: a transfer to a facility outside the asker's authority, shown on its form.
        if exc.status not in (403, 409, 422):
            raise
        errors = FormErrors.of_problem(exc)
        status_code = exc.status
    else:
        flash(request, done)
        return RedirectResponse(f"{STAFF}/warga-binaan/{inmate_id}", status_code=303)
    await session.rollback()
    return await _person_page(
        request,
        session,
        principal,
        inmate_id,
        action=action,
        values=values,
        errors=errors,
        status_code=status_code,
    )


@router.post("/warga-binaan/{inmate_id}/persetujuan")
async def record_consent(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Staff
) -> Response:
    return await _act(
        request,
        session,
        principal,
        inmate_id,
        action="persetujuan",
        fields=("training", "data_sharing"),
        done="Persetujuan dicatat.",
    )


@router.post("/warga-binaan/{inmate_id}/keluar-sementara")
async def record_absence(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Staff
) -> Response:
    return await _act(
        request,
        session,
        principal,
        inmate_id,
        action="keluar-sementara",
        fields=("reason", "absent_from", "expected_return"),
        done="Keluar sementara dicatat.",
    )


async def _record_id(session: AsyncSession, principal: Principal, given: str) -> str:
    """The id of the record a person names by its id or its registration number (exactly)."""
    if not given:
        raise InvalidValue("Wajib diisi.", field="duplicate_id")
    try:
        return str(uuid.UUID(given))
    except ValueError:
        pass
    found = await inmates.list_inmates(
        session=session,
        principal=principal,
        facility_id=None,
        status=None,
        q=given,
        limit=50,
        cursor=None,
    )
    exact = [i for i in found.rows if i.registration_number.casefold() == given.casefold()]
    if len(exact) != 1:
        raise InvalidValue("Tidak ada catatan dengan nomor registrasi itu.", field="duplicate_id")
    return str(exact[0].id)


@router.post("/warga-binaan/{inmate_id}/pindah")
async def transfer(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Staff
) -> Response:
    return await _act(
        request,
        session,
        principal,
        inmate_id,
        action="pindah",
        fields=("to_facility_id", "transferred_on"),
        done="Pemindahan dicatat.",
    )


@router.post("/warga-binaan/{inmate_id}/gabung")
async def merge(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    return await _act(
        request,
        session,
        principal,
        inmate_id,
        action="gabung",
        fields=("duplicate_id", "merged_on"),
        done="Catatan ganda digabungkan ke catatan ini.",
    )


@router.post("/warga-binaan/{inmate_id}/kembali")
async def record_return(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Staff
) -> Response:
    return await _act(
        request,
        session,
        principal,
        inmate_id,
        action="kembali",
        fields=("returned_on",),
        done="Kepulangan dicatat.",
    )


@router.post("/warga-binaan/{inmate_id}/bebas")
async def release(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Staff
) -> Response:
    return await _act(
        request,
        session,
        principal,
        inmate_id,
        action="bebas",
        fields=("kind", "released_on"),
        done="Pembebasan dicatat.",
    )


# --- candidates near release --------------------------------------------------------------


@router.get("/kandidat")
async def candidates_home(request: Request, session: SessionDep, principal: Staff) -> Response:
    visible = await _visible_facilities(session, principal)
    if len(visible) == 1:
        return RedirectResponse(f"{STAFF}/fasilitas/{visible[0].id}/kandidat", status_code=303)
    return pages.render(
        request,
        "kandidat-pilih.html",
        title="Kandidat pelatihan",
        rows=[
            [{"text": f.code, "href": f"{STAFF}/fasilitas/{f.id}/kandidat"}, f.name, f.province]
            for f in visible
        ],
    )


def _months(value: str) -> int:
    return int(value) if value.isdigit() and 1 <= int(value) <= 120 else 12


@router.get("/fasilitas/{facility_id}/kandidat")
async def candidates(
    request: Request,
    facility_id: uuid.UUID,
    session: SessionDep,
    principal: Staff,
    months: str = "12",
    cursor: str | None = None,
) -> Response:
    window = _months(months)
    page = await facilities.list_candidates(
        session=session,
        facility_id=facility_id,
        principal=principal,
        months=window,
        today=date.today(),
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    await audit.audit_reads(
        session=session, principal=principal, action="inmate.listed", inmates=page.rows
    )
    facility = await facilities.get_facility(session=session, facility_id=facility_id)
    await commit(session)
    return pages.render(
        request,
        "kandidat.html",
        title=f"Kandidat pelatihan — {facility.code}",
        facility=facility,
        months=window,
        values={"months": str(window)},
        errors=FormErrors(),
        rows=[
            [
                {"text": i.registration_number, "href": f"{STAFF}/warga-binaan/{i.id}"},
                i.full_name,
                SEX_NAMES[Sex(i.sex)],
                _date(i.expected_release_date),
            ]
            for i in page.rows
        ],
        count=page.count,
        next_href=(
            f"?{urlencode({'months': window, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None
        ),
        first_href=f"?{urlencode({'months': window})}" if cursor else None,
        csv_href=f"{STAFF}/fasilitas/{facility_id}/kandidat.csv?{urlencode({'months': window})}",
    )


CSV_COLUMNS = (
    "registration_number",
    "full_name",
    "sex",
    "date_of_birth",
    "facility_code",
    "admission_date",
    "expected_release_date",
    "status",
)


@router.get("/fasilitas/{facility_id}/kandidat.csv")
async def candidates_csv(
    facility_id: uuid.UUID, session: SessionDep, principal: Staff, months: str = "12"
) -> Response:
    window = _months(months)
    rows: list[Inmate] = []
    cursor: str | None = None
    while True:
        page = await facilities.list_candidates(
            session=session,
            facility_id=facility_id,
            principal=principal,
            months=window,
            today=date.today(),
            limit=500,
            cursor=cursor,
        )
        rows.extend(page.rows)
        cursor = page.next_cursor
        if cursor is None:
            break
    await audit.audit_reads(
        session=session, principal=principal, action="inmate.listed", inmates=rows
    )
    facility = await facilities.get_facility(session=session, facility_id=facility_id)
    await commit(session)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for inmate in rows:
        public = InmatePublic.of(inmate).model_dump(mode="json")
        writer.writerow([public[c] for c in CSV_COLUMNS])
    name = f"kandidat_{facility.code}_{window}-bulan_{date.today().isoformat()}.csv"
    return Response(
        "\ufeff" + out.getvalue(),  # a BOM, so that a spreadsheet reads the names as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
