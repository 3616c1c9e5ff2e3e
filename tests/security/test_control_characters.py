"""NUL and other control characters never reach a database: every service's API refuses them
in any text of a request (422 naming the field, nothing written), and so do the staff pages.

SQLite stored them as given; PostgreSQL refuses a NUL only once the transaction is under way.
Tab, line feed and carriage return are text (a note of several lines); the rest of C0, DEL and
a lone UTF-16 surrogate are not.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from bekal.registry.models import Facility, Inmate
from bekal.reporting.models import Target
from bekal.training.models import Program
from tests.security.support import client_for, service_app, service_settings
from tests.support.apps import bearer
from tests.support.db import count
from tests.support.factories import facility_body, inmate_body, program_body
from tests.support.staff_pages import csrf_of

pytestmark = pytest.mark.integration

# What an attacker (or a broken export) puts in a text field.
BAD = {
    "NUL": "Lapas\x00Cipinang",
    "escape (ANSI colour)": "\x1b[31mLapas",
    "backspace": "Lapas\x08",
    "vertical tab": "Lapas\x0bCipinang",
    "DEL": "Lapas\x7f",
}
SURROGATE = '"Lapas \\ud800"'  # JSON's escape for half of a UTF-16 pair, alone


def _app(service: str, make_settings: Any, tmp_path: Path, **overrides: object) -> Any:
    settings = service_settings(
        service,
        make_settings,
        f"sqlite+aiosqlite:///{tmp_path / f'{service}-{uuid.uuid4().hex[:6]}.db'}",
        None,
        tmp_path,
        **overrides,
    )
    return service_app(service, settings)


def _names(r: httpx.Response, field: str) -> bool:
    """A 422 problem naming ``field`` among its errors."""
    if r.status_code != 422 or not r.headers["content-type"].startswith("application/problem+json"):
        return False
    return field in {e["field"] for e in r.json().get("errors", [])}


async def _refused_everywhere(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    headers: dict[str, str],
) -> list[str]:
    """``body`` with each bad value in ``field`` (a dotted path): what was not refused."""
    wrong = []
    *parents, last = field.split(".")
    for what, value in [*BAD.items(), ("lone surrogate", None)]:
        spoiled = json.loads(json.dumps(body))
        target: Any = spoiled
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value if value is not None else "@SURROGATE@"
        content = json.dumps(spoiled).replace('"@SURROGATE@"', SURROGATE)
        r = await client.request(
            method,
            path,
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
        if not _names(r, field):
            wrong.append(f"{method} {path} {field} ({what}): {r.status_code} {r.text[:150]}")
    return wrong


async def test_registry_refuses_control_characters_and_writes_nothing(
    make_settings: Any, tmp_path: Path
) -> None:
    app = _app("registry", make_settings, tmp_path)
    admin = bearer(app.state.settings, ministry="corrections", roles=["registry_admin"])
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        wrong = await _refused_everywhere(
            client, "POST", "/api/v1/facilities", facility_body(), "name", admin
        )
        assert await count(app.state.db, Facility) == 0
        r = await client.post("/api/v1/facilities", json=facility_body(), headers=admin)
        assert r.status_code == 201, r.text
        facility = r.json()["id"]
        wrong += await _refused_everywhere(
            client, "POST", "/api/v1/inmates", inmate_body(facility), "full_name", admin
        )
        assert await count(app.state.db, Inmate) == 0
        # In a query too: a search never carries a NUL to the database.
        r = await client.get("/api/v1/inmates", params={"q": "Siti\x00"}, headers=admin)
        assert _names(r, "query.q"), r.text
        # Without a token the answer is the same refusal: nothing was looked up or written.
        r = await client.post("/api/v1/facilities", json=facility_body(code="LP-NUL", name="A\x00"))
        assert r.status_code in (401, 422), r.text
        assert await count(app.state.db, Facility) == 1
    assert not wrong, "\n".join(wrong)


async def test_training_refuses_control_characters_in_nested_text_and_keeps_line_breaks(
    make_settings: Any, tmp_path: Path
) -> None:
    app = _app("training", make_settings, tmp_path)
    admin = bearer(app.state.settings, ministry="industry", roles=["training_admin"])
    body = program_body()
    unit_text = next(k for k, v in body["competency_units"][0].items() if isinstance(v, str))
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        wrong = await _refused_everywhere(client, "POST", "/api/v1/programs", body, "title", admin)
        wrong += await _refused_everywhere(
            client, "POST", "/api/v1/programs", body, f"competency_units.0.{unit_text}", admin
        )
        assert await count(app.state.db, Program) == 0
        # Tab, line feed and carriage return are text.
        multi_line = {**body, "title": "Membatik\ttulis", "partner": "Yayasan\r\nBatik"}
        r = await client.post("/api/v1/programs", json=multi_line, headers=admin)
        assert r.status_code == 201, r.text
        assert await count(app.state.db, Program) == 1
    assert not wrong, "\n".join(wrong)


async def test_certification_refuses_them_before_the_handler_looks_anything_up(
    make_settings: Any, tmp_path: Path
) -> None:
    app = _app("certification", make_settings, tmp_path)
    admin = bearer(app.state.settings, ministry="industry", roles=["certification_admin"])
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        path = f"/api/v1/certificates/{uuid.uuid4()}/revoke"
        wrong = await _refused_everywhere(
            client, "POST", path, {"reason": "Data kelulusan keliru"}, "reason", admin
        )
        # A clean reason reaches the handler, which knows no such certificate.
        r = await client.post(path, json={"reason": "Data kelulusan keliru"}, headers=admin)
        assert r.status_code == 404, r.text
    assert not wrong, "\n".join(wrong)


async def test_reporting_refuses_them_in_a_target_note(make_settings: Any, tmp_path: Path) -> None:
    app = _app("reporting", make_settings, tmp_path)
    admin = bearer(app.state.settings, ministry="industry", roles=["training_admin"])
    async with LifespanManager(app, startup_timeout=60), client_for(app) as client:
        body = {"annual": 120, "note": "Target awal"}
        before = await count(app.state.db, Target)  # the targets the migrations set
        wrong = await _refused_everywhere(
            client, "PUT", "/api/v1/targets/2030", body, "note", admin
        )
        assert await count(app.state.db, Target) == before
        r = await client.put("/api/v1/targets/2030", json=body, headers=admin)
        assert r.status_code == 200, r.text
        assert await count(app.state.db, Target) == before + 1
    assert not wrong, "\n".join(wrong)


async def test_staff_page_forms_refuse_them_naming_the_field(tmp_path: Path) -> None:
    from bekal.registry.app import create_app
    from bekal.registry.settings import RegistrySettings

    app = create_app(
        RegistrySettings(
            environment="development",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'pages.db'}",
            kafka_bootstrap_servers="127.0.0.1:1",
            auth_dev_key_file=tmp_path / "dev.pem",
            pseudonym_secret="a-pseudonym-secret-of-at-least-32-random-bytes-0123456789",
        )
    )
    async with (
        LifespanManager(app, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as browser,
    ):
        page = await browser.get("/staf/masuk?next=/staf/fasilitas/baru")
        signed = await browser.post(
            "/staf/masuk/pengembang",
            data={"csrf_token": csrf_of(page), "preset": "registry-admin", "next": "/staf"},
        )
        assert signed.status_code == 303, signed.text
        form = await browser.get("/staf/fasilitas/baru")
        assert form.status_code == 200, form.text
        fields = {k: str(v) for k, v in facility_body().items() if v is not None}
        for what, value in BAD.items():
            r = await browser.post(
                "/staf/fasilitas/baru",
                data={**fields, "name": value, "csrf_token": csrf_of(form)},
            )
            assert r.status_code == 422, (what, r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("text/html")
            assert "name" in r.text and "karakter kendali" in r.text, (what, r.text[:2000])
        assert await count(app.state.db, Facility) == 0
        # In a page's address too.
        r = await browser.get("/staf/warga-binaan", params={"q": "Siti\x00"})
        assert r.status_code == 422 and "karakter kendali" in r.text
