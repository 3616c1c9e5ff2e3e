"""Generations of a person's key: a consent withdrawal destroys the live one, a later consent
brings the next; an event opens only with a key of its own person, of the generation it names."""

from __future__ import annotations

import gc
import json
import uuid

import pytest

from bekal.shared.events.catalogue import (
    InmateShared,
    InmateSharedV1,
    PersonKeyDestroyed,
    PersonKeyPublished,
)
from bekal.shared.events.envelope import EventMeta
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
from bekal.shared.messaging.person_keys import PersonKeyRing, open_personal
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


def test_opening_copies_the_event_unless_asked_to_open_it_in_place() -> None:
    share = inmate_shared(full_name="Siti Generasi", birth_year=1990)
    key = PersonKey.new(key_id(str(share.participant_id)))
    wire = sealed(share, key, "e-1").model_copy(update={"full_name": None, "birth_year": None})
    copy = opened(wire, key, "e-1")
    assert copy is not wire and copy.full_name == "Siti Generasi"
    assert wire.full_name is None  # the event read stays as it was
    assert copy.model_fields_set >= {"full_name", "birth_year"}

    same = opened(wire, key, "e-1", in_place=True)
    assert same is wire and wire.full_name == "Siti Generasi" and wire.birth_year == 1990
    assert same == copy and same.model_fields_set == copy.model_fields_set
    assert same.personal_status is PersonalStatus.OPEN

    gone = sealed(share, key, "e-2").model_copy(update={"full_name": None})
    assert opened(gone, None, "e-2", in_place=True) is gone
    assert gone.personal_status is PersonalStatus.ERASED and gone.full_name is None


def test_a_checked_block_is_not_checked_again_but_still_opens_only_under_its_key() -> None:
    share = inmate_shared(full_name="Siti Generasi")
    person = str(share.participant_id)
    key, other = PersonKey.new(key_id(person)), PersonKey.new(key_id(person, 2))
    event = sealed(share, key, "e-1")
    assert opened(event, key, "e-1", checked=True).full_name == "Siti Generasi"
    with pytest.raises(SealBroken):
        opened(event, other, "e-1", checked=True)


async def test_an_older_version_is_upcast_with_its_clear_fields_kept_or_withheld() -> None:
    share = inmate_shared(full_name="Siti Generasi", birth_year=1990)
    old = InmateSharedV1.model_validate(
        {**share.model_dump(mode="json"), "full_name": "Siti Generasi", "birth_year": 1990}
    )
    meta = EventMeta(
        id="e-1",
        type=InmateSharedV1.event_type(),
        source="/bekal/registry",
        subject=None,
        time=None,
    )
    ring = PersonKeyRing(Settings(service_name="training"))
    for _ in range(2):  # the class's upcast is looked up once, then kept
        event, read = await open_personal(old, meta, ring)
        assert isinstance(event, InmateShared) and event.full_name == "Siti Generasi"
        assert read.type == InmateShared.event_type()
    event, _ = await open_personal(old, meta, None)  # a service that reads no names
    assert isinstance(event, InmateShared) and event.full_name is None
    assert event.personal_status is PersonalStatus.WITHHELD
    assert old.full_name == "Siti Generasi"  # the older event itself is left as it was
