"""The public certificate verification under a burst: limited per client, and nothing to walk.

Certificates come from real ParticipantCompleted events on the broker. Whoever probes the
public endpoints learns nothing from a miss: an unknown code, a malformed one, a real number
without the holder's name and a revoked certificate's number all get the same answer; codes
are random (144 bits), and a burst of guesses finds nothing before the limit stops it.
"""

from __future__ import annotations

import secrets
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from bekal.certification.app import create_app
from bekal.certification.models import Certificate
from tests.security.support import client_for
from tests.support.apps import bearer, running
from tests.support.certification import certification_settings
from tests.support.db import count
from tests.support.factories import participant_completed
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

LIMIT = 25  # verifications per client per minute
VARYING_HEADERS = {"x-request-id", "date", "content-length"}


async def _issued(app: FastAPI, n: int) -> bool:
    return await count(app.state.db, Certificate) == n


def _answer(r: httpx.Response) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    """What a prober sees of an answer, less what differs on every request anyway."""
    headers = tuple(sorted((k, v) for k, v in r.headers.items() if k not in VARYING_HEADERS))
    return r.status_code, r.text, headers


def _random_code() -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(secrets.choice(alphabet) for _ in range(24))


@pytest.fixture
async def certification(
    broker: Any, make_settings: Any, tmp_path: Path
) -> Any:  # an app with three certificates, one of them revoked
    settings = certification_settings(
        make_settings,
        f"sqlite+aiosqlite:///{tmp_path / 'verify.db'}",
        broker,
        tmp_path,
        verify_rate_limit_per_minute=LIMIT,
    )
    app = create_app(settings)
    people = [
        participant_completed(participant_name=n)
        for n in ("Siti Rahmawati", "Dewi Lestari", "Rina Wulandari")
    ]
    async with running(app) as client:
        await publish(settings, people)
        await wait_until(lambda: _issued(app, 3), what="three certificates issued")
        admin = bearer(settings, ministry="industry", roles=["certification_admin"])
        r = await client.get("/api/v1/certificates", headers=admin)
        certificates = sorted(r.json()["data"], key=lambda c: c["number"])
        revoked = certificates[0]
        r = await client.post(
            f"/api/v1/certificates/{revoked['id']}/revoke",
            json={"reason": "Diterbitkan atas data kelulusan yang keliru"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        yield app, certificates


async def test_a_miss_reveals_nothing_whatever_was_asked(certification: Any) -> None:
    app, certificates = certification
    revoked, valid = certificates[0], certificates[1]
    probes = {
        "unknown code": _random_code(),
        "real number, no name": valid["number"],
        "real number, wrong name": (valid["number"], "Budi Santoso"),
        "revoked number, no name": revoked["number"],
        "revoked number, wrong name": (revoked["number"], "Budi Santoso"),
        "next number in sequence": "IKMA/2024/000004",
        "malformed: traversal": "../../etc/passwd",
        "malformed: injection": "' OR '1'='1",
        "malformed: too long": "A" * 200,
        "malformed: control characters": "\x00\x1b[31m",
        "malformed: blank": " ",
    }
    seen: dict[str, set[Any]] = {"json": set(), "page": set()}
    for n, (what, probe) in enumerate(probes.items()):
        code, name = probe if isinstance(probe, tuple) else (probe, None)
        params = {"name": name} if name else {}
        # A client of its own for each probe: the limit is not what answers here.
        async with client_for(app, peer=f"10.20.0.{n + 1}") as client:
            r = await client.get(f"/public/verify/{quote(code, safe='')}", params=params)
            assert r.status_code == 200, (what, r.text)
            assert r.json() == {"result": "unknown"}, (what, r.text)
            seen["json"].add(_answer(r))
            r = await client.get(f"/verify/{quote(code, safe='')}", params=params)
            seen["page"].add(_answer(r))
    assert len(seen["json"]) == 1 and len(seen["page"]) == 1, seen

    # What does answer: the holder's own code, or the number together with the right name.
    async with client_for(app, peer="10.20.1.1") as client:
        r = await client.get(f"/public/verify/{valid['verification_code']}")
        assert r.json()["result"] == "valid"
        r = await client.get(
            f"/public/verify/{quote(valid['number'], safe='')}",
            params={"name": valid["recipient_name"]},
        )
        assert r.json()["result"] == "valid"
        r = await client.get(f"/public/verify/{revoked['verification_code']}")
        assert r.json()["result"] == "revoked"

    codes = [c["verification_code"] for c in certificates]
    assert len(set(codes)) == len(codes) and all(len(c) >= 24 for c in codes)
    assert len({c[:4] for c in codes}) == len(codes)  # no shared prefix, no sequence
    print(
        f"\n{len(probes)} kinds of miss, JSON and page: 1 answer each; "
        f"codes of {len(codes[0])} url-safe characters ({len(codes[0]) * 6} bits)"
    )


async def test_a_burst_of_guesses_finds_nothing_and_is_limited_while_others_are_served(
    certification: Any,
) -> None:
    app, _ = certification
    sent, answered, limited, found = 0, 0, 0, 0
    retry_after: set[int] = set()
    async with (
        client_for(app, peer="10.30.0.1") as prober,
        client_for(app, peer="10.30.0.2") as neighbour,
    ):
        for n in range(LIMIT * 4):
            # Changing X-Forwarded-For does not make a new client: the socket's peer does.
            headers = {"X-Forwarded-For": f"192.0.2.{n % 250}"}
            code = _random_code()
            if n % 3 == 0:
                r = await prober.get(f"/public/verify/{code}", headers=headers)
            elif n % 3 == 1:
                r = await prober.get(f"/verify/{code}", headers=headers)
            else:
                r = await prober.post(
                    "/public/verify", json={"credential": f"a.{code}.b"}, headers=headers
                )
            sent += 1
            if r.status_code == 429:
                limited += 1
                retry_after.add(int(r.headers["retry-after"]))
                if not r.url.path.startswith("/verify/"):
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert r.json()["status"] == 429
                assert r.headers["cache-control"] == "no-store"
                continue
            assert r.status_code == 200, r.text
            answered += 1
            # A guessed code is unknown; a made-up credential is invalid (forged): neither
            # finds a certificate.
            if r.url.path.startswith("/public/") and r.json()["result"] in ("valid", "revoked"):
                found += 1
        r = await neighbour.get(f"/public/verify/{_random_code()}")
        assert r.status_code == 200 and r.json() == {"result": "unknown"}
        r = await prober.get(f"/public/verify/{_random_code()}")
        assert r.status_code == 429  # still limited: the window has not moved on

    print(
        f"\nburst from one client: {sent} sent, {answered} answered, {limited} limited "
        f"(Retry-After {min(retry_after)}-{max(retry_after)} s), {found} found; "
        "another client answered at once"
    )
    assert answered == LIMIT and limited == sent - LIMIT and found == 0
    assert all(1 <= s <= 60 for s in retry_after)
