"""The outbox relay's batch: larger on PostgreSQL, where its transaction holds up no request,
than on SQLite, whose one writer every request's write waits for; a set size wins on both."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bekal.shared.db import Database
from bekal.shared.messaging.outbox import OutboxRelay
from bekal.shared.settings import OUTBOX_BATCH_POSTGRESQL, OUTBOX_BATCH_SQLITE, Settings


def _relay(url: str, **settings: object) -> OutboxRelay:
    # Neither the engine nor the producer is used: nothing connects until the relay runs.
    return OutboxRelay(
        db=Database(url), producer=None, settings=Settings(database_url=url, **settings)
    )


POSTGRESQL = "postgresql+asyncpg://bekal@127.0.0.1:5432/bekal"


def test_the_default_batch_is_larger_on_postgresql_than_on_sqlite(tmp_path: Path) -> None:
    assert OUTBOX_BATCH_POSTGRESQL > OUTBOX_BATCH_SQLITE
    assert _relay(POSTGRESQL).batch_size == OUTBOX_BATCH_POSTGRESQL
    assert _relay(f"sqlite+aiosqlite:///{tmp_path}/r.db").batch_size == OUTBOX_BATCH_SQLITE


@pytest.mark.parametrize("size", [1, 250, 10_000])
def test_a_set_batch_size_is_kept_on_both_databases(tmp_path: Path, size: int) -> None:
    assert _relay(POSTGRESQL, outbox_batch_size=size).batch_size == size
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/r.db"
    assert _relay(sqlite, outbox_batch_size=size).batch_size == size


@pytest.mark.parametrize("size", [0, 10_001])
def test_a_batch_size_out_of_bounds_is_refused(size: int) -> None:
    with pytest.raises(ValidationError, match="outbox_batch_size"):
        Settings(outbox_batch_size=size)
