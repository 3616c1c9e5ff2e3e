"""Creating POSTs that may be repeated with the same Idempotency-Key and get the first answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.shared.auth import Principal
from bekal.shared.idempotency import remember, replay
from bekal.shared.problems import Conflict


async def create_once(
    *,
    request: Request,
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    payload: BaseModel,
    create: Callable[[], Awaitable[dict[str, Any]]],
) -> JSONResponse:
    """Run ``create`` and commit it with the remembered answer, or replay the answer of ``key``."""
    scope = f"{principal.subject} {request.method} {request.url.path}"
    body_in = payload.model_dump(mode="json")
    found = await replay(session, key=key, scope=scope, payload=body_in)
    if found is not None:
        return JSONResponse(found[1], status_code=found[0])
    body = await create()
    remember(session, key=key, scope=scope, payload=body_in, status=201, body=body)
    try:
        await session.commit()
    except IntegrityError as exc:
        # A concurrent request won: either the same key (replay its answer) or the same data.
        await session.rollback()
        found = await replay(session, key=key, scope=scope, payload=body_in)
        if found is not None:
            return JSONResponse(found[1], status_code=found[0])
        raise Conflict("Data yang sama baru saja diubah oleh permintaan lain; coba lagi.") from exc
    return JSONResponse(body, status_code=201)
