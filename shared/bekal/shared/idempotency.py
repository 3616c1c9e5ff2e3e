"""Idempotency-Key for creating POSTs: the same key and body replays the first answer."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bekal.shared.db import UTCDateTime, utcnow
from bekal.shared.messaging.models import MessagingBase
from bekal.shared.problems import Conflict


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
