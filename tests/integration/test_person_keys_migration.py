"""The migration of a history published before crypto-shredding: ``bekal-registry
rekey-history`` seals every version 1 InmateShared already on registry.inmates (the same event
ids), gives a key to everyone shared before, leaves an erased person's events without their
fields, and deletes the clear originals.

On Apache Kafka only: deleting the originals is Kafka's DeleteRecords, which Tansu (memory-only,
for development) does not implement; a history there ends with the process anyway.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import update

from bekal.registry.app import create_app as create_registry
from bekal.registry.cli import rekey_history
from bekal.registry.models import Inmate
from bekal.registry.models import PersonKey as PersonKeyRow
from bekal.shared.db import Database, utcnow
from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import (
    InmateShared,
    InmateSharedV1,
    ParticipantCompleted,
    ParticipantCompletedV1,
    Sex,
)
from bekal.shared.events.envelope import from_kafka
from bekal.shared.events.personal import PersonalStatus
from bekal.shared.events.topics import REGISTRY_INMATES, REGISTRY_PERSON_KEYS, TRAINING_ENROLLMENTS
from bekal.shared.messaging.kafka import ensure_topics, make_producer
from bekal.shared.messaging.person_keys import PersonKeyRing, open_personal
from bekal.shared.messaging.rekey import rekey_with_ring
from bekal.shared.migrations import upgrade
from tests.integration.test_person_keys import _facility, _inmate, _post, _records
from tests.support.apps import bearer, running
from tests.support.factories import participant_completed
from tests.support.kafka import person_key_published, publish
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]


async def test_rekey_history_seals_the_clear_names_and_keeps_the_event_ids(
    database_url: str, kafka_node: Any, make_settings: Any, tmp_path: Path
) -> None:
    broker = kafka_node
    namespace = f"t{uuid.uuid4().hex[:8]}."
    settings = make_settings(
        "registry", database_url, broker, kafka_namespace=namespace, pseudonym_secret="s-rk"
    )
    corrections = bearer(settings, ministry="corrections", roles=["registry_admin"])
    app = create_registry(settings)
    async with running(app) as reg:
        facility = await _post(reg, "/api/v1/facilities", _facility(), corrections)
        people = [
            await _post(reg, "/api/v1/inmates", _inmate(facility["id"], name, n), corrections)
            for name, n in (("Lama Bertahan", "1"), ("Lama Dihapus", "3"))
        ]
        # Shared by the version before crypto-shredding: no key, no version 2 event.
        body = {**_inmate(facility["id"], "Lama Tanpa Kunci", "2"), "consent": None}
        people.insert(1, await _post(reg, "/api/v1/inmates", body, corrections))
        kept, keyless, erased = people
        # What version 1 published for them before crypto-shredding: names in the clear.
        legacy = [
            InmateSharedV1(
                participant_id=uuid.UUID(p["id"]),
                full_name=p["full_name"],
                sex=Sex.FEMALE,
                birth_year=1987,
                facility_id=uuid.UUID(facility["id"]),
                admission_date="2023-01-10",  # type: ignore[arg-type]
                expected_release_date=None,
            )
            for p in people
        ]
        legacy_ids = await publish(settings, legacy)
        r = await reg.post(f"/api/v1/inmates/{erased['id']}/erasure", headers=corrections)
        assert r.status_code == 200, r.text

        async def outbox_empty() -> bool:
            from bekal.shared.messaging.outbox import backlog

            return await backlog(app.state.db) == 0

        await wait_until(outbox_empty, within=30, what="the registry's outbox sent")
    db = Database(settings.database_url)
    try:
        async with db.session() as s:
            await s.execute(
                update(Inmate)
                .where(Inmate.id == uuid.UUID(keyless["id"]))
                .values(shared=True, shared_at=utcnow())
            )
            await s.commit()
            assert await s.get(PersonKeyRow, uuid.UUID(keyless["id"])) is None
    finally:
        await db.dispose()
    before = await _records(settings, REGISTRY_INMATES)
    assert any(b"Lama Dihapus" in (v or b"") for _, v, _ in before)

    assert await rekey_history(settings, Console(quiet=True)) == 0

    after = await _records(settings, REGISTRY_INMATES)
    assert len(after) == len(before)
    assert not any(b"Lama " in (v or b"") for _, v, _ in after)
    ring = PersonKeyRing(settings)
    await ring.start()
    try:
        names: dict[str, list[str | None]] = {}
        ids: list[str] = []
        for k, v, headers in after:
            event, meta = from_kafka(k, v, headers, catalogue)
            assert not isinstance(event, InmateSharedV1)
            event, meta = await open_personal(event, meta, ring)
            ids.append(meta.id)
            if isinstance(event, InmateShared):
                names.setdefault(str(event.participant_id), []).append(event.full_name)
                if str(event.participant_id) == erased["id"]:
                    assert event.personal_status is PersonalStatus.ERASED
    finally:
        await ring.stop()
    assert set(legacy_ids) <= set(ids)  # the copies keep the ids: consumers drop them as seen
    assert names[kept["id"]] == ["Lama Bertahan", "Lama Bertahan"]
    assert names[keyless["id"]] == ["Lama Tanpa Kunci"]
    assert names[erased["id"]] == [None, None]


async def test_rekey_training_completions_seals_names_with_the_keys_training_reads(
    kafka_node: Any, make_settings: Any, tmp_path: Path
) -> None:
    """``bekal rekey-history training``: version 1 completions on training.enrollments sealed
    with the keys on registry.person-keys; an erased person's (key tombstoned) lose the name."""
    settings = make_settings(
        "training",
        f"sqlite+aiosqlite:///{tmp_path}/training.db",
        kafka_node,
        kafka_namespace=f"t{uuid.uuid4().hex[:8]}.",
    )
    await asyncio.to_thread(upgrade, "bekal.training", settings.database_url)
    await ensure_topics(settings, [TRAINING_ENROLLMENTS, REGISTRY_PERSON_KEYS])
    kept, erased = (
        participant_completed(participant_name=name) for name in ("Lulus Tetap", "Lulus Dihapus")
    )
    for person in (kept, erased):
        await person_key_published(settings, person.participant_id)
    legacy = [
        ParticipantCompletedV1.model_validate(
            {**p.model_dump(), "participant_name": p.participant_name}
        )
        for p in (kept, erased)
    ]
    ids = await publish(settings, legacy)
    # The erasure: the person's key tombstoned on the key topic.
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(REGISTRY_PERSON_KEYS),
            key=str(erased.participant_id).encode(),
            value=None,
        )
    finally:
        await producer.stop()
    before = await _records(settings, TRAINING_ENROLLMENTS)
    assert any(b"Lulus Dihapus" in (v or b"") for _, v, _ in before)

    db = Database(settings.database_url)
    try:
        result = await rekey_with_ring(settings=settings, topic=TRAINING_ENROLLMENTS, db=db)
    finally:
        await db.dispose()

    assert (result.copied, result.sealed, result.dropped_fields) == (2, 1, 1)
    after = await _records(settings, TRAINING_ENROLLMENTS)
    assert len(after) == 2 and not any(b"Lulus " in (v or b"") for _, v, _ in after)
    ring = PersonKeyRing(settings)
    await ring.start()
    try:
        opened = []
        for k, v, headers in after:
            event, meta = await open_personal(*from_kafka(k, v, headers, catalogue), ring)
            assert isinstance(event, ParticipantCompleted)
            opened.append((meta.id, event.participant_name, event.personal_status))
    finally:
        await ring.stop()
    assert sorted(opened, key=str) == sorted(
        [(ids[0], "Lulus Tetap", PersonalStatus.OPEN), (ids[1], None, PersonalStatus.ERASED)],
        key=str,
    )
