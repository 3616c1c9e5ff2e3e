"""The outbox relay's and the consumers' batches: larger on PostgreSQL, where a transaction
holds up no request, than on SQLite, whose one writer every request's write waits for; a set
size wins on both."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bekal.shared.db import Database
from bekal.shared.messaging.kafka import make_consumer
from bekal.shared.messaging.outbox import OutboxRelay
from bekal.shared.settings import (
    CONSUMER_BATCH_POSTGRESQL,
    CONSUMER_BATCH_SQLITE,
    OUTBOX_BATCH_POSTGRESQL,
    OUTBOX_BATCH_SQLITE,
    Settings,
)

POSTGRESQL = "postgresql+asyncpg://bekal@127.0.0.1:5432/bekal"


def _relay(url: str, **settings: object) -> OutboxRelay:
    # Neither the engine nor the producer is used: nothing connects until the relay runs.
    return OutboxRelay(
        db=Database(url), producer=None, settings=Settings(database_url=url, **settings)
    )


def test_the_relays_default_batch_is_larger_on_postgresql_than_on_sqlite(tmp_path: Path) -> None:
    assert OUTBOX_BATCH_POSTGRESQL > OUTBOX_BATCH_SQLITE
    assert _relay(POSTGRESQL).batch_size == OUTBOX_BATCH_POSTGRESQL
    assert _relay(f"sqlite+aiosqlite:///{tmp_path}/r.db").batch_size == OUTBOX_BATCH_SQLITE


async def test_a_consumers_default_batch_is_larger_on_postgresql_than_on_sqlite(
    tmp_path: Path,
) -> None:
    assert CONSUMER_BATCH_POSTGRESQL > CONSUMER_BATCH_SQLITE
    for url, batch in (
        (POSTGRESQL, CONSUMER_BATCH_POSTGRESQL),
        (f"sqlite+aiosqlite:///{tmp_path}/c.db", CONSUMER_BATCH_SQLITE),
        ("", CONSUMER_BATCH_SQLITE),  # no URL: the service's own SQLite file
    ):
        settings = Settings(database_url=url, kafka_bootstrap_servers="127.0.0.1:1")
        assert settings.consumer_batch == batch
        # What the consumer fetches at most at once (not started: nothing connects).
        consumer = make_consumer(settings, "g", ["t"])
        assert consumer._max_poll_records == batch


@pytest.mark.parametrize("size", [1, 250, 5000])
def test_a_set_batch_size_is_kept_on_both_databases(tmp_path: Path, size: int) -> None:
    for url in (POSTGRESQL, f"sqlite+aiosqlite:///{tmp_path}/r.db"):
        assert _relay(url, outbox_batch_size=size).batch_size == size
        assert Settings(database_url=url, consumer_batch_size=size).consumer_batch == size


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("outbox_batch_size", 0),
        ("outbox_batch_size", 10_001),
        ("consumer_batch_size", 0),
        ("consumer_batch_size", 5001),
    ],
)
def test_a_batch_size_out_of_bounds_is_refused(name: str, size: int) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: size})
