"""The embedded platform for a laptop: broker, four service processes, demo data; Ctrl-C stops."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bekal.shared.broker import EmbeddedBroker, port_open

SERVICES = ("registry", "training", "certification", "reporting")
DEFAULT_PORTS = {"registry": 8001, "training": 8002, "certification": 8003, "reporting": 8004}
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Children get SIGTERM when the runner dies, even by SIGKILL (Linux): no orphans hold ports."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Platform:
    """Four service processes (and, unless a broker is given, the embedded broker)."""

    root: Path
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    bootstrap_servers: str | None = None
    broker_port: int = 9092
    database_urls: Mapping[str, str] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    broker: EmbeddedBroker | None = None

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def key_file(self) -> Path:
        return self.var / "keys" / "dev-signing-key.pem"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def database_url(self, service: str) -> str:
        return (
            self.database_urls.get(service)
            or f"sqlite+aiosqlite:///{self.var / 'data' / f'{service}.db'}"
        )

    def service_env(self, service: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SERVICE_NAME=service,
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=str(self.ports[service]),
            DATABASE_URL=self.database_url(service),
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap_servers or "",
            AUTH_DEV_KEY_FILE=str(self.key_file),
            CERTIFICATE_SIGNING_KEY_FILE=str(self.var / "keys" / "certificate-signing-key.pem"),
            PUBLIC_BASE_URL=self.url("certification"),
        )
        env.update(self.extra_env)
        return env

    # --- lifecycle ------------------------------------------------------------------------

    def clean_up_previous_run(self) -> None:
        """After an unclean stop: end what the last run left behind (by its pid files)."""
        run_dir = self.var / "run"
        for pid_file in run_dir.glob("*.pid") if run_dir.exists() else []:
            try:
                pid = int(pid_file.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (ValueError, OSError):
                pid_file.unlink(missing_ok=True)
                continue
            if b"bekal" in cmdline or b"tansu" in cmdline:
                print(f"  stopping process {pid} left by a previous run ({pid_file.stem})")
                _terminate_pid(pid)
            pid_file.unlink(missing_ok=True)

    def start(self) -> None:
        for sub in ("data", "keys", "run", "log"):
            (self.var / sub).mkdir(parents=True, exist_ok=True)
        self.clean_up_previous_run()
        from bekal.shared.auth import load_or_create_dev_key

        load_or_create_dev_key(self.key_file)  # before the services, so all four read the same key
        if not self.bootstrap_servers:
            if port_open("127.0.0.1", self.broker_port):
                raise RuntimeError(
                    f"port {self.broker_port} is taken by another program; stop it or set "
                    "KAFKA_BOOTSTRAP_SERVERS to use that broker"
                )
            self.broker = EmbeddedBroker(
                port=self.broker_port, log_file=self.var / "log" / "broker.log"
            )
            self.broker.start()
            assert self.broker.process is not None
            (self.var / "run" / "broker.pid").write_text(str(self.broker.process.pid))
            self.bootstrap_servers = self.broker.bootstrap_servers
        for service in SERVICES:
            if port_open("127.0.0.1", self.ports[service]):
                raise RuntimeError(
                    f"port {self.ports[service]} for {service} is taken by another program"
                )
            log = open(self.var / "log" / f"{service}.log", "ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "bekal.shared.cli", "serve", service],
                env=self.service_env(service),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            self.processes[service] = proc
            (self.var / "run" / f"{service}.pid").write_text(str(proc.pid))

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(SERVICES)
        while pending and time.monotonic() < deadline:
            for service in sorted(pending):
                proc = self.processes[service]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{service} exited with code {proc.returncode}:\n{self.log_tail(service)}"
                    )
                try:
                    if httpx.get(self.url(service) + "/readyz", timeout=2).status_code == 200:
                        pending.discard(service)
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        if pending:
            tails = "\n".join(f"--- {s} ---\n{self.log_tail(s)}" for s in sorted(pending))
            raise RuntimeError(
                f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}\n{tails}"
            )

    def check_alive(self) -> str | None:
        for service, proc in self.processes.items():
            if proc.poll() is not None:
                return service
        return None

    def log_tail(self, service: str, lines: int = 30) -> str:
        path = self.var / "log" / f"{service}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.broker:
            self.broker.stop()
        for pid_file in (self.var / "run").glob("*.pid"):
            pid_file.unlink(missing_ok=True)


def _terminate_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _banner(platform: Platform, demo_summary: str | None) -> str:
    lines = ["", "Bekal berjalan / Bekal is running:", ""]
    for service in SERVICES:
        lines.append(
            f"  {service:<14} {platform.url(service)}   API docs: {platform.url(service)}/docs"
        )
    lines += [
        f"  {'broker':<14} {platform.bootstrap_servers}"
        + ("   (embedded, memory-only)" if platform.broker else ""),
        "",
        "  Public certificate check: " + platform.url("certification") + "/verify/<code>",
        "  Indicators:               "
        + platform.url("reporting")
        + "/api/v1/indicators?group_by=province,year",
        "",
        "  A token for the APIs (in another terminal):",
        "    .venv/bin/bekal token --preset registry-admin      # corrections",
        "    .venv/bin/bekal token --preset training-admin      # industry",
        "    .venv/bin/bekal token --preset reporting-viewer",
        "",
        f"  Data (SQLite, kept between starts): {platform.var / 'data'}",
        f"  Logs: {platform.var / 'log'}",
    ]
    if demo_summary:
        lines += ["", "  " + demo_summary]
    lines += ["", "Tekan Ctrl-C untuk berhenti / press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def main(*, load_demo: bool = True) -> int:
    root = Path.cwd()
    database_urls = {
        s: os.environ[f"BEKAL_{s.upper()}_DATABASE_URL"]
        for s in SERVICES
        if os.environ.get(f"BEKAL_{s.upper()}_DATABASE_URL")
    }
    ports = {s: int(os.environ.get(f"BEKAL_{s.upper()}_PORT", DEFAULT_PORTS[s])) for s in SERVICES}
    platform = Platform(
        root=root,
        ports=ports,
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        broker_port=int(os.environ.get("BEKAL_BROKER_PORT", "9092")),
        database_urls=database_urls,
    )
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        print("Starting the broker and the four services ...", flush=True)
        platform.start()
        platform.wait_ready()
        summary = None
        if load_demo:
            from bekal.shared.demo import load_demo as load

            print("Loading the demo data (once; a second start finds it there) ...", flush=True)
            summary = load({s: platform.url(s) for s in SERVICES}, key_file=platform.key_file)
        print(_banner(platform, summary), flush=True)
        while True:
            dead = platform.check_alive()
            if dead:
                print(f"{dead} stopped unexpectedly:\n{platform.log_tail(dead)}", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    except Exception as exc:
        print(f"Could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        platform.stop()
        print("Stopped.", flush=True)
