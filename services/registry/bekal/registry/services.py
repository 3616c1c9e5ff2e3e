"""Registry use cases: each applies the rules, writes rows and stages its events in one go."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from bekal.registry import domain
from bekal.registry.domain import Consent, InmateStatus, InvalidValue, MovementKind
from bekal.registry.models import Facility, Inmate, InmateMovement
from bekal.registry.schemas import (
    ConsentIn,
    FacilityCreate,
    FacilityUpdate,
    InmateCreate,
    ReleaseIn,
    TransferIn,
)
from bekal.shared.auth import Principal
from bekal.shared.db import utcnow
from bekal.shared.events.catalogue import (
    FacilityRegistered,
    FacilityUpdated,
    InmateReleased,
    InmateShared,
    InmateTransferred,
)
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, paginate
from bekal.shared.problems import Conflict, Forbidden, NotFound

log = structlog.get_logger(__name__)


# --- facilities ----------------------------------------------------------------------------


def _facility_facts(facility: Facility) -> dict[str, Any]:
    return {
        "facility_id": facility.id,
        "code": facility.code,
        "name": facility.name,
        "kind": facility.kind,
        "facility_class": facility.facility_class,
        "province": facility.province,
        "regional_office": facility.regional_office,
        "capacity": facility.capacity,
        "active": facility.active,
    }


async def register_facility(session: AsyncSession, *, data: FacilityCreate) -> Facility:
    if await session.scalar(select(Facility.id).where(Facility.code == data.code)) is not None:
        message = f"Kode fasilitas '{data.code}' sudah terdaftar."
        raise Conflict(
            message, slug="facility-code-taken", errors=[{"field": "code", "message": message}]
        )
    now = utcnow()
    facility = Facility(
        id=uuid.uuid4(), created_at=now, updated_at=now, **data.model_dump(mode="json")
    )
    session.add(facility)
    add_event(session, FacilityRegistered(**_facility_facts(facility)))
    log.info("facility_registered", facility_id=str(facility.id), code=facility.code)
    return facility


async def get_facility(session: AsyncSession, *, facility_id: uuid.UUID) -> Facility:
    facility = await session.get(Facility, facility_id)
    if facility is None:
        raise NotFound("Fasilitas tidak ditemukan.")
    return facility


async def update_facility(
    session: AsyncSession, *, facility_id: uuid.UUID, changes: FacilityUpdate
) -> Facility:
    facility = await session.get(Facility, facility_id, with_for_update=True)
    if facility is None:
        raise NotFound("Fasilitas tidak ditemukan.")
    changed = False
    for name, value in changes.model_dump(mode="json", exclude_unset=True).items():
        if getattr(facility, name) != value:
            setattr(facility, name, value)
            changed = True
    # A PATCH that changes nothing publishes nothing: consumers need no echo.
    if changed:
        facility.updated_at = utcnow()
        add_event(session, FacilityUpdated(**_facility_facts(facility)))
        log.info("facility_updated", facility_id=str(facility.id), fields=sorted(changes.changes()))
    return facility


async def list_facilities(
    session: AsyncSession,
    *,
    code: str | None,
    province: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[Facility]:
    conditions: list[ColumnElement[bool]] = []
    if code:
        conditions.append(Facility.code == code)
    if province:
        try:
            conditions.append(Facility.province == domain.normalize_province(province))
        except ValueError as exc:
            raise InvalidValue(str(exc), field="province") from None
    if active is not None:
        conditions.append(Facility.active.is_(active))
    return await paginate(
        session,
        select(Facility).where(*conditions),
        key=Facility.code,
        tiebreak=Facility.id,
        cursor=cursor,
        limit=limit,
    )


# --- inmates -------------------------------------------------------------------------------


def _inmates() -> Select[tuple[Inmate]]:
    return select(Inmate).join(Inmate.facility).options(contains_eager(Inmate.facility))


def _scope(principal: Principal) -> list[ColumnElement[bool]]:
    """Facility staff see only the facilities named in their token."""
    if principal.facility_scoped:
        return [Facility.code.in_(sorted(principal.facilities))]
    return []


async def _load_inmate(
    session: AsyncSession, *, inmate_id: uuid.UUID, principal: Principal, for_update: bool = False
) -> Inmate:
    stmt = _inmates().where(Inmate.id == inmate_id, *_scope(principal))
    if for_update:
        # Serialises concurrent movements of one inmate on PostgreSQL (SQLite has one writer).
        stmt = stmt.with_for_update(of=Inmate)
    inmate = (await session.scalars(stmt)).unique().one_or_none()
    if inmate is None:
        # The same answer whether it does not exist or belongs to another facility's staff.
        raise NotFound("Warga binaan tidak ditemukan.")
    return inmate


def _shared_event(inmate: Inmate) -> InmateShared:
    return InmateShared(
        participant_id=inmate.id,
        full_name=inmate.full_name,
        sex=inmate.sex,
        birth_year=inmate.date_of_birth.year,
        facility_id=inmate.facility_id,
        admission_date=inmate.admission_date,
        expected_release_date=inmate.expected_release_date,
    )


def _apply_consent(
    session: AsyncSession, inmate: Inmate, consent: Consent, *, principal: Principal
) -> None:
    share = domain.must_share(
        consent=consent, already_shared=inmate.shared, status=InmateStatus(inmate.status)
    )
    now = utcnow()
    inmate.consent_training = consent.training
    inmate.consent_data_sharing = consent.data_sharing
    inmate.consent_recorded_at = now
    inmate.consent_recorded_by = principal.subject
    if share:
        inmate.shared = True
        inmate.shared_at = now
        add_event(session, _shared_event(inmate))
        log.info("inmate_shared", inmate_id=str(inmate.id))


def idempotency_payload(data: InmateCreate, *, secret: str) -> dict[str, Any]:
    """The request as remembered for Idempotency-Key: the NIK only as its keyed hash.

    A plain hash over a body whose other fields are stored next to it would let anyone with
    the table try NIK candidates until one matched.
    """
    payload = data.model_dump(mode="json", exclude={"nik"})
    payload["nik_hash"] = domain.nik_digest(data.nik.get_secret_value(), secret)
    return payload


async def register_inmate(
    session: AsyncSession, *, data: InmateCreate, principal: Principal, secret: str
) -> Inmate:
    facility = await session.get(Facility, data.facility_id)
    if facility is None:
        raise InvalidValue("Fasilitas tidak ditemukan.", field="facility_id")
    if not principal.may_see_facility(facility.code):
        raise Forbidden(
            "Petugas hanya dapat mendaftarkan warga binaan di fasilitasnya sendiri.",
            errors=[{"field": "facility_id", "message": "di luar fasilitas petugas"}],
        )
    domain.check_facility_accepts_inmates(active=facility.active)
    domain.check_admission_dates(
        date_of_birth=data.date_of_birth,
        admission_date=data.admission_date,
        expected_release_date=data.expected_release_date,
    )
    nik_hash = domain.nik_digest(data.nik.get_secret_value(), secret)
    taken = await session.scalar(
        select(Inmate.id).where(Inmate.registration_number == data.registration_number)
    )
    if taken is not None:
        message = f"Nomor registrasi '{data.registration_number}' sudah terdaftar."
        raise Conflict(
            message,
            slug="registration-number-taken",
            errors=[{"field": "registration_number", "message": message}],
        )
    if await session.scalar(select(Inmate.id).where(Inmate.nik_hash == nik_hash)) is not None:
        message = "NIK ini sudah terdaftar untuk warga binaan lain."
        raise Conflict(message, slug="nik-taken", errors=[{"field": "nik", "message": message}])

    now = utcnow()
    inmate = Inmate(
        id=uuid.uuid4(),
        registration_number=data.registration_number,
        full_name=data.full_name,
        nik_hash=nik_hash,
        sex=data.sex.value,
        date_of_birth=data.date_of_birth,
        education_level=data.education_level,
        facility_id=facility.id,
        admission_date=data.admission_date,
        expected_release_date=data.expected_release_date,
        status=InmateStatus.IN_CUSTODY.value,
        consent_training=False,
        consent_data_sharing=False,
        shared=False,
        created_at=now,
        updated_at=now,
    )
    inmate.facility = facility
    session.add(inmate)
    log.info("inmate_registered", inmate_id=str(inmate.id), facility_id=str(facility.id))
    if data.consent is not None:
        _apply_consent(
            session,
            inmate,
            Consent(training=data.consent.training, data_sharing=data.consent.data_sharing),
            principal=principal,
        )
    return inmate


async def get_inmate(
    session: AsyncSession, *, inmate_id: uuid.UUID, principal: Principal
) -> Inmate:
    return await _load_inmate(session, inmate_id=inmate_id, principal=principal)


async def list_inmates(
    session: AsyncSession,
    *,
    principal: Principal,
    facility_id: uuid.UUID | None,
    status: InmateStatus | None,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Inmate]:
    conditions = _scope(principal)
    if facility_id is not None:
        conditions.append(Inmate.facility_id == facility_id)
    if status is not None:
        conditions.append(Inmate.status == status.value)
    if q and q.strip():
        needle = q.strip().lower()
        conditions.append(
            or_(
                func.lower(Inmate.full_name).contains(needle, autoescape=True),
                func.lower(Inmate.registration_number).contains(needle, autoescape=True),
            )
        )
    return await paginate(
        session,
        _inmates().where(*conditions),
        key=Inmate.registration_number,
        tiebreak=Inmate.id,
        cursor=cursor,
        limit=limit,
    )


async def record_consent(
    session: AsyncSession, *, inmate_id: uuid.UUID, consent: ConsentIn, principal: Principal
) -> Inmate:
    inmate = await _load_inmate(session, inmate_id=inmate_id, principal=principal, for_update=True)
    _apply_consent(
        session,
        inmate,
        Consent(training=consent.training, data_sharing=consent.data_sharing),
        principal=principal,
    )
    inmate.updated_at = utcnow()
    return inmate


async def release_inmate(
    session: AsyncSession, *, inmate_id: uuid.UUID, release: ReleaseIn, principal: Principal
) -> Inmate:
    inmate = await _load_inmate(session, inmate_id=inmate_id, principal=principal, for_update=True)
    domain.check_release(
        status=InmateStatus(inmate.status),
        admission_date=inmate.admission_date,
        released_on=release.released_on,
    )
    inmate.status = InmateStatus.RELEASED.value
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
    return inmate


async def transfer_inmate(
    session: AsyncSession, *, inmate_id: uuid.UUID, transfer: TransferIn, principal: Principal
) -> Inmate:
    inmate = await _load_inmate(session, inmate_id=inmate_id, principal=principal, for_update=True)
    target = await session.get(Facility, transfer.to_facility_id)
    if target is None:
        raise InvalidValue("Fasilitas tujuan tidak ditemukan.", field="to_facility_id")
    domain.check_transfer(
        status=InmateStatus(inmate.status),
        admission_date=inmate.admission_date,
        from_facility_id=inmate.facility_id,
        to_facility_id=target.id,
        to_facility_active=target.active,
        transferred_on=transfer.transferred_on,
    )
    from_facility_id = inmate.facility_id
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
            ),
        )
    log.info(
        "inmate_transferred",
        inmate_id=str(inmate.id),
        from_facility_id=str(from_facility_id),
        to_facility_id=str(target.id),
    )
    return inmate
