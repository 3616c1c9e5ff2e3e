"""Request bodies are capped per route before anything reads them, let alone parses them.

A 50 MB JSON body without a token used to be read and parsed before the 401. Each body here
is a generator that counts what the app pulls from it: a refused body is never pulled, and a
streamed one is cut off as soon as it passes the cap.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from bekal.registry.api.imports import MAX_UPLOAD_BYTES
from bekal.shared.web import STAFF
from tests.security.support import SERVICES, client_for, routes, service_app, service_settings
from tests.support.apps import bearer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
CHUNK = 64 * 1024
# The routes that take an upload, with a cap of their own (still counted as they stream).
UPLOADS = {("POST", "/api/v1/imports"), ("POST", f"{STAFF}/impor")}


class Body:
    """A request body of ``size`` bytes in chunks, counting the chunks the app asked for."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        left = self.size
        while left > 0:
            self.pulled += 1
            piece = min(CHUNK, left)
            left -= piece
            yield b"{" + b" " * (piece - 1)


def _app(service: str, make_settings: Any, tmp_path: Path) -> Any:
    settings = service_settings(
        service,
        make_settings,
        f"sqlite+aiosqlite:///{tmp_path / f'{service}-{uuid.uuid4().hex[:6]}.db'}",
        None,
        tmp_path,
    )
    return service_app(service, settings)


def _refused(r: Any) -> bool:
    return r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("service", SERVICES)
async def test_a_50_mb_body_is_refused_unread_on_every_route(
    service: str, make_settings: Any, tmp_path: Path
) -> None:
    """Every route that takes a body, without a token and with one: 413 before a byte is
    read. The upload routes take 50 MB (their cap is larger) and refuse their own cap's
    worth plus one byte the same way."""
    app = _app(service, make_settings, tmp_path)
    writes = [(m, p) for m, p in routes(app) if m in ("POST", "PUT", "PATCH")]
    writes += [(m, p) for m, p in UPLOADS if service == "registry"]
    assert writes
    wrong = []
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        for method, path in sorted(set(writes)):
            url = path.replace("{", "").replace("}", "")  # any value: routing is what counts
            size = MAX_UPLOAD_BYTES + CHUNK + 1 if (method, path) in UPLOADS else 50 * MiB
            body = Body(size)
            started = time.perf_counter()
            r = await client.request(
                method,
                url,
                content=body,
                headers={"Content-Type": "application/json", "Content-Length": str(size)},
            )
            took = time.perf_counter() - started
            if not _refused(r) or body.pulled or took > 5:
                wrong.append(f"{method} {path}: {r.status_code}, {body.pulled} chunks, {took:.1f}s")
            elif r.json()["type"] != "https://bekal.id/problems/content-too-large":
                wrong.append(f"{method} {path}: {r.text[:100]}")
    print(f"\n{service}: {len(writes)} routes refused a body over their cap unread")
    assert not wrong, "\n".join(wrong)


async def test_a_chunked_body_is_cut_off_once_past_the_cap(
    make_settings: Any, tmp_path: Path
) -> None:
    """No Content-Length to go by: the bytes are counted as they come."""
    app = _app("registry", make_settings, tmp_path)
    settings = app.state.settings
    admin = bearer(settings, ministry="corrections", roles=["registry_admin"])
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        for headers in ({}, admin):
            body = Body(50 * MiB)
            r = await client.post(
                "/api/v1/inmates",
                content=body,
                headers={"Content-Type": "application/json", **headers},
            )
            assert _refused(r), r.text[:200]
            # Pulled up to the cap and one chunk more, never the 50 MB.
            assert body.pulled <= settings.http_max_body_bytes // CHUNK + 1, body.pulled
        # Under the cap, the same route answers as it always did.
        r = await client.post("/api/v1/inmates", json={"nik": "x"}, headers=admin)
        assert r.status_code == 422, r.text


async def test_the_csv_upload_takes_more_than_the_default_cap_streamed(
    make_settings: Any, tmp_path: Path
) -> None:
    app = _app("registry", make_settings, tmp_path)
    settings = app.state.settings
    admin = bearer(settings, ministry="corrections", roles=["registry_admin"])
    header = "nik,nama\n"
    size = 2 * settings.http_max_body_bytes
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:

        async def csv() -> AsyncIterator[bytes]:
            yield header.encode()
            line = b"3201010101010001,Nama Orang\n"
            sent = len(header)
            while sent < size:
                yield line * 1000
                sent += len(line) * 1000

        r = await client.post(
            "/api/v1/imports?dry_run=true",
            content=csv(),
            headers={"Content-Type": "text/csv", **admin},
        )
        assert r.status_code == 202, r.text[:300]
