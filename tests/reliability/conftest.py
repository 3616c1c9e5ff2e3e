"""What the reliability tests share: services as processes, a broker of their own, databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bekal.devtools.broker import Broker, EmbeddedBroker, free_port
from bekal.shared.auth import load_or_create_dev_key
from bekal.shared.settings import Settings
from tests.conftest import _create_pg_database, _drop_pg_database, _pg_url, _unavailable
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="package")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker only these tests use: they freeze it, which the session's broker must never be."""
    log = tmp_path_factory.mktemp("own-broker") / "tansu.log"
    b = EmbeddedBroker(port=free_port(), log_file=log)
    try:
        b.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        _unavailable("Kafka broker", exc)
    yield b
    b.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def new_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Fresh empty databases of one kind (each test runs once per kind), one per service."""
    created: list[str] = []

    async def make(service: str) -> str:
        if request.param == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / 'data' / f'{service}.db'}"
        try:
            name = await _create_pg_database()
        except Exception as exc:
            _unavailable("PostgreSQL at 127.0.0.1:5432", exc)
        created.append(name)
        return _pg_url(name)

    try:
        yield make
    finally:
        for name in created:
            await _drop_pg_database(name)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "dev.pem"
    load_or_create_dev_key(path)  # before the services start, so they all read the same key
    return path


@pytest.fixture
def namespace() -> str:
    return f"rel{uuid.uuid4().hex[:8]}."


@pytest.fixture
def client_settings(namespace: str, key_file: Path) -> Callable[[Broker], Settings]:
    """Settings the test itself uses to reach a broker (same topic namespace) and mint tokens."""

    def make(broker: Broker) -> Settings:
        return Settings(
            service_name="registry",
            environment="test",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_namespace=namespace,
            kafka_enable_idempotence=broker.idempotent,
            auth_dev_key_file=key_file,
        )

    return make


@pytest.fixture
def services(
    tmp_path: Path, namespace: str, key_file: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Start a service as a process; every one started is stopped at the end."""
    started: list[ServiceProcess] = []

    def start(service: str, *, database_url: str, broker: Broker, **env: str) -> ServiceProcess:
        proc = ServiceProcess(
            service,
            database_url=database_url,
            bootstrap_servers=broker.bootstrap_servers,
            idempotence=broker.idempotent,
            namespace=namespace,
            key_file=key_file,
            log_dir=tmp_path / "log",
            extra_env=env,
        )
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
