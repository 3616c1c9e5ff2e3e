"""The embedded platform for a laptop: broker, four service processes, demo data; Ctrl-C stops.

Nothing the runner starts outlives it, however it ends. Every child runs in a session of its own
(so a terminal's Ctrl-C reaches the runner alone, which stops the services before the broker) and
is armed to be signalled by the kernel when the runner dies (``die_with_parent``). That signal does
not reach a child's own children, so a guard process, told each child's session over a pipe, ends
every process still in those sessions when the pipe closes without a clean stop: the runner was
killed (SIGKILL, OOM). A normal stop ends each session itself, grandchildren included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bekal.devtools.broker import EmbeddedBroker, die_with_parent, port_open

SERVICES = ("registry", "training", "certification", "reporting")
DEFAULT_PORTS = {"registry": 8001, "training": 8002, "certification": 8003, "reporting": 8004}
SERVICE_STOP_SECONDS = 15.0  # SIGTERM, then SIGKILL for what is left
BROKER_STOP_SECONDS = 10.0


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
    guard: _Guard | None = None

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def demo_status_file(self) -> Path:
        """Whether the demo data is loading or loaded; each service's /readyz repeats it."""
        return self.var / "run" / "demo-status"

    def demo_status(self, status: str) -> None:
        self.demo_status_file.write_text(status + "\n", encoding="utf-8")

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
            DEMO_STATUS_FILE=str(self.demo_status_file),
        )
        if service == "reporting":
            env.update(self.pages_env())
        env.update(self.extra_env)
        return env

    def pages_env(self) -> dict[str, str]:
        """Where each ministry's staff pages are, on the ports this run uses: the dashboard
        links to them."""
        return {
            f"{owner.upper()}_PAGES_URL": f"{self.url(owner)}/staf"
            for owner in ("registry", "training", "certification")
        }

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
                end_sessions({pid}, grace=5.0)
            pid_file.unlink(missing_ok=True)

    def start(self) -> None:
        for sub in ("data", "keys", "run", "log"):
            (self.var / sub).mkdir(parents=True, exist_ok=True)
        self.clean_up_previous_run()
        self.demo_status_file.unlink(missing_ok=True)
        self.guard = _Guard(self.var / "log" / "guard.log")
        from bekal.shared.auth import load_or_create_dev_key

        load_or_create_dev_key(self.key_file)  # before the services, so all four read the same key
        if not self.bootstrap_servers:
            if port_open("127.0.0.1", self.broker_port):
                raise RuntimeError(
                    f"port {self.broker_port} is taken by another program; stop it, set "
                    "BEKAL_BROKER_PORT to start the embedded broker on another port, or set "
                    "KAFKA_BOOTSTRAP_SERVERS to use the broker already there"
                )
            self.broker = EmbeddedBroker(
                port=self.broker_port, log_file=self.var / "log" / "broker.log"
            )
            try:
                self.broker.start()
            finally:
                if self.broker.process is not None:
                    self.guard.watch(self.broker.process.pid)
            assert self.broker.process is not None
            (self.var / "run" / "broker.pid").write_text(str(self.broker.process.pid))
            self.bootstrap_servers = self.broker.bootstrap_servers
        for service in SERVICES:
            if port_open("127.0.0.1", self.ports[service]):
                raise RuntimeError(
                    f"port {self.ports[service]} for {service} is taken by another program; "
                    f"stop it or set BEKAL_{service.upper()}_PORT to start {service} on another "
                    "port"
                )
            log = open(self.var / "log" / f"{service}.log", "ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "bekal.shared.cli", "serve", service],
                env=self.service_env(service),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
            log.close()
            self.guard.watch(proc.pid)
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
        """The services first (they may still publish), then the broker, then the guard."""
        groups = [list(self.processes.values())]
        if self.broker and self.broker.process:
            groups.append([self.broker.process])
        for procs, grace in zip(groups, (SERVICE_STOP_SECONDS, BROKER_STOP_SECONDS), strict=False):
            end_sessions({p.pid for p in procs}, grace=grace, children=procs)
            for proc in procs:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:  # not even SIGKILL ended it (stuck in the kernel)
                    print(f"process {proc.pid} did not end", file=sys.stderr)
                    continue
                if self.guard:
                    self.guard.forget(proc.pid)
        if self.broker:
            self.broker.stop()  # already ended: this only tidies up its state
        if self.guard:
            self.guard.close()
            self.guard = None
        for pid_file in (self.var / "run").glob("*.pid"):
            pid_file.unlink(missing_ok=True)
        self.demo_status_file.unlink(missing_ok=True)


# --- ending whole sessions ----------------------------------------------------------------


def _session_members(sessions: set[int]) -> set[int]:
    """The live processes (zombies are dead) whose session is one of ``sessions``.

    Every child starts a session of its own (its pid is the session id) and whatever it starts
    stays in it unless it calls setsid itself. Without /proc, the sessions' leaders' groups.
    """
    if not os.path.isdir("/proc/self"):
        alive = set()
        for sid in sessions:
            try:
                os.killpg(sid, 0)
                alive.add(sid)
            except OSError:
                pass
        return alive
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:  # ended meanwhile
            continue
        # after the command: state, ppid, pgrp, session
        if fields[0] != b"Z" and int(fields[3]) in sessions:
            found.add(int(entry.name))
    return found


def _signal_sessions(sessions: set[int], sig: int) -> None:
    for pid in _session_members(sessions):
        try:
            if sig != signal.SIGKILL:
                os.kill(pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            os.kill(pid, sig)
        except OSError:
            pass


def end_sessions(
    sessions: set[int],
    *,
    grace: float,
    children: list[subprocess.Popen[bytes]] | None = None,
) -> None:
    """SIGTERM to every process in ``sessions``, SIGKILL to what is left after ``grace`` seconds.

    ``children`` are the runner's own (the sessions' leaders): they are polled, not reaped, so a
    leader's pid, and with it the session id, cannot be reused while this runs.
    """

    def left() -> set[int]:
        members = _session_members(sessions)
        for proc in children or []:  # an exited leader is a zombie until reaped: not left
            if proc.pid in members and _exited(proc.pid):
                members.discard(proc.pid)
        return members

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not left():
            return
        _signal_sessions(sessions, sig)
        deadline = time.monotonic() + wait
        while left() and time.monotonic() < deadline:
            time.sleep(0.05)


def _exited(pid: int) -> bool:
    """Whether a child has exited, leaving it unreaped (its pid stays taken)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


_GUARD_CODE = "import sys, bekal.devtools.devrun as d; d.guard(sys.argv[1])"


class _Guard:
    """A process that outlives a killed runner just long enough to end the runner's children.

    The runner writes ``+pid`` for each child it starts and ``-pid`` once it has ended that child
    itself. When the pipe closes (the runner exited, however), the guard ends the sessions of the
    children still listed, then exits. It runs in a session of its own, out of the runner's
    process group, so whatever kills that group (a closed terminal) does not take it too.
    """

    def __init__(self, log_file: Path) -> None:
        read_end, self._pipe = os.pipe()
        with open(log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _GUARD_CODE, str(read_end)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(read_end,),
                start_new_session=True,
            )
        os.close(read_end)

    def watch(self, pid: int) -> None:
        os.write(self._pipe, f"+{pid}\n".encode())

    def forget(self, pid: int) -> None:
        os.write(self._pipe, f"-{pid}\n".encode())

    def close(self) -> None:
        os.close(self._pipe)
        try:
            self.process.wait(timeout=SERVICE_STOP_SECONDS + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def guard(fd: str) -> None:
    """The guard process's body: read the runner's list until the pipe closes, end what is left."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    sessions: set[int] = set()
    with open(int(fd), "rb") as pipe:
        for line in pipe:
            pid = int(line[1:])
            if line.startswith(b"+"):
                sessions.add(pid)
            else:
                sessions.discard(pid)
    if sessions:
        print(f"the runner ended without stopping {sorted(sessions)}: ending them", flush=True)
        end_sessions(sessions, grace=SERVICE_STOP_SECONDS)


DEMO_LOADING = (
    "Data demo sedang dimuat (sekali saja) / loading the demo data (once; a second start finds "
    "it there) ..."
)
STOP_LINE = "Tekan Ctrl-C untuk berhenti / press Ctrl-C to stop."


def _banner(platform: Platform, demo: str | None) -> str:
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
    if demo:
        lines += ["", "  " + demo]
    return "\n".join([*lines, ""])


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
        if stopping:  # already stopping: let the stop finish
            return
        stopping = True
        raise KeyboardInterrupt

    # Installed explicitly: a runner started in the background of a script inherits SIGINT
    # ignored (and Python then leaves it so); a closed terminal sends SIGHUP. Children started
    # after this get the default dispositions back at exec.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        print("Starting the broker and the four services ...", flush=True)
        platform.start()
        platform.wait_ready()
        if load_demo:
            from bekal.devtools.demo import load_demo as load

            # The addresses first: the services answer while the demo data goes in.
            platform.demo_status("loading")
            print(_banner(platform, DEMO_LOADING), flush=True)
            summary = load({s: platform.url(s) for s in SERVICES}, key_file=platform.key_file)
            platform.demo_status("loaded")
            print(f"  Data demo siap / demo data loaded. {summary}", flush=True)
        else:
            print(_banner(platform, None), flush=True)
        print(f"\n{STOP_LINE}\n", flush=True)
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
        stopping = True
        platform.stop()
        print("Stopped.", flush=True)
