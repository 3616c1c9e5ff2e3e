"""`bekal run` on a machine where a port it wants is taken: the message names the variable that
moves it, and nothing is left running."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bekal.devtools.broker import free_port, port_open
from bekal.devtools.devrun import SERVICES, Platform

pytestmark = pytest.mark.integration


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_taken_broker_port_names_bekal_broker_port_and_kafka_bootstrap_servers(
    tmp_path: Path, taken: int
) -> None:
    platform = Platform(root=tmp_path, broker_port=taken)
    try:
        with pytest.raises(RuntimeError) as refused:
            platform.start()
    finally:
        platform.stop()
    message = str(refused.value)
    assert f"port {taken} is taken" in message
    assert "BEKAL_BROKER_PORT" in message and "KAFKA_BOOTSTRAP_SERVERS" in message
    assert platform.broker is None and not platform.processes


@pytest.mark.parametrize("service", SERVICES)
def test_a_taken_service_port_names_that_services_port_variable(
    tmp_path: Path, taken: int, service: str
) -> None:
    ports = {s: free_port() for s in SERVICES} | {service: taken}
    # A broker address that is never dialled: the port check comes before any service starts.
    platform = Platform(root=tmp_path, ports=ports, bootstrap_servers="127.0.0.1:1")
    try:
        with pytest.raises(RuntimeError) as refused:
            platform.start()
    finally:
        platform.stop()
    message = str(refused.value)
    assert f"port {taken} for {service} is taken" in message
    assert f"BEKAL_{service.upper()}_PORT" in message
    # The services before it in the start order were started, and the stop ended them.
    assert all(proc.poll() is not None for proc in platform.processes.values())
    assert not any(port_open("127.0.0.1", ports[s]) for s in SERVICES if s != service)
