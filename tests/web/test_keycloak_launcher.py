"""A Keycloak started by the tests dies with the process that started it, even one SIGKILLed:
no Java process is left holding its port for the next run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _unavailable
from tests.support.keycloak import VERSION, KeycloakUnavailable, install, java_home

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 240.0
GONE_WITHIN = 30.0
# The starter prints Keycloak's port once the realm answers, then waits to be killed.
STARTER = """
import sys, time
from pathlib import Path
from tests.support.keycloak import Keycloak
keycloak = Keycloak(directory=Path(sys.argv[1]))
keycloak.start()
print(keycloak.port, flush=True)
time.sleep(3600)
"""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, or None if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1]), int(fields[19])


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


def _alive(tree: dict[int, int]) -> list[int]:
    return [
        pid
        for pid, started in tree.items()
        if (st := _stat(pid)) is not None and st[2] == started and st[0] != "Z"
    ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


@pytest.fixture
def tree() -> Iterator[dict[int, int]]:
    noted: dict[int, int] = {}
    yield noted
    for pid in _alive(noted):  # only after a failure: leave nothing for the tests after this
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_keycloak_dies_with_a_killed_parent_and_frees_its_ports(
    tmp_path: Path, tree: dict[int, int]
) -> None:
    try:
        install()
        java_home()
    except KeycloakUnavailable as exc:
        _unavailable(f"Keycloak {VERSION} (`make keycloak-install`; Java 21+)", exc)
    out = tmp_path / "starter.out"
    with open(out, "wb") as sink:
        starter = subprocess.Popen(
            [sys.executable, "-c", STARTER, str(tmp_path / "keycloak")],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_WITHIN
        while not out.read_text().strip() and time.monotonic() < deadline:
            assert starter.poll() is None, out.read_text()
            time.sleep(0.5)
        ports = [int(out.read_text().split()[0])]
        tree.update(_descendants(starter.pid))
        java = [pid for pid in tree if "java" in _cmdline(pid).split(" ")[0]]
        assert java, {p: _cmdline(p) for p in tree}
        # Java is the starter's own child, the process the parent-death signal was armed in:
        # no shell in between that could be killed and leave Java running.
        assert [(_stat(pid) or ("", 0, 0))[1] for pid in java] == [starter.pid], {
            p: _cmdline(p) for p in tree
        }
        assert not any(_bindable(p) for p in ports)
    finally:
        starter.kill()  # SIGKILL: the starter runs no code of its own to stop Keycloak
        starter.wait()

    deadline = time.monotonic() + GONE_WITHIN
    while time.monotonic() < deadline:
        survivors = _alive(tree)
        taken = [p for p in ports if not _bindable(p)]
        if not survivors and not taken:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"{GONE_WITHIN:g} s after its parent was killed: still running "
        f"{ {pid: _cmdline(pid) for pid in survivors} }, ports still taken {taken}"
    )
