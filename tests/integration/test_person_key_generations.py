"""A consent withdrawal destroys the person's key; a later consent shares them again under a key
of the next generation.

The registry and training run on one broker. A person is shared (key generation 1, its kid the
participant id), then withdraws consent: the key's tombstone goes out with the withdrawal, and
a reader replaying registry.inmates from the beginning meets the person's shares as erased,
without an error. Consent given again brings a key of generation 2 (kid "<id>.2"), published
before the share it seals: the new share opens, the old ones stay erased, and training seals
what it writes about the person with the new key. An erasure then tombstones both generations.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import func, select

from bekal.registry.app import create_app as create_registry
from bekal.registry.cli import destroy_withdrawn
from bekal.registry.models import DestroyedPersonKey, Inmate
from bekal.registry.models import PersonKey as PersonKeyRow
from bekal.registry.services.keys import destroy_withdrawn_keys
from bekal.shared.db import utcnow
from bekal.shared.events import catalogue
from bekal.shared.events.catalogue import InmateShared, PersonKeyPublished
from bekal.shared.events.envelope import from_kafka
from bekal.shared.events.personal import PersonalStatus, key_id, key_to_text
from bekal.shared.events.topics import REGISTRY_INMATES, REGISTRY_PERSON_KEYS
from bekal.shared.messaging.models import DeadLetter, OutboxMessage
from bekal.shared.messaging.outbox import add_event
from bekal.shared.messaging.person_keys import PersonKeyRing, open_personal
from bekal.shared.settings import Settings
from tests.integration.test_person_keys import (
    _compact_now,
    _everything,
    _facility,
    _inmate,
    _post,
    _records,
)
from tests.support.apps import bearer, running
from tests.support.factories import participant_completed
from tests.support.kafka import person_keys_on
from tests.support.training import Training, running_training
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

NAME = "Ratna Ditarik Kembali"
OTHER = "Peserta Tetap"
BOTH = {"training": True, "data_sharing": True}
NONE = {"training": False, "data_sharing": False}


async def test_withdrawal_destroys_the_key_and_a_new_consent_brings_the_next_generation(
    database_url: str, broker: Any, make_settings: Any, tmp_path: Path
) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}."
    reg_settings = make_settings(
        "registry", database_url, broker, kafka_namespace=namespace, pseudonym_secret="s-gen"
    )
    trn_settings = make_settings(
        "training", f"sqlite+aiosqlite:///{tmp_path}/training.db", broker, kafka_namespace=namespace
    )
    corrections = bearer(reg_settings, ministry="corrections", roles=["registry_admin"])
    reg_app = create_registry(reg_settings)
    async with running(reg_app) as reg, running_training(trn_settings) as trn:
        industry = trn.token("training_admin", "training_officer")
        facility = await _post(reg, "/api/v1/facilities", _facility(), corrections)
        person = await _post(reg, "/api/v1/inmates", _inmate(facility["id"], NAME), corrections)
        other = await _post(
            reg, "/api/v1/inmates", _inmate(facility["id"], OTHER, "2"), corrections
        )
        pid = person["id"]
        first, second = key_id(pid, 1), key_id(pid, 2)
        assert first == pid  # the first generation is named as every key made before was

        async def training_names() -> set[str]:
            r = await trn.client.get(
                "/api/v1/participants", params={"facility_id": facility["id"]}, headers=industry
            )
            return {p["full_name"] for p in r.json()["data"]} if r.status_code == 200 else set()

        async def named(*names: str) -> bool:
            return set(names) <= await training_names()

        await wait_until(lambda: named(NAME, OTHER), within=60, what="training has the names")
        ring: PersonKeyRing = trn.app.state.messaging.person_keys
        secrets = [key_to_text((ring.current(pid) or _no_key()).secret).encode()]
        assert (ring.current(pid) or _no_key()).kid == first

        async def registry_rows() -> tuple[PersonKeyRow | None, list[int], list[str]]:
            async with reg_app.state.db.session() as s:
                row = await s.get(PersonKeyRow, uuid.UUID(pid))
                destroyed = list(
                    await s.scalars(
                        select(DestroyedPersonKey.generation)
                        .where(DestroyedPersonKey.participant_id == uuid.UUID(pid))
                        .order_by(DestroyedPersonKey.generation)
                    )
                )
                keys_sent = list(
                    await s.scalars(
                        select(OutboxMessage.aggregate_id).where(
                            OutboxMessage.event_type == PersonKeyPublished.event_type()
                        )
                    )
                )
                return row, destroyed, keys_sent

        # --- consent withdrawn: the live key destroyed in the same transaction ---------------
        r = await reg.post(f"/api/v1/inmates/{pid}/consent", json=NONE, headers=corrections)
        assert r.status_code == 200, r.text
        row, destroyed, keys_sent = await registry_rows()
        assert row is None and destroyed == [1]
        assert first not in keys_sent and other["id"] in keys_sent  # the outbox's copy gone
        await wait_until(
            lambda: _tombstoned(reg_settings, first), within=30, what="the key's tombstone"
        )
        await wait_until(
            lambda: _true(ring.get(first) is None), within=30, what="training forgot the key"
        )

        async def anonymised() -> bool:
            return NAME not in await training_names()

        await wait_until(anonymised, within=60, what="training anonymised the person")
        # Training has no key to seal the person's name with any more: it writes none.
        assert ring.current(pid) is None
        assert await _sealed_by_training(trn, pid) is None

        # A reader replaying registry.inmates from the beginning: erased, not an error.
        assert await _replay(trn_settings, reg_settings) == {
            pid: [(PersonalStatus.ERASED, None)],
            other["id"]: [(PersonalStatus.OPEN, OTHER)],
        }

        # --- consent given again: a key of the next generation, before the share it seals ----
        r = await reg.post(f"/api/v1/inmates/{pid}/consent", json=BOTH, headers=corrections)
        assert r.status_code == 200, r.text
        row, destroyed, keys_sent = await registry_rows()
        assert row is not None and row.generation == 2 and destroyed == [1]
        assert second in keys_sent
        await wait_until(lambda: named(NAME, OTHER), within=60, what="training has the name again")
        assert (ring.current(pid) or _no_key()).kid == second
        secrets.append(key_to_text((ring.current(pid) or _no_key()).secret).encode())
        assert await _sealed_by_training(trn, pid) == second
        assert await _replay(trn_settings, reg_settings) == {
            pid: [(PersonalStatus.ERASED, None), (PersonalStatus.OPEN, NAME)],
            other["id"]: [(PersonalStatus.OPEN, OTHER)],
        }

        # --- erasure: every generation tombstoned -----------------------------------------
        r = await reg.post(f"/api/v1/inmates/{pid}/erasure", headers=corrections)
        assert r.status_code == 200, r.text
        row, destroyed, keys_sent = await registry_rows()
        assert row is None and destroyed == [1, 2] and second not in keys_sent

        async def both_tombstoned() -> bool:
            return await _tombstones(reg_settings) >= Counter({first: 2, second: 1})

        await wait_until(both_tombstoned, within=30, what="both generations' tombstones")
        await wait_until(
            lambda: _true(ring.current(pid) is None), within=30, what="training forgot the key"
        )
        assert await _replay(trn_settings, reg_settings) == {
            pid: [(PersonalStatus.ERASED, None), (PersonalStatus.ERASED, None)],
            other["id"]: [(PersonalStatus.OPEN, OTHER)],
        }
        async with trn.app.state.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(DeadLetter)) == 0

        if broker.name.startswith("apache-kafka"):
            # Within the compaction bound (shortened here), neither generation's key is left on
            # any topic; the other person's is.
            await _compact_now(reg_settings)

            async def keys_gone() -> bool:
                blobs = await _everything(reg_settings, namespace)
                return not any(secret in blob for blob in blobs for secret in secrets)

            await wait_until(keys_gone, within=120, what="compaction removed both generations")
            assert other["id"] in await person_keys_on(reg_settings)


def _no_key() -> Any:
    raise AssertionError("no key held")


async def _true(value: bool) -> bool:
    return value


async def _tombstones(settings: Settings) -> Counter[str]:
    """How many tombstones each kid has on registry.person-keys."""
    return Counter(
        k.decode()
        for k, v, _ in await _records(settings, REGISTRY_PERSON_KEYS)
        if v is None and k is not None
    )


async def _tombstoned(settings: Settings, kid: str) -> bool:
    return kid in await _tombstones(settings)


async def _replay(
    ring_settings: Settings, settings: Settings
) -> dict[str, list[tuple[PersonalStatus, str | None]]]:
    """Each person's shares on registry.inmates, as a new reader with a new ring opens them
    (none raises: nothing would go to the dead letters)."""
    ring = PersonKeyRing(ring_settings)
    await ring.start()
    try:
        seen: dict[str, list[tuple[PersonalStatus, str | None]]] = {}
        for k, v, headers in await _records(settings, REGISTRY_INMATES):
            event, _ = await open_personal(*from_kafka(k, v, headers, catalogue), ring)
            if isinstance(event, InmateShared):
                seen.setdefault(str(event.participant_id), []).append(
                    (event.personal_status, event.full_name)
                )
                if event.personal_erased:
                    assert event.birth_year is None
        return seen
    finally:
        await ring.stop()


async def _sealed_by_training(trn: Training, pid: str) -> str | None:
    """The kid training seals a completion of the person with now (None: sent without the
    name); the row is rolled back, never sent."""
    completion = participant_completed(participant_id=uuid.UUID(pid))
    async with trn.app.state.db.session() as s:
        row = add_event(s, completion)
        await s.flush()
        sealed = json.loads(row.payload).get("personal")
        await s.rollback()
    return None if sealed is None else str(sealed["kid"])


async def test_keys_kept_by_withdrawals_recorded_before_generations_are_destroyed_on_request(
    database_url: str, broker: Any, make_settings: Any
) -> None:
    """A withdrawal recorded before this version kept the key (the person's row: not shared,
    withdrawn, key held). ``bekal destroy-withdrawn-keys`` destroys it, as a withdrawal now
    does; the people still shared keep theirs."""
    settings = make_settings(
        "registry",
        database_url,
        broker,
        kafka_namespace=f"t{uuid.uuid4().hex[:8]}.",
        pseudonym_secret="s-old",
    )
    corrections = bearer(settings, ministry="corrections", roles=["registry_admin"])
    app = create_registry(settings)
    async with running(app) as reg:
        facility = await _post(reg, "/api/v1/facilities", _facility(), corrections)
        person = await _post(reg, "/api/v1/inmates", _inmate(facility["id"], NAME), corrections)
        other = await _post(
            reg, "/api/v1/inmates", _inmate(facility["id"], OTHER, "2"), corrections
        )
        async with app.state.db.session() as s:  # as the earlier version left a withdrawal
            row = await s.get(Inmate, uuid.UUID(person["id"]))
            assert row is not None
            row.shared, row.consent_withdrawn_at = False, utcnow()
            await s.commit()

        assert await destroy_withdrawn(settings, Console(quiet=True)) == 0
        async with app.state.db.session() as s:
            assert await s.get(PersonKeyRow, uuid.UUID(person["id"])) is None
            assert await s.get(PersonKeyRow, uuid.UUID(other["id"])) is not None
        await wait_until(
            lambda: _tombstoned(settings, person["id"]), within=30, what="the key's tombstone"
        )
        assert await _replay(settings, settings) == {
            person["id"]: [(PersonalStatus.ERASED, None)],
            other["id"]: [(PersonalStatus.OPEN, OTHER)],
        }
        # Run again: nothing left to destroy.
        async with app.state.db.session() as s:
            assert await destroy_withdrawn_keys(session=s) == 0
