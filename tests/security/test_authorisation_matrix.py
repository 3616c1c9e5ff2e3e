"""Every endpoint of every service x every kind of caller -> the answer its rule expects.

The rules are one table, by service, method and route. The cases are generated from the apps'
routes: a route without a rule fails, and so does a rule whose route is gone. Requests go in
process to the real apps on a real database, with tokens signed by the development key.

"Admitted" means neither 401 nor 403 (a made-up id or an empty body may well give 404 or 422);
"refused" means 401 without a valid token, 403 with the wrong role, and 404 for facility staff
asking about another facility's inmates (they learn nothing, not even that the id exists).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bekal.shared.auth import Ministry, Role
from tests.security.support import (
    CALLERS,
    FACILITY_OTHER,
    FACILITY_OWN,
    OTHER_FACILITY,
    OWN_FACILITY,
    REGISTRY_ADMIN,
    SERVICES,
    Caller,
    client_for,
    routes,
    service_app,
    service_settings,
)
from tests.support.apps import running

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Rule:
    """Who is admitted: anyone (public), or holders of ``roles`` on the ``ministry`` side."""

    roles: frozenset[str] = frozenset()
    ministry: Ministry | None = None
    public: bool = False
    any_signed_in: bool = False  # a valid token is enough, whatever its roles
    # What facility staff of ANOTHER facility get, where the route names one facility's data.
    other_facility: int | None = None
    # What the person's OWN facility's staff get, where the route also reaches another facility
    # (a transfer to it: authority over both facilities is needed).
    own_facility: int | None = None

    def expected(self, caller: Caller) -> str:
        if self.public:
            return "admitted"
        if not caller.signed_in:
            return "401"
        if self.any_signed_in:
            return "admitted"
        if self.ministry is not None and caller.ministry is not self.ministry:
            return "403"
        if not caller.effective_roles & self.roles:
            return "403"
        if caller is FACILITY_OTHER and self.other_facility is not None:
            return str(self.other_facility)
        if caller is FACILITY_OWN and self.own_facility is not None:
            return str(self.own_facility)
        return "admitted"


def public() -> Rule:
    return Rule(public=True)


def signed_in() -> Rule:
    return Rule(any_signed_in=True)


def corrections(
    *roles: str, other_facility: int | None = None, own_facility: int | None = None
) -> Rule:
    return Rule(
        frozenset(roles),
        Ministry.CORRECTIONS,
        other_facility=other_facility,
        own_facility=own_facility,
    )


def industry(*roles: str) -> Rule:
    return Rule(frozenset(roles), Ministry.INDUSTRY)


def either_side(*roles: str) -> Rule:
    return Rule(frozenset(roles), None)


ADMIN, FACILITY = Role.REGISTRY_ADMIN, Role.FACILITY_OFFICER
T_ADMIN, T_OFFICER, FIELD = Role.TRAINING_ADMIN, Role.TRAINING_OFFICER, Role.FIELD_OFFICER
C_ADMIN, VIEWER, OPERATOR = Role.CERTIFICATION_ADMIN, Role.REPORTING_VIEWER, Role.OPERATOR
STAFF = (ADMIN, FACILITY)  # corrections staff; facility staff only for their facilities
READERS = (VIEWER, ADMIN, T_ADMIN, C_ADMIN)  # aggregate reports, no one named

# Every service: health, metrics and the published contracts are public (no personal data).
COMMON: dict[str, Rule] = {
    "GET /healthz": public(),
    "GET /readyz": public(),
    "GET /metrics": public(),
    "GET /asyncapi": public(),
    "GET /asyncapi.json": public(),
    "GET /openapi.json": public(),
    "GET /docs": public(),
    "GET /docs-start.js": public(),
    "GET /redoc": public(),
}


def dead_letters(rule: Rule) -> dict[str, Rule]:
    """A service's dead letters: its own ministry's operators only (reporting: both)."""
    return {
        "GET /admin/dead-letters": rule,
        "POST /admin/dead-letters/{dead_letter_id}/retry": rule,
        "DELETE /admin/dead-letters/{dead_letter_id}": rule,
    }


RULES: dict[str, dict[str, Rule]] = {
    "registry": {
        **COMMON,
        "POST /api/v1/facilities": corrections(ADMIN),
        "GET /api/v1/facilities": signed_in(),
        "GET /api/v1/facilities/{facility_id}": signed_in(),
        "PATCH /api/v1/facilities/{facility_id}": corrections(ADMIN),
        "GET /api/v1/facilities/{facility_id}/candidates": corrections(*STAFF, other_facility=404),
        "POST /api/v1/inmates": corrections(*STAFF, other_facility=403),
        "GET /api/v1/inmates": corrections(*STAFF),  # scoped to the caller's facilities
        "GET /api/v1/inmates/{inmate_id}": corrections(*STAFF, other_facility=404),
        "GET /api/v1/inmates/{inmate_id}/subject-access": corrections(ADMIN),
        "POST /api/v1/inmates/{inmate_id}/consent": corrections(*STAFF, other_facility=404),
        "POST /api/v1/inmates/{inmate_id}/release": corrections(*STAFF, other_facility=404),
        # To the other facility: one facility's staff lack authority over the destination.
        "POST /api/v1/inmates/{inmate_id}/transfer": corrections(
            *STAFF, other_facility=404, own_facility=403
        ),
        "POST /api/v1/inmates/{inmate_id}/expected-release": corrections(
            *STAFF, other_facility=404
        ),
        "POST /api/v1/inmates/{inmate_id}/absence": corrections(*STAFF, other_facility=404),
        "POST /api/v1/inmates/{inmate_id}/return": corrections(*STAFF, other_facility=404),
        "POST /api/v1/inmates/{inmate_id}/death": corrections(*STAFF, other_facility=404),
        "POST /api/v1/inmates/{inmate_id}/merge": corrections(ADMIN),
        "POST /api/v1/inmates/{inmate_id}/erasure": corrections(ADMIN),
        "GET /api/v1/audit": corrections(ADMIN),
        "POST /api/v1/imports": corrections(ADMIN),
        "GET /api/v1/imports/{job_id}": corrections(ADMIN),
    },
    "training": {
        **COMMON,
        **dead_letters(industry(OPERATOR)),
        "GET /api/v1/facilities": industry(T_ADMIN, T_OFFICER),
        "GET /api/v1/facilities/{facility_id}": industry(T_ADMIN, T_OFFICER),
        "GET /api/v1/participants": industry(T_ADMIN, T_OFFICER),
        "GET /api/v1/participants/{participant_id}": industry(T_ADMIN, T_OFFICER),
        "POST /api/v1/programs": industry(T_ADMIN),
        "GET /api/v1/programs": industry(T_ADMIN, T_OFFICER),
        "GET /api/v1/programs/{program_id}": industry(T_ADMIN, T_OFFICER),
        "PUT /api/v1/programs/{program_id}": industry(T_ADMIN),
        "POST /api/v1/sessions": industry(T_ADMIN),
        "GET /api/v1/sessions": industry(T_ADMIN, T_OFFICER),
        "GET /api/v1/sessions/{session_id}": industry(T_ADMIN, T_OFFICER),
        "POST /api/v1/sessions/{session_id}/enrollments": industry(T_ADMIN, T_OFFICER),
        "POST /api/v1/sessions/{session_id}/open": industry(T_ADMIN, T_OFFICER),
        "POST /api/v1/sessions/{session_id}/start": industry(T_ADMIN, T_OFFICER),
        "PUT /api/v1/sessions/{session_id}/attendance": industry(T_ADMIN, T_OFFICER),
        "GET /api/v1/sessions/{session_id}/attendance/history": industry(T_ADMIN, T_OFFICER),
        "PUT /api/v1/sessions/{session_id}/assessments": industry(T_ADMIN, T_OFFICER),
        "POST /api/v1/sessions/{session_id}/complete": industry(T_ADMIN, T_OFFICER),
        "POST /api/v1/sessions/{session_id}/enrollments/{enrollment_id}/withdraw": industry(
            T_ADMIN, T_OFFICER
        ),
        "POST /api/v1/sessions/{session_id}/corrections": industry(T_ADMIN),
        "POST /api/v1/sessions/{session_id}/cancel": industry(T_ADMIN),
        "GET /api/v1/enrollments": industry(T_ADMIN, T_OFFICER, FIELD),
        "GET /api/v1/enrollments/{enrollment_id}/readiness": industry(T_ADMIN, T_OFFICER, FIELD),
        "PUT /api/v1/enrollments/{enrollment_id}/readiness": industry(T_ADMIN, T_OFFICER, FIELD),
        "GET /api/v1/enrollments/{enrollment_id}/follow-ups": industry(T_ADMIN, T_OFFICER, FIELD),
        "PUT /api/v1/enrollments/{enrollment_id}/follow-ups/{checkpoint_months}": industry(
            T_ADMIN, FIELD
        ),
    },
    "certification": {
        **COMMON,
        **dead_letters(industry(OPERATOR)),
        "GET /api/v1/certificates": industry(C_ADMIN, T_ADMIN, T_OFFICER),
        "GET /api/v1/certificates/{certificate_id}": industry(C_ADMIN, T_ADMIN, T_OFFICER),
        "GET /api/v1/certificates/{certificate_id}/pdf": industry(C_ADMIN, T_ADMIN, T_OFFICER),
        "GET /api/v1/certificates/{certificate_id}/credential": industry(
            C_ADMIN, T_ADMIN, T_OFFICER
        ),
        "GET /api/v1/sessions/{session_id}/certificates/pdf": industry(C_ADMIN, T_ADMIN, T_OFFICER),
        "POST /api/v1/certificates/{certificate_id}/revoke": industry(C_ADMIN),
        "POST /api/v1/certificates/{certificate_id}/reissue": industry(C_ADMIN),
        "POST /api/v1/participants/{participant_id}/erasure": industry(C_ADMIN),
        # What an employer or a verifier reads: public, rate-limited where it names a person.
        "GET /.well-known/jwks.json": public(),
        "GET /.well-known/did.json": public(),
        "GET /did.json": public(),
        "GET /status-lists/{status_list}": public(),
        "GET /contexts/sertifikat-v1.jsonld": public(),
        "POST /public/verify": public(),
        "GET /public/verify/{code:path}": public(),
        "GET /verify": public(),
        "GET /verify/{code:path}": public(),
        "GET /public/verifikasi.css": public(),
    },
    "reporting": {
        **COMMON,
        **dead_letters(either_side(OPERATOR)),
        "GET /api/v1/indicators": either_side(*READERS),
        "GET /api/v1/indicators.csv": either_side(*READERS),
        "GET /api/v1/indicators.xlsx": either_side(*READERS),
        "GET /api/v1/targets": either_side(*READERS),
        "GET /api/v1/targets/progress": either_side(*READERS),
        "GET /api/v1/targets/progress.csv": either_side(*READERS),
        "GET /api/v1/targets/progress.xlsx": either_side(*READERS),
        "GET /api/v1/targets/changes": either_side(*READERS),
        "PUT /api/v1/targets/{year}": industry(T_ADMIN),
        "GET /api/v1/admin/projections": either_side(OPERATOR),
        "POST /api/v1/admin/projections/rebuild": either_side(OPERATOR),
        "DELETE /api/v1/admin/projections/{number}": either_side(OPERATOR),
        # Aggregates with small counts suppressed, and a page that holds no data itself.
        "GET /public/summary": public(),
        "GET /public/open-data.json": public(),
        "GET /public/open-data.csv": public(),
        "GET /dashboard": public(),
        # The dashboard's body, rendered for the bearer token's holder.
        "GET /dashboard/isi": either_side(*READERS),
        "GET /dashboard/dasbor.js": public(),
        "GET /dashboard/dasbor.css": public(),
    },
}


def test_every_route_has_exactly_one_rule_and_every_rule_a_route(tmp_path: Path) -> None:
    from bekal.shared.settings import Settings

    problems: list[str] = []
    for service in SERVICES:
        settings = Settings(service_name=service, auth_dev_key_file=tmp_path / "dev.pem")
        app = service_app(service, _with_certification_defaults(service, settings, tmp_path))
        present = {f"{method} {path}" for method, path in routes(app)}
        for route in sorted(present - RULES[service].keys()):
            problems.append(f"no authorisation rule for {service}: {route}")
        for route in sorted(RULES[service].keys() - present):
            problems.append(f"a rule for a route that no longer exists: {service}: {route}")
    assert not problems, "\n".join(problems)


def _with_certification_defaults(service: str, settings: Any, tmp_path: Path) -> Any:
    if service != "certification":
        return settings
    from bekal.certification.settings import CertificationSettings

    return CertificationSettings(
        **{**settings.model_dump(), "certificate_signing_key_file": tmp_path / "cert.pem"}
    )


# --- the requests --------------------------------------------------------------------------


class World:
    """What the requests point at: two facilities and, per request, a fresh inmate."""

    def __init__(self, service: str, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.service = service
        self.app = app
        self.client = client
        self.facility_ids: dict[str, str] = {}
        self._serial = 0

    @property
    def admin(self) -> dict[str, str]:
        return REGISTRY_ADMIN.headers(self.app.state.settings)

    async def set_up(self) -> None:
        if self.service != "registry":
            return
        for code, province in ((OWN_FACILITY, "Kalimantan Barat"), (OTHER_FACILITY, "Banten")):
            r = await self.client.post(
                "/api/v1/facilities",
                headers=self.admin,
                json={
                    "code": code,
                    "name": f"Lapas {code}",
                    "kind": "lapas",
                    "facility_class": "IIA",
                    "province": province,
                    "regional_office": f"Kanwil {province}",
                    "capacity": 600,
                },
            )
            assert r.status_code == 201, r.text
            self.facility_ids[code] = r.json()["id"]

    def inmate_body(self) -> dict[str, Any]:
        self._serial += 1
        return {
            "registration_number": f"AI.2022.{self._serial:05d}",
            "full_name": "Warga Binaan Uji",
            "nik": f"6171{self._serial:012d}",
            "sex": "F",
            "date_of_birth": "1990-05-05",
            "education_level": "SMA",
            "facility_id": self.facility_ids[OWN_FACILITY],
            "admission_date": "2022-03-01",
            "expected_release_date": (date.today().replace(day=1).isoformat()),
            "consent": {"training": True, "data_sharing": True},
        }

    async def fresh_inmate(self) -> str:
        r = await self.client.post("/api/v1/inmates", headers=self.admin, json=self.inmate_body())
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def request_for(self, method: str, path: str) -> tuple[str, Any]:
        """The URL (path parameters filled in) and a body that passes validation where it can."""
        values: dict[str, str] = {}
        for name in re.findall(r"{(\w+)(?::\w+)?}", path):
            values[name] = await self._value(name)
        url = re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], path)
        return url, await self._body(method, path)

    async def _value(self, name: str) -> str:
        if name == "inmate_id":
            return await self.fresh_inmate()
        if name == "facility_id" and self.service == "registry":
            return self.facility_ids[OWN_FACILITY]
        if name == "number":
            return "1"
        if name in ("year",):
            return str(date.today().year)
        if name in ("checkpoint_months",):
            return "6"
        if name in ("status_list",):
            return "1"
        if name == "code":
            return "IKMA/2024/000001"
        return str(uuid.uuid4())

    async def _body(self, method: str, path: str) -> Any:
        if method not in ("POST", "PUT", "PATCH") or self.service != "registry":
            return None
        today = date.today().isoformat()
        bodies: dict[str, Callable[[], Awaitable[Any]]] = {
            "/api/v1/inmates": _const(self.inmate_body()),
            "/api/v1/inmates/{inmate_id}/consent": _const({"training": True, "data_sharing": True}),
            "/api/v1/inmates/{inmate_id}/release": _const({"kind": "free", "released_on": today}),
            "/api/v1/inmates/{inmate_id}/transfer": _const(
                {"to_facility_id": self.facility_ids[OTHER_FACILITY], "transferred_on": today}
            ),
            "/api/v1/inmates/{inmate_id}/absence": _const(
                {"reason": "hospital", "absent_from": today}
            ),
            "/api/v1/inmates/{inmate_id}/return": _const({"returned_on": today}),
            "/api/v1/inmates/{inmate_id}/expected-release": _const(
                {"expected_release_date": f"{date.today().year + 1}-12-31"}
            ),
            "/api/v1/inmates/{inmate_id}/death": _const({"died_on": today}),
            "/api/v1/inmates/{inmate_id}/merge": self._merge_body,
        }
        make = bodies.get(path)
        return await make() if make else None

    async def _merge_body(self) -> dict[str, Any]:
        return {"duplicate_id": await self.fresh_inmate(), "merged_on": date.today().isoformat()}


def _const(value: Any) -> Callable[[], Awaitable[Any]]:
    async def make() -> Any:
        return value

    return make


def outcome(status: int) -> str:
    if status in (401, 403):
        return str(status)
    # 503 (database busy, consumer not running) admits; a 500 is broken, and worth knowing.
    if status >= 500 and status != 503:
        return f"error {status}"
    return "admitted"


@pytest.fixture
async def started(
    request: pytest.FixtureRequest, broker: Any, make_settings: Any, tmp_path: Path
) -> AsyncIterator[World]:
    service = request.param
    settings = service_settings(
        service, make_settings, f"sqlite+aiosqlite:///{tmp_path / 'matrix.db'}", broker, tmp_path
    )
    app = service_app(service, settings)
    async with running(app) as client:
        world = World(service, app, client)
        await world.set_up()
        yield world


@pytest.mark.parametrize("started", SERVICES, indirect=True)
async def test_every_endpoint_admits_exactly_the_callers_its_rule_names(started: World) -> None:
    world = started
    settings = world.app.state.settings
    rules = RULES[world.service]
    mismatches: list[str] = []
    checked = 0
    grid: list[str] = []
    for method, path in routes(world.app):
        row = ""
        rule = rules.get(f"{method} {path}")
        if rule is None:
            mismatches.append(f"no authorisation rule for {method} {path}")
            continue
        for number, caller in enumerate(CALLERS):
            url, body = await world.request_for(method, path)
            async with client_for(world.app, peer=f"10.9.{number}.1") as client:
                r = await client.request(method, url, json=body, headers=caller.headers(settings))
            checked += 1
            row += {401: "1", 403: "3", 404: "4"}.get(
                r.status_code, "E" if r.status_code == 500 else "."
            )
            expected = rule.expected(caller)
            got = "404" if expected == "404" and r.status_code == 404 else outcome(r.status_code)
            # Own facility's staff must reach what another facility's staff are told is not there.
            if caller is FACILITY_OWN and rule.other_facility == 404 and r.status_code == 404:
                got = "404"
            if got != expected:
                mismatches.append(
                    f"{method} {path} as {caller.name}: expected {expected}, "
                    f"got {r.status_code} {r.text[:160]}"
                )
            elif expected in ("401", "403") and r.status_code == expected_status(expected):
                assert r.headers["content-type"].startswith("application/problem+json"), (
                    method,
                    path,
                    caller.name,
                )
        grid.append(f"  {row}  {method} {path}")
    legend = "  ".join(f"{n + 1}={c.name}" for n, c in enumerate(CALLERS))
    print(f"\n{world.service}, callers left to right: {legend}")
    print("  . admitted (2xx, or 404/409/422 for a made-up id or body)  1=401  3=403  4=404")
    print("\n".join(grid))
    print(
        f"{world.service}: {len(routes(world.app))} routes x {len(CALLERS)} callers = "
        f"{checked} requests checked, {len(mismatches)} mismatches"
    )
    assert not mismatches, "\n".join(mismatches)


def expected_status(expected: str) -> int:
    return int(expected)


@pytest.mark.parametrize("started", ["registry"], indirect=True)
async def test_facility_staff_lists_show_only_their_facilitys_inmates(started: World) -> None:
    world = started
    settings = world.app.state.settings
    ours = {await world.fresh_inmate() for _ in range(3)}
    async with client_for(world.app) as client:
        listed: dict[str, set[str]] = {}
        for caller in (FACILITY_OWN, FACILITY_OTHER, REGISTRY_ADMIN):
            r = await client.get("/api/v1/inmates", headers=caller.headers(settings))
            assert r.status_code == 200, r.text
            listed[caller.name] = {i["id"] for i in r.json()["data"]}
        facility = world.facility_ids[OWN_FACILITY]
        r = await client.get(
            "/api/v1/inmates",
            params={"facility_id": facility},
            headers=FACILITY_OTHER.headers(settings),
        )
        asked_for_ours = {i["id"] for i in r.json()["data"]} if r.status_code == 200 else set()
        # Another facility's inmate and no inmate at all: one and the same answer.
        other = FACILITY_OTHER.headers(settings)
        hidden = await client.get(f"/api/v1/inmates/{sorted(ours)[0]}", headers=other)
        absent = await client.get(f"/api/v1/inmates/{uuid.uuid4()}", headers=other)
    assert ours <= listed[FACILITY_OWN.name] and ours <= listed[REGISTRY_ADMIN.name]
    assert not ours & listed[FACILITY_OTHER.name]
    assert not asked_for_ours  # naming the other facility's id shows nothing either
    assert hidden.status_code == absent.status_code == 404
    without_instance = [
        {k: v for k, v in r.json().items() if k != "instance"} for r in (hidden, absent)
    ]
    assert without_instance[0] == without_instance[1]
