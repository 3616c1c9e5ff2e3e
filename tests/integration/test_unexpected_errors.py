"""An exception no handler expected is answered inside the service's layers: with the request
id, the security headers, and its own status in the latency metric.

Starlette answers such an exception in its outermost layer, outside every middleware; the
answer went out without a request id for the operator to find the log line by, without the
security headers, and was counted as a 500 even when it was a 503 (a database that cannot be
reached)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter

from bekal.registry.app import create_app
from tests.support.apps import running
from tests.support.registry import SECRET

pytestmark = pytest.mark.integration


def _failing_routes() -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/uji/galat")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @router.get("/api/v1/uji/basis-data-hilang")
    async def unreachable() -> None:
        raise ConnectionRefusedError("the database is away")

    return router


def _count(metrics: str, route: str, status: int) -> float:
    prefix = "bekal_http_request_duration_seconds_count{"
    for line in metrics.splitlines():
        if line.startswith(prefix) and f'route="{route}"' in line and f'status="{status}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_an_unexpected_error_is_answered_with_request_id_headers_and_its_status(
    tmp_path: Path, make_settings: Any
) -> None:
    settings = make_settings(
        "registry", f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", pseudonym_secret=SECRET
    )
    app = create_app(settings)
    app.include_router(_failing_routes())
    async with running(app, consuming=False) as client:
        before = (await client.get("/metrics")).text
        answer = await client.get("/api/v1/uji/galat", headers={"X-Request-ID": "req-galat-1"})
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/internal-error")
        assert "kaboom" not in answer.text
        assert answer.headers["x-request-id"] == "req-galat-1"
        assert answer.headers["x-content-type-options"] == "nosniff"

        away = await client.get("/api/v1/uji/basis-data-hilang")
        assert away.status_code == 503
        assert away.headers["content-type"] == "application/problem+json"
        assert away.headers["x-request-id"]
        assert away.headers["x-content-type-options"] == "nosniff"

        # Metrics are the process's: counted from what they held before.
        after = (await client.get("/metrics")).text
        for route, status, more in (
            ("/api/v1/uji/galat", 500, 1),
            ("/api/v1/uji/basis-data-hilang", 503, 1),
            ("/api/v1/uji/basis-data-hilang", 500, 0),
        ):
            assert _count(after, route, status) == _count(before, route, status) + more
