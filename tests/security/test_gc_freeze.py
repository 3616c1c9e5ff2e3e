"""Only a served process freezes what start-up made out of the garbage collector's sight.

`bekal serve` runs one app for the life of the process, and freezing its start-up objects
spares every full collection under load from walking them again. A process that makes app after
app (a test run, a tool) must not: each freeze would keep the earlier apps' cycles for good.
"""

from __future__ import annotations

import gc
import uuid
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from tests.security.support import service_app, service_settings

pytestmark = pytest.mark.integration


def _app(make_settings: Any, tmp_path: Path) -> Any:
    url = f"sqlite+aiosqlite:///{tmp_path / f'reporting-{uuid.uuid4().hex[:6]}.db'}"
    return service_app(
        "reporting", service_settings("reporting", make_settings, url, None, tmp_path)
    )


async def test_an_app_started_in_process_freezes_nothing(
    make_settings: Any, tmp_path: Path
) -> None:
    app = _app(make_settings, tmp_path)
    assert app.state.freeze_after_start is False
    before = gc.get_freeze_count()
    async with LifespanManager(app):
        assert gc.get_freeze_count() == before


async def test_a_served_app_freezes_what_start_up_made(make_settings: Any, tmp_path: Path) -> None:
    app = _app(make_settings, tmp_path)
    app.state.freeze_after_start = True  # as `bekal serve` sets it
    try:
        async with LifespanManager(app):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
