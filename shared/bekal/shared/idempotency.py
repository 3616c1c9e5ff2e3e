"""Idempotency-Key for creating POSTs: the same key and body replays the first answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Integer, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bekal.shared.auth import Principal
from bekal.shared.db import UTCDateTime, utcnow
from bekal.shared.messaging.models import MessagingBase
from bekal.shared.problems import Conflict

log = structlog.get_logger(__name__)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Repeat a creating POST safely: the same key and body replay the first answer",
    ),
]


class IdempotencyRecord(MessagingBase):
    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(300))  # subject + method + route
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("key", "scope", name="uq_idempotency_key_scope"),)


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def replay(
    session: AsyncSession, *, key: str | None, scope: str, payload: Any
) -> tuple[int, Any] | None:
    """The stored answer for this key, or None; a reused key with another body is a 409."""
    if not key:
        return None
    found = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.key == key, IdempotencyRecord.scope == scope
        )
    )
    if found is None:
        return None
    if found.request_hash != request_hash(payload):
        raise Conflict(
            "Idempotency-Key ini sudah dipakai untuk permintaan lain.",
            slug="idempotency-key-reused",
        )
    return found.status, json.loads(found.body)


def remember(
    session: AsyncSession, *, key: str | None, scope: str, payload: Any, status: int, body: Any
) -> None:
    """Store the answer in the same transaction as the creation it describes."""
    if key:
        session.add(
            IdempotencyRecord(
                key=key,
                scope=scope,
                request_hash=request_hash(payload),
                status=status,
                body=json.dumps(body, default=str),
            )
        )


async def commit(session: AsyncSession) -> None:
    """Commit; a unique key taken meanwhile by a concurrent request becomes a 409, not a 500."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        log.info("commit_conflict", error=type(exc.orig).__name__ if exc.orig else "IntegrityError")
        raise Conflict(
            "Data bertabrakan dengan data yang baru saja disimpan oleh permintaan lain (kode, "
            "nomor, atau Idempotency-Key yang sama); periksa lalu coba lagi.",
            slug="duplicate",
        ) from None


async def create_once(
    session: AsyncSession,
    *,
    request: Request,
    principal: Principal,
    key: str | None,
    payload: BaseModel | Mapping[str, Any],
    create: Callable[[], Awaitable[Any]],
) -> JSONResponse:
    """Run ``create`` and commit its answer (201) with ``key``, or replay what ``key`` got.

    ``payload`` is what a reused key is compared by: a model counts as its JSON form. Pass a
    mapping to keep a secret out of the stored hash, e.g. a NIK replaced by its keyed hash: a
    plain hash of a body whose other fields are known could be matched against guesses.
    ``create`` returns the answer's JSON body.
    """
    scope = f"{principal.subject} {request.method} {request.url.path}"
    body_in = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    found = await replay(session, key=key, scope=scope, payload=body_in)
    if found is not None:
        return JSONResponse(found[1], status_code=found[0])
    body = await create()
    remember(session, key=key, scope=scope, payload=body_in, status=201, body=body)
    try:
        await commit(session)
    except Conflict:
        # A concurrent request won: with the same key, its answer is ours too.
        found = await replay(session, key=key, scope=scope, payload=body_in)
        if found is not None:
            return JSONResponse(found[1], status_code=found[0])
        raise
    return JSONResponse(body, status_code=201)
