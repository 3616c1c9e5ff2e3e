"""Upgrades in one process run one at a time, with the cyclic collector paused meanwhile.

Alembic keeps the running migration's context in a module global, and a collection inside a
migration's own event loop could finalise a connection another loop left open and hang on it.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bekal.shared import migrations


def test_two_upgrades_at_once_run_one_after_the_other_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    inside = 0
    most = 0
    collector_on: list[bool] = []
    lock = threading.Lock()

    def alembic_upgrade(config: Any, revision: str) -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        collector_on.append(gc.isenabled())
        time.sleep(0.2)
        with lock:
            inside -= 1

    monkeypatch.setattr(migrations.command, "upgrade", alembic_upgrade)
    assert gc.isenabled()
    threads = [
        threading.Thread(
            target=migrations.upgrade,
            args=("bekal.reporting", f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}"),
        )
        for n in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most == 1
    assert collector_on == [False, False]
    assert gc.isenabled()


def test_the_collector_is_resumed_when_an_upgrade_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(config: Any, revision: str) -> None:
        raise RuntimeError("no such revision")

    monkeypatch.setattr(migrations.command, "upgrade", broken)
    with pytest.raises(RuntimeError):
        migrations.upgrade("bekal.reporting", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert gc.isenabled()
