"""One service as a real process (`bekal serve <service>`), to kill, freeze and restart in tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from bekal.devtools.broker import die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """``python -m bekal.shared.cli serve <service>`` with its settings in the environment.

    ``kill()`` is SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill.
    """

    def __init__(
        self,
        service: str,
        *,
        database_url: str,
        bootstrap_servers: str,
        namespace: str,
        key_file: Path,
        log_dir: Path,
        idempotence: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.service = service
        self.port = free_port()
        self.log_file = log_dir / f"{service}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(
            SERVICE_NAME=service,
            ENVIRONMENT="test",
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=str(self.port),
            DATABASE_URL=database_url,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
            KAFKA_NAMESPACE=namespace,
            KAFKA_ENABLE_IDEMPOTENCE=str(idempotence).lower(),
            AUTH_DEV_KEY_FILE=str(key_file),
            OUTBOX_POLL_INTERVAL_SECONDS="0.2",
            CONSUMER_RETRY_BACKOFF_SECONDS="0.05",
            CONSUMER_MAX_ATTEMPTS="3",
            # A new member waits about half the session timeout to join: keep restarts short.
            KAFKA_SESSION_TIMEOUT_MS="3000",
            KAFKA_HEARTBEAT_INTERVAL_MS="500",
            LOG_JSON="true",
        )
        self.env.update(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log_file, "ab")
        log.write(f"\n=== start {self.starts + 1} ===\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bekal.shared.cli", "serve", self.service],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A service the test started ends when the test process does, even if that is killed.
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        log.close()
        self.starts += 1

    async def wait_ready(self, within: float = 120.0) -> float:
        """Wait for /readyz (database reachable, broker connected, consumer joined); seconds."""
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=3) as client:
            while time.monotonic() - started < within:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"{self.service} exited with code {self.process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.service} not ready in {within:g} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, then reap: nothing of the service's own shutdown runs."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
