"""A consumer group's handlers: a batch handler only beside a one-event handler."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bekal.shared.events.catalogue import InmateReleased, InmateShared
from bekal.shared.messaging.consumer import BatchContext, Delivered, HandlerContext, Subscriptions


async def _many(items: Sequence[Delivered[InmateReleased]], ctx: BatchContext) -> None:
    return None


async def _one(event: InmateReleased, ctx: HandlerContext) -> None:
    return None


def test_batch_handler_without_a_one_event_handler_is_refused():
    # Retries, dead letters and a failed batch go one by one: that handler must exist.
    subs = Subscriptions("training")
    with pytest.raises(ValueError, match="InmateReleased"):
        subs.on_batch(InmateReleased)(_many)
    assert subs.batch_handlers == {}


def test_batch_handler_is_registered_for_its_types_only():
    subs = Subscriptions("training")
    subs.on(InmateReleased, InmateShared)(_one)
    subs.on_batch(InmateReleased)(_many)
    assert subs.batch_handlers == {InmateReleased.event_type(): _many}
    assert set(subs.handlers) == {InmateReleased.event_type(), InmateShared.event_type()}
