"""Movements of one person: release, transfer, expected release, absence, return, death, merge.

A little over 400 lines, kept whole: they follow one pattern (lock the person, check the rule,
record the movement, announce it if the person is shared, audit it), easiest read side by side.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bekal.registry import domain
from bekal.registry.domain import InmateStatus, InvalidValue, MovementKind
from bekal.registry.models import Facility, Inmate, InmateMovement
from bekal.registry.schemas import (
    AbsenceIn,
    DeathIn,
    MergeIn,
    ReleaseIn,
    ReturnIn,
    TransferIn,
)
from bekal.registry.services.audit import audit
from bekal.registry.services.common import clear_absence, load_inmate, publish_share
from bekal.shared.auth import Principal
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    InmateDied,
    InmateReleased,
    InmateReturned,
    InmatesMerged,
    InmateTemporarilyAbsent,
    InmateTransferred,
)
from bekal.shared.messaging.outbox import add_event
from bekal.shared.problems import Forbidden, NotFound

log = structlog.get_logger(__name__)


async def release_inmate(
    *,
    session: AsyncSession,
    inmate_id: uuid.UUID,
    release: ReleaseIn,
    principal: Principal,
    via: dict[str, Any] | None = None,
    locked: Inmate | None = None,
) -> Inmate:
    inmate = locked or await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    domain.check_release(
        status=InmateStatus(inmate.status),
        admission_date=inmate.admission_date,
        released_on=release.released_on,
    )
    inmate.status = InmateStatus.RELEASED.value
    clear_absence(inmate)
    inmate.release_kind = release.kind.value
    inmate.released_on = release.released_on
    inmate.updated_at = utcnow()
    session.add(
        InmateMovement(
            inmate_id=inmate.id,
            kind=MovementKind.RELEASE.value,
            from_facility_id=inmate.facility_id,
            release_kind=release.kind.value,
            occurred_on=release.released_on,
            recorded_by=principal.subject,
        )
    )
    # Only people the industry side knows of are announced; the others never left corrections.
    if inmate.shared:
        add_event(
            session,
            InmateReleased(
                participant_id=inmate.id,
                facility_id=inmate.facility_id,
                release_kind=release.kind,
                released_on=release.released_on,
            ),
        )
    log.info("inmate_released", inmate_id=str(inmate.id), kind=release.kind.value)
    audit(
        session=session,
        principal=principal,
        action="inmate.released",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
        detail={"kind": release.kind.value, "released_on": release.released_on, **(via or {})},
    )
    return inmate


async def transfer_inmate(
    *,
    session: AsyncSession,
    inmate_id: uuid.UUID,
    transfer: TransferIn,
    principal: Principal,
    via: dict[str, Any] | None = None,
    locked: Inmate | None = None,
) -> Inmate:
    """Move an inmate to another active facility; ``via`` adds context to the audit entry.

    The asker needs authority over both facilities: loading the person checks the source, and
    the destination must be theirs too (a regional office's staff whose token names both, or a
    registry administrator); one facility's officer cannot send a person anywhere.
    """
    inmate = locked or await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    target = await session.get(Facility, transfer.to_facility_id)
    if target is None:
        raise InvalidValue("Fasilitas tujuan tidak ditemukan.", field="to_facility_id")
    if not principal.may_see_facility(target.code):
        message = (
            f"Anda tidak berwenang atas fasilitas tujuan {target.code} ({target.name}): "
            "pemindahan memerlukan kewenangan atas fasilitas asal dan tujuan "
            "(kantor wilayah yang mencakup keduanya, atau admin registri)."
        )
        raise Forbidden(
            message,
            to_facility_code=target.code,
            errors=[{"field": "to_facility_id", "message": message}],
        )
    domain.check_transfer(
        status=InmateStatus(inmate.status),
        admission_date=inmate.admission_date,
        from_facility_id=inmate.facility_id,
        to_facility_id=target.id,
        to_facility_active=target.active,
        transferred_on=transfer.transferred_on,
    )
    from_facility_id = inmate.facility_id
    from_facility_code = inmate.facility.code
    inmate.facility_id = target.id
    inmate.facility = target
    inmate.updated_at = utcnow()
    session.add(
        InmateMovement(
            inmate_id=inmate.id,
            kind=MovementKind.TRANSFER.value,
            from_facility_id=from_facility_id,
            to_facility_id=target.id,
            occurred_on=transfer.transferred_on,
            recorded_by=principal.subject,
        )
    )
    if inmate.shared:
        add_event(
            session,
            InmateTransferred(
                participant_id=inmate.id,
                from_facility_id=from_facility_id,
                to_facility_id=target.id,
                transferred_on=transfer.transferred_on,
                from_facility_code=from_facility_code,
                to_facility_code=target.code,
            ),
        )
    log.info(
        "inmate_transferred",
        inmate_id=str(inmate.id),
        from_facility_id=str(from_facility_id),
        to_facility_id=str(target.id),
    )
    audit(
        session=session,
        principal=principal,
        action="inmate.transferred",
        inmate_id=inmate.id,
        facility_id=target.id,
        detail={
            "from_facility_id": from_facility_id,
            "to_facility_id": target.id,
            "transferred_on": transfer.transferred_on,
            **(via or {}),
        },
    )
    return inmate


async def update_expected_release(
    *,
    session: AsyncSession,
    inmate_id: uuid.UUID,
    expected_release_date: date,
    principal: Principal,
    via: dict[str, Any] | None = None,
    locked: Inmate | None = None,
) -> Inmate:
    """A new expected release date (a remission, a new sentence computation).

    A shared person is shared again, whole: the industry side's replica keeps the latest
    InmateShared, so its candidate window follows the new date.
    """
    inmate = locked or await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    domain.check_expected_release(
        status=InmateStatus(inmate.status),
        admission_date=inmate.admission_date,
        expected_release_date=expected_release_date,
    )
    previous = inmate.expected_release_date
    inmate.expected_release_date = expected_release_date
    inmate.updated_at = utcnow()
    if inmate.shared:
        await publish_share(session=session, inmate=inmate)
    log.info("inmate_expected_release_updated", inmate_id=str(inmate.id))
    audit(
        session=session,
        principal=principal,
        action="inmate.expected_release_updated",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
        detail={"from": previous, "to": expected_release_date, **(via or {})},
    )
    return inmate


async def record_absence(
    *, session: AsyncSession, inmate_id: uuid.UUID, absence: AbsenceIn, principal: Principal
) -> Inmate:
    inmate = await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    domain.check_absence(
        status=InmateStatus(inmate.status),
        admission_date=inmate.admission_date,
        absent_from=absence.absent_from,
        expected_return=absence.expected_return,
    )
    inmate.status = InmateStatus.TEMPORARILY_ABSENT.value
    inmate.absence_reason = absence.reason.value
    inmate.absent_from = absence.absent_from
    inmate.expected_return = absence.expected_return
    inmate.updated_at = utcnow()
    session.add(
        InmateMovement(
            inmate_id=inmate.id,
            kind=MovementKind.ABSENCE.value,
            absence_reason=absence.reason.value,
            from_facility_id=inmate.facility_id,
            occurred_on=absence.absent_from,
            recorded_by=principal.subject,
        )
    )
    if inmate.shared:
        add_event(
            session,
            InmateTemporarilyAbsent(
                participant_id=inmate.id,
                facility_id=inmate.facility_id,
                reason=absence.reason,
                absent_from=absence.absent_from,
                expected_return=absence.expected_return,
            ),
        )
    log.info("inmate_temporarily_absent", inmate_id=str(inmate.id), reason=absence.reason.value)
    audit(
        session=session,
        principal=principal,
        action="inmate.temporarily_absent",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
        detail=absence.model_dump(mode="json"),
    )
    return inmate


async def record_return(
    *, session: AsyncSession, inmate_id: uuid.UUID, back: ReturnIn, principal: Principal
) -> Inmate:
    inmate = await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    domain.check_return(
        status=InmateStatus(inmate.status),
        absent_from=inmate.absent_from,
        returned_on=back.returned_on,
    )
    inmate.status = InmateStatus.IN_CUSTODY.value
    clear_absence(inmate)
    inmate.updated_at = utcnow()
    session.add(
        InmateMovement(
            inmate_id=inmate.id,
            kind=MovementKind.RETURN.value,
            from_facility_id=inmate.facility_id,
            occurred_on=back.returned_on,
            recorded_by=principal.subject,
        )
    )
    if inmate.shared:
        add_event(
            session,
            InmateReturned(
                participant_id=inmate.id,
                facility_id=inmate.facility_id,
                returned_on=back.returned_on,
            ),
        )
    log.info("inmate_returned", inmate_id=str(inmate.id))
    audit(
        session=session,
        principal=principal,
        action="inmate.returned",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
        detail={"returned_on": back.returned_on},
    )
    return inmate


async def record_death(
    *, session: AsyncSession, inmate_id: uuid.UUID, death: DeathIn, principal: Principal
) -> Inmate:
    inmate = await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    domain.check_death(
        status=InmateStatus(inmate.status),
        admission_date=inmate.admission_date,
        died_on=death.died_on,
    )
    inmate.status = InmateStatus.DECEASED.value
    inmate.died_on = death.died_on
    clear_absence(inmate)
    inmate.updated_at = utcnow()
    session.add(
        InmateMovement(
            inmate_id=inmate.id,
            kind=MovementKind.DEATH.value,
            from_facility_id=inmate.facility_id,
            occurred_on=death.died_on,
            recorded_by=principal.subject,
        )
    )
    if inmate.shared:
        add_event(
            session,
            InmateDied(
                participant_id=inmate.id, facility_id=inmate.facility_id, died_on=death.died_on
            ),
        )
    log.info("inmate_died", inmate_id=str(inmate.id))
    audit(
        session=session,
        principal=principal,
        action="inmate.died",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
        detail={"died_on": death.died_on},
    )
    return inmate


async def merge_inmates(
    *, session: AsyncSession, inmate_id: uuid.UUID, merge: MergeIn, principal: Principal
) -> Inmate:
    """Fold two records of the same person into one; returns the surviving record."""
    target = await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    try:
        duplicate = await load_inmate(
            session=session, inmate_id=merge.duplicate_id, principal=principal, for_update=True
        )
    except NotFound:
        raise InvalidValue("Catatan duplikat tidak ditemukan.", field="duplicate_id") from None
    plan = domain.plan_merge(
        target_id=target.id,
        target_shared=target.shared,
        target_status=InmateStatus(target.status),
        duplicate_id=duplicate.id,
        duplicate_shared=duplicate.shared,
        duplicate_status=InmateStatus(duplicate.status),
    )
    survivor, merged = (
        (target, duplicate) if plan.surviving_id == target.id else (duplicate, target)
    )
    # The history follows the person: movements, and any earlier duplicates pointing at ``merged``.
    await session.execute(
        update(InmateMovement)
        .where(InmateMovement.inmate_id == merged.id)
        .values(inmate_id=survivor.id)
    )
    await session.execute(
        update(Inmate).where(Inmate.merged_into_id == merged.id).values(merged_into_id=survivor.id)
    )
    now = utcnow()
    merged.status = InmateStatus.MERGED.value
    merged.merged_into_id = survivor.id
    merged.shared = False
    clear_absence(merged)
    merged.updated_at = now
    survivor.updated_at = now
    session.add(
        InmateMovement(
            inmate_id=survivor.id,
            kind=MovementKind.MERGE.value,
            from_facility_id=merged.facility_id,
            to_facility_id=survivor.facility_id,
            occurred_on=merge.merged_on,
            recorded_by=principal.subject,
        )
    )
    if plan.announce:
        add_event(
            session,
            InmatesMerged(
                participant_id=merged.id,
                surviving_participant_id=survivor.id,
                merged_on=merge.merged_on,
            ),
        )
    log.info("inmates_merged", merged_id=str(merged.id), surviving_id=str(survivor.id))
    for row in (survivor, merged):
        audit(
            session=session,
            principal=principal,
            action="inmate.merged",
            inmate_id=row.id,
            facility_id=row.facility_id,
            detail={"merged_id": merged.id, "surviving_id": survivor.id},
        )
    return survivor
