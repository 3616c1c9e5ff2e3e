"""`bekal run` (what `make run` starts): demo data once, Ctrl-C stops all, restart after a kill."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bekal.devtools.broker import free_port, port_open
from bekal.devtools.devrun import SERVICES
from bekal.shared.auth import mint_token
from bekal.shared.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

READY_LINE = "Ctrl-C"


class Runner:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bekal.shared.cli", "run"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} in the runner's output:\n{''.join(self.output)}")


def _counts(ports: dict[str, int], key_file: Path) -> dict[str, int]:
    settings = Settings(auth_dev_key_file=key_file)
    corrections = mint_token(
        settings, subject="t", ministry="corrections", roles=["registry_admin"]
    )
    industry = mint_token(
        settings, subject="t", ministry="industry", roles=["training_admin", "certification_admin"]
    )

    def get(service: str, path: str, token: str) -> Any:
        r = httpx.get(
            f"http://127.0.0.1:{ports[service]}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()

    return {
        "facilities": len(get("registry", "/api/v1/facilities?limit=500", corrections)["data"]),
        "inmates": len(get("registry", "/api/v1/inmates?limit=500", corrections)["data"]),
        "programs": len(get("training", "/api/v1/programs?limit=500", industry)["data"]),
        "sessions": len(get("training", "/api/v1/sessions?limit=500", industry)["data"]),
        "certificates": len(
            get("certification", "/api/v1/certificates?limit=500", industry)["data"]
        ),
    }


def _demo_data(port: int) -> str:
    r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["demo_data"])


def test_run_loads_demo_once_survives_a_kill_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ports = {s: free_port() for s in SERVICES}
    broker_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update({f"BEKAL_{s.upper()}_PORT": str(p) for s, p in ports.items()})
    env.update(
        BEKAL_BROKER_PORT=str(broker_port),
        KAFKA_SESSION_TIMEOUT_MS="3000",
        KAFKA_HEARTBEAT_INTERVAL_MS="500",
    )
    key_file = tmp_path / "var" / "keys" / "dev-signing-key.pem"

    first = Runner(tmp_path, env)
    try:
        # The addresses come first, with word that the demo data is still going in, and every
        # service's /readyz says so too, until the data is in.
        first.wait_for("Data demo sedang dimuat", timeout=420)
        assert {_demo_data(ports[s]) for s in SERVICES} == {"loading"}
        first.wait_for("Data demo siap", timeout=420)
        first.wait_for(READY_LINE, timeout=60)
        assert {_demo_data(ports[s]) for s in SERVICES} == {"loaded"}
        counts = _counts(ports, key_file)
        assert counts["facilities"] == 3 and counts["inmates"] == 145
        assert counts["programs"] == 5 and counts["sessions"] == 5
        assert counts["certificates"] >= 1
        # Cipinang's course has one participant paroled mid-course, withdrawn by training itself.
        assert "1 withdrawn on release" in "".join(first.output)
        # An unclean stop: the runner is killed and cannot clean up.
        first.proc.kill()
        first.proc.wait(timeout=10)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()

    second = Runner(tmp_path, env)
    try:
        second.wait_for(READY_LINE, timeout=420)
        # The demo is not loaded twice.
        again = _counts(ports, key_file)
        assert {k: again[k] for k in ("facilities", "inmates", "programs", "sessions")} == {
            k: counts[k] for k in ("facilities", "inmates", "programs", "sessions")
        }
        assert again["certificates"] >= counts["certificates"]
        second.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert second.proc.wait(timeout=60) == 0
        second.wait_for("Stopped.", timeout=10)
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
    for port in [*ports.values(), broker_port]:
        assert not port_open("127.0.0.1", port), f"port {port} still open after Ctrl-C"
    assert not list((tmp_path / "var" / "run").glob("*.pid"))
