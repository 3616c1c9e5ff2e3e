"""A token whose key must be fetched from the provider's JWKS does not stall the event loop.

The key set is served by a real HTTP server on loopback that answers slowly, as a provider
under load or across a slow link does: other requests go on meanwhile, and a token verified
once is taken again without asking the provider.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from bekal.shared.auth import TokenVerifier
from bekal.shared.settings import Settings

SLOW = 0.5  # seconds the provider takes to answer
KEY = Ed25519PrivateKey.generate()


class _SlowJwks(BaseHTTPRequestHandler):
    served = 0

    def do_GET(self) -> None:
        time.sleep(SLOW)
        jwk = json.loads(OKPAlgorithm.to_jwk(KEY.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "EdDSA"}]})
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def jwks_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowJwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks"
    finally:
        server.shutdown()
        server.server_close()


def _token(settings: Settings) -> str:
    now = int(time.time())
    claims = {
        "sub": "officer",
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "iat": now,
        "exp": now + 300,
        "ministry": "industry",
        "roles": ["training_admin"],
    }
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": "k1"})


async def test_fetching_the_key_set_leaves_the_event_loop_free(jwks_url: str) -> None:
    settings = Settings(auth_jwks_url=jwks_url)
    verifier = TokenVerifier(settings)
    token = _token(settings)
    ticks = 0

    async def other_requests() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(other_requests())
    try:
        principal = await verifier.verify_async(token)
    finally:
        ticker.cancel()
    assert principal.subject == "officer"
    # Half a second of waiting on the provider: the loop turned all along (a blocked loop
    # would have ticked once at most).
    assert ticks >= int(SLOW / 0.01) // 3

    served = _SlowJwks.served
    again = await verifier.verify_async(token)
    assert again.subject == "officer"
    assert _SlowJwks.served == served  # taken from what was verified, not asked again
