"""The four services as separate processes on a broker, and a client that calls them as staff."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bekal.devtools.broker import Broker, free_port
from bekal.devtools.devrun import SERVICES, Platform
from bekal.shared.auth import mint_token
from bekal.shared.settings import Settings


@contextmanager
def started_platform(
    broker: Broker, root: Path, *, namespace: str, env: Mapping[str, str] = {}
) -> Iterator[Platform]:
    """Started and ready, on free ports and topics of its own (``namespace`` + a random tag)."""
    p = Platform(
        root=root,
        ports={s: free_port() for s in SERVICES},
        bootstrap_servers=broker.bootstrap_servers,
        extra_env={
            "KAFKA_NAMESPACE": f"{namespace}{uuid.uuid4().hex[:6]}.",
            "KAFKA_ENABLE_IDEMPOTENCE": str(broker.idempotent).lower(),
            "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
            # A new group member waits about half the session timeout to join: keep it short.
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            **env,
        },
    )
    p.start()
    try:
        p.wait_ready(timeout=180)
        yield p
    finally:
        p.stop()


class PlatformClient:
    """Calls a service over HTTP as corrections staff, industry staff, or anonymously."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        settings = Settings(auth_dev_key_file=platform.key_file)
        self.tokens = {
            "corrections": mint_token(
                settings, subject="kanwil-admin", ministry="corrections", roles=["registry_admin"]
            ),
            "industry": mint_token(
                settings,
                subject="ikma-admin",
                ministry="industry",
                roles=[
                    "training_admin",
                    "training_officer",
                    "certification_admin",
                    "reporting_viewer",
                ],
            ),
        }
        self.http = httpx.Client(timeout=30)

    def __call__(
        self,
        method: str,
        service: str,
        path: str,
        *,
        as_: str | None,
        json: Any = None,
        expect: int | None = 200,
    ) -> Any:
        """The answer's JSON (or text); ``expect=None`` takes any status."""
        headers = {"Authorization": f"Bearer {self.tokens[as_]}"} if as_ else {}
        r = self.http.request(method, self.platform.url(service) + path, json=json, headers=headers)
        if expect is not None:
            assert r.status_code == expect, (
                f"{method} {service}{path}: {r.status_code} {r.text[:800]}"
            )
        if "json" in r.headers.get("content-type", "") and r.content:
            return r.json()
        return r.text or None


def eventually(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """``check()``'s first truthy answer, polled; fails with the last answer after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
