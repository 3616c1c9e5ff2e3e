"""The staff pages under test: a service served on a real port (the provider sends the browser
back to it), a person signed in through Keycloak's own form, forms posted with their token."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.keycloak import (
    CLIENT_ID,
    CLIENT_SECRET,
    Keycloak,
    User,
    browser_like,
    submit_login,
)
from tests.support.keycloak import free_port as free_port

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def provider_settings(keycloak: Keycloak) -> dict[str, Any]:
    """Settings naming Keycloak both for the API's bearer tokens and the pages' sign-in."""
    return {
        "auth_issuer": keycloak.issuer,
        "auth_jwks_url": keycloak.jwks_url,
        "web_oidc_issuer": keycloak.issuer,
        "web_oidc_client_id": CLIENT_ID,
        "web_oidc_client_secret": CLIENT_SECRET,
    }


@asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[str]:
    """``app`` under uvicorn on 127.0.0.1:``port``; HTTP serves while the broker is away."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.1)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=60)


@asynccontextmanager
async def signed_in(
    base: str, user: User, *, next_page: str = "/staf"
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client signed in as ``user`` through Keycloak's sign-in form."""
    async with browser_like(httpx.AsyncClient(base_url=base, timeout=30)) as client:
        login = await client.get(f"/staf/masuk/oidc?next={next_page}", follow_redirects=True)
        assert login.status_code == 200, login.text[:500]
        back = await submit_login(client, login, user)
        assert back.startswith(f"{base}/staf/masuk/kembali"), back
        landed = await client.get(back)
        assert landed.status_code == 303, landed.text[:1000]
        yield client


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, "no form on the page"
    return found.group(1)


async def post_form(
    client: httpx.AsyncClient, page_path: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Open ``page_path``, then post ``data`` to ``action`` with the page's CSRF token."""
    page = await client.get(page_path)
    assert page.status_code == 200, page.text[:500]
    return await client.post(action, data={"csrf_token": csrf_of(page), **data})
