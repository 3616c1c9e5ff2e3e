"""The audit trail: who read or changed which inmate record, when; registry admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from bekal.registry.deps import RegistryAdmin, SessionDep
from bekal.registry.schemas import AuditEntriesPublic
from bekal.registry.services import audit
from bekal.shared.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=AuditEntriesPublic, summary="The audit trail, newest first")
async def list_audit(
    request: Request,
    session: SessionDep,
    principal: RegistryAdmin,
    inmate_id: uuid.UUID | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=50, examples=["inmate.read"])] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> AuditEntriesPublic:
    page = await audit.list_audit(
        session=session,
        inmate_id=inmate_id,
        actor=actor,
        action=action,
        limit=limit,
        cursor=cursor,
        count_limit=request.app.state.settings.list_count_limit,
    )
    return AuditEntriesPublic(
        data=[audit.audit_public(a) for a in page.rows],
        count=page.count,
        count_capped=page.count_capped,
        next_cursor=page.next_cursor,
    )
