"""Operator endpoints for a service's dead letters: list, retry, purge."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from bekal.shared.auth import CurrentPrincipal, Ministry, Principal, Role, admit
from bekal.shared.db import utcnow
from bekal.shared.messaging.consumer import StoredRecord
from bekal.shared.messaging.models import DeadLetter
from bekal.shared.problems import Forbidden, NotFound, ServiceUnavailable


class DeadLetterPublic(BaseModel):
    id: uuid.UUID
    consumer_group: str
    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    reason: str
    error: str
    attempts: int
    created_at: datetime
    retried_at: datetime | None


class DeadLettersPublic(BaseModel):
    data: list[DeadLetterPublic]
    count: int


# The ministry that runs each service: only its operators read, retry or purge the service's
# dead letters (they hold the other side's records). Reporting is read by both ministries.
OPERATED_BY: dict[str, frozenset[Ministry]] = {
    "registry": frozenset({Ministry.CORRECTIONS}),
    "training": frozenset({Ministry.INDUSTRY}),
    "certification": frozenset({Ministry.INDUSTRY}),
    "reporting": frozenset({Ministry.CORRECTIONS, Ministry.INDUSTRY}),
}


async def _operator(request: Request, principal: CurrentPrincipal) -> Principal:
    admit(principal, roles=(Role.OPERATOR,))
    service = request.app.state.settings.service_name
    # A service not in the table has no operator: refused rather than open to both sides.
    if principal.ministry not in OPERATED_BY.get(service, frozenset()):
        raise Forbidden(
            f"Layanan {service} dioperasikan oleh kementerian lain; "
            f"operator {principal.ministry.value} tidak dapat menanganinya"
        )
    return principal


Operator = Annotated[Principal, Depends(_operator)]


def dead_letter_router() -> APIRouter:
    router = APIRouter(prefix="/admin/dead-letters", tags=["operations"])

    @router.get(
        "", response_model=DeadLettersPublic, summary="Records this service could not handle"
    )
    async def list_dead_letters(
        request: Request, _: Operator, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> DeadLettersPublic:
        async with request.app.state.db.session() as session:
            rows = (
                await session.scalars(
                    select(DeadLetter).order_by(DeadLetter.created_at.desc()).limit(limit)
                )
            ).all()
        return DeadLettersPublic(
            data=[DeadLetterPublic.model_validate(r, from_attributes=True) for r in rows],
            count=len(rows),
        )

    @router.post("/{dead_letter_id}/retry", summary="Handle the record again (after a fix)")
    async def retry_dead_letter(
        request: Request, dead_letter_id: uuid.UUID, _: Operator
    ) -> dict[str, str]:
        runner = request.app.state.messaging.runner
        if runner is None:
            raise ServiceUnavailable("Konsumen belum berjalan; coba lagi nanti.")
        async with request.app.state.db.session() as session:
            row = await session.get(DeadLetter, dead_letter_id)
            if row is None:
                raise NotFound(f"Dead letter {dead_letter_id} tidak ditemukan")
            headers = [
                (k, v.encode())
                for k, v in json.loads(row.headers).items()
                if not k.startswith("dlq_")
            ]
            record = StoredRecord(
                topic=row.topic,
                partition=row.partition,
                offset=row.offset,
                key=row.key.encode() if row.key else None,
                value=row.value.encode() if row.value is not None else None,
                headers=headers,
            )
        outcome = await runner.process(record)
        async with request.app.state.db.session() as session:
            row = await session.get(DeadLetter, dead_letter_id)
            if row is not None:
                row.retried_at = utcnow()
                if outcome in ("handled", "duplicate"):
                    await session.delete(row)
                await session.commit()
        return {"outcome": outcome}

    @router.delete(
        "/{dead_letter_id}", status_code=204, summary="Forget a dead letter (the topic keeps it)"
    )
    async def purge_dead_letter(
        request: Request, dead_letter_id: uuid.UUID, _: Operator
    ) -> Response:
        async with request.app.state.db.session() as session:
            row = await session.get(DeadLetter, dead_letter_id)
            if row is None:
                raise NotFound(f"Dead letter {dead_letter_id} tidak ditemukan")
            await session.delete(row)
            await session.commit()
        return Response(status_code=204)

    return router
