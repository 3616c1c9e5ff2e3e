"""`make run` on a fresh checkout installs what the platform runs, not the test and lint tools;
`make install` (and so `make test`) afterwards installs everything."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def _imports(venv_python: Path, module: str) -> bool:
    return (
        subprocess.run([venv_python, "-c", f"import {module}"], capture_output=True).returncode == 0
    )


def test_make_run_installs_the_platform_without_test_or_lint_tools(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            (checkout / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name.decode())

    # The install step `make run` depends on, without starting the platform.
    subprocess.run(["make", ".venv/.runtime"], cwd=checkout, check=True, capture_output=True)
    python = checkout / ".venv" / "bin" / "python"
    for module in ("bekal.registry.app", "bekal.reporting.app", "bekal.devtools.devrun"):
        assert _imports(python, module), module
    for tool in ("pytest", "ruff", "mypy", "playwright", "schemathesis"):
        assert not _imports(python, tool), f"{tool} installed by make run"
    commands = subprocess.run(
        [checkout / ".venv" / "bin" / "bekal", "--help"], capture_output=True, text=True
    ).stdout
    assert "run" in commands and "token" in commands

    subprocess.run(["make", "install"], cwd=checkout, check=True, capture_output=True)
    assert _imports(python, "pytest") and _imports(python, "ruff")
