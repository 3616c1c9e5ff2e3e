"""What the security tests share: the four apps, their routes, and every kind of caller."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from bekal.certification.app import create_app as create_certification
from bekal.devtools.broker import EmbeddedBroker
from bekal.registry.app import create_app as create_registry
from bekal.reporting.app import create_app as create_reporting
from bekal.shared.auth import ROLE_MINISTRY, Ministry, Role, mint_token
from bekal.shared.settings import Settings
from bekal.shared.web import STAFF as STAFF_PAGES
from bekal.training.app import create_app as create_training
from tests.support.certification import certification_settings

SERVICES = ("registry", "training", "certification", "reporting")
PSEUDONYM_SECRET = "security-test-pseudonym-secret"

# The facility whose inmates the matrix touches, and another one.
OWN_FACILITY, OTHER_FACILITY = "LP-SATU", "LP-DUA"


def service_settings(
    service: str,
    make_settings: Callable[..., Settings],
    database_url: str,
    broker: EmbeddedBroker | None,
    tmp_path: Path,
    **overrides: object,
) -> Settings:
    if service == "certification":
        return certification_settings(make_settings, database_url, broker, tmp_path, **overrides)  # type: ignore[arg-type]
    if service == "registry":
        overrides.setdefault("pseudonym_secret", PSEUDONYM_SECRET)
    return make_settings(service, database_url, broker, **overrides)  # type: ignore[no-any-return]


def service_app(service: str, settings: Settings) -> FastAPI:
    factory = {
        "registry": create_registry,
        "training": create_training,
        "certification": create_certification,
        "reporting": create_reporting,
    }[service]
    return factory(settings)


def client_for(app: FastAPI, *, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    """In process, as ``peer``; an error the app did not handle comes back as its 500."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, hidden ones included; HEAD rides along with GET.

    The staff pages (under /staf) answer a page session, never a bearer token: they admit by
    the API's rules, tested through Keycloak in tests/web/test_registry_pages.py.
    """
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        if not path or path == STAFF_PAGES or path.startswith(STAFF_PAGES + "/"):
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, path))
    return sorted(found, key=lambda mp: (mp[1], mp[0]))


@dataclass(frozen=True)
class Caller:
    """Someone calling the API: nobody, a forged token, or a signed-in person."""

    name: str
    ministry: Ministry | None = None  # None: no token at all
    roles: tuple[str, ...] = ()
    facilities: tuple[str, ...] = ()
    forged: bool = False  # signed with a key the services do not trust

    @property
    def signed_in(self) -> bool:
        return self.ministry is not None and not self.forged

    @property
    def effective_roles(self) -> frozenset[str]:
        """What the caller may rightly hold: a role of the other side counts for nothing."""
        if not self.signed_in:
            return frozenset()
        return frozenset(
            r for r in self.roles if ROLE_MINISTRY.get(Role(r)) in (None, self.ministry)
        )

    def headers(self, settings: Settings) -> dict[str, str]:
        if self.ministry is None:
            return {}
        if self.forged:
            now = int(time.time())
            claims = {
                "sub": self.name,
                "iss": settings.auth_issuer,
                "aud": settings.auth_audience,
                "iat": now,
                "nbf": now,
                "exp": now + 600,
                "ministry": self.ministry.value,
                "roles": list(self.roles),
                "facilities": list(self.facilities),
            }
            token = jwt.encode(
                claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "dev"}
            )
        else:
            token = mint_token(
                settings,
                subject=self.name,
                ministry=self.ministry.value,
                roles=list(self.roles),
                facilities=list(self.facilities),
                audience=settings.auth_audience,  # this service's alone
            )
        return {"Authorization": f"Bearer {token}"}


CORR, IND = Ministry.CORRECTIONS, Ministry.INDUSTRY
ANONYMOUS = Caller("anonymous")
FORGED = Caller("forged-key", CORR, (Role.REGISTRY_ADMIN, Role.OPERATOR), forged=True)
REGISTRY_ADMIN = Caller("registry_admin", CORR, (Role.REGISTRY_ADMIN,))
FACILITY_OWN = Caller("facility_officer", CORR, (Role.FACILITY_OFFICER,), (OWN_FACILITY,))
FACILITY_OTHER = Caller(
    "facility_officer(other)", CORR, (Role.FACILITY_OFFICER,), (OTHER_FACILITY,)
)
VIEWER_C = Caller("reporting_viewer(C)", CORR, (Role.REPORTING_VIEWER,))
OPERATOR_C = Caller("operator(C)", CORR, (Role.OPERATOR,))
TRAINING_ADMIN = Caller("training_admin", IND, (Role.TRAINING_ADMIN,))
TRAINING_OFFICER = Caller("training_officer", IND, (Role.TRAINING_OFFICER,))
FIELD_OFFICER = Caller("field_officer", IND, (Role.FIELD_OFFICER,))
CERTIFICATION_ADMIN = Caller("certification_admin", IND, (Role.CERTIFICATION_ADMIN,))
VIEWER_I = Caller("reporting_viewer(I)", IND, (Role.REPORTING_VIEWER,))
OPERATOR_I = Caller("operator(I)", IND, (Role.OPERATOR,))
# Tokens claiming every role of the other side: the claims must count for nothing.
C_CLAIMING_INDUSTRY = Caller(
    "corrections-claiming-industry-roles",
    CORR,
    (Role.TRAINING_ADMIN, Role.TRAINING_OFFICER, Role.FIELD_OFFICER, Role.CERTIFICATION_ADMIN),
)
I_CLAIMING_CORRECTIONS = Caller(
    "industry-claiming-corrections-roles",
    IND,
    (Role.REGISTRY_ADMIN, Role.FACILITY_OFFICER),
    (OWN_FACILITY,),
)

CALLERS: tuple[Caller, ...] = (
    ANONYMOUS,
    FORGED,
    VIEWER_C,
    OPERATOR_C,
    TRAINING_OFFICER,
    FIELD_OFFICER,
    CERTIFICATION_ADMIN,
    VIEWER_I,
    OPERATOR_I,
    C_CLAIMING_INDUSTRY,
    I_CLAIMING_CORRECTIONS,
    FACILITY_OTHER,
    # Last, as they may change what they touch: the ones before must find it untouched.
    FACILITY_OWN,
    TRAINING_ADMIN,
    REGISTRY_ADMIN,
)


def peer_of(caller: Caller) -> str:
    """A client address per caller, so per-client limits of one never count another's."""
    return f"10.9.{CALLERS.index(caller)}.{uuid.uuid4().int % 250 + 1}"
