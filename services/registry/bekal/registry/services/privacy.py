"""A person's rights over their data: erasure, and the subject access export."""

from __future__ import annotations

import json
import uuid
from typing import Any

import structlog
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry import domain
from bekal.registry.domain import InmateStatus
from bekal.registry.models import AuditEntry, Inmate, InmateMovement
from bekal.registry.schemas import (
    InmatePublic,
    MovementPublic,
    PublishedEventPublic,
)
from bekal.registry.services.audit import audit, audit_public
from bekal.registry.services.common import load_inmate
from bekal.registry.services.keys import destroy_person_keys, key_named
from bekal.shared.auth import Principal
from bekal.shared.db import checkpoint_after_commit, utcnow
from bekal.shared.events.catalogue import InmateErased
from bekal.shared.events.personal import SealBroken, SealedFields, key_owner, unseal
from bekal.shared.events.topics import REGISTRY_PERSON_KEYS
from bekal.shared.idempotency import IdempotencyRecord
from bekal.shared.messaging.models import OutboxMessage
from bekal.shared.messaging.outbox import add_event

log = structlog.get_logger(__name__)


def _anonymise(inmate: Inmate, now: Any) -> None:
    inmate.full_name = domain.ERASED_NAME
    inmate.search_name = domain.search_key(domain.ERASED_NAME)
    inmate.date_of_birth = domain.erased_birth_date(inmate.date_of_birth)
    inmate.education_level = None
    inmate.nik_encrypted = None
    inmate.consent_training = False
    inmate.consent_data_sharing = False
    inmate.shared = False
    inmate.erased_at = now
    inmate.updated_at = now


async def _merge_search_index(session: AsyncSession) -> None:
    """On SQLite, merge the search index's segments now: FTS5 keeps a changed row's old trigrams
    in its segments (under a delete marker) until they merge, so the erased name's pieces would
    stay in the file. A merge rewrites the index (about a second per 100,000 people): erasures
    are rare. PostgreSQL's GIN index drops the old entries with the row version (vacuum)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    await session.flush()  # the triggers move the anonymised row's index entry first
    if await session.scalar(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inmates_search'")
    ):
        await session.execute(text("INSERT INTO inmates_search(inmates_search) VALUES('optimize')"))


async def erase_inmate(
    *, session: AsyncSession, inmate_id: uuid.UUID, principal: Principal
) -> Inmate:
    """Grant an erasure request: anonymise what the law does not require the registry to keep."""
    inmate = await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    if inmate.erased_at is not None:
        raise domain.MovementRefused("Data warga binaan ini sudah dihapus.", field="status")
    if inmate.status == InmateStatus.MERGED.value:
        raise domain.MergeRefused(
            "Catatan ini sudah digabungkan; ajukan penghapusan pada catatan yang tersisa.",
            field="status",
        )
    now = utcnow()
    duplicates = list(
        (await session.scalars(select(Inmate).where(Inmate.merged_into_id == inmate.id))).all()
    )
    ever_shared = [row.id for row in [inmate, *duplicates] if row.shared_at is not None]
    for row in [inmate, *duplicates]:
        _anonymise(row, now)
    ids = [inmate.id, *(row.id for row in duplicates)]
    # Copies of the name outside the inmates table: the events kept in the outbox, and the
    # answers kept for Idempotency-Key replays (a replay then answers as a new request would).
    for message in (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.aggregate_id.in_([str(i) for i in ids]))
        )
    ).all():
        message.payload = _erased_payload(message.payload)
    for record in await _stored_responses(session, ids):
        await session.delete(record)
    # The keys that seal their names in the events already published: gone, with tombstones.
    await destroy_person_keys(session=session, participant_ids=ever_shared)
    for participant_id in ever_shared:
        add_event(session, InmateErased(participant_id=participant_id))
    await _merge_search_index(session)
    checkpoint_after_commit(session)
    log.info("inmate_erased", inmate_id=str(inmate.id), duplicates=len(duplicates))
    audit(
        session=session,
        principal=principal,
        action="inmate.erased",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
        detail={"duplicates": [row.id for row in duplicates]},
    )
    return inmate


async def _opened(session: AsyncSession, message: OutboxMessage) -> dict[str, Any]:
    """An event as published, its sealed personal fields shown opened: the person is told what
    the event carried about them, not a ciphertext."""
    data: dict[str, Any] = json.loads(message.payload)
    sealed_block = data.get("personal")
    if not isinstance(sealed_block, dict):
        return data
    try:
        block = SealedFields.model_validate(sealed_block)
        if key_owner(block.kid)[0] != message.aggregate_id:
            return data
    except ValueError:
        return data
    # The generation that sealed it, if still live: one destroyed (consent withdrawn) stays shut.
    key = await key_named(session=session, kid=block.kid)
    if key is None:
        return data
    try:
        fields = unseal(block, key, str(message.event_id))
    except (SealBroken, ValueError):
        return data
    return {**data, **fields}


def _erased_payload(payload: str) -> str:
    data = json.loads(payload)
    if isinstance(data, dict) and "full_name" in data:
        data["full_name"] = domain.ERASED_NAME
    return json.dumps(data, ensure_ascii=False)


async def _stored_responses(session: AsyncSession, ids: list[uuid.UUID]) -> list[IdempotencyRecord]:
    """Answers kept for Idempotency-Key replays that name one of ``ids`` (a registration's)."""
    return list(
        (
            await session.scalars(
                select(IdempotencyRecord)
                .where(or_(*(IdempotencyRecord.body.contains(str(i)) for i in ids)))
                .order_by(IdempotencyRecord.created_at)
            )
        ).all()
    )


async def subject_access(
    *, session: AsyncSession, inmate_id: uuid.UUID, principal: Principal, secret: str
) -> dict[str, Any]:
    """Everything held about one person, the NIK included (decrypted only here)."""

    inmate = await load_inmate(session=session, inmate_id=inmate_id, principal=principal)
    merged_ids = list(
        (await session.scalars(select(Inmate.id).where(Inmate.merged_into_id == inmate.id))).all()
    )
    ids = [inmate.id, *merged_ids]
    movements = (
        await session.scalars(
            select(InmateMovement)
            .where(InmateMovement.inmate_id.in_(ids))
            .order_by(InmateMovement.occurred_on, InmateMovement.recorded_at)
        )
    ).all()
    events = (
        await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.aggregate_id.in_([str(i) for i in ids]),
                # The person's data key is not data about them: it stays out of the export.
                OutboxMessage.topic != REGISTRY_PERSON_KEYS,
            )
            .order_by(OutboxMessage.seq)
        )
    ).all()
    trail = (
        await session.scalars(
            select(AuditEntry).where(AuditEntry.inmate_id.in_(ids)).order_by(AuditEntry.at)
        )
    ).all()
    stored = await _stored_responses(session, ids)
    audit(
        session=session,
        principal=principal,
        action="inmate.subject_access_exported",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
    )
    log.info("inmate_subject_access_exported", inmate_id=str(inmate.id))
    return {
        "generated_at": utcnow(),
        "inmate": InmatePublic.of(inmate),
        "nik": domain.decrypt_nik(inmate.nik_encrypted, secret) if inmate.nik_encrypted else None,
        "merged_record_ids": merged_ids,
        "movements": [MovementPublic.model_validate(m) for m in movements],
        "events_published": [
            PublishedEventPublic(
                event_type=e.event_type,
                topic=e.topic,
                created_at=e.created_at,
                sent_at=e.sent_at,
                data=await _opened(session, e),
            )
            for e in events
        ],
        "audit_trail": [audit_public(a) for a in trail],
        "stored_responses": [
            {"created_at": r.created_at, "status": r.status, "body": json.loads(r.body)}
            for r in stored
        ],
    }
