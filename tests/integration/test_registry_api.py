"""The registry through its HTTP API, on SQLite and PostgreSQL, publishing to the real broker.

Events are checked by reading the topics with a real consumer once the outbox is drained, so
"exactly these events" is a statement about everything on the topic, not about a sample.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from bekal.registry.domain import nik_digest
from bekal.registry.models import Facility, Inmate, InmateMovement
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import (
    FacilityRegistered,
    FacilityUpdated,
    InmateReleased,
    InmateShared,
    InmateTransferred,
)
from bekal.shared.idempotency import IdempotencyRecord
from bekal.shared.messaging.models import OutboxMessage
from tests.support.kafka import Published
from tests.support.registry import SECRET, Registry

pytestmark = pytest.mark.integration

NIK_A, NIK_B, NIK_C = "6171014505900001", "6171011204880002", "3671015307950003"
PROBLEM = "application/problem+json"


def by_key(published: list[Published]) -> dict[bytes, list[Event]]:
    grouped: dict[bytes, list[Event]] = {}
    for p in published:
        grouped.setdefault(p.key, []).append(p.event)
    return grouped


def facility_body(code: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "name": f"Lapas {code}",
        "kind": "lapas",
        "facility_class": "IIA",
        "province": "Kalimantan Barat",
        "regional_office": "Kanwil Kalimantan Barat",
        "capacity": 600,
    }
    body.update(overrides)
    return body


def inmate_body(
    facility_id: str, registration_number: str, nik: str, **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "registration_number": registration_number,
        "full_name": "Siti Aminah",
        "nik": nik,
        "sex": "F",
        "date_of_birth": "1990-05-05",
        "education_level": "SMA",
        "facility_id": facility_id,
        "admission_date": "2022-03-01",
        "expected_release_date": "2024-09-30",
    }
    body.update(overrides)
    return body


async def create_facility(reg: Registry, code: str, **overrides: Any) -> dict[str, Any]:
    return await reg.facility(facility_body(code, **overrides))


async def create_inmate(
    reg: Registry,
    facility_id: str,
    registration_number: str,
    nik: str,
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    body = inmate_body(facility_id, registration_number, nik, **overrides)
    return await reg.created("/api/v1/inmates", body, headers)


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://")
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert any(f == field or f.endswith(f".{field}") for f in fields), (field, body)
    return body


# --- events ------------------------------------------------------------------------------


async def test_consenting_inmate_is_shared_then_released_once_and_the_nik_goes_nowhere(
    registry: Registry, capfd: pytest.CaptureFixture[str]
):
    reg = registry
    pontianak = await create_facility(reg, "LP-PONTIANAK")
    assert pontianak["province"] == "Kalimantan Barat" and pontianak["active"] is True
    tangerang = await create_facility(
        reg, "LPP-TANGERANG", kind="lapas_perempuan", province="Banten"
    )

    r = await reg.client.post(
        "/api/v1/inmates",
        json=inmate_body(
            pontianak["id"], "AI.2022.001", NIK_A, consent={"training": True, "data_sharing": True}
        ),
        headers=reg.admin,
    )
    assert r.status_code == 201, r.text
    shared = r.json()
    assert NIK_A not in r.text and "nik" not in shared
    assert shared["shared"] is True and shared["status"] == "in_custody"
    assert shared["facility_code"] == "LP-PONTIANAK"
    assert shared["consent"]["training"] is True and shared["consent"]["recorded_by"] == "admin"
    assert shared["consent"]["recorded_at"] is not None

    private = await create_inmate(reg, tangerang["id"], "AI.2022.002", NIK_B, full_name="Rina")
    assert private["shared"] is False and private["consent"]["recorded_at"] is None

    r = await reg.client.get(f"/api/v1/inmates/{shared['id']}", headers=reg.admin)
    assert r.status_code == 200 and NIK_A not in r.text and r.json() == shared

    r = await reg.client.post(
        f"/api/v1/inmates/{shared['id']}/release",
        json={"kind": "parole", "released_on": "2024-09-07"},
        headers=reg.admin,
    )
    assert r.status_code == 200, r.text
    released = r.json()
    assert released["status"] == "released" and released["release_kind"] == "parole"
    assert released["released_on"] == "2024-09-07"

    # Releasing twice is refused with the reason, and writes nothing.
    r = await reg.client.post(
        f"/api/v1/inmates/{shared['id']}/release",
        json={"kind": "free", "released_on": "2024-10-01"},
        headers=reg.admin,
    )
    body = assert_problem(r, 409, "status")
    assert "tidak lagi dalam tahanan" in body["detail"]
    r = await reg.client.post(
        f"/api/v1/inmates/{shared['id']}/transfer",
        json={"to_facility_id": tangerang["id"], "transferred_on": "2024-10-01"},
        headers=reg.admin,
    )
    assert_problem(r, 409, "status")
    r = await reg.client.get(f"/api/v1/inmates/{shared['id']}", headers=reg.admin)
    assert r.json()["release_kind"] == "parole"

    # The unshared inmate's release is recorded but not announced.
    r = await reg.client.post(
        f"/api/v1/inmates/{private['id']}/release",
        json={"kind": "free", "released_on": "2024-01-02"},
        headers=reg.admin,
    )
    assert r.status_code == 200

    inmates = await reg.published("registry.inmates")
    assert [type(p.event) for p in inmates] == [InmateShared, InmateReleased]
    first, second = (p.event for p in inmates)
    assert isinstance(first, InmateShared) and isinstance(second, InmateReleased)
    assert str(first.participant_id) == shared["id"]
    assert first.full_name == "Siti Aminah" and first.birth_year == 1990
    assert str(first.facility_id) == pontianak["id"]
    assert str(second.participant_id) == shared["id"] and second.release_kind == "parole"
    assert all(p.key == shared["id"].encode() for p in inmates)
    assert dict(inmates[1].headers)["ce_type"] == b"id.bekal.registry.inmate.released.v1"

    facilities = await reg.published("registry.facilities")
    assert [type(p.event) for p in facilities] == [FacilityRegistered, FacilityRegistered]
    assert {p.event.code for p in facilities} == {"LP-PONTIANAK", "LPP-TANGERANG"}  # type: ignore[attr-defined]

    # The NIK is nowhere: not in any record, not in the database, not in a log line.
    for p in inmates + facilities:
        assert NIK_A.encode() not in p.raw() and NIK_B.encode() not in p.raw()
    for row in await reg.rows(OutboxMessage):
        assert NIK_A not in row.payload and NIK_B not in row.payload
    stored = {i.registration_number: i for i in await reg.rows(Inmate)}
    assert stored["AI.2022.001"].nik_hash == nik_digest(NIK_A, SECRET)
    for inmate in stored.values():
        assert not any(NIK_A in str(v) or NIK_B in str(v) for v in vars(inmate).values())
    assert await reg.count(InmateMovement) == 2
    logs = capfd.readouterr()
    assert "inmate_released" in logs.out  # the capture works...
    assert (
        NIK_A not in logs.out + logs.err and NIK_B not in logs.out + logs.err
    )  # ...and holds no NIK


async def test_consent_given_later_shares_once_and_movements_follow_the_rules(registry: Registry):
    reg = registry
    here = await create_facility(reg, "LP-CIPINANG", province="DKI Jakarta")
    there = await create_facility(reg, "LP-SALEMBA", province="DKI Jakarta")
    closed = await create_facility(reg, "LP-TUTUP", province="Banten", active=False)
    person = await create_inmate(reg, here["id"], "B.2023.010", NIK_A)
    other = await create_inmate(reg, here["id"], "B.2023.011", NIK_B, full_name="Budi")

    url = f"/api/v1/inmates/{person['id']}/consent"
    r = await reg.client.post(
        url, json={"training": True, "data_sharing": False}, headers=reg.admin
    )
    assert r.status_code == 200 and r.json()["shared"] is False
    r = await reg.client.post(url, json={"training": True, "data_sharing": True}, headers=reg.admin)
    assert r.status_code == 200 and r.json()["shared"] is True
    r = await reg.client.post(url, json={"training": True, "data_sharing": True}, headers=reg.admin)
    assert r.status_code == 200 and r.json()["shared"] is True  # no second InmateShared below

    move = f"/api/v1/inmates/{person['id']}/transfer"
    r = await reg.client.post(
        move, json={"to_facility_id": here["id"], "transferred_on": "2024-01-10"}, headers=reg.admin
    )
    assert "sama" in assert_problem(r, 409, "to_facility_id")["detail"]
    r = await reg.client.post(
        move,
        json={"to_facility_id": closed["id"], "transferred_on": "2024-01-10"},
        headers=reg.admin,
    )
    assert "tidak aktif" in assert_problem(r, 409, "to_facility_id")["detail"]
    r = await reg.client.post(
        move,
        json={"to_facility_id": str(uuid.uuid4()), "transferred_on": "2024-01-10"},
        headers=reg.admin,
    )
    assert_problem(r, 422, "to_facility_id")
    r = await reg.client.post(
        move,
        json={"to_facility_id": there["id"], "transferred_on": "2020-01-01"},
        headers=reg.admin,
    )
    assert_problem(r, 422, "transferred_on")
    r = await reg.client.post(
        move,
        json={"to_facility_id": there["id"], "transferred_on": "2024-01-10"},
        headers=reg.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["facility_id"] == there["id"] and r.json()["facility_code"] == "LP-SALEMBA"

    r = await reg.client.post(
        f"/api/v1/inmates/{other['id']}/transfer",
        json={"to_facility_id": there["id"], "transferred_on": "2024-01-11"},
        headers=reg.admin,
    )
    assert r.status_code == 200  # recorded, but the industry side never heard of this person

    # Facility changes: only a real change is announced.
    r = await reg.client.patch(
        f"/api/v1/facilities/{there['id']}",
        json={"capacity": 900, "facility_class": "I"},
        headers=reg.admin,
    )
    assert (
        r.status_code == 200 and r.json()["capacity"] == 900 and r.json()["facility_class"] == "I"
    )
    r = await reg.client.patch(
        f"/api/v1/facilities/{there['id']}", json={"capacity": 900}, headers=reg.admin
    )
    assert r.status_code == 200
    r = await reg.client.patch(
        f"/api/v1/facilities/{uuid.uuid4()}", json={"capacity": 1}, headers=reg.admin
    )
    assert_problem(r, 404)
    r = await reg.client.patch(
        f"/api/v1/facilities/{there['id']}", json={"province": "Bali"}, headers=reg.admin
    )
    assert_problem(r, 422, "province")

    inmates = await reg.published("registry.inmates")
    assert [type(p.event) for p in inmates] == [InmateShared, InmateTransferred]
    shared_event, moved = (p.event for p in inmates)
    assert isinstance(shared_event, InmateShared) and isinstance(moved, InmateTransferred)
    assert str(shared_event.facility_id) == here["id"]
    assert (str(moved.from_facility_id), str(moved.to_facility_id)) == (here["id"], there["id"])
    assert {p.key for p in inmates} == {person["id"].encode()}

    # Order holds per key (one facility's events), not across the topic's partitions.
    facilities = by_key(await reg.published("registry.facilities"))
    assert {k: [type(e) for e in events] for k, events in facilities.items()} == {
        here["id"].encode(): [FacilityRegistered],
        there["id"].encode(): [FacilityRegistered, FacilityUpdated],
        closed["id"].encode(): [FacilityRegistered],
    }
    updated = facilities[there["id"].encode()][-1]
    assert (
        isinstance(updated, FacilityUpdated)
        and updated.capacity == 900
        and updated.code == "LP-SALEMBA"
    )
    assert updated.facility_class == "I" and updated.province == "DKI Jakarta"

    assert await reg.count(InmateMovement, InmateMovement.kind == "transfer") == 2


# --- bad input ---------------------------------------------------------------------------


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(registry: Registry):
    reg = registry
    facility = await create_facility(reg, "LP-PONTIANAK")
    fid = facility["id"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/api/v1/facilities", facility_body("LP-X", province="Narnia"), "province"),
        ("/api/v1/facilities", facility_body("LP-X", capacity=-1), "capacity"),
        ("/api/v1/facilities", facility_body("LP-X", kind="penjara"), "kind"),
        ("/api/v1/facilities", facility_body("a b c"), "code"),
        ("/api/v1/inmates", inmate_body(fid, "R1", "617101450590"), "nik"),
        ("/api/v1/inmates", inmate_body(fid, "R1", "61710145059000AB"), "nik"),
        (
            "/api/v1/inmates",
            inmate_body(fid, "R1", NIK_A, expected_release_date="2021-12-31"),
            "expected_release_date",
        ),
        (
            "/api/v1/inmates",
            inmate_body(fid, "R1", NIK_A, date_of_birth="2023-01-01"),
            "date_of_birth",
        ),
        ("/api/v1/inmates", inmate_body(str(uuid.uuid4()), "R1", NIK_A), "facility_id"),
        ("/api/v1/inmates", inmate_body(fid, "R1", NIK_A, sex="X"), "sex"),
        ("/api/v1/inmates", inmate_body(fid, "R1", NIK_A, offence="pencurian"), "offence"),
        (
            "/api/v1/inmates",
            {k: v for k, v in inmate_body(fid, "R1", NIK_A).items() if k != "full_name"},
            "full_name",
        ),
    ]
    for i, (path, body, field) in enumerate(cases):
        headers = {**reg.admin, "Idempotency-Key": f"bad-{i}"}
        r = await reg.client.post(path, json=body, headers=headers)
        problem = assert_problem(r, 422, field)
        assert problem["detail"]
        assert "617101450590" not in r.text and NIK_A not in r.text

    r = await reg.client.get("/api/v1/facilities", headers=reg.admin)
    assert r.json()["count"] == 1
    r = await reg.client.get("/api/v1/inmates", headers=reg.admin)
    assert r.json() == {"data": [], "count": 0, "count_capped": False, "next_cursor": None}
    assert await reg.count(Inmate) == 0
    assert await reg.count(Facility) == 1
    assert await reg.count(IdempotencyRecord) == 0
    assert await reg.count(OutboxMessage) == 1  # the one FacilityRegistered


# --- access ------------------------------------------------------------------------------


async def test_access_follows_ministry_role_and_the_officers_facilities(registry: Registry):
    reg = registry
    mine = await create_facility(reg, "LP-A")
    theirs = await create_facility(reg, "LP-B")
    stranger = await create_inmate(reg, theirs["id"], "B-001", NIK_A)
    officer = reg.officer("LP-A")
    industry = reg.token("training_admin", "training_officer", ministry="industry")

    r = await reg.client.post(
        "/api/v1/inmates", json=inmate_body(mine["id"], "A-001", NIK_B), headers=officer
    )
    assert r.status_code == 201, r.text
    own = r.json()
    r = await reg.client.post(
        "/api/v1/inmates", json=inmate_body(theirs["id"], "B-002", NIK_C), headers=officer
    )
    assert_problem(r, 403)

    r = await reg.client.get("/api/v1/inmates", headers=officer)
    assert [i["id"] for i in r.json()["data"]] == [own["id"]] and r.json()["count"] == 1
    r = await reg.client.get(
        "/api/v1/inmates", params={"facility_id": theirs["id"]}, headers=officer
    )
    assert r.json()["count"] == 0
    r = await reg.client.get(f"/api/v1/inmates/{stranger['id']}", headers=officer)
    assert_problem(r, 404)
    for action, body in (
        ("release", {"kind": "free", "released_on": "2024-01-01"}),
        ("consent", {"training": True, "data_sharing": True}),
        ("transfer", {"to_facility_id": mine["id"], "transferred_on": "2024-01-01"}),
    ):
        r = await reg.client.post(
            f"/api/v1/inmates/{stranger['id']}/{action}", json=body, headers=officer
        )
        assert_problem(r, 404)
    r = await reg.client.get(f"/api/v1/inmates/{own['id']}", headers=officer)
    assert r.status_code == 200
    r = await reg.client.get("/api/v1/inmates", headers=reg.admin)
    assert r.json()["count"] == 2

    # Facilities are written by national admins only, read by anyone signed in.
    r = await reg.client.post("/api/v1/facilities", json=facility_body("LP-C"), headers=officer)
    assert_problem(r, 403)
    r = await reg.client.patch(
        f"/api/v1/facilities/{mine['id']}", json={"capacity": 1}, headers=officer
    )
    assert_problem(r, 403)
    for who in (officer, industry):
        r = await reg.client.get("/api/v1/facilities", headers=who)
        assert r.status_code == 200 and r.json()["count"] == 2
        r = await reg.client.get(f"/api/v1/facilities/{mine['id']}", headers=who)
        assert r.status_code == 200 and r.json()["code"] == "LP-A"

    # The industry side never reads or writes inmates, nor writes facilities.
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/api/v1/facilities", facility_body("LP-D")),
        ("PATCH", f"/api/v1/facilities/{mine['id']}", {"capacity": 1}),
        ("POST", "/api/v1/inmates", inmate_body(mine["id"], "A-009", NIK_C)),
        ("GET", "/api/v1/inmates", None),
        ("GET", f"/api/v1/inmates/{own['id']}", None),
        (
            "POST",
            f"/api/v1/inmates/{own['id']}/release",
            {"kind": "free", "released_on": "2024-01-01"},
        ),
    ]
    for method, path, payload in attempts:
        r = await reg.client.request(method, path, json=payload, headers=industry)
        assert_problem(r, 403)
    viewer = reg.token("reporting_viewer")
    r = await reg.client.get("/api/v1/inmates", headers=viewer)
    assert_problem(r, 403)

    r = await reg.client.get("/api/v1/facilities")
    assert_problem(r, 401)
    r = await reg.client.post("/api/v1/inmates", json=inmate_body(mine["id"], "A-010", NIK_C))
    assert_problem(r, 401)
    r = await reg.client.get("/api/v1/inmates", headers={"Authorization": "Bearer not-a-token"})
    assert_problem(r, 401)

    assert await reg.count(Inmate) == 2 and await reg.count(Facility) == 2


# --- idempotency and duplicates ----------------------------------------------------------


async def test_idempotency_key_replays_the_first_answer_and_duplicates_are_conflicts(
    registry: Registry,
):
    reg = registry
    body = facility_body("LP-PONTIANAK")
    key = {**reg.admin, "Idempotency-Key": "fac-1"}
    first = await reg.client.post("/api/v1/facilities", json=body, headers=key)
    again = await reg.client.post("/api/v1/facilities", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    r = await reg.client.post("/api/v1/facilities", json={**body, "capacity": 1}, headers=key)
    assert assert_problem(r, 409)["type"].endswith("idempotency-key-reused")
    r = await reg.client.post("/api/v1/facilities", json=body, headers=reg.admin)
    assert_problem(r, 409, "code")
    fid = first.json()["id"]

    payload = inmate_body(fid, "AI.001", NIK_A, consent={"training": True, "data_sharing": True})
    key = {**reg.admin, "Idempotency-Key": "inm-1"}
    first = await reg.client.post("/api/v1/inmates", json=payload, headers=key)
    again = await reg.client.post("/api/v1/inmates", json=payload, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    # The same key with another NIK is another request: refused, though the NIK is kept hashed.
    r = await reg.client.post("/api/v1/inmates", json={**payload, "nik": NIK_B}, headers=key)
    assert assert_problem(r, 409)["type"].endswith("idempotency-key-reused")

    r = await reg.client.post(
        "/api/v1/inmates", json={**payload, "registration_number": "AI.002"}, headers=reg.admin
    )
    assert_problem(r, 409, "nik")
    assert NIK_A not in r.text
    r = await reg.client.post("/api/v1/inmates", json={**payload, "nik": NIK_B}, headers=reg.admin)
    assert_problem(r, 409, "registration_number")

    assert await reg.count(Facility) == 1
    assert await reg.count(Inmate) == 1
    assert await reg.count(OutboxMessage, OutboxMessage.event_type.like("%inmate.shared%")) == 1
    for record in await reg.rows(IdempotencyRecord):
        assert NIK_A not in record.body and NIK_A not in record.request_hash

    # Two releases racing: the row lock (PostgreSQL) or the single writer (SQLite) lets one win.
    release = f"/api/v1/inmates/{first.json()['id']}/release"
    racing = await asyncio.gather(
        *(
            reg.client.post(
                release, json={"kind": "free", "released_on": "2024-09-07"}, headers=reg.admin
            )
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in racing) == [200, 409]

    inmates = await reg.published("registry.inmates")
    assert [type(p.event) for p in inmates] == [InmateShared, InmateReleased]
    assert {p.event.aggregate_id for p in inmates} == {first.json()["id"]}


# --- search, filters, pages --------------------------------------------------------------


async def test_search_filters_and_pages(registry: Registry):
    reg = registry
    jakarta = await create_facility(reg, "LP-CIPINANG", province="DKI Jakarta")
    banten = await create_facility(reg, "LPP-TANGERANG", province="Banten", kind="lapas_perempuan")
    people = [
        (jakarta, "JKT-001", "Siti Aminah"),
        (jakarta, "JKT-002", "SITI Rahmawati"),
        (jakarta, "JKT-003", "Budi Santoso"),
        (jakarta, "JKT-004", "Agus 100%"),
        (jakarta, "JKT-005", "Dewi Lestari"),
        (banten, "TNG-001", "Rina Marlina"),
        (banten, "TNG-002", "Sri Wahyuni"),
    ]
    created = []
    for n, (facility, number, name) in enumerate(people):
        created.append(
            await create_inmate(
                reg, facility["id"], number, f"31710100000000{n:02d}", full_name=name
            )
        )
    r = await reg.client.post(
        f"/api/v1/inmates/{created[2]['id']}/release",
        json={"kind": "conditional", "released_on": "2024-05-01"},
        headers=reg.admin,
    )
    assert r.status_code == 200
    r = await reg.client.patch(
        f"/api/v1/facilities/{banten['id']}", json={"active": False}, headers=reg.admin
    )
    assert r.status_code == 200 and r.json()["active"] is False

    async def inmates(**params: Any) -> dict[str, Any]:
        r = await reg.client.get("/api/v1/inmates", params=params, headers=reg.admin)
        assert r.status_code == 200, r.text
        return r.json()

    found = await inmates(q="siti")
    assert {i["full_name"] for i in found["data"]} == {"Siti Aminah", "SITI Rahmawati"} and found[
        "count"
    ] == 2
    assert (await inmates(q="tng-00"))["count"] == 2
    assert (await inmates(q="%"))["count"] == 1  # a literal percent sign, not a wildcard
    r = await reg.client.get("/api/v1/inmates", params={"q": "si\x00ti"}, headers=reg.admin)
    assert r.status_code == 422 and "q" in r.json()["errors"][0]["field"]
    assert [i["id"] for i in (await inmates(status="released"))["data"]] == [created[2]["id"]]
    assert (await inmates(status="in_custody"))["count"] == 6
    assert (await inmates(facility_id=banten["id"]))["count"] == 2
    assert (await inmates(facility_id=jakarta["id"], q="siti", status="in_custody"))["count"] == 2

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await inmates(**params)
        assert page["count"] == 7 and len(page["data"]) <= 3
        seen += [i["registration_number"] for i in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(number for _, number, _ in people)

    r = await reg.client.get("/api/v1/inmates", params={"cursor": "bm9wZQ"}, headers=reg.admin)
    assert_problem(r, 422, "cursor")
    r = await reg.client.get("/api/v1/inmates", params={"limit": 0}, headers=reg.admin)
    assert_problem(r, 422, "limit")
    r = await reg.client.get("/api/v1/inmates", params={"limit": 501}, headers=reg.admin)
    assert_problem(r, 422, "limit")

    async def facilities(**params: Any) -> dict[str, Any]:
        r = await reg.client.get("/api/v1/facilities", params=params, headers=reg.admin)
        assert r.status_code == 200, r.text
        return r.json()

    assert [f["code"] for f in (await facilities(province="banten"))["data"]] == ["LPP-TANGERANG"]
    assert [f["code"] for f in (await facilities(active="false"))["data"]] == ["LPP-TANGERANG"]
    assert [f["code"] for f in (await facilities(active="true"))["data"]] == ["LP-CIPINANG"]
    assert [f["code"] for f in (await facilities(kind="lapas_perempuan"))["data"]] == [
        "LPP-TANGERANG"
    ]
    assert (await facilities(kind="lpka"))["count"] == 0
    assert (await facilities(facility_class="I"))["count"] == 0
    assert (await facilities(facility_class="IIA", kind="lapas"))["count"] == 1
    r = await reg.client.get("/api/v1/facilities", params={"kind": "penjara"}, headers=reg.admin)
    assert_problem(r, 422, "kind")
    assert (await facilities(code="LP-CIPINANG"))["data"][0]["id"] == jakarta["id"]
    first = await facilities(limit=1)
    assert first["count"] == 2 and [f["code"] for f in first["data"]] == ["LP-CIPINANG"]
    second = await facilities(limit=1, cursor=first["next_cursor"])
    assert [f["code"] for f in second["data"]] == ["LPP-TANGERANG"] and second[
        "next_cursor"
    ] is None
    r = await reg.client.get("/api/v1/facilities", params={"province": "Narnia"}, headers=reg.admin)
    assert_problem(r, 422, "province")

    # An inactive facility takes no new inmates.
    r = await reg.client.post(
        "/api/v1/inmates", json=inmate_body(banten["id"], "TNG-003", NIK_C), headers=reg.admin
    )
    assert "tidak aktif" in assert_problem(r, 422, "facility_id")["detail"]
