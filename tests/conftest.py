"""Test infrastructure: real brokers for the session and real databases (SQLite and PostgreSQL).

Every test that takes ``broker`` runs on the embedded broker (Tansu) and on Apache Kafka (one
node, producers idempotent as in production). Under CI=true an unreachable PostgreSQL or a broker
that does not start fails the run; on a developer's machine that half of a test is skipped with
the reason. ``BEKAL_TEST_BROKERS=tansu`` (or ``apache-kafka``) narrows a local run to one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bekal.certification.settings import CertificationSettings
from bekal.devtools import apache_kafka
from bekal.devtools.broker import Broker, EmbeddedBroker, free_port
from bekal.registry.settings import RegistrySettings
from bekal.reporting.settings import ReportingSettings
from bekal.shared.settings import Settings
from bekal.training.settings import TrainingSettings
from tests.support.registry import SECRET, Registry, running_registry
from tests.support.training import Training, running_training

# Each test answers for the connections and app tasks it leaves behind (tests/support/leaks.py).
pytest_plugins = ("tests.support.leaks",)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unavailable(what: str, why: object) -> None:
    message = f"{what} unavailable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing dependency is a failure)", pytrace=False)
    pytest.skip(message)


BROKERS = [
    b
    for b in ("tansu", "apache-kafka")
    if b in os.environ.get("BEKAL_TEST_BROKERS", "tansu,apache-kafka")
]
USED: dict[str, str] = {}  # the brokers this session started, and their versions
# `make test` runs three pytest processes at once (scripts/test): BEKAL_TEST_TIER=apache-kafka
# takes the tests on Apache Kafka (the `broker` fixture's apache-kafka half and the modules
# marked apache_kafka, which start clusters of their own); BEKAL_TEST_TIER=web the staff pages'
# tests (Keycloak and Chromium), then BEKAL_TEST_TIER=faults the fault and end-to-end tests on
# Tansu (tests/reliability, tests/e2e: mostly waiting out outages), in the same slot as the web
# tier once it is done; BEKAL_TEST_TIER=rest the others.
TIER = os.environ.get("BEKAL_TEST_TIER", "")
TIERS = ("apache-kafka", "web", "faults", "rest")


def on_apache_kafka(item: pytest.Item) -> bool:
    return "[apache-kafka" in item.nodeid or item.get_closest_marker("apache_kafka") is not None


def tier_of(item: pytest.Item) -> str:
    if on_apache_kafka(item):
        return "apache-kafka"
    if item.nodeid.startswith("tests/web/"):
        return "web"
    return "faults" if item.nodeid.startswith(("tests/reliability/", "tests/e2e/")) else "rest"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TIER not in TIERS:
        return
    elsewhere = [item for item in items if tier_of(item) != TIER]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        dropped = set(elsewhere)
        items[:] = [item for item in items if item not in dropped]


def pytest_report_header(config: pytest.Config) -> str:
    versions = {"tansu": EmbeddedBroker().version, "apache-kafka": apache_kafka.VERSION}
    brokers = "brokers: " + ", ".join(f"{b} {versions[b]}" for b in BROKERS)
    return brokers + (f" (tier: {TIER})" if TIER else "")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if USED:
        terminalreporter.write_line(
            "brokers used: " + ", ".join(f"{b} {v}" for b, v in USED.items())
        )


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The embedded broker (Tansu), one for the whole test session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    b = EmbeddedBroker(port=free_port(), log_file=log)
    try:
        b.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        _unavailable("Kafka broker (tansu)", exc)
    USED[b.name] = b.version
    yield b
    b.stop()


def start_apache_kafka(
    tmp_path_factory: pytest.TempPathFactory, nodes: int
) -> apache_kafka.ApacheKafka:
    cluster = apache_kafka.ApacheKafka(
        nodes=nodes, directory=tmp_path_factory.mktemp(f"apache-kafka-{nodes}")
    )
    try:
        cluster.start()
    except Exception as exc:  # KafkaUnavailable (no Java or Maven) or a node that did not start
        _unavailable(f"Apache Kafka {apache_kafka.VERSION}", exc)
    USED[cluster.name] = cluster.version
    return cluster


@pytest.fixture(scope="session")
def kafka_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apache_kafka.ApacheKafka]:
    """Apache Kafka, one node, for the whole test session."""
    cluster = start_apache_kafka(tmp_path_factory, 1)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Broker:
    """Each broker in turn: a test that takes it runs on Tansu and on Apache Kafka."""
    name = "tansu" if request.param == "tansu" else "kafka_node"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


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


SERVICE_SETTINGS: dict[str, type[Settings]] = {
    "registry": RegistrySettings,
    "training": TrainingSettings,
    "certification": CertificationSettings,
    "reporting": ReportingSettings,
}


@pytest.fixture
def make_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings for a service under test, with its own topic and group namespace on the broker."""

    def make(
        service: str, database_url: str, broker: Broker | None = None, **overrides: object
    ) -> Settings:
        values: dict[str, object] = {
            "service_name": service,
            "environment": "test",
            "database_url": database_url,
            "kafka_bootstrap_servers": broker.bootstrap_servers if broker else "127.0.0.1:1",
            "kafka_enable_idempotence": broker.idempotent if broker else False,
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
        # The service's own class: a setting only it reads (the registry's pseudonym secret)
        # would be dropped by the shared one.
        cls = SERVICE_SETTINGS.get(service, Settings)
        return cls(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def training(
    database_url: str, broker: Broker, make_settings: Callable[..., Settings]
) -> AsyncIterator[Training]:
    """Training in process on a fresh database, fed by the broker (tests/support/training.py)."""
    async with running_training(make_settings("training", database_url, broker)) as harness:
        yield harness


@pytest.fixture
async def registry(
    database_url: str, broker: Broker, make_settings: Callable[..., Settings]
) -> AsyncIterator[Registry]:
    """The registry in process on a fresh database, publishing to the broker
    (tests/support/registry.py); NIK digests keyed with its ``SECRET``."""
    settings = make_settings("registry", database_url, broker, pseudonym_secret=SECRET)
    async with running_registry(settings) as harness:
        yield harness
