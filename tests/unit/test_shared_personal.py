"""Crypto-shredding primitives: a person's fields sealed with their key, bound to the event id."""

from __future__ import annotations

import base64

import pytest

from bekal.shared.events.personal import (
    PersonKey,
    SealBroken,
    SealedFields,
    key_from_text,
    key_to_text,
    seal,
    unseal,
)

FIELDS = {"full_name": "Siti Aminah", "birth_year": 1990}


def _flip(text: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw[0] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_sealed_fields_open_under_the_same_key_and_event_id() -> None:
    key = PersonKey.new("p-1")
    sealed = seal(FIELDS, key, "event-1")
    assert sealed.alg == "A256GCM" and sealed.kid == "p-1"
    assert "Siti" not in sealed.model_dump_json()
    assert unseal(sealed, key, "event-1") == FIELDS


def test_each_sealing_takes_a_fresh_nonce() -> None:
    key = PersonKey.new("p-1")
    first, second = seal(FIELDS, key, "event-1"), seal(FIELDS, key, "event-1")
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext


def test_a_tampered_ciphertext_is_refused() -> None:
    key = PersonKey.new("p-1")
    sealed = seal(FIELDS, key, "event-1")
    tampered = SealedFields(**{**sealed.model_dump(), "ciphertext": _flip(sealed.ciphertext)})
    with pytest.raises(SealBroken):
        unseal(tampered, key, "event-1")


def test_a_tampered_nonce_is_refused() -> None:
    key = PersonKey.new("p-1")
    sealed = seal(FIELDS, key, "event-1")
    tampered = SealedFields(**{**sealed.model_dump(), "nonce": _flip(sealed.nonce)})
    with pytest.raises(SealBroken):
        unseal(tampered, key, "event-1")


def test_a_block_moved_to_another_event_is_refused() -> None:
    key = PersonKey.new("p-1")
    sealed = seal(FIELDS, key, "event-1")
    with pytest.raises(SealBroken):
        unseal(sealed, key, "event-2")


def test_another_persons_key_does_not_open_it() -> None:
    sealed = seal(FIELDS, PersonKey.new("p-1"), "event-1")
    other = PersonKey(kid="p-1", secret=PersonKey.new("p-2").secret)
    with pytest.raises(SealBroken):
        unseal(sealed, other, "event-1")
    with pytest.raises(SealBroken):
        unseal(sealed, PersonKey.new("p-2"), "event-1")


def test_a_key_is_256_bits_and_never_printed() -> None:
    key = PersonKey.new("p-1")
    assert len(key.secret) == 32
    assert key_from_text(key_to_text(key.secret)) == key.secret
    assert key_to_text(key.secret) not in repr(key)
    with pytest.raises(ValueError):
        PersonKey(kid="p-1", secret=b"short")
