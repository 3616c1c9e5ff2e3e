"""Indicators: counts by dimension, computed with SQL aggregation over the projections.

One module of about 400 lines on purpose: the fact rows (``_facts``) and the query that groups
them (``indicator_query``) share their columns by position (``COUNTER_COLUMNS``), and are read
together.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    case,
    func,
    literal_column,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bekal.reporting.domain import (
    Counters,
    Dimension,
    EnrollmentStatus,
    IndicatorGroup,
    group_keys,
    sort_groups,
    withdrawn_column,
)
from bekal.reporting.models import (
    STATE_ROW_ID,
    Certificate,
    CertificateRevocation,
    Enrollment,
    Facility,
    Participant,
    Program,
    ProjectionState,
    ProjectionVersion,
    TrainingSession,
    WaitlistEntry,
)
from bekal.shared.events.catalogue import (
    CertificateRevocationKind,
    FollowUpSituation,
    WithdrawalReason,
)


@dataclass(frozen=True)
class IndicatorFilters:
    year: int | None = None
    province: str | None = None
    facility_id: uuid.UUID | None = None
    program_id: uuid.UUID | None = None
    sector: str | None = None
    sex: str | None = None

    def describe(self) -> dict[str, str]:
        """The filters that are set, as text (for file names and headers)."""
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class IndicatorReport:
    group_by: list[Dimension]
    groups: list[IndicatorGroup]
    totals: Counters
    data_as_of: datetime | None


COUNTER_COLUMNS: tuple[str, ...] = (
    "enrolled",
    "withdrawn",
    *[withdrawn_column(r) for r in WithdrawalReason],
    "completed",
    "not_completed",
    "certified",
    "days_to_certificate_count",
    "days_to_certificate_total",
    "graduates_released",
    "graduates_released_ready",
    "waitlisted",
    "waiting",
    "business_with_nib",
    "business_without_nib",
    "employed",
)


def _one() -> Any:
    # Literal SQL, not bound parameters: PostgreSQL cannot infer the type of a parameter that
    # is only summed after a UNION.
    return literal_column("1", Integer)


def _zero() -> Any:
    return literal_column("0", Integer)


def _flag(condition: ColumnElement[bool]) -> Any:
    return case((condition, _one()), else_=_zero())


_WITHOUT_NIB = (FollowUpSituation.BUSINESS_STARTED_WITHOUT_NIB,)
_BUSINESS = (FollowUpSituation.BUSINESS_STARTED_WITH_NIB, *_WITHOUT_NIB)
# Sorts an enrolment whose end is not known yet after every known one.
_NO_DAY = 10**7


def _ranked_enrollments() -> Any:
    """Every enrolment with what its session says (facility, program, year), and for each rule
    about people its place among the person's completed enrolments meeting that rule.

    Indicators about people count each person once, under their first completed enrolment
    meeting the rule (by the day the course ended, then enrolment id). ``nth_*`` counts the
    person's completed enrolments meeting the rule up to this one in that order: 1 on a row
    that meets it makes it the first. All four counts share one window (one sort of the
    enrolments by person and day) instead of a lookup of the person's other enrolments per row.

    An erased person's enrolments carry one anonymous id, so the person still counts once.
    """
    s, e = TrainingSession, Enrollment
    completed = e.status == EnrollmentStatus.COMPLETED.value
    # A literal, not a parameter: SQLite shares one sort between windows only when their
    # expressions are identical, and four parameters are four different expressions.
    day = func.coalesce(s.end_day, e.end_day, literal_column(str(_NO_DAY), Integer))

    def rank(rule: ColumnElement[bool]) -> Any:
        # (day, id) orders a person's enrolments strictly: no two rows are peers.
        return func.sum(_flag(completed & rule)).over(
            partition_by=e.participant_id, order_by=(day, e.id), rows=(None, 0)
        )

    return (
        select(
            e.session_id,
            e.participant_id,
            e.status,
            e.withdrawal_reason,
            e.follow_up_situation,
            e.ready_to_trade,
            e.sector,
            s.facility_id.label("facility_id"),
            func.coalesce(s.program_id, e.program_id).label("program_id"),
            func.coalesce(s.year, e.year).label("year"),
            rank(true()).label("nth_completed"),
            rank(e.ready_to_trade.is_(True)).label("nth_ready"),
            rank(_in_situation(e, *_BUSINESS)).label("nth_business"),
            rank(_in_situation(e, FollowUpSituation.EMPLOYED_BY_IKM)).label("nth_employed"),
        )
        .select_from(e)
        .outerjoin(s, s.id == e.session_id)
        .subquery("ranked")
    )


def _in_situation(row: Any, *values: FollowUpSituation) -> ColumnElement[bool]:
    return row.follow_up_situation.in_([v.value for v in values])


def _certified_enrollments() -> Any:
    """One row per enrolment holding a certificate that counts.

    A certificate counts unless revoked; a superseded one counts until its replacement is
    known (then the replacement counts instead), so a correction never makes a gap. The first
    issue date of the enrolment's certificates gives the days from completion to certificate.
    """
    c, r = Certificate, CertificateRevocation
    replacement = aliased(Certificate)
    counts = r.certificate_id.is_(None) | (
        (r.kind == CertificateRevocationKind.SUPERSEDED.value) & replacement.id.is_(None)
    )
    return (
        select(
            c.enrollment_id.label("enrollment_id"),
            func.min(c.session_id).label("session_id"),
            func.min(c.program_id).label("program_id"),
            func.min(c.participant_id).label("participant_id"),
            func.min(c.issued_day).label("first_day"),
        )
        .select_from(c)
        .outerjoin(r, r.certificate_id == c.id)
        # At most one row: a certificate id is the key.
        .outerjoin(replacement, replacement.id == r.replaced_by_id)
        .group_by(c.enrollment_id)
        .having(func.sum(_flag(counts)) > 0)
        .subquery("certified")
    )


@cache  # the same statement every time; building it took longer than PostgreSQL ran it
def _facts() -> Any:
    """One row per enrolment and one per certified enrolment, each placed in its session's groups.

    The session gives facility, program and year; while it is unknown, a completion or a
    certificate still carries its program (and a completion its end date and sector) and counts
    there. Sex comes from the participant (registry.inmates), when shared and not erased.
    """
    s, e, p, person = TrainingSession, Enrollment, Program, Participant
    en = _ranked_enrollments()
    completed = en.c.status == EnrollmentStatus.COMPLETED.value
    released = person.released.is_(True)
    withdrawn_by_reason = [
        _flag(
            (en.c.status == EnrollmentStatus.WITHDRAWN.value) & (en.c.withdrawal_reason == r.value)
        ).label(withdrawn_column(r))
        for r in WithdrawalReason
    ]

    def first(nth: Any) -> ColumnElement[bool]:
        # A person, not an enrolment: counted under their first completed course meeting the
        # rule ``nth`` ranks by, whatever else they took.
        return completed & (nth == 1)

    enrollments = (
        select(
            en.c.session_id.label("session_id"),
            en.c.facility_id.label("facility_id"),
            en.c.program_id.label("program_id"),
            en.c.year.label("year"),
            func.coalesce(p.sector, en.c.sector).label("sector"),
            person.sex.label("sex"),
            _one().label("enrolled"),
            _flag(en.c.status == EnrollmentStatus.WITHDRAWN.value).label("withdrawn"),
            *withdrawn_by_reason,
            _flag(completed).label("completed"),
            _flag(en.c.status == EnrollmentStatus.NOT_COMPLETED.value).label("not_completed"),
            _zero().label("certified"),
            _zero().label("days_to_certificate_count"),
            _zero().label("days_to_certificate_total"),
            _flag(first(en.c.nth_completed) & released).label("graduates_released"),
            _flag(first(en.c.nth_ready) & released & en.c.ready_to_trade.is_(True)).label(
                "graduates_released_ready"
            ),
            _zero().label("waitlisted"),
            _zero().label("waiting"),
            _flag(
                first(en.c.nth_business)
                & _in_situation(en.c, FollowUpSituation.BUSINESS_STARTED_WITH_NIB)
            ).label("business_with_nib"),
            _flag(first(en.c.nth_business) & _in_situation(en.c, *_WITHOUT_NIB)).label(
                "business_without_nib"
            ),
            _flag(
                first(en.c.nth_employed) & _in_situation(en.c, FollowUpSituation.EMPLOYED_BY_IKM)
            ).label("employed"),
        )
        .select_from(en)
        .outerjoin(p, p.id == en.c.program_id)
        .outerjoin(person, person.id == en.c.participant_id)
        .where(en.c.status != EnrollmentStatus.MERGED.value)
    )
    cert = _certified_enrollments()
    c_program = func.coalesce(s.program_id, cert.c.program_id)
    # Completion is the session's last day (or the one the completion carried).
    completed_day = func.coalesce(s.end_day, e.end_day)
    days_known = completed_day.is_not(None) & cert.c.first_day.is_not(None)
    certificates = (
        select(
            cert.c.session_id.label("session_id"),
            s.facility_id.label("facility_id"),
            c_program.label("program_id"),
            func.coalesce(s.year, e.year).label("year"),
            func.coalesce(p.sector, e.sector).label("sector"),
            person.sex.label("sex"),
            _zero().label("enrolled"),
            _zero().label("withdrawn"),
            *[_zero().label(withdrawn_column(r)) for r in WithdrawalReason],
            _zero().label("completed"),
            _zero().label("not_completed"),
            _one().label("certified"),
            _flag(days_known).label("days_to_certificate_count"),
            case((days_known, cert.c.first_day - completed_day), else_=_zero()).label(
                "days_to_certificate_total"
            ),
            _zero().label("graduates_released"),
            _zero().label("graduates_released_ready"),
            _zero().label("waitlisted"),
            _zero().label("waiting"),
            _zero().label("business_with_nib"),
            _zero().label("business_without_nib"),
            _zero().label("employed"),
        )
        .select_from(cert)
        .outerjoin(s, s.id == cert.c.session_id)
        .outerjoin(e, e.id == cert.c.enrollment_id)
        .outerjoin(p, p.id == c_program)
        .outerjoin(person, person.id == cert.c.participant_id)
    )
    w = WaitlistEntry
    # Moved up: the same id enrolled (at most one enrolment: the id is its key).
    moved_up = aliased(Enrollment)
    waitlist_counters = {
        "waitlisted": _one(),
        "waiting": _flag(w.left_on.is_(None) & moved_up.id.is_(None)),
    }
    waitlist = (
        select(
            w.session_id.label("session_id"),
            s.facility_id.label("facility_id"),
            s.program_id.label("program_id"),
            s.year.label("year"),
            p.sector.label("sector"),
            person.sex.label("sex"),
            # UNION ALL matches columns by position: the counters in COUNTER_COLUMNS' order.
            *[waitlist_counters.get(name, _zero()).label(name) for name in COUNTER_COLUMNS],
        )
        .select_from(w)
        .outerjoin(moved_up, moved_up.id == w.id)
        .outerjoin(s, s.id == w.session_id)
        .outerjoin(p, p.id == s.program_id)
        .outerjoin(person, person.id == w.participant_id)
    )
    return union_all(enrollments, certificates, waitlist).subquery("facts")


def indicator_query(dimensions: list[Dimension], filters: IndicatorFilters) -> Select[Any]:
    """SELECT <dimension columns>, SUM(<counters>) ... GROUP BY <dimension columns>."""
    statement, values = _bound_indicator_query(dimensions, filters)
    return statement.params(values)


def _bound_indicator_query(
    dimensions: list[Dimension], filters: IndicatorFilters
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement for these dimensions and the filters that are set, and the filters'
    values for its parameters (``filter_<name>``)."""
    values = {f"filter_{k}": v for k, v in filters.__dict__.items() if v is not None}
    return _indicator_statement(tuple(dimensions), tuple(sorted(values))), values


@lru_cache(maxsize=256)
def _indicator_statement(
    dimensions: tuple[Dimension, ...], filtered: tuple[str, ...]
) -> Select[Any]:
    """Built once for each set of dimensions and filters (as ``_facts``): building it took
    an eighth of an indicators request under py-spy."""
    facts = _facts()
    f, p = Facility, Program
    session = aliased(TrainingSession)
    columns: dict[Dimension, list[Any]] = {
        Dimension.FACILITY: [
            facts.c.facility_id.label("facility_id"),
            f.code.label("facility_code"),
            f.name.label("facility_name"),
        ],
        Dimension.PROVINCE: [f.province.label("province")],
        Dimension.PROGRAM: [
            facts.c.program_id.label("program_id"),
            p.code.label("program_code"),
            p.title.label("program_title"),
        ],
        Dimension.YEAR: [facts.c.year.label("year")],
        Dimension.SECTOR: [facts.c.sector.label("sector")],
        Dimension.SEX: [facts.c.sex.label("sex")],
        Dimension.SESSION: [
            facts.c.session_id.label("session_id"),
            session.start_date.label("session_start_date"),
            session.end_date.label("session_end_date"),
        ],
    }
    keys = [col for d in dimensions for col in columns[d]]
    stmt = (
        select(
            *keys,
            *[func.coalesce(func.sum(facts.c[name]), 0).label(name) for name in COUNTER_COLUMNS],
        )
        .select_from(facts)
        .outerjoin(f, f.id == facts.c.facility_id)
        .outerjoin(p, p.id == facts.c.program_id)
    )
    if Dimension.SESSION in dimensions:
        stmt = stmt.outerjoin(session, session.id == facts.c.session_id)
    if "filter_year" in filtered:
        stmt = stmt.where(facts.c.year == bindparam("filter_year"))
    if "filter_province" in filtered:
        stmt = stmt.where(f.province == bindparam("filter_province"))
    if "filter_facility_id" in filtered:
        stmt = stmt.where(facts.c.facility_id == bindparam("filter_facility_id"))
    if "filter_program_id" in filtered:
        stmt = stmt.where(facts.c.program_id == bindparam("filter_program_id"))
    if "filter_sector" in filtered:
        stmt = stmt.where(facts.c.sector == bindparam("filter_sector"))
    if "filter_sex" in filtered:
        stmt = stmt.where(facts.c.sex == bindparam("filter_sex"))
    if keys:
        stmt = stmt.group_by(*keys)
    return stmt


# Reports already computed, per database (its engine), by the projections' version and the
# question: officials' dashboards ask the same few questions far more often than events change
# the answers, and at national volume one count reads every enrolment (3 to 5 a second).
REPORTS_KEPT = 256
_reports: WeakKeyDictionary[Any, OrderedDict[tuple[Any, ...], IndicatorReport]] = (
    WeakKeyDictionary()
)


# Counts under way, per database, by question (with its version): requests asking the same
# question at once wait for one count instead of each making its own (dashboards opened by
# many officials just after an event changed the projections). In this replica only.
_counting: WeakKeyDictionary[Any, dict[tuple[Any, ...], asyncio.Future[IndicatorReport]]] = (
    WeakKeyDictionary()
)


async def indicators(
    *, session: AsyncSession, group_by: list[Dimension], filters: IndicatorFilters
) -> IndicatorReport:
    """Counts by the requested dimensions and the totals, read from one consistent snapshot;
    the report of the same question at the same version of the projections if there is one
    (``projections_changed``: the same version, the same projections), or the one another
    request is counting for it now."""
    postgresql = session.bind is not None and session.bind.dialect.name == "postgresql"
    if postgresql:
        # The version, the counts and data-as-of are three statements: one snapshot keeps
        # them together.
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    # First: on SQLite a change committed between two reads makes the counts newer than the
    # version, never older, so a kept report is never older than its version.
    version = await session.scalar(
        select(ProjectionVersion.version).where(ProjectionVersion.id == STATE_ROW_ID)
    )
    engine = session.bind.engine if session.bind is not None else None
    if engine is None or version is None:
        return await count_indicators(
            session=session, group_by=group_by, filters=filters, postgresql=postgresql
        )
    question = (version, tuple(group_by), filters)
    kept = _reports.setdefault(engine, OrderedDict())
    if (report := kept.get(question)) is not None:
        kept.move_to_end(question)
        return report
    counting = _counting.setdefault(engine, {})
    while (under_way := counting.get(question)) is not None:
        # The same question at the same version, counted by another request right now: its
        # report is this one's (the same version, the same projections).
        try:
            return await asyncio.shield(under_way)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not under_way.cancelled() or (task is not None and task.cancelling()):
                raise
            # That request failed or was cancelled: this one counts (or waits for the next).
    future: asyncio.Future[IndicatorReport] = asyncio.get_running_loop().create_future()
    counting[question] = future
    try:
        report = await count_indicators(
            session=session, group_by=group_by, filters=filters, postgresql=postgresql
        )
    except BaseException:
        future.cancel()
        raise
    else:
        future.set_result(report)
        kept[question] = report
        while len(kept) > REPORTS_KEPT:
            kept.popitem(last=False)
    finally:
        if counting.get(question) is future:
            del counting[question]
    return report


async def count_indicators(
    *,
    session: AsyncSession,
    group_by: list[Dimension],
    filters: IndicatorFilters,
    postgresql: bool,
) -> IndicatorReport:
    """The report counted from the projections, nothing kept (``indicators`` keeps it)."""
    if postgresql:
        # Past PostgreSQL's JIT threshold (a plan's estimated cost, which grows with the data)
        # every call compiles the query first: 1.7 of 2.2 s at 25,000 enrolments with the
        # earlier form of these queries. They are short reads: no JIT for them.
        await session.execute(text("SET LOCAL jit = off"))
    groups: list[IndicatorGroup] = []
    if group_by:
        statement, values = _bound_indicator_query(group_by, filters)
        rows = (await session.execute(statement, values)).mappings().all()
        groups = [
            IndicatorGroup(keys=group_keys(group_by, row), counters=Counters.from_row(row))
            for row in rows
        ]
        # Every fact is in exactly one group (a null key is a group too): the totals are the
        # groups' sums, without reading the facts a second time.
        total_row = {name: sum(int(row[name] or 0) for row in rows) for name in COUNTER_COLUMNS}
    else:
        statement, values = _bound_indicator_query([], filters)
        total_row = dict((await session.execute(statement, values)).mappings().one())
    data_as_of = await session.scalar(
        select(ProjectionState.data_as_of).where(ProjectionState.id == STATE_ROW_ID)
    )
    return IndicatorReport(
        group_by=group_by,
        groups=sort_groups(groups, group_by),
        totals=Counters.from_row(total_row),
        data_as_of=data_as_of,
    )
