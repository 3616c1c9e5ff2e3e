"""Generations of a person's key: a consent withdrawal destroys the live one, a later consent
brings the next; an event opens only with a key of its own person, of the generation it names."""

from __future__ import annotations

import gc
import json
import uuid

import pytest

from bekal.shared.events.catalogue import PersonKeyDestroyed, PersonKeyPublished
from bekal.shared.events.personal import (
    PersonalStatus,
    PersonKey,
    SealBroken,
    key_id,
    key_owner,
    key_to_text,
    next_generation,
    opened,
    sealed,
    sealing_kid,
)
from bekal.shared.messaging.person_keys import PersonKeyRing
from bekal.shared.settings import Settings
from tests.support.factories import inmate_shared

PERSON = "0b1e7c1a-5f3a-4d5e-9c1b-2a6f1d9e8c70"


def test_the_first_generation_is_named_by_the_participant_id_as_every_older_key() -> None:
    assert key_id(PERSON) == key_id(PERSON, 1) == PERSON
    assert key_owner(PERSON) == (PERSON, 1)


def test_a_later_generation_names_the_person_and_its_number() -> None:
    assert key_id(PERSON, 2) == f"{PERSON}.2"
    assert key_owner(f"{PERSON}.2") == (PERSON, 2)
    assert key_owner(key_id(PERSON, 17)) == (PERSON, 17)
    key = PersonKey.new(key_id(PERSON, 3))
    assert (key.person, key.generation) == (PERSON, 3)


@pytest.mark.parametrize("kid", [f"{PERSON}.1", f"{PERSON}.0", f"{PERSON}.x", f"{PERSON}.", ".2"])
def test_a_kid_of_no_generation_is_refused(kid: str) -> None:
    with pytest.raises(ValueError):
        key_owner(kid)


def test_generation_zero_does_not_exist() -> None:
    with pytest.raises(ValueError):
        key_id(PERSON, 0)


def test_the_live_key_is_kept_and_a_destroyed_generation_is_never_issued_again() -> None:
    assert next_generation(live=None, destroyed=None) == 1
    assert next_generation(live=1, destroyed=None) == 1
    assert next_generation(live=None, destroyed=1) == 2
    assert next_generation(live=None, destroyed=4) == 5
    assert next_generation(live=3, destroyed=2) == 3


def test_key_records_are_keyed_by_kid_and_older_records_are_the_first_generation() -> None:
    person = uuid.UUID(PERSON)
    old = PersonKeyPublished.model_validate({"participant_id": PERSON, "key": "k"})
    assert old.kid == PERSON and old.aggregate_id == PERSON
    new = PersonKeyPublished(participant_id=person, kid=f"{PERSON}.2", key="k")
    assert new.aggregate_id == f"{PERSON}.2"
    assert PersonKeyDestroyed(participant_id=person, kid=f"{PERSON}.2").aggregate_id == new.kid
    with pytest.raises(ValueError):
        PersonKeyDestroyed(participant_id=person, kid=f"{uuid.uuid4()}.2")


def test_an_event_opens_with_the_generation_that_sealed_it() -> None:
    share = inmate_shared(full_name="Siti Generasi", birth_year=1990)
    person = str(share.participant_id)
    first, second = PersonKey.new(key_id(person)), PersonKey.new(key_id(person, 2))
    old, new = sealed(share, first, "e-1"), sealed(share, second, "e-2")
    assert (sealing_kid(old), sealing_kid(new)) == (person, f"{person}.2")
    # The first generation destroyed: its events read as erased, the new ones open.
    assert opened(old, None, "e-1").personal_status is PersonalStatus.ERASED
    assert opened(new, second, "e-2").full_name == "Siti Generasi"


def test_a_block_naming_another_persons_key_never_opens() -> None:
    share = inmate_shared(full_name="Siti Generasi")
    stranger = PersonKey.new(key_id(str(uuid.uuid4()), 2))
    forged = sealed(share, stranger, "e-1")
    with pytest.raises(SealBroken):
        sealing_kid(forged)
    with pytest.raises(SealBroken):
        opened(forged, stranger, "e-1")
    # Even when that person's key is destroyed: a forgery is not an erasure.
    with pytest.raises(SealBroken):
        opened(forged, None, "e-1")


def _record(key: PersonKey) -> tuple[bytes, bytes]:
    record = PersonKeyPublished(
        participant_id=uuid.UUID(key.person), kid=key.kid, key=key_to_text(key.secret)
    )
    return key.kid.encode(), json.dumps(record.data()).encode()


def test_the_ring_seals_with_the_highest_generation_held_in_whatever_order_it_reads() -> None:
    ring = PersonKeyRing(Settings(service_name="training"))
    ring.loaded = True
    first, second = PersonKey.new(key_id(PERSON)), PersonKey.new(key_id(PERSON, 2))
    # The generations land on different partitions: the new key may be read before the old
    # one's tombstone, or the old key after the new one.
    ring._apply(*_record(second))
    ring._apply(*_record(first))
    assert ring.current(PERSON) == second
    ring._apply(first.kid.encode(), None)
    assert ring.current(PERSON) == second and ring.get(first.kid) is None
    # Withdrawn again, no new consent: no key to seal a name with.
    ring._apply(second.kid.encode(), None)
    assert ring.current(PERSON) is None and len(ring) == 0


def test_the_ring_takes_a_record_written_before_generations() -> None:
    ring = PersonKeyRing(Settings(service_name="training"))
    ring.loaded = True
    key = PersonKey.new(PERSON)
    value = json.dumps({"participant_id": PERSON, "alg": "A256GCM", "key": key_to_text(key.secret)})
    ring._apply(PERSON.encode(), value.encode())
    assert ring.current(PERSON) == key and ring.get(PERSON) == key


def test_the_ring_ignores_a_record_whose_key_names_another_kid() -> None:
    ring = PersonKeyRing(Settings(service_name="training"))
    ring.loaded = True
    _, value = _record(PersonKey.new(key_id(PERSON, 2)))
    ring._apply(f"{PERSON}.3".encode(), value)
    assert ring.current(PERSON) is None


def test_the_ring_refuses_to_say_who_has_no_key_before_it_has_read_the_topic() -> None:
    ring = PersonKeyRing(Settings(service_name="training"))
    with pytest.raises(RuntimeError):
        ring.current(PERSON)


def test_a_ring_of_many_keys_gives_the_cyclic_collector_nothing_to_walk_per_person() -> None:
    """A full collection stops the event loop for as long as it walks what it tracks: a ring
    of a national registry's keys must not be hundreds of thousands of objects of it."""
    ring = PersonKeyRing(Settings(service_name="training"))
    ring.loaded = True
    people = [str(uuid.uuid4()) for _ in range(5_000)]
    records = [_record(PersonKey.new(key_id(p, g))) for p in people for g in (1, 2)]
    gc.collect()
    before = len(gc.get_objects())
    for key, value in records:
        ring._apply(key, value)
    ring._apply(key_id(people[0], 1).encode(), None)  # a tombstone on the way
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    # And it still answers as before: the highest generation held, the destroyed one gone.
    assert ring.current(people[0]) == ring.get(key_id(people[0], 2))
    assert ring.get(key_id(people[0], 1)) is None and len(ring) == 9_999
