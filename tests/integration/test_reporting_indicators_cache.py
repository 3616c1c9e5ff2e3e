"""The indicators' reports are kept by the projections' version: a kept report is answered again
only while nothing has changed the projections since it was counted.

Every kind of event reporting applies arrives, one at a time, between reads of the same
questions; after each, every answer must equal a count made afresh from the projections. A kind
of event whose transaction changed the counts without moving the version would leave an old
report answering, and fail here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event

from bekal.reporting.app import create_app
from bekal.reporting.domain import Dimension
from bekal.reporting.handlers import subscriptions
from bekal.reporting.services import indicators as indicators_module
from bekal.reporting.services.indicators import IndicatorFilters, count_indicators, indicators
from bekal.reporting.services.people import ERASURE_KEY_RESOURCE, ErasureKey
from bekal.shared.db import Database
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import CompetencyUnit, EnrollmentOutcome, Sex
from bekal.shared.events.envelope import EventMeta
from bekal.shared.messaging.consumer import HandlerContext
from bekal.shared.messaging.models import InboxMessage
from bekal.shared.migrations import upgrade
from tests.support.apps import running
from tests.support.db import count
from tests.support.factories import (
    PONTIANAK,
    TANGERANG,
    certificate_issued,
    certificate_reissued,
    certificate_revoked,
    enrollment_withdrawn,
    facility_registered,
    facility_updated,
    follow_up_recorded,
    inmate_consent_withdrawn,
    inmate_erased,
    inmate_released,
    inmate_shared,
    inmates_merged,
    outcome_corrected,
    participant_completed,
    participant_enrolled,
    participant_left_waitlist,
    participant_not_completed,
    participant_waitlisted,
    program_published,
    readiness_recorded,
    session_cancelled,
    session_completed,
    session_opened,
    session_scheduled,
    session_started,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

QUESTIONS: list[tuple[list[Dimension], IndicatorFilters]] = [
    ([], IndicatorFilters()),
    ([Dimension.SEX], IndicatorFilters()),
    ([Dimension.PROVINCE, Dimension.YEAR], IndicatorFilters()),
    ([Dimension.FACILITY, Dimension.PROGRAM], IndicatorFilters(year=2024)),
    ([Dimension.SESSION], IndicatorFilters(sex=Sex.FEMALE.value)),
]


def every_kind() -> list[Event]:
    """A history with every kind of event reporting applies. The enrolments come first, so
    that what arrives after them (the session, the facility, the people's sex, a merge, an
    erasure) changes how they are counted."""
    tangerang = facility_registered(TANGERANG, name="LPP Tangerang")
    pontianak = facility_registered(PONTIANAK)
    program = program_published(competency_units=[CompetencyUnit(code="U1", title="Unit")])
    course = session_scheduled(
        program,
        tangerang,
        start_date=date(2024, 9, 2),
        end_date=date(2024, 9, 6),
        capacity=30,
    )
    other = session_scheduled(program, pontianak, start_date=date(2024, 10, 7))
    women = [inmate_shared(tangerang, sex=Sex.FEMALE, birth_year=1990 + n) for n in range(5)]
    first, second, third, fourth, fifth = women
    man = inmate_shared(pontianak, sex=Sex.MALE)
    waiting = participant_waitlisted(course, second)
    enrolled = participant_enrolled(course, first, enrolled_on=date(2024, 8, 30))
    leaving = participant_enrolled(course, third, enrolled_on=date(2024, 8, 30))
    failing = participant_enrolled(course, fourth, enrolled_on=date(2024, 8, 30))
    done = participant_completed(
        enrolled,
        program,
        participant_name="Nama",
        start_date=date(2024, 9, 2),
        end_date=date(2024, 9, 6),
    )
    certificate = certificate_issued(done, number="IKMA/2024/000001", issued_on=date(2024, 9, 9))
    again = certificate_reissued(certificate, number="IKMA/2024/000002")
    return [
        enrolled,
        leaving,
        failing,
        participant_enrolled(other, fifth, enrolled_on=date(2024, 10, 1)),
        waiting,
        participant_left_waitlist(waiting),
        *women,
        man,
        course,
        other,
        tangerang,
        pontianak,
        facility_updated(tangerang, province="Jawa Barat"),
        program,
        session_opened(course),
        session_started(course),
        enrollment_withdrawn(leaving),
        done,
        participant_not_completed(failing),
        outcome_corrected(failing, EnrollmentOutcome.COMPLETED),
        session_completed(course),
        inmate_released(first),
        readiness_recorded(done),
        follow_up_recorded(done),
        certificate,
        certificate_revoked(certificate),
        again,
        certificate_revoked(again),  # the enrolment's last certificate that counted
        inmates_merged(fifth, man),
        inmate_consent_withdrawn(fourth),
        inmate_erased(third),
        session_cancelled(other),
    ]


async def _answers(db: Database, *, fresh: bool) -> list[Any]:
    answers = []
    for group_by, filters in QUESTIONS:
        async with db.session() as s:
            if fresh:
                answers.append(
                    await count_indicators(
                        session=s, group_by=group_by, filters=filters, postgresql=not db.is_sqlite
                    )
                )
            else:
                answers.append(await indicators(session=s, group_by=group_by, filters=filters))
    return answers


def _counts(answers: list[Any]) -> list[Any]:
    return [(a.groups, a.totals) for a in answers]  # not data-as-of: every event moves it


async def test_a_kept_report_answers_only_until_the_projections_change(
    database_url: str, broker: Any, make_settings: Any
) -> None:
    settings = make_settings("reporting", database_url, broker)
    events = every_kind()
    kinds = {e.event_type() for e in events}
    assert kinds == set(subscriptions.handlers), "a kind of event reporting applies is missing"
    app = create_app(settings)
    async with running(app):
        db: Database = app.state.projections.live.db
        changed = 0
        for n, event in enumerate(events, start=1):
            before = await _answers(db, fresh=False)  # kept at this version
            await publish(settings, [event])

            async def applied(n: int = n) -> bool:
                return await count(db, InboxMessage) >= n

            await wait_until(applied, within=30, what=f"{event.event_type()} applied")
            now = await _answers(db, fresh=False)
            assert now == await _answers(db, fresh=True), event.event_type()
            changed += _counts(now) != _counts(before)
        # Most events changed some count: the history tests the cache, not an empty table.
        assert changed >= len(events) // 2, changed
        # Nothing changed since: the same question is answered from what was kept.
        again = await _answers(db, fresh=False)
        assert all(a is b for a, b in zip(again, now, strict=True))


class _OneCountAtATime:
    """``count_indicators`` held until every request has read the version and had its chance
    to count too, each call counted."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch, requests: int) -> None:
        self.calls = 0
        self.requests = requests
        self.version_reads = 0
        self.release = asyncio.Event()
        real = indicators_module.count_indicators

        async def counting(**kwargs: Any) -> Any:
            self.calls += 1
            await self.release.wait()
            return await real(**kwargs)

        def read(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if "FROM projection_version" in statement:
                self.version_reads += 1

        monkeypatch.setattr(indicators_module, "count_indicators", counting)
        event.listen(db.engine.sync_engine, "after_cursor_execute", read)

    async def settle(self) -> None:
        """Every request has read the version; then each that would count has started to."""
        await _until(lambda: self.version_reads >= self.requests, "every version read")
        for _ in range(50):
            if self.calls >= self.requests:
                break
            await asyncio.sleep(0.01)


async def _until(holds: Callable[[], bool], what: str) -> None:
    async def check() -> bool:
        return holds()

    await wait_until(check, within=30, what=what)


async def _applied(db: Database, events: list[Event]) -> None:
    resources = {ERASURE_KEY_RESOURCE: ErasureKey("the tests' publication secret")}
    for e in events:
        async with db.session() as s:
            meta = EventMeta(
                id=str(uuid.uuid4()),
                type=e.event_type(),
                source="/test",
                subject=e.aggregate_id,
                time=datetime(2025, 3, 1, tzinfo=UTC),
            )
            handler = subscriptions.handlers[e.event_type()]
            await handler(e, HandlerContext(session=s, meta=meta, resources=resources))
            await s.commit()


@pytest.fixture
async def filled(database_url: str) -> AsyncIterator[Database]:
    """Reporting's database on PostgreSQL, holding part of the history."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite begins every transaction IMMEDIATE: requests read one at a time")
    await asyncio.to_thread(upgrade, "bekal.reporting", database_url)
    db = Database(database_url)
    try:
        await _applied(db, every_kind()[:20])
        yield db
    finally:
        await db.dispose()


async def _ask(db: Database, question: tuple[list[Dimension], IndicatorFilters]) -> Any:
    async with db.session() as s:
        return await indicators(session=s, group_by=question[0], filters=question[1])


async def _fresh(db: Database, question: tuple[list[Dimension], IndicatorFilters]) -> Any:
    async with db.session() as s:
        return await count_indicators(
            session=s, group_by=question[0], filters=question[1], postgresql=not db.is_sqlite
        )


async def test_requests_asking_the_same_question_at_once_wait_for_one_count(
    filled: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _OneCountAtATime(filled, monkeypatch, requests=6)
    asking = [asyncio.create_task(_ask(filled, QUESTIONS[2])) for _ in range(gate.requests)]
    await gate.settle()
    gate.release.set()
    answers = await asyncio.wait_for(asyncio.gather(*asking), timeout=30)
    assert gate.calls == 1
    assert all(a is answers[0] for a in answers)
    fresh = await _fresh(filled, QUESTIONS[2])
    assert _counts(answers[:1]) == _counts([fresh])
    assert fresh.totals.enrolled > 0


async def test_when_the_request_counting_is_cancelled_the_others_still_answer(
    filled: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _OneCountAtATime(filled, monkeypatch, requests=4)
    counting = asyncio.create_task(_ask(filled, QUESTIONS[1]))
    await _until(lambda: gate.calls == 1, "the first count started")
    waiting = [asyncio.create_task(_ask(filled, QUESTIONS[1])) for _ in range(gate.requests - 1)]
    await gate.settle()
    counting.cancel()  # the official closed the tab
    gate.release.set()
    answers = await asyncio.wait_for(asyncio.gather(*waiting), timeout=30)
    assert counting.cancelled()
    # One of those waiting counted instead; the others waited for it.
    assert gate.calls == 2
    fresh = await _fresh(filled, QUESTIONS[1])
    assert all(_counts([a]) == _counts([fresh]) for a in answers)
