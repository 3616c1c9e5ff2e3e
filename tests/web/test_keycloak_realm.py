"""The test realm issues tokens the API accepts as it accepts its own: same claims, same rules.

The authorization code flow with PKCE, driven over HTTP as a browser would, against Keycloak.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from bekal.shared.auth import Ministry, TokenVerifier
from bekal.shared.problems import Unauthorized
from bekal.shared.settings import SERVICES, Settings
from tests.support.keycloak import (
    ADMIN,
    CERTIFIER,
    CLIENT_ID,
    CLIENT_SECRET,
    INDUSTRY_USER,
    OFFICER,
    VIEWER,
    Keycloak,
    User,
    browser_like,
    submit_login,
)

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:8001/auth/callback"


async def access_token(keycloak: Keycloak, user: User) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query = urlencode(
        {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": REDIRECT,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    endpoint = f"{keycloak.issuer}/protocol/openid-connect"
    async with browser_like(httpx.AsyncClient()) as browser:
        page = await browser.get(f"{endpoint}/auth?{query}")
        assert page.status_code == 200
        back = await submit_login(browser, page, user)
    assert back.startswith(REDIRECT)
    code = parse_qs(urlsplit(back).query)["code"][0]
    async with httpx.AsyncClient() as server:
        answer = await server.post(
            f"{endpoint}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def verifier_for(keycloak: Keycloak, service: str = "registry") -> TokenVerifier:
    return TokenVerifier(
        Settings(
            service_name=service,
            auth_issuer=keycloak.issuer,
            auth_jwks_url=keycloak.jwks_url,
            environment="test",
        )
    )


@pytest.mark.parametrize(
    "user",
    [OFFICER, ADMIN, INDUSTRY_USER, CERTIFIER, VIEWER],
    ids=lambda u: u.username,
)
async def test_realm_tokens_carry_the_claims_the_api_reads(keycloak: Keycloak, user: User):
    token = await access_token(keycloak, user)
    principal = verifier_for(keycloak).verify(token)
    assert principal.ministry is Ministry(user.ministry)
    assert set(user.roles) <= principal.roles
    assert principal.facilities == frozenset(user.facilities)
    assert principal.facility_scoped is (user is OFFICER)
    # The staff pages' client is every service's: its tokens name each one's audience.
    for service in SERVICES:
        assert verifier_for(keycloak, service).verify(token).subject == principal.subject
    # ...and no service accepts a token that does not name it.
    with pytest.raises(Unauthorized):
        verifier_for(keycloak, "elsewhere").verify(token)


async def test_pkce_is_required(keycloak: Keycloak):
    query = urlencode(
        {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": REDIRECT,
        }
    )
    async with httpx.AsyncClient() as browser:
        page = await browser.get(f"{keycloak.issuer}/protocol/openid-connect/auth?{query}")
    # Without a code challenge Keycloak sends the browser back with an error, never a form.
    assert page.status_code == 302
    assert "error=invalid_request" in page.headers["location"]
