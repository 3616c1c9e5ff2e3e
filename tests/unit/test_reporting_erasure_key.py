"""The ids an erased person leaves in reporting are keyed: apart from the participant id, from
each other and from the unkeyed ids of before, the same wherever the secret is the same."""

from __future__ import annotations

import uuid

from bekal.reporting.services.people import ErasureKey, erasure_key
from bekal.reporting.settings import ReportingSettings

# The namespace the anonymous ids were derived in before they were keyed.
UNKEYED_NAMESPACE = uuid.UUID("6f1f3c2e-2b1a-4b8e-9a57-2f0f6f1c0b7d")


def test_the_ids_of_an_erased_person_are_keyed_and_apart() -> None:
    key = ErasureKey("a publication secret")
    person = uuid.uuid4()
    unkeyed = uuid.uuid5(UNKEYED_NAMESPACE, f"erased-person:{person}")
    assert len({key.tombstone(person), key.anonymous(person), person, unkeyed}) == 4
    assert key.anonymous(uuid.uuid4()) != key.anonymous(person)
    # Another secret, other ids: without the secret they cannot be derived.
    other = ErasureKey("another publication secret")
    assert {other.tombstone(person), other.anonymous(person)}.isdisjoint(
        {key.tombstone(person), key.anonymous(person)}
    )


def test_the_key_comes_from_the_publication_secret_alone() -> None:
    person = uuid.uuid4()
    one = erasure_key(ReportingSettings(publication_secret="s" * 40, database_url="sqlite://"))
    two = erasure_key(ReportingSettings(publication_secret="s" * 40, service_name="elsewhere"))
    assert (one.tombstone(person), one.anonymous(person)) == (
        two.tombstone(person),
        two.anonymous(person),
    )
