"""The README tells a newcomer what the code does: every token preset with its roles, and the
variable that moves each port `make run` takes, with the default the runner uses."""

from __future__ import annotations

import re
from pathlib import Path

from bekal.devtools.devrun import DEFAULT_PORTS, SERVICES, Platform
from bekal.shared.cli import ROLE_PRESETS

README = (Path(__file__).parents[2] / "README.md").read_text()


def _table_rows(first_cell: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and re.fullmatch(first_cell, cells[0]):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_token_preset_is_in_the_readme_with_its_ministry_and_roles() -> None:
    rows = _table_rows(r"`[a-z-]+`")
    for preset, (ministry, roles) in ROLE_PRESETS.items():
        assert preset in rows, f"preset {preset} missing from the README's preset table"
        assert rows[preset][0] == ministry
        assert re.findall(r"`([a-z_]+)`", rows[preset][1]) == roles


def test_every_port_variable_is_in_the_readme_with_the_runners_default() -> None:
    rows = _table_rows(r"[a-z ]+")
    for service in SERVICES:
        assert rows[service][0] == str(DEFAULT_PORTS[service])
        assert rows[service][1] == f"`BEKAL_{service.upper()}_PORT`"
    broker_port = str(Platform(root=Path(".")).broker_port)
    assert rows["embedded broker"][:2] == [broker_port, "`BEKAL_BROKER_PORT`"]
