"""Test infrastructure: a real broker for the session and real databases (SQLite and PostgreSQL).

Under CI=true an unreachable PostgreSQL or a broker that does not start fails the run; on a
developer's machine the PostgreSQL half of a test is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bekal.shared.broker import EmbeddedBroker, free_port
from bekal.shared.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unavailable(what: str, why: object) -> None:
    message = f"{what} unavailable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing dependency is a failure)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The real Kafka-protocol broker (Tansu), one for the whole test session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    b = EmbeddedBroker(port=free_port(), log_file=log)
    try:
        b.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        _unavailable("Kafka broker", exc)
    yield b
    b.stop()


async def _create_pg_database() -> str:
    import asyncpg

    name = f"bekal_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: each database test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    try:
        name = await _create_pg_database()
    except Exception as exc:
        _unavailable("PostgreSQL at 127.0.0.1:5432", exc)
    try:
        yield _pg_url(name)
    finally:
        await _drop_pg_database(name)


@pytest.fixture
async def two_databases(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The fresh database of ``database_url`` and a second fresh one of the same kind."""
    if database_url.startswith("sqlite"):
        other = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
        yield database_url, other
        return
    try:
        name = await _create_pg_database()
    except Exception as exc:  # pragma: no cover - depends on the machine
        _unavailable("PostgreSQL at 127.0.0.1:5432", exc)
    try:
        yield database_url, _pg_url(name)
    finally:
        await _drop_pg_database(name)


@pytest.fixture
def make_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings for a service under test, with its own topic and group namespace on the broker."""

    def make(
        service: str, database_url: str, broker: EmbeddedBroker | None = None, **overrides: object
    ) -> Settings:
        values: dict[str, object] = {
            "service_name": service,
            "environment": "test",
            "database_url": database_url,
            "kafka_bootstrap_servers": broker.bootstrap_servers if broker else "127.0.0.1:1",
            # Tests share one broker: each app gets topics and consumer groups of its own.
            "kafka_namespace": f"t{uuid.uuid4().hex[:8]}.",
            "auth_dev_key_file": tmp_path / "keys" / "dev.pem",
            "outbox_poll_interval_seconds": 0.1,
            "consumer_retry_backoff_seconds": 0.01,
            "consumer_max_attempts": 3,
            # A new group member waits about half the session timeout to join: keep it short.
            "kafka_session_timeout_ms": 3000,
            "kafka_heartbeat_interval_ms": 500,
            "log_json": True,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make
