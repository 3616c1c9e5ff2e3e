"""Inmates: registration, reads and searches, consent."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    String,
    and_,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased, contains_eager

from bekal.registry import domain
from bekal.registry.domain import Consent, InmateStatus, InvalidValue
from bekal.registry.models import Facility, Inmate
from bekal.registry.schemas import (
    ConsentIn,
    InmateCreate,
)
from bekal.registry.services.audit import audit, audit_reads
from bekal.registry.services.common import (
    facility_scope,
    inmates_query,
    load_inmate,
    publish_share,
)
from bekal.registry.services.keys import withdraw_person_key
from bekal.shared.auth import Principal
from bekal.shared.db import table_of, utcnow
from bekal.shared.events.catalogue import InmateConsentWithdrawn
from bekal.shared.messaging.outbox import add_event
from bekal.shared.pagination import Page, count_rows, paginate, paginate_rows
from bekal.shared.problems import Conflict, Forbidden

log = structlog.get_logger(__name__)


async def _apply_consent(
    session: AsyncSession,
    inmate: Inmate,
    consent: Consent,
    *,
    principal: Principal,
    via: dict[str, Any] | None = None,
) -> None:
    share = domain.must_share(
        consent=consent, already_shared=inmate.shared, status=InmateStatus(inmate.status)
    )
    withdraw = domain.withdraws_consent(consent=consent, shared=inmate.shared)
    now = utcnow()
    inmate.consent_training = consent.training
    inmate.consent_data_sharing = consent.data_sharing
    inmate.consent_recorded_at = now
    inmate.consent_recorded_by = principal.subject
    if share:
        inmate.shared = True
        inmate.shared_at = now
        await publish_share(session=session, inmate=inmate)
        log.info("inmate_shared", inmate_id=str(inmate.id))
    if withdraw:
        # The industry side anonymises the person; a later full consent shares them again,
        # under a key of the next generation. The live key goes now, its tombstone before the
        # withdrawal: nothing sealed with it opens any more, in any copy of the history.
        inmate.shared = False
        inmate.consent_withdrawn_at = now
        await withdraw_person_key(session=session, participant_id=inmate.id)
        add_event(
            session,
            InmateConsentWithdrawn(participant_id=inmate.id, withdrawn_on=now.date()),
        )
        log.info("inmate_consent_withdrawn", inmate_id=str(inmate.id))
    audit(
        session=session,
        principal=principal,
        action="inmate.consent_recorded",
        inmate_id=inmate.id,
        facility_id=inmate.facility_id,
        detail={
            "training": consent.training,
            "data_sharing": consent.data_sharing,
            "shared": share,
            "withdrawn": withdraw,
            **(via or {}),
        },
    )


def idempotency_payload(data: InmateCreate, *, secret: str) -> dict[str, Any]:
    """The request as remembered for Idempotency-Key: the NIK only as its keyed hash.

    A plain hash over a body whose other fields are stored next to it would let anyone with
    the table try NIK candidates until one matched.
    """
    payload = data.model_dump(mode="json", exclude={"nik"})
    payload["nik_hash"] = domain.nik_digest(data.nik.get_secret_value(), secret)
    return payload


async def register_inmate(
    *, session: AsyncSession, data: InmateCreate, principal: Principal, secret: str
) -> Inmate:
    nik_hash = domain.nik_digest(data.nik.get_secret_value(), secret)
    # The facility and whether either unique key is taken, in one round trip; the answers are
    # still given in the order of the rules (facility, access, dates, then conflicts).
    found = (
        await session.execute(
            select(
                Facility,
                select(Inmate.id)
                .where(Inmate.registration_number == data.registration_number)
                .exists(),
                select(Inmate.id).where(Inmate.nik_hash == nik_hash).exists(),
            ).where(Facility.id == data.facility_id)
        )
    ).one_or_none()
    if found is None:
        raise InvalidValue("Fasilitas tidak ditemukan.", field="facility_id")
    facility, number_taken, nik_taken = found
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
    if number_taken:
        message = f"Nomor registrasi '{data.registration_number}' sudah terdaftar."
        raise Conflict(
            message,
            slug="registration-number-taken",
            errors=[{"field": "registration_number", "message": message}],
        )
    if nik_taken:
        message = "NIK ini sudah terdaftar untuk warga binaan lain."
        raise Conflict(message, slug="nik-taken", errors=[{"field": "nik", "message": message}])

    now = utcnow()
    inmate = Inmate(
        id=uuid.uuid4(),
        registration_number=data.registration_number,
        full_name=data.full_name,
        search_name=domain.search_key(data.full_name),
        nik_hash=nik_hash,
        nik_encrypted=domain.encrypt_nik(data.nik.get_secret_value(), secret),
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
    audit(
        session=session,
        principal=principal,
        action="inmate.registered",
        inmate_id=inmate.id,
        facility_id=facility.id,
        detail={"registration_number": inmate.registration_number},
    )
    if data.consent is not None:
        await _apply_consent(
            session,
            inmate,
            Consent(training=data.consent.training, data_sharing=data.consent.data_sharing),
            principal=principal,
        )
    return inmate


async def get_inmate(
    *, session: AsyncSession, inmate_id: uuid.UUID, principal: Principal
) -> Inmate:
    inmate = await load_inmate(session=session, inmate_id=inmate_id, principal=principal)
    await audit_reads(session=session, principal=principal, action="inmate.read", inmates=[inmate])
    return inmate


# Needles this long are served by the search index (trigrams: pg_trgm, FTS5's tokenizer).
INDEXED_NEEDLE = 3
# A search matching at most this many people pages through them sorted; past it, it reads
# people in registration-number order and tests each, which finds a page of a common needle
# after a few hundred rows instead of sorting every match.
SORTED_MATCHES = 1000


def _folded_registration_number(session: AsyncSession, *, ascii_only: bool) -> ColumnElement[str]:
    """``lower(registration_number)`` for a substring search, as cheap as the needle allows.

    A needle of 3 characters or more is served by the trigram index over
    ``lower(registration_number)`` (migration 0005), which this expression must match. A
    shorter one reads every row: there, on PostgreSQL, ``lower()`` under the database's
    collation dominated the scan: 5.8 ms for 20,000 rows, 3.8 ms with ``COLLATE "C"`` (which
    folds ASCII letters only), 1.9 ms for the name alone, measured on a C.UTF-8 database. An
    ASCII needle meets ASCII letters, folded the same either way; registration numbers are
    codes, and a rare letter that folds into ASCII (the Kelvin sign) is not worth a full fold
    of every row. SQLite's ``lower()`` folds ASCII only already, and has no collation of that
    name.
    """
    bind = session.bind
    if ascii_only and bind is not None and bind.dialect.name == "postgresql":
        return func.lower(Inmate.registration_number.collate("C"))
    return func.lower(Inmate.registration_number)


def _fts_phrase(column: str, value: str) -> str:
    """An FTS5 query for ``value`` as a substring of ``column``: a quoted phrase of trigrams."""
    return f'{column} : "{value.replace(chr(34), chr(34) * 2)}"'


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    return bind.dialect.name if bind is not None else ""


def index_serves(session: AsyncSession, needle: str) -> bool:
    """Whether the search index can find ``needle``'s matches (migration 0005's, for a needle of
    ``INDEXED_NEEDLE`` characters or more; on SQLite from 3.34, with the trigram tokenizer)."""
    indexed = (
        len(domain.search_key(needle)) >= INDEXED_NEEDLE and len(needle.lower()) >= INDEXED_NEEDLE
    )
    if _dialect(session) == "sqlite":
        return indexed and sqlite3.sqlite_version_info >= (3, 34, 0)
    return indexed


def _contains(
    session: AsyncSession,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    value: str,
) -> ColumnElement[bool]:
    """``column`` contains ``value`` (``LIKE '%value%'``, its wildcards escaped).

    On PostgreSQL the pattern is a scalar subquery, so the planner cannot read the needle and
    estimates every needle alike (0.5 % of the rows): each kind of statement then keeps one
    plan, the trigram indexes for the matches and the registration-number order for a page of
    a common needle, whatever sample ``ANALYZE`` took. Seen through the needle, its estimate
    moved the plans with the sample: a count read the table until its cap, a page of the
    1,000 matches of ``RN.0123`` read 123,000 people in order to find them (141 and 248 ms
    under ``EXPLAIN ANALYZE`` at 300,000 people; 57 ms of server CPU a search, against 10 with
    its matches taken through the index first).
    """
    if _dialect(session) != "postgresql":
        return column.contains(value, autoescape=True)
    escaped = value.replace("/", "//").replace("%", "/%").replace("_", "/_")
    pattern = select(literal(f"%{escaped}%", String())).scalar_subquery()
    return column.like(pattern, escape="/")


def search_condition(
    session: AsyncSession, needle: str, *, in_facilities: bool = False, common: bool = False
) -> ColumnElement[bool]:
    """Name (case- and accent-free) or registration number containing ``needle``.

    On SQLite a needle of 3 characters or more first narrows to the people the FTS5 trigram
    table ``inmates_search`` finds (a superset: its tokenizer folds case too); the same
    ``LIKE`` as without it then decides, so the results are those of a full scan. Not when
    the search is already within some facilities (``in_facilities``): SQLite would then look
    up every person the index finds in the country (284 ms for "siti" at 300,000 people)
    instead of reading one facility's few hundred (12 ms); PostgreSQL's planner weighs both.

    ``common``: the needle is known to match many people (more than ``SORTED_MATCHES``). The
    page is then read in registration-number order, each person tested by the ``LIKE`` alone:
    the first 21 of a common name come after a few hundred people (0.14 ms on SQLite for
    "muhammad" at 300,000), where taking the index's set first means finding all its matches
    (16 ms for the 25,000 of "muhammad").
    """
    name_key = domain.search_key(needle)
    number_key = needle.lower()
    indexed = index_serves(session, needle)
    exact = or_(
        _contains(session, Inmate.search_name, name_key),
        _contains(
            session,
            func.lower(Inmate.registration_number)
            if indexed
            else _folded_registration_number(session, ascii_only=needle.isascii()),
            number_key,
        ),
    )
    if common or in_facilities or not indexed or _dialect(session) != "sqlite":
        return exact
    return and_(literal_column(f"{Inmate.__tablename__}.rowid").in_(_fts_rowids(needle)), exact)


def _fts_rowids(needle: str) -> Select[Any]:
    """The rowids of the people the SQLite FTS5 table finds for ``needle`` (a superset).

    By rowid, as the index's triggers keep it: reading each match's inmate_id from the FTS5
    table's content took 8.6 ms for the 1,941 of "siti" at 30,000 people, the rowids 1.0.
    """
    return (
        select(literal_column("rowid"))
        .select_from(table("inmates_search"))
        .where(literal_column("inmates_search").op("MATCH")(_fts_query(needle)))
    )


def _fts_query(needle: str) -> str:
    name_key, number_key = domain.search_key(needle), needle.lower()
    return f"{_fts_phrase('name', name_key)} OR {_fts_phrase('number', number_key)}"


def matches_to_count(
    session: AsyncSession,
    needle: str,
    conditions: list[ColumnElement[bool]],
    *,
    in_facilities: bool,
) -> Select[Any]:
    """The search's matches, as counted (up to the cap).

    On SQLite, in the whole country, the FTS5 table drives the count: it yields its matches
    one by one and the count stops at the cap's, where ``rowid IN (...)`` first collects every
    match (1.3 against 6.6 ms for "siti", 1.7 against 20.6 for "muhammad", at 300,000).
    """
    if in_facilities or _dialect(session) != "sqlite" or not index_serves(session, needle):
        return inmates_query().where(
            *conditions, search_condition(session, needle, in_facilities=in_facilities)
        )
    found = table("inmates_search", column("rowid"))
    return (
        select(Inmate.id)
        .select_from(found)
        .join(Inmate, literal_column(f"{Inmate.__tablename__}.rowid") == found.c.rowid)
        .where(
            literal_column("inmates_search").op("MATCH")(_fts_query(needle)),
            *conditions,
            search_condition(session, needle, common=True),
        )
    )


def few_matches_page(
    session: AsyncSession,
    needle: str,
    conditions: list[ColumnElement[bool]],
    *,
    in_facilities: bool,
) -> tuple[Select[Any], Any]:
    """The search's matches, known to be few (``SORTED_MATCHES`` or fewer), to page sorted.

    On PostgreSQL they are taken first, through the trigram indexes, in a materialised CTE,
    and the page is sorted from those: the registration-number index read in order and
    filtered, the plan the planner picked for some samples, read 123,000 people for the 1,000
    of ``RN.0123``. Returns the query and the entity its rows are read as.
    """
    search = search_condition(session, needle, in_facilities=in_facilities)
    if _dialect(session) != "postgresql":
        return inmates_query().where(*conditions, search), Inmate
    people = table_of(Inmate)
    matches = (
        select(*people.c)
        .select_from(people.join(table_of(Facility), Inmate.facility_id == Facility.id))
        .where(*conditions, search)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    found = aliased(Inmate, matches)
    query = select(found).join(found.facility).options(contains_eager(found.facility))
    return query, found


async def list_inmates(
    *,
    session: AsyncSession,
    principal: Principal,
    facility_id: uuid.UUID | None,
    status: InmateStatus | None,
    q: str | None,
    limit: int,
    cursor: str | None,
    count_limit: int | None = None,
) -> Page[Inmate]:
    """One page of the people ``principal`` may see, by registration number; the count stops
    at ``count_limit`` (when given) and the page then says it was capped."""
    scope = facility_scope(principal)
    conditions = _list_conditions(scope, facility_id=facility_id, status=status)
    needle = q.strip() if q else ""
    if not needle:
        return await paginate(
            session,
            inmates_query().where(*conditions),
            key=Inmate.registration_number,
            tiebreak=Inmate.id,
            cursor=cursor,
            limit=limit,
            count_limit=count_limit,
        )
    in_facilities = facility_id is not None or bool(scope)
    counted = await count_rows(
        session,
        matches_to_count(session, needle, conditions, in_facilities=in_facilities),
        limit=count_limit,
    )
    if counted.capped or counted.rows > SORTED_MATCHES:
        # Many matches: read the page in order rather than sort every match.
        query = inmates_query().where(
            *conditions, search_condition(session, needle, in_facilities=in_facilities, common=True)
        )
        found: Any = Inmate
    else:
        query, found = few_matches_page(session, needle, conditions, in_facilities=in_facilities)
    return await paginate(
        session,
        query,
        key=found.registration_number,
        tiebreak=found.id,
        cursor=cursor,
        limit=limit,
        counted=counted,
    )


def _list_conditions(
    scope: list[ColumnElement[bool]],
    *,
    facility_id: uuid.UUID | None,
    status: InmateStatus | None,
) -> list[ColumnElement[bool]]:
    conditions = list(scope)
    if facility_id is not None:
        conditions.append(Inmate.facility_id == facility_id)
    if status is not None:
        conditions.append(Inmate.status == status.value)
    return conditions


# What the people list page shows of each person (and the audit of the records read).
LISTED_COLUMNS = (
    Inmate.id,
    Inmate.registration_number,
    Inmate.full_name,
    Inmate.facility_id,
    Facility.code.label("facility_code"),
    Inmate.status,
    Inmate.expected_release_date,
)


async def list_inmate_rows(
    *,
    session: AsyncSession,
    principal: Principal,
    facility_id: uuid.UUID | None,
    status: InmateStatus | None,
    limit: int,
    cursor: str | None,
    count_limit: int | None = None,
) -> Page[Row[Any]]:
    """``list_inmates`` with no search, as rows of ``LISTED_COLUMNS``: the same people in the
    same order, for the list page, which shows five columns; building 26 ORM objects with
    their facilities cost more than reading them."""
    conditions = _list_conditions(facility_scope(principal), facility_id=facility_id, status=status)
    return await paginate_rows(
        session,
        select(*LISTED_COLUMNS).select_from(Inmate).join(Inmate.facility).where(*conditions),
        key=Inmate.registration_number,
        tiebreak=Inmate.id,
        cursor=cursor,
        limit=limit,
        count_limit=count_limit,
    )


async def record_consent(
    *,
    session: AsyncSession,
    inmate_id: uuid.UUID,
    consent: ConsentIn,
    principal: Principal,
    via: dict[str, Any] | None = None,
    locked: Inmate | None = None,
) -> Inmate:
    inmate = locked or await load_inmate(
        session=session, inmate_id=inmate_id, principal=principal, for_update=True
    )
    await _apply_consent(
        session,
        inmate,
        Consent(training=consent.training, data_sharing=consent.data_sharing),
        principal=principal,
        via=via,
    )
    inmate.updated_at = utcnow()
    return inmate
