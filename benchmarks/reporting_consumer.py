"""Benchmark: reporting's consumer (ConsumerRunner + reporting's handlers) on its busiest events.

Publishes, one stage after the other, ``--people`` InmateShared, ``--enrolments``
ParticipantEnrolled, as many ParticipantCompleted, a CertificateIssued for each completion and
an InmateReleased for each of ``--releases`` people (as a day's import releases many at once),
to an embedded broker, and times reporting's own ``ConsumerRunner`` (in this process, on a
fresh PostgreSQL database) applying each stage. A stage's time runs from its first record
sent to its last event applied (sending all of them takes a small fraction of that).

    .venv/bin/python benchmarks/reporting_consumer.py [--people 4000] [--enrolments 3000]
        [--releases 2000] [--one-by-one]

``--one-by-one`` removes reporting's batch handlers (``Subscriptions.on_batch``) before the run,
so every event goes through its one-event handler: the same code without batches. To measure
an older tree, put its reporting package first on the path:
``PYTHONPATH=/tmp/before/services/reporting .venv/bin/python benchmarks/reporting_consumer.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import operator
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import create_database, drop_database, machine, run_tag, sqlalchemy_url, table

from bekal.devtools.broker import EmbeddedBroker, free_port
from bekal.reporting import handlers
from bekal.reporting.services.people import handler_resources
from bekal.shared.db import Database
from bekal.shared.events import catalogue
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    CertificateIssued,
    CompetencyUnit,
    InmateReleased,
    InmateShared,
    ParticipantCompleted,
    ParticipantEnrolled,
    ReleaseKind,
    Sex,
)
from bekal.shared.events.envelope import to_kafka
from bekal.shared.events.topics import SOURCES
from bekal.shared.messaging.consumer import ConsumerRunner
from bekal.shared.messaging.kafka import ensure_topics, make_consumer, make_producer
from bekal.shared.migrations import upgrade
from bekal.shared.settings import Settings


def stages(
    people: int, enrolments: int, releases: int, seed: int = 5
) -> list[tuple[str, list[Event]]]:
    rnd = random.Random(seed)
    facilities = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(50)]
    person_ids = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(people)]
    shared = [
        InmateShared(
            participant_id=pid,
            full_name="Siti Aminah",
            sex=rnd.choice([Sex.FEMALE, Sex.MALE]),
            birth_year=rnd.randrange(1965, 2004),
            facility_id=facilities[i % len(facilities)],
            admission_date=date(2023, 1, 1),
            expected_release_date=date(2026, 1, 1),
        )
        for i, pid in enumerate(person_ids)
    ]
    programs = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(8)]
    sessions = [
        (uuid.UUID(int=rnd.getrandbits(128)), programs[i % len(programs)])
        for i in range(max(1, enrolments // 25))
    ]
    enrolled: list[ParticipantEnrolled] = []
    completed: list[ParticipantCompleted] = []
    certificates: list[CertificateIssued] = []
    for i in range(enrolments):
        session_id, program_id = sessions[i % len(sessions)]
        enrolment = uuid.UUID(int=rnd.getrandbits(128))
        person = rnd.choice(person_ids)
        enrolled.append(
            ParticipantEnrolled(
                enrollment_id=enrolment,
                session_id=session_id,
                participant_id=person,
                enrolled_on=date(2025, 1, 6),
            )
        )
        completed.append(
            ParticipantCompleted(
                enrollment_id=enrolment,
                session_id=session_id,
                participant_id=person,
                participant_name="Siti Aminah",
                program_id=program_id,
                program_code="WUB-BATIK",
                program_title="Membatik",
                sector="batik",
                partner=None,
                competency_units=[CompetencyUnit(code="U1", title="Unit")],
                hours=40,
                start_date=date(2025, 1, 6),
                end_date=date(2025, 1, 10),
                attendance_share=1.0,
            )
        )
        certificates.append(
            CertificateIssued(
                certificate_id=uuid.UUID(int=rnd.getrandbits(128)),
                number=f"BKL-{i:07d}",
                participant_id=person,
                session_id=session_id,
                enrollment_id=enrolment,
                program_id=program_id,
                issued_on=date(2025, 1, 20),
            )
        )
    return [
        ("InmateShared", list(shared)),
        ("ParticipantEnrolled", list(enrolled)),
        ("ParticipantCompleted", list(completed)),
        ("CertificateIssued", list(certificates)),
        (
            "InmateReleased",
            [
                InmateReleased(
                    participant_id=pid,
                    facility_id=facilities[i % len(facilities)],
                    release_kind=ReleaseKind.FREE,
                    released_on=date(2025, 2, 1),
                )
                for i, pid in enumerate(person_ids[:releases])
            ],
        ),
    ]


async def send_all(settings: Settings, events: Sequence[Event]) -> None:
    """As a relay does: every record in flight, then every acknowledgement."""
    producer = make_producer(settings)
    await producer.start()
    try:
        now = datetime.now(UTC)
        acks = []
        for event in events:
            key, value, headers = to_kafka(
                event, source=SOURCES[event.topic.split(".", 1)[0]], time=now
            )
            acks.append(
                await producer.send(
                    settings.topic(event.topic), key=key, value=value, headers=headers
                )
            )
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def until(done: Callable[[int], bool], runner: ConsumerRunner) -> None:
    """Wait until ``done(events applied so far)`` is true (target <= applied, for one)."""
    while not done(runner.processed):
        if not runner.running:
            raise RuntimeError("the consumer runner stopped")
        await asyncio.sleep(0.02)


def quiet_logs(path: Path) -> None:
    """Log as the service does (JSON, INFO), to a file instead of the screen."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=path.open("w")),
    )


async def main(args: argparse.Namespace) -> None:
    subscriptions = handlers.subscriptions
    batch_handlers = getattr(subscriptions, "batch_handlers", {})
    if args.one_by_one:
        batch_handlers.clear()
    mode = f"{len(batch_handlers)} event types"
    print(f"machine: {machine()}", flush=True)
    print(f"reporting from {Path(handlers.__file__).parent}", flush=True)
    print(f"batch handlers: {', '.join(sorted(batch_handlers)) or 'none'}", flush=True)
    plan = stages(args.people, args.enrolments, args.releases)
    tag = run_tag()
    results: list[tuple[str, int, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bekal-reporting-consumer-") as tmp_name:
        tmp = Path(tmp_name)
        quiet_logs(tmp / "bench.log")
        broker = EmbeddedBroker(port=free_port(), log_file=tmp / "broker.log")
        broker.start()
        await create_database(tag)
        try:
            settings = Settings(
                service_name="reporting",
                environment="test",
                database_url=sqlalchemy_url(tag),
                kafka_bootstrap_servers=broker.bootstrap_servers,
                kafka_namespace=f"{tag}.",
            )
            await asyncio.to_thread(upgrade, "bekal.reporting", settings.database_url)
            await ensure_topics(settings, subscriptions.topics)
            db = Database(settings.database_url)
            kafka = make_consumer(settings, subscriptions.group_id, subscriptions.topics)
            dlq = make_producer(settings)
            await kafka.start()
            await dlq.start()
            runner = ConsumerRunner(
                subscriptions=subscriptions,
                registry=catalogue,
                db=db,
                settings=settings,
                consumer=kafka,
                dlq_producer=dlq,
                resources=handler_resources(settings),
            )
            try:
                runner.start()
                # Joined the group before the clock starts: time the events, not the join.
                await until(lambda _: bool(kafka.assignment()), runner)
                total_events, total_seconds = 0, 0.0
                for name, events in plan:
                    target = runner.processed + len(events)
                    started = time.perf_counter()
                    await send_all(settings, events)
                    await until(partial(operator.le, target), runner)
                    seconds = time.perf_counter() - started
                    total_events += len(events)
                    total_seconds += seconds
                    rate = len(events) / seconds
                    print(f"  {name}: {len(events):,} in {seconds:.2f} s = {rate:,.0f}/s")
                    results.append((name, len(events), f"{seconds:.2f}", f"{rate:,.0f}"))
                results.append(
                    (
                        "all",
                        total_events,
                        f"{total_seconds:.2f}",
                        f"{total_events / total_seconds:,.0f}",
                    )
                )
            finally:
                await runner.stop()
                await kafka.stop()
                await dlq.stop()
                await db.dispose()
        finally:
            await drop_database(tag)
            broker.stop()
        log_text = (tmp / "bench.log").read_text(encoding="utf-8", errors="replace")
    # A batch that failed (a deadlock between lanes, say) is applied again one event at a time.
    fallbacks = log_text.count('"consumer_batch_one_by_one"')
    deadlocks = log_text.count("deadlock detected")
    print(f"batches applied again one by one: {fallbacks} (deadlocks logged: {deadlocks})")
    print()
    print(f"## Reporting consumer ({machine()}; batch handlers: {mode})")
    print()
    print(table(["events", "count", "seconds", "events/s"], results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=4000, help="InmateShared events")
    parser.add_argument("--enrolments", type=int, default=3000, help="enrolments (each completed)")
    parser.add_argument("--releases", type=int, default=2000, help="InmateReleased events")
    parser.add_argument("--one-by-one", action="store_true", help="without batch handlers")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    asyncio.run(main(parser.parse_args()))
