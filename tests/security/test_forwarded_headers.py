"""Forwarded headers name the client only when a proxy the settings trust sent them.

The public verification's rate limit counts per client: if anyone could name their own address
in X-Forwarded-For, rotating it would make every guess a new client. These run the app the way
`bekal serve` does (uvicorn on a real socket, its options from bekal.shared.cli), and in
process behind a configured proxy.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.datastructures import Headers

from bekal.certification.app import create_app
from bekal.devtools.broker import free_port
from bekal.shared.cli import uvicorn_options
from bekal.shared.guards import parse_networks, resolve_client
from bekal.shared.settings import Settings
from tests.security.support import client_for
from tests.support.certification import certification_settings

pytestmark = pytest.mark.integration

LIMIT = 10  # verifications per client per minute, for these tests
SENT = 100


def _app(make_settings: Any, tmp_path: Path, **overrides: object) -> FastAPI:
    settings = certification_settings(
        make_settings,
        f"sqlite+aiosqlite:///{tmp_path / 'verify.db'}",
        None,  # type: ignore[arg-type]  # no broker: HTTP serves while messaging retries
        tmp_path,
        verify_rate_limit_per_minute=LIMIT,
        **overrides,
    )
    return create_app(settings)


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` under uvicorn on loopback, with the options `bekal serve` gives it."""
    settings: Settings = app.state.settings
    options = {**uvicorn_options(settings), "host": "127.0.0.1", "port": free_port()}
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **options))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.1)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{options['port']}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=60)


async def _burst(client: httpx.AsyncClient, header: str) -> tuple[int, int]:
    """SENT verifications, each naming a new client in ``header``: (answered, limited)."""
    answered = limited = 0
    for n in range(SENT):
        forwarded = f"198.51.100.{n + 1}"
        value = forwarded if header == "X-Forwarded-For" else f"for={forwarded};proto=https"
        r = await client.get(f"/public/verify/{secrets.token_urlsafe(18)}", headers={header: value})
        if r.status_code == 429:
            limited += 1
        else:
            assert r.status_code == 200, r.text
            answered += 1
    return answered, limited


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded"])
async def test_a_rotating_forwarded_header_from_loopback_is_rate_limited_under_bekal_serve(
    make_settings: Any, tmp_path: Path, header: str
) -> None:
    """Uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told not to: `bekal serve` tells
    it, and the app trusts no proxy by default."""
    app = _app(make_settings, tmp_path)
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        answered, limited = await _burst(client, header)
    print(f"\n{header} rotated {SENT} times from loopback: {answered} answered, {limited} limited")
    assert (answered, limited) == (LIMIT, SENT - LIMIT)


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    make_settings: Any, tmp_path: Path
) -> None:
    app = _app(make_settings, tmp_path, trusted_proxies="10.0.0.0/8")
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=60),
        client_for(app, peer="10.1.2.3") as proxy,
    ):
        # Each forwarded client has a limit of its own...
        answered, limited = await _burst(proxy, "X-Forwarded-For")
        assert (answered, limited) == (SENT, 0)
        # ...and one client behind the proxy is limited however many hops it makes up
        # to the left of the address the proxy appended.
        outcomes = []
        for n in range(LIMIT + 5):
            r = await proxy.get(
                f"/public/verify/{secrets.token_urlsafe(18)}",
                headers={"X-Forwarded-For": f"203.0.113.{n}, 192.0.2.77"},
            )
            outcomes.append(r.status_code)
        assert outcomes.count(200) == LIMIT and outcomes.count(429) == 5, outcomes
        # The same headers from a peer that is not a trusted proxy count for nothing.
        async with client_for(app, peer="192.0.2.200") as stranger:
            answered, limited = await _burst(stranger, "X-Forwarded-For")
            assert (answered, limited) == (LIMIT, SENT - LIMIT)


def _headers(**values: str) -> Headers:
    return Headers(headers={k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # No trusted proxy sent it: the socket's peer, whatever the headers say.
        ("192.0.2.9", {"x_forwarded_for": "203.0.113.5"}, "192.0.2.9"),
        ("127.0.0.1", {"forwarded": "for=203.0.113.5"}, "127.0.0.1"),
        # The proxy appended the client; what the client wrote to the left is not read.
        ("10.0.0.2", {"x_forwarded_for": "1.2.3.4, 203.0.113.5"}, "203.0.113.5"),
        # Two trusted proxies in a row: the first hop outside them.
        ("10.0.0.2", {"x_forwarded_for": "203.0.113.5, 10.0.0.7"}, "203.0.113.5"),
        # RFC 7239, IPv6 with a port, quoted.
        ("10.0.0.2", {"forwarded": 'for="[2001:db8::17]:4711";proto=https'}, "2001:db8::17"),
        ("10.0.0.2", {"forwarded": "for=203.0.113.5:8080"}, "203.0.113.5"),
        # Forwarded wins over X-Forwarded-For when both are there.
        ("10.0.0.2", {"forwarded": "for=203.0.113.5", "x_forwarded_for": "1.2.3.4"}, "203.0.113.5"),
        # A hop that is not an address: the proxy that reported it, never a chosen name.
        ("10.0.0.2", {"x_forwarded_for": "1.2.3.4, unknown"}, "10.0.0.2"),
        ("10.0.0.2", {"forwarded": "for=_hidden"}, "10.0.0.2"),
        # Nothing forwarded: the proxy itself.
        ("10.0.0.2", {}, "10.0.0.2"),
    ],
)
def test_the_client_address_is_resolved_from_trusted_proxies_only(
    peer: str, headers: dict[str, str], client: str
) -> None:
    assert resolve_client(peer, _headers(**headers), parse_networks("10.0.0.0/8")) == client


def test_trusted_proxies_must_be_addresses() -> None:
    assert Settings(trusted_proxies="10.0.0.0/8, 192.0.2.7").trusted_proxies
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        Settings(trusted_proxies="proxy.internal")
    assert resolve_client("10.0.0.2", _headers(x_forwarded_for="1.2.3.4"), ()) == "10.0.0.2"
