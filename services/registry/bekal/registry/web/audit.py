"""The audit trail for the register's admins: who read or changed whose record, and when,
filterable by person, actor and action. The API's service function under the API's rule
(RegistryAdmin); like the API, it shows the record's id, not the person's name."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

from fastapi import Request, Response
from sqlalchemy import select

from bekal.registry.deps import SessionDep
from bekal.registry.models import Facility
from bekal.registry.services import audit
from bekal.registry.web.common import PAGE_SIZE, Admin, pages, waktu
from bekal.shared.web import STAFF, FormErrors, page_router
from bekal.shared.web.pages import ROLE_NAMES

router = page_router(pages=pages)
ROLES = {str(role): name for role, name in ROLE_NAMES.items()}
ACTION_NAMES = {
    "inmate.read": "Membuka data orang",
    "inmate.listed": "Tampil dalam daftar",
    "inmate.registered": "Mendaftarkan",
    "inmate.consent_recorded": "Mencatat persetujuan",
    "inmate.temporarily_absent": "Mencatat keluar sementara",
    "inmate.returned": "Mencatat kembali",
    "inmate.released": "Mencatat pembebasan",
    "inmate.transferred": "Mencatat pemindahan",
    "inmate.expected_release_updated": "Mengubah perkiraan bebas",
    "inmate.died": "Mencatat kematian",
    "inmate.merged": "Menggabungkan catatan",
    "inmate.subject_access_exported": "Ekspor akses subjek",
    "inmate.erased": "Menghapus data",
    "inmates.imported": "Impor SDP",
}


@router.get("/audit")
async def audit_trail(
    request: Request,
    session: SessionDep,
    principal: Admin,
    inmate_id: str = "",
    actor: str = "",
    action: str = "",
    cursor: str | None = None,
) -> Response:
    errors = FormErrors()
    person: uuid.UUID | None = None
    if inmate_id:
        try:
            person = uuid.UUID(inmate_id.strip())
        except ValueError:
            errors.add("inmate_id", "ID warga binaan tidak valid: 32 angka/huruf heksadesimal.")
    if len(actor) > 200:
        errors.add("actor", "Paling banyak 200 karakter.")
        actor = ""
    if action and action not in ACTION_NAMES:
        errors.add("action", "Pilih salah satu pilihan yang tersedia.")
        action = ""
    page = await audit.list_audit(
        session=session,
        inmate_id=person,
        actor=actor.strip() or None,
        action=action or None,
        limit=PAGE_SIZE,
        cursor=cursor or None,
        count_limit=request.app.state.settings.list_count_limit,
    )
    facility_ids = {e.facility_id for e in page.rows if e.facility_id}
    codes: dict[uuid.UUID, str] = {}
    if facility_ids:  # facilities are not personal data: their codes read better than ids
        found = await session.execute(
            select(Facility.id, Facility.code).where(Facility.id.in_(facility_ids))
        )
        codes = {row.id: row.code for row in found}
    filters = {"inmate_id": inmate_id, "actor": actor, "action": action}
    kept = {k: v for k, v in filters.items() if v}
    rows = []
    for entry in page.rows:
        public = audit.audit_public(entry)
        rows.append(
            [
                waktu(public.at),
                {
                    "text": public.actor + (" (Anda)" if public.actor == principal.subject else ""),
                    "href": f"?{urlencode({'actor': public.actor})}",
                },
                ", ".join(ROLES.get(r, r) for r in public.roles) or "—",
                ACTION_NAMES.get(public.action, public.action),
                {"text": str(public.inmate_id), "href": f"{STAFF}/warga-binaan/{public.inmate_id}"}
                if public.inmate_id
                else "—",
                codes.get(public.facility_id, "—") if public.facility_id else "—",
                json.dumps(public.detail, ensure_ascii=False, sort_keys=True)
                if public.detail
                else "—",
            ]
        )
    return pages.render(
        request,
        "audit.html",
        title="Jejak audit",
        values=filters,
        errors=errors,
        actions=list(ACTION_NAMES.items()),
        rows=rows,
        count=page.count,
        count_capped=page.count_capped,
        next_href=(
            f"?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
        ),
        first_href=f"?{urlencode(kept)}" if cursor else None,
    )
