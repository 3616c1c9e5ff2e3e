"""Benchmark: certification's consumer issuing certificates from ParticipantCompleted events.

The real ``ConsumerRunner`` with certification's handlers, issuer and ring of person keys (each
completion's name sealed under its person's key, the keys published first, as in production),
on an embedded broker
(a free port) and a fresh database: PostgreSQL (created and dropped here) and SQLite. Every
completion becomes a certificate: a number, a random status list place, an Open Badges
credential signed with Ed25519, the row and its CertificateIssued in the outbox. The records
are on the topic before the consumer starts; the clock runs from the group's assignment to the
last certificate. The process logs as the service does (JSON, INFO) to a file.

    .venv/bin/python benchmarks/certification_consumer.py [--certificates 3000]
        [--database postgresql|sqlite|both] [--profile] [--profile-dir DIR]

``--profile`` runs the consumer under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import create_database, drop_database, machine, run_tag, sqlalchemy_url, table
from pipeline import profiled, quiet_logs, settings_for

from bekal.devtools.broker import EmbeddedBroker, free_port
from bekal.shared.events.catalogue import CompetencyUnit, ParticipantCompleted

FIRST = ["Siti", "Budi", "Rina", "Agus", "Dewi", "Eko", "Ayu", "Joko", "Sri", "Ahmad"]
LAST = ["Aminah", "Santoso", "Wulandari", "Saputra", "Lestari", "Hidayat", "Rahayu"]


def completions(n: int, *, per_session: int = 25, seed: int = 7) -> list[ParticipantCompleted]:
    """``n`` completions as training publishes them at the end of sessions of 25 people."""
    rnd = random.Random(seed)
    events = []
    for i in range(n):
        if i % per_session == 0:
            session_id = uuid.UUID(int=rnd.getrandbits(128))
            program_id = uuid.UUID(int=rnd.getrandbits(128))
            end = date(2025, 3, 1) + timedelta(days=rnd.randrange(0, 200))
        events.append(
            ParticipantCompleted(
                enrollment_id=uuid.UUID(int=rnd.getrandbits(128)),
                session_id=session_id,
                participant_id=uuid.UUID(int=rnd.getrandbits(128)),
                participant_name=f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                program_id=program_id,
                program_code="WUB-BATIK",
                program_title="Bimtek Wirausaha Baru IKM Batik",
                sector="batik",
                partner="Yayasan Batik Indonesia",
                competency_units=[
                    CompetencyUnit(code="BTK.01", title="Membatik tulis"),
                    CompetencyUnit(code="BTK.02", title="Membatik cap"),
                ],
                hours=40,
                start_date=end - timedelta(days=4),
                end_date=end,
                attendance_share=1.0,
            )
        )
    return events


async def measure(
    broker: EmbeddedBroker,
    database_url: str,
    events: list[ParticipantCompleted],
    tmp: Path,
    *,
    label: str,
    profile: bool = False,
    profile_dir: Path | None = None,
) -> tuple[int, float]:
    """Publish ``events``, run certification's consumer until all are issued: (count, seconds)."""
    from sqlalchemy import func, select

    from bekal.certification.handlers import ISSUER, subscriptions
    from bekal.certification.models import Certificate
    from bekal.certification.services.keys import Issuer, register_signing_key
    from bekal.certification.signing import CertificateSigner
    from bekal.shared.db import Database
    from bekal.shared.events import catalogue
    from bekal.shared.events.catalogue import PersonKeyPublished
    from bekal.shared.events.envelope import to_kafka
    from bekal.shared.events.personal import PersonKey, key_to_text, sealed
    from bekal.shared.events.topics import REGISTRY_PERSON_KEYS, SOURCES
    from bekal.shared.messaging.consumer import ConsumerRunner
    from bekal.shared.messaging.kafka import ensure_topics, make_consumer, make_producer
    from bekal.shared.messaging.person_keys import PersonKeyRing
    from bekal.shared.migrations import upgrade

    n = len(events)
    settings = settings_for("certification", broker=broker, namespace=f"{run_tag()}.")
    settings = settings.model_copy(update={"database_url": database_url})
    await ensure_topics(settings, [ParticipantCompleted.topic, REGISTRY_PERSON_KEYS])
    producer = make_producer(settings)
    await producer.start()
    try:
        # As in production: each person's key on registry.person-keys first, then the
        # completion with the name and units sealed under it (certification opens each one).
        acks = []
        keys = {}
        for event in events:
            person = keys[event.participant_id] = PersonKey.new(str(event.participant_id))
            record = PersonKeyPublished(
                participant_id=event.participant_id, key=key_to_text(person.secret)
            )
            key, value, headers = to_kafka(record, source=SOURCES["registry"])
            acks.append(
                await producer.send(
                    settings.topic(REGISTRY_PERSON_KEYS), key=key, value=value, headers=headers
                )
            )
        await asyncio.gather(*acks)
        topic = settings.topic(ParticipantCompleted.topic)
        acks = []
        for event in events:
            event_id = str(uuid.uuid4())
            wire = sealed(event, keys[event.participant_id], event_id)
            key, value, headers = to_kafka(wire, source=SOURCES["training"], event_id=event_id)
            acks.append(await producer.send(topic, key=key, value=value, headers=headers))
        await asyncio.gather(*acks)
    finally:
        await producer.stop()

    await asyncio.to_thread(upgrade, "bekal.certification", database_url)
    db = Database(database_url)
    issuer = Issuer(
        signer=CertificateSigner.from_key_file(tmp / f"{label}-certificate.pem"),
        public_base_url="https://sertifikat.example.id",
    )
    async with db.session() as s:
        await register_signing_key(session=s, signer=issuer.signer)
        await s.commit()
    ring = PersonKeyRing(settings)
    await ring.start()
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
        resources={ISSUER: issuer},
        person_keys=ring,
    )
    try:
        out = profile_dir / f"certification-{label}.prof" if profile_dir else None
        with profiled(profile, f"certification consumer ({label})", out):
            runner.start()
            while not kafka.assignment():
                if not runner.running:
                    raise RuntimeError("the consumer runner stopped")
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            while runner.processed < n:
                if not runner.running:
                    raise RuntimeError("the consumer runner stopped")
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
        async with db.session() as s:
            issued = int(await s.scalar(select(func.count()).select_from(Certificate)) or 0)
            named = int(
                await s.scalar(
                    select(func.count())
                    .select_from(Certificate)
                    .where(Certificate.recipient_name != "")
                )
                or 0
            )
        if issued != n or named != n:
            raise RuntimeError(f"{issued} certificates ({named} named) for {n} completions")
        return issued, elapsed
    finally:
        await runner.stop()
        await ring.stop()
        await kafka.stop()
        await dlq.stop()
        await db.dispose()


async def main(args: argparse.Namespace) -> None:
    wanted = ["postgresql", "sqlite"] if args.database == "both" else [args.database]
    events = completions(args.certificates)
    results: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bekal-cert-consumer-") as tmp_name:
        tmp = Path(tmp_name)
        quiet_logs(tmp / "bench.log")
        print(f"machine: {machine()}", flush=True)
        broker = EmbeddedBroker(port=free_port(), log_file=tmp / "broker.log")
        broker.start()
        try:
            for kind in wanted:
                if kind == "postgresql":
                    name = f"{run_tag()}_certification"
                    await create_database(name)
                    url = sqlalchemy_url(name)
                else:
                    name = ""
                    url = f"sqlite+aiosqlite:///{tmp / 'certification.db'}"
                try:
                    count, seconds = await measure(
                        broker,
                        url,
                        events,
                        tmp,
                        label=kind,
                        profile=args.profile,
                        profile_dir=Path(args.profile_dir) if args.profile_dir else None,
                    )
                finally:
                    if name:
                        await drop_database(name)
                rate = count / seconds
                print(f"  {kind}: {count:,} certificates in {seconds:.2f} s = {rate:,.0f}/s")
                results.append((kind, count, seconds, rate))
        finally:
            broker.stop()
    print()
    print(f"## Certification consumer ({machine()})")
    print()
    print(table(["database", "certificates", "seconds", "per second"], results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--certificates", type=int, default=3000)
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="cProfile the consumer")
    parser.add_argument("--profile-dir", help="also save the .prof files here")
    asyncio.run(main(parser.parse_args()))
