"""Pausing the live consumer (reporting's switch-over and the replicas that follow it) always
ends with a runner consuming again, even when going back to the committed offsets fails: a
rebalance that took a partition away mid-rewind used to leave the runner stopped for good, its
partitions held in the group with nobody applying them."""

from __future__ import annotations

import pytest
from aiokafka.errors import IllegalStateError

from bekal.shared import service
from tests.support.training import Training

pytestmark = pytest.mark.integration


async def test_a_rewind_that_fails_leaves_a_runner_consuming(
    training: Training, monkeypatch: pytest.MonkeyPatch
) -> None:
    messaging = training.app.state.messaging
    before = messaging.runner
    assert before is not None and before.running

    async def revoked_meanwhile(consumer: object) -> None:
        raise IllegalStateError("No current assignment for partition")

    monkeypatch.setattr(service, "rewind_to_committed", revoked_meanwhile)
    with pytest.raises(IllegalStateError):
        async with messaging.consumer_paused():
            pytest.fail("the block runs only after the rewind")
    assert not before.running
    assert messaging.runner is not before and messaging.runner.running
