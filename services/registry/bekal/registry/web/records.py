"""A person's rights over their data, for the register's admins: the subject-access export
(the NIK included) and erasure after a confirmation. The API's service functions, under the
API's rule (RegistryAdmin), with the API's audit entries."""

from __future__ import annotations

import uuid

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from bekal.registry.deps import SessionDep
from bekal.registry.domain import MovementKind, RuleBroken
from bekal.registry.schemas import InmatePublic, SubjectAccessExport
from bekal.registry.services import inmates, privacy
from bekal.registry.web.common import Admin, pages, waktu
from bekal.shared.idempotency import commit
from bekal.shared.web import STAFF, FormErrors, flash, page_router

router = page_router(pages=pages)
MOVEMENT_NAMES: dict[str, str] = {
    MovementKind.TRANSFER: "Pindah",
    MovementKind.RELEASE: "Bebas",
    MovementKind.ABSENCE: "Keluar sementara",
    MovementKind.RETURN: "Kembali",
    MovementKind.DEATH: "Meninggal",
    MovementKind.MERGE: "Penggabungan",
}


async def _export(
    request: Request, session: SessionDep, principal: Admin, inmate_id: uuid.UUID
) -> SubjectAccessExport:
    export = SubjectAccessExport.model_validate(
        await privacy.subject_access(
            session=session,
            inmate_id=inmate_id,
            principal=principal,
            secret=request.app.state.settings.pseudonym_secret,
        )
    )
    await commit(session)
    return export


@router.get("/warga-binaan/{inmate_id}/akses-subjek")
async def subject_access(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    """What the export holds, the NIK included: each view is an export in the audit trail."""
    export = await _export(request, session, principal, inmate_id)
    return pages.render(
        request,
        "akses-subjek.html",
        title=f"Akses subjek data — {export.inmate.registration_number}",
        export=export,
        generated=waktu(export.generated_at),
        movements=[
            [
                pages.env.filters["tanggal"](m.occurred_on),
                MOVEMENT_NAMES.get(m.kind, m.kind),
                m.recorded_by,
            ]
            for m in export.movements
        ],
        download=f"{STAFF}/warga-binaan/{inmate_id}/akses-subjek.json",
    )


@router.get("/warga-binaan/{inmate_id}/akses-subjek.json")
async def subject_access_download(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    export = await _export(request, session, principal, inmate_id)
    name = f"akses-subjek_{export.inmate.registration_number}_{export.generated_at:%Y-%m-%d}.json"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return Response(
        export.model_dump_json(indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


async def _confirm_page(
    request: Request,
    session: SessionDep,
    principal: Admin,
    inmate_id: uuid.UUID,
    *,
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    # Showing whose record it is, is a read of it: audited as the API's GET is.
    person = InmatePublic.of(
        await inmates.get_inmate(session=session, inmate_id=inmate_id, principal=principal)
    )
    await commit(session)
    return pages.render(
        request,
        "hapus.html",
        status_code=status_code,
        title=f"Hapus data {person.registration_number}",
        person=person,
        errors=errors,
        values={},
    )


@router.get("/warga-binaan/{inmate_id}/hapus")
async def erasure_form(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    return await _confirm_page(request, session, principal, inmate_id, errors=FormErrors())


@router.post("/warga-binaan/{inmate_id}/hapus")
async def erase(
    request: Request, inmate_id: uuid.UUID, session: SessionDep, principal: Admin
) -> Response:
    form = await request.form()
    if form.get("konfirmasi") != "ya":
        errors = FormErrors.of_rule(
            "konfirmasi", "Centang pernyataan ini untuk menghapus data, atau batalkan."
        )
        return await _confirm_page(
            request, session, principal, inmate_id, errors=errors, status_code=422
        )
    try:
        await privacy.erase_inmate(session=session, inmate_id=inmate_id, principal=principal)
        await commit(session)
    except RuleBroken as exc:
        await session.rollback()
        return await _confirm_page(
            request,
            session,
            principal,
            inmate_id,
            errors=FormErrors.of_rule("konfirmasi", exc.message),
            status_code=409,
        )
    flash(request, "Data pribadi orang ini telah dihapus atas permintaannya.")
    return RedirectResponse(f"{STAFF}/warga-binaan/{inmate_id}", status_code=303)
