"""Crypto-shredding: the personal fields of an event, sealed with the person's own data key.

The registry keeps one random 256-bit key per person and publishes it on a compacted topic read
only by the services that need names (``topics.REGISTRY_PERSON_KEYS``). A person has at most one
live key at a time, of a generation: the first is named (``kid``) by the participant id itself,
each later one by ``"<participant id>.<generation>"`` (``key_id``). A consent withdrawal destroys
the live key; a later consent shares the person again under a key of the next generation, so
what was sealed before the withdrawal stays unreadable. An event that names a person carries
those fields only sealed (``personal``): AES-256-GCM under the person's key, with the event id as
associated data, so a sealed block cannot be moved to another event. Erasing the person destroys
every generation of their key and writes a tombstone for each: every copy of the event history,
on every broker and in every backup, keeps ciphertext that nobody can open any more.

On the wire the plain fields are absent; in a service they are the event's ordinary attributes,
filled by the consumer (``open_personal``) before a handler sees the event, with
``personal_status`` saying whether they could be.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import SkipJsonSchema

ALGORITHM = "A256GCM"
KEY_BYTES = 32
NONCE_BYTES = 12  # GCM's standard nonce; random per sealing (a key seals a handful of events)


class SealBroken(Exception):
    """A sealed block that does not open under the key: tampered, moved or another key's."""


def key_id(person: str, generation: int = 1) -> str:
    """The kid of a person's key of ``generation``: the participant id for the first (every key
    made before generations existed is one), ``"<participant id>.<generation>"`` after it."""
    if generation < 1:
        raise ValueError(f"a key generation starts at 1, not {generation}")
    return person if generation == 1 else f"{person}.{generation}"


def key_owner(kid: str) -> tuple[str, int]:
    """The person (participant id) and the generation a kid names (``key_id`` reversed).

    A participant id is a UUID, which has no dot: whatever follows the last dot is the
    generation. Raises ValueError for a kid that is not of that form.
    """
    person, dot, tail = kid.rpartition(".")
    if not dot:
        return kid, 1
    if not tail.isdigit() or int(tail) < 2 or not person:
        raise ValueError(f"not a person key id: {kid!r}")
    return person, int(tail)


def next_generation(*, live: int | None, destroyed: int | None) -> int:
    """The generation of the key a person is shared with: the live one while it lasts, else
    one past the last destroyed (a kid is never issued twice: a destroyed one stays dead)."""
    if live is not None:
        return live
    return (destroyed or 0) + 1


@dataclass(frozen=True)
class PersonKey:
    """One person's data key: ``kid`` names it in sealed blocks (``key_id``)."""

    kid: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise ValueError(f"a person key has {KEY_BYTES} bytes, not {len(self.secret)}")
        key_owner(self.kid)

    @property
    def person(self) -> str:
        """The participant id of the person whose key it is."""
        return key_owner(self.kid)[0]

    @property
    def generation(self) -> int:
        return key_owner(self.kid)[1]

    @classmethod
    def new(cls, kid: str) -> PersonKey:
        return cls(kid=kid, secret=AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    def __repr__(self) -> str:  # never print the secret in a log or a traceback
        return f"PersonKey(kid={self.kid!r})"


class SealedFields(BaseModel):
    """The wire form of an event's personal fields (JWE's names: alg, kid)."""

    model_config = ConfigDict(frozen=True)

    alg: Literal["A256GCM"] = Field(description="AES-256-GCM")
    kid: str = Field(
        description=(
            "The person key that sealed it: the person's participant id (the key's first "
            "generation), or '<participant id>.<generation>' for a later one"
        )
    )
    nonce: str = Field(description="96-bit nonce, base64url without padding")
    ciphertext: str = Field(
        description=(
            "AES-GCM ciphertext and 128-bit tag, base64url without padding, of the UTF-8 JSON "
            "object of the personal fields; the event id (ce_id) is the associated data"
        )
    )


def seal(fields: dict[str, Any], key: PersonKey, event_id: str) -> SealedFields:
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()
    ciphertext = AESGCM(key.secret).encrypt(nonce, plain, event_id.encode())
    return SealedFields(alg=ALGORITHM, kid=key.kid, nonce=_b64(nonce), ciphertext=_b64(ciphertext))


def unseal(sealed: SealedFields, key: PersonKey, event_id: str) -> dict[str, Any]:
    """The personal fields, or SealBroken if the block was changed, moved or is not this key's."""
    if sealed.kid != key.kid:
        raise SealBroken(f"sealed with key {sealed.kid!r}, not {key.kid!r}")
    try:
        plain = AESGCM(key.secret).decrypt(
            _unb64(sealed.nonce), _unb64(sealed.ciphertext), event_id.encode()
        )
    except (InvalidTag, ValueError) as exc:
        raise SealBroken("the sealed personal fields do not open under this key") from exc
    fields = json.loads(plain)
    if not isinstance(fields, dict):
        raise SealBroken("the sealed personal fields are not an object")
    return fields


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_to_text(secret: bytes) -> str:
    return _b64(secret)


def key_from_text(text: str) -> bytes:
    return _unb64(text)


class PersonalStatus(StrEnum):
    """What a service could read of an event's personal fields."""

    OPEN = "open"  # the plain fields are set (opened, or never sealed: an event being written)
    WITHHELD = "withheld"  # this service reads no person keys (reporting): the fields are None
    ERASED = "erased"  # the person's key is destroyed: the fields are gone for good (None)


class Personal(BaseModel):
    """Mixin of an event that names a person: its ``personal_fields`` travel sealed.

    The plain fields are declared by the event as ``SkipJsonSchema[... | None]`` with
    ``exclude=True``: they are never serialised nor in the published schema.
    """

    personal_fields: ClassVar[tuple[str, ...]]

    personal: SealedFields | None = Field(
        default=None,
        description=(
            "The person's personal fields, sealed with the person's data key (see the topic "
            "registry.person-keys); absent when the person was erased before the event was "
            "published"
        ),
    )
    personal_status: SkipJsonSchema[PersonalStatus] = Field(
        default=PersonalStatus.OPEN, exclude=True
    )

    def person_id(self) -> str:
        """The person the event names (their participant id), whose keys alone may seal it."""
        return str(getattr(self, "participant_id"))  # noqa: B009 - every personal event has it

    @property
    def personal_erased(self) -> bool:
        return self.personal_status == PersonalStatus.ERASED


P = TypeVar("P", bound=Personal)


def plain_fields(event: Personal) -> dict[str, Any]:
    """The event's personal fields as JSON values (what a seal holds)."""
    return {name: _plain(getattr(event, name)) for name in event.personal_fields}


def sealed(event: P, key: PersonKey | None, event_id: str) -> P:
    """``event`` as it is published: its plain fields sealed (or dropped if the key is gone)."""
    if key is None:
        return event.model_copy(update={"personal": None, **dict.fromkeys(event.personal_fields)})
    return event.model_copy(update={"personal": seal(plain_fields(event), key, event_id)})


def sealing_kid(event: Personal) -> str | None:
    """The kid of the key that sealed ``event``'s fields (None: sent without them).

    Raises SealBroken for a block that names another person's key (or no key at all): a block
    moved from another person's event, or re-labelled, never opens, even with that key.
    """
    if event.personal is None:
        return None
    try:
        person, _ = key_owner(event.personal.kid)
    except ValueError as exc:
        raise SealBroken(str(exc)) from exc
    if person != event.person_id():
        raise SealBroken(f"sealed with key {event.personal.kid!r}, not one of the event's person")
    return event.personal.kid


def opened(
    event: P,
    key: PersonKey | None,
    event_id: str,
    *,
    checked: bool = False,
    in_place: bool = False,
) -> P:
    """``event`` as a handler gets it: the plain fields filled, or marked erased without a key.

    ``key``: the key the block names (``sealing_kid``), None if it is destroyed (that
    generation's person erased or their consent withdrawn). Raises SealBroken for a block that
    does not open under it, or that names a key of another person.

    ``checked``: the caller has had the block's kid from ``sealing_kid`` already. ``in_place``:
    the fields are written into ``event`` itself, which is returned (``_filled``).
    """
    if not checked:
        sealing_kid(event)
    if event.personal is None:
        # Published after the person's erasure (or re-keyed from an erased person's history).
        return _filled(event, {"personal_status": PersonalStatus.ERASED}, in_place)
    if key is None:
        return _filled(event, {"personal_status": PersonalStatus.ERASED}, in_place)
    fields = unseal(event.personal, key, event_id)
    # Validated as the event's own fields would be (types, bounds), and only they: the rest of
    # the event was validated when it was read (dumping and validating it whole again was a
    # sixth of a consumer's time reading a record).
    plain = _personal_model(type(event)).model_validate(
        {k: fields.get(k) for k in event.personal_fields}
    )
    # The validated values as they are (``dict(model)`` first asks the model for ``keys``, a
    # missing attribute that costs pydantic an exception: a tenth of a consumer's CPU).
    return _filled(event, vars(plain), in_place)


def _filled(event: P, values: dict[str, Any], in_place: bool) -> P:
    """``event`` with ``values`` in its fields: a copy, as ``model_copy(update=...)`` makes it,
    or with ``in_place`` the event itself, changed as that copy would be (its fields and the
    set of fields given). Only for an event nothing else holds yet, as the consumer's, just
    read from its record: an event is frozen for everyone who gets it after that. Copying was
    6 % of a consumer's samples under py-spy, as much as validating the event's data."""
    if not in_place:
        return event.model_copy(update=values)
    event.__dict__.update(values)
    event.__pydantic_fields_set__.update(values)
    return event


@functools.cache
def _personal_model(cls: type[Personal]) -> type[BaseModel]:
    """A model of ``cls``'s personal fields alone, declared as ``cls`` declares them."""
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{cls.__name__}PersonalFields",
        **{
            name: (cls.model_fields[name].annotation, cls.model_fields[name])
            for name in cls.personal_fields
        },
    )


def withheld(event: P, *, in_place: bool = False) -> P:
    """``event`` marked as read by a service that holds no person keys (its fields None)."""
    return _filled(event, {"personal_status": PersonalStatus.WITHHELD}, in_place)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value
