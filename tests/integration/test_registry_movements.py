"""Registry movements beyond transfer and release, merge, consent withdrawal, erasure, audit,
subject access and candidates: through the API, on SQLite and PostgreSQL, with the real broker.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import httpx
import pytest

from bekal.registry.models import AuditEntry, Inmate, InmateMovement
from bekal.shared.events.catalogue import (
    InmateConsentWithdrawn,
    InmateDied,
    InmateErased,
    InmateReleased,
    InmateReturned,
    InmateShared,
    InmatesMerged,
    InmateTemporarilyAbsent,
    InmateTransferred,
)
from bekal.shared.messaging.models import OutboxMessage
from tests.support.db import count
from tests.support.kafka import Published
from tests.support.registry import Registry

pytestmark = pytest.mark.integration

NIKS = [f"61710145059{n:05d}" for n in range(1, 20)]
PROBLEM = "application/problem+json"
BOTH = {"training": True, "data_sharing": True}


async def facility(reg: Registry, code: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "name": f"Lapas {code}",
        "kind": "lapas",
        "facility_class": "IIA",
        "province": "Jawa Barat",
        "regional_office": "Kanwil Jawa Barat",
        "capacity": 500,
        **overrides,
    }
    return await reg.facility(body)


async def inmate(
    reg: Registry, facility_id: str, number: str, nik: str, **overrides: Any
) -> dict[str, Any]:
    body = {
        "registration_number": number,
        "full_name": "Dewi Lestari",
        "nik": nik,
        "sex": "F",
        "date_of_birth": "1991-04-12",
        "education_level": "SMP",
        "facility_id": facility_id,
        "admission_date": "2023-01-10",
        "expected_release_date": "2026-06-30",
        **overrides,
    }
    return await reg.created("/api/v1/inmates", body)


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert any(f == field or f.endswith(f".{field}") for f in fields), body
    return body


def events_for(records: list[Published], participant_id: str) -> list[Any]:
    return [p.event for p in records if p.key == participant_id.encode()]


# --- temporary absence, return, release, death -------------------------------------------


async def test_absence_and_return_follow_the_rules_and_are_announced_for_shared_people(
    registry: Registry,
):
    reg = registry
    here = await facility(reg, "LP-BDG")
    there = await facility(reg, "LP-SKM")
    person = await inmate(reg, here["id"], "BDG.1", NIKS[0], consent=BOTH)
    private = await inmate(reg, here["id"], "BDG.2", NIKS[1])
    url = f"/api/v1/inmates/{person['id']}"

    problem(await reg.post(f"{url}/return", {"returned_on": "2024-02-01"}), 409, "status")
    r = await reg.post(
        f"{url}/absence",
        {"reason": "court", "absent_from": "2024-02-01", "expected_return": "2024-02-03"},
    )
    assert r.status_code == 200, r.text
    away = r.json()
    assert away["status"] == "temporarily_absent"
    assert away["absence"] == {
        "reason": "court",
        "absent_from": "2024-02-01",
        "expected_return": "2024-02-03",
    }
    # Away already; no transfer while away; dates must make sense.
    body = problem(
        await reg.post(f"{url}/absence", {"reason": "hospital", "absent_from": "2024-02-02"}),
        409,
        "status",
    )
    assert "keluar sementara" in body["detail"]
    body = problem(
        await reg.post(
            f"{url}/transfer", {"to_facility_id": there["id"], "transferred_on": "2024-02-02"}
        ),
        409,
        "status",
    )
    assert "kepulangan" in body["detail"]
    problem(await reg.post(f"{url}/return", {"returned_on": "2024-01-31"}), 422, "returned_on")
    problem(
        await reg.post(
            f"/api/v1/inmates/{private['id']}/absence", {"reason": "x", "absent_from": "2024-02-01"}
        ),
        422,
    )

    r = await reg.post(f"{url}/return", {"returned_on": "2024-02-03"})
    assert r.status_code == 200 and r.json()["status"] == "in_custody"
    assert r.json()["absence"] is None

    # A court may free someone while they are away: release from absence is allowed once.
    r = await reg.post(f"{url}/absence", {"reason": "leave", "absent_from": "2024-03-01"})
    assert r.status_code == 200
    r = await reg.post(f"{url}/release", {"kind": "free", "released_on": "2024-03-02"})
    assert r.status_code == 200 and r.json()["status"] == "released"
    problem(
        await reg.post(f"{url}/absence", {"reason": "court", "absent_from": "2024-04-01"}),
        409,
        "status",
    )
    problem(await reg.post(f"{url}/death", {"died_on": "2024-04-01"}), 409, "status")

    # The unshared person's movements are recorded, never announced.
    r = await reg.post(
        f"/api/v1/inmates/{private['id']}/absence",
        {"reason": "hospital", "absent_from": "2024-02-01"},
    )
    assert r.status_code == 200
    r = await reg.post(f"/api/v1/inmates/{private['id']}/death", {"died_on": "2024-02-05"})
    assert r.status_code == 200 and r.json()["status"] == "deceased"
    assert r.json()["died_on"] == "2024-02-05"
    problem(
        await reg.post(f"/api/v1/inmates/{private['id']}/death", {"died_on": "2024-02-06"}),
        409,
        "status",
    )

    records = await reg.published()
    kinds = [type(e) for e in events_for(records, person["id"])]
    assert kinds == [
        InmateShared,
        InmateTemporarilyAbsent,
        InmateReturned,
        InmateTemporarilyAbsent,
        InmateReleased,
    ]
    assert events_for(records, private["id"]) == []
    absent = events_for(records, person["id"])[1]
    assert absent.reason == "court" and absent.expected_return == date(2024, 2, 3)
    assert str(absent.facility_id) == here["id"]
    kinds_recorded = sorted(
        m.kind
        for m in await reg.rows(InmateMovement, InmateMovement.inmate_id == uuid.UUID(person["id"]))
    )
    assert kinds_recorded == ["absence", "absence", "release", "return"]


async def test_death_of_a_shared_person_is_announced(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-GRT")
    person = await inmate(reg, here["id"], "GRT.1", NIKS[2], consent=BOTH)
    problem(
        await reg.post(f"/api/v1/inmates/{person['id']}/death", {"died_on": "2020-01-01"}),
        422,
        "died_on",
    )
    r = await reg.post(f"/api/v1/inmates/{person['id']}/death", {"died_on": "2024-05-05"})
    assert r.status_code == 200
    died = events_for(await reg.published(), person["id"])[-1]
    assert isinstance(died, InmateDied) and died.died_on == date(2024, 5, 5)


# --- transfer ------------------------------------------------------------------------------


async def test_a_transfer_needs_authority_over_the_source_and_the_destination(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-TRA")
    there = await facility(reg, "LP-TRB")
    elsewhere = await facility(reg, "LP-TRC", province="Banten", regional_office="Kanwil Banten")
    person = await inmate(reg, here["id"], "TR.1", NIKS[16], consent=BOTH)
    move = f"/api/v1/inmates/{person['id']}/transfer"

    # One facility's officer cannot send a person to a facility that is not theirs.
    body = problem(
        await reg.post(
            move,
            {"to_facility_id": there["id"], "transferred_on": "2024-02-01"},
            reg.officer("LP-TRA"),
        ),
        403,
        "to_facility_id",
    )
    assert "LP-TRB" in body["detail"] and body["to_facility_code"] == "LP-TRB"
    assert await reg.count(InmateMovement, InmateMovement.kind == "transfer") == 0
    assert (await reg.get(f"/api/v1/inmates/{person['id']}")).json()["facility_code"] == "LP-TRA"

    # A regional office's staff, whose token names both facilities, may.
    regional = reg.officer("LP-TRA", "LP-TRB")
    r = await reg.post(
        move, {"to_facility_id": there["id"], "transferred_on": "2024-02-01"}, regional
    )
    assert r.status_code == 200, r.text
    assert r.json()["facility_code"] == "LP-TRB"
    # ... but not on to a facility of another region; a registry administrator may.
    body = problem(
        await reg.post(
            move, {"to_facility_id": elsewhere["id"], "transferred_on": "2024-03-01"}, regional
        ),
        403,
        "to_facility_id",
    )
    assert "LP-TRC" in body["detail"]
    r = await reg.post(move, {"to_facility_id": elsewhere["id"], "transferred_on": "2024-03-01"})
    assert r.status_code == 200, r.text

    moved = [
        e
        for e in events_for(await reg.published(), person["id"])
        if isinstance(e, InmateTransferred)
    ]
    assert [(e.from_facility_code, e.to_facility_code) for e in moved] == [
        ("LP-TRA", "LP-TRB"),
        ("LP-TRB", "LP-TRC"),
    ]


# --- merge ---------------------------------------------------------------------------------


async def test_merge_keeps_the_shared_id_and_announces_when_both_were_shared(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-MRG")
    there = await facility(reg, "LP-MRG2")
    a = await inmate(reg, here["id"], "M.1", NIKS[3], consent=BOTH)
    b = await inmate(reg, here["id"], "M.1-DUP", NIKS[4], consent=BOTH)
    r = await reg.post(
        f"/api/v1/inmates/{b['id']}/transfer",
        {"to_facility_id": there["id"], "transferred_on": "2024-01-05"},
    )
    assert r.status_code == 200

    # Only national admins merge; the same record twice is refused.
    officer = reg.officer("LP-MRG", "LP-MRG2")
    r = await reg.post(
        f"/api/v1/inmates/{a['id']}/merge",
        {"duplicate_id": b["id"], "merged_on": "2024-02-01"},
        officer,
    )
    problem(r, 403)
    r = await reg.post(
        f"/api/v1/inmates/{a['id']}/merge", {"duplicate_id": a["id"], "merged_on": "2024-02-01"}
    )
    problem(r, 409, "duplicate_id")
    r = await reg.post(
        f"/api/v1/inmates/{a['id']}/merge",
        {"duplicate_id": str(uuid.uuid4()), "merged_on": "2024-02-01"},
    )
    problem(r, 422, "duplicate_id")

    r = await reg.post(
        f"/api/v1/inmates/{a['id']}/merge", {"duplicate_id": b["id"], "merged_on": "2024-02-01"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == a["id"] and r.json()["status"] == "in_custody"
    gone = (await reg.get(f"/api/v1/inmates/{b['id']}")).json()
    assert (
        gone["status"] == "merged" and gone["merged_into_id"] == a["id"] and gone["shared"] is False
    )
    # The duplicate's history now belongs to the survivor.
    moved = await reg.rows(InmateMovement, InmateMovement.inmate_id == uuid.UUID(a["id"]))
    assert sorted(m.kind for m in moved) == ["merge", "transfer"]
    assert await reg.rows(InmateMovement, InmateMovement.inmate_id == uuid.UUID(b["id"])) == []
    # A merged record cannot be merged again, nor moved.
    r = await reg.post(
        f"/api/v1/inmates/{b['id']}/merge", {"duplicate_id": a["id"], "merged_on": "2024-02-02"}
    )
    problem(r, 409)
    problem(
        await reg.post(
            f"/api/v1/inmates/{b['id']}/release", {"kind": "free", "released_on": "2024-03-01"}
        ),
        409,
        "status",
    )

    merged = [e for e in events_for(await reg.published(), b["id"]) if isinstance(e, InmatesMerged)]
    assert len(merged) == 1
    assert str(merged[0].participant_id) == b["id"]
    assert str(merged[0].surviving_participant_id) == a["id"]


async def test_merge_survivor_is_the_shared_record_whichever_is_named(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-MRG3")
    unshared = await inmate(reg, here["id"], "N.1", NIKS[5])
    shared = await inmate(reg, here["id"], "N.1-B", NIKS[6], consent=BOTH)
    r = await reg.post(
        f"/api/v1/inmates/{unshared['id']}/merge",
        {"duplicate_id": shared["id"], "merged_on": "2024-02-01"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == shared["id"] and r.json()["shared"] is True
    gone = (await reg.get(f"/api/v1/inmates/{unshared['id']}")).json()
    assert gone["merged_into_id"] == shared["id"]
    # The industry side never knew the other id: nothing to announce.
    records = await reg.published()
    assert not any(isinstance(p.event, InmatesMerged) for p in records)
    assert events_for(records, unshared["id"]) == []


# --- consent withdrawal and erasure ----------------------------------------------------------


async def test_consent_withdrawal_is_announced_once_and_consent_again_shares_again(
    registry: Registry,
):
    reg = registry
    here = await facility(reg, "LP-CNS")
    person = await inmate(reg, here["id"], "C.1", NIKS[7], consent=BOTH)
    url = f"/api/v1/inmates/{person['id']}/consent"
    r = await reg.post(url, {"training": True, "data_sharing": False})
    assert r.status_code == 200 and r.json()["shared"] is False
    assert r.json()["consent_withdrawn_at"] is not None
    r = await reg.post(url, {"training": False, "data_sharing": False})
    assert r.status_code == 200  # already withdrawn: no second event
    r = await reg.post(url, BOTH)
    assert r.status_code == 200 and r.json()["shared"] is True

    kinds = [type(e) for e in events_for(await reg.published(), person["id"])]
    assert kinds == [InmateShared, InmateConsentWithdrawn, InmateShared]


async def test_erasure_anonymises_the_row_keeps_the_custody_record_and_publishes_only_the_id(
    registry: Registry,
):
    reg = registry
    here = await facility(reg, "LP-ERS")
    person = await inmate(reg, here["id"], "E.1", NIKS[8], consent=BOTH, full_name="Ayu Wulandari")
    duplicate = await inmate(reg, here["id"], "E.1-D", NIKS[9], full_name="Ayu W.")
    never = await inmate(reg, here["id"], "E.2", NIKS[10], full_name="Tuti")
    r = await reg.post(
        f"/api/v1/inmates/{person['id']}/merge",
        {"duplicate_id": duplicate["id"], "merged_on": "2024-01-20"},
    )
    assert r.status_code == 200
    await reg.post(
        f"/api/v1/inmates/{person['id']}/transfer",
        {"to_facility_id": (await facility(reg, "LP-ERS2"))["id"], "transferred_on": "2024-02-01"},
    )

    problem(
        await reg.post(
            f"/api/v1/inmates/{person['id']}/erasure", None, reg.officer("LP-ERS", "LP-ERS2")
        ),
        403,
    )
    problem(await reg.post(f"/api/v1/inmates/{duplicate['id']}/erasure"), 409, "status")
    r = await reg.post(f"/api/v1/inmates/{person['id']}/erasure")
    assert r.status_code == 200, r.text
    erased = r.json()
    assert erased["erased"] is True and erased["full_name"] == "[dihapus]"
    assert erased["date_of_birth"] == "1991-01-01" and erased["education_level"] is None
    assert erased["consent"]["training"] is False and erased["shared"] is False
    # What the law requires stays: the registration number, the custody dates and the history.
    assert erased["registration_number"] == "E.1" and erased["admission_date"] == "2023-01-10"
    assert erased["facility_code"] == "LP-ERS2" and erased["status"] == "in_custody"
    assert (
        len(await reg.rows(InmateMovement, InmateMovement.inmate_id == uuid.UUID(person["id"])))
        == 2
    )
    rows = {i.registration_number: i for i in await reg.rows(Inmate)}
    for number in ("E.1", "E.1-D"):
        assert rows[number].full_name == "[dihapus]" and rows[number].nik_encrypted is None
    assert rows["E.2"].full_name == "Tuti"
    problem(await reg.post(f"/api/v1/inmates/{person['id']}/erasure"), 409, "status")
    # Sharing an erased person again is not possible: consent was wiped, and must be new.
    assert (await reg.get("/api/v1/inmates", q="Ayu")).json()["count"] == 0

    r = await reg.post(f"/api/v1/inmates/{never['id']}/erasure")
    assert r.status_code == 200

    records = await reg.published()
    erasures = [p for p in records if isinstance(p.event, InmateErased)]
    assert [str(p.event.participant_id) for p in erasures] == [person["id"]]
    assert json.loads(erasures[0].value) == {"participant_id": person["id"]}


# --- audit and subject access --------------------------------------------------------------


async def test_reads_and_changes_are_in_the_audit_trail_for_admins_only(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-AUD")
    person = await inmate(reg, here["id"], "A.1", NIKS[11], full_name="Sri Rahayu")
    officer = reg.officer("LP-AUD")
    assert (await reg.get(f"/api/v1/inmates/{person['id']}", officer)).status_code == 200
    assert (await reg.get("/api/v1/inmates", officer, q="rahayu")).json()["count"] == 1
    await reg.post(
        f"/api/v1/inmates/{person['id']}/consent",
        {"training": True, "data_sharing": False},
        officer,
    )

    problem(await reg.get("/api/v1/audit", officer), 403)
    problem(await reg.get("/api/v1/audit", reg.industry), 403)
    r = await reg.get("/api/v1/audit", inmate_id=person["id"])
    assert r.status_code == 200, r.text
    trail = r.json()["data"]
    assert [e["action"] for e in trail] == [
        "inmate.consent_recorded",
        "inmate.listed",
        "inmate.read",
        "inmate.registered",
    ]
    assert trail[0]["actor"] == "officer" and trail[0]["roles"] == ["facility_officer"]
    assert trail[0]["detail"] == {
        "training": True,
        "data_sharing": False,
        "shared": False,
        "withdrawn": False,
    }
    assert trail[3]["actor"] == "admin"
    r = await reg.get("/api/v1/audit", actor="officer", action="inmate.read")
    assert r.json()["count"] == 1 and r.json()["data"][0]["inmate_id"] == person["id"]
    # Paging through the trail, newest first.
    first = await reg.get("/api/v1/audit", inmate_id=person["id"], limit=3)
    second = await reg.get(
        "/api/v1/audit", inmate_id=person["id"], limit=3, cursor=first.json()["next_cursor"]
    )
    assert [e["id"] for e in first.json()["data"] + second.json()["data"]] == [
        e["id"] for e in trail
    ]
    assert NIKS[11] not in r.text + first.text


async def test_a_search_audits_each_record_it_returns_and_no_other(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-AUS")
    elsewhere = await facility(reg, "LP-AUT")
    people = [
        await inmate(reg, here["id"], f"AS.{n}", NIKS[n], full_name=f"Rina Wulandari {n}")
        for n in (12, 13, 14)
    ]
    hidden = await inmate(reg, elsewhere["id"], "AS.15", NIKS[15], full_name="Rina Saputra")
    officer = reg.officer("LP-AUS")

    first = await reg.get("/api/v1/inmates", officer, q="rina", limit=2)
    assert first.status_code == 200, first.text
    assert first.json()["count"] == 3  # the other facility's Rina is not there
    second = await reg.get(
        "/api/v1/inmates", officer, q="rina", limit=2, cursor=first.json()["next_cursor"]
    )
    shown = [i["id"] for i in first.json()["data"] + second.json()["data"]]
    assert sorted(shown) == sorted(p["id"] for p in people)

    listed = await reg.rows(AuditEntry, AuditEntry.action == "inmate.listed")
    assert sorted(str(e.inmate_id) for e in listed) == sorted(shown)
    assert {(e.actor, e.roles, str(e.facility_id)) for e in listed} == {
        ("officer", "facility_officer", here["id"])
    }
    assert all(e.detail is None and e.at is not None for e in listed)
    assert len({e.id for e in listed}) == 3
    # A search that finds nobody reads nobody.
    assert (await reg.get("/api/v1/inmates", officer, q="tidak-ada")).json()["count"] == 0
    assert len(await reg.rows(AuditEntry, AuditEntry.action == "inmate.listed")) == 3
    assert not await reg.rows(
        AuditEntry,
        AuditEntry.inmate_id == uuid.UUID(hidden["id"]),
        AuditEntry.action == "inmate.listed",
    )


async def test_registration_number_search_ignores_case_and_accents_only_where_they_are(
    registry: Registry,
):
    reg = registry
    here = await facility(reg, "LP-SRC")
    await inmate(reg, here["id"], "Bdg-001/A", NIKS[16], full_name="Ṣiti Ámínah")
    await inmate(reg, here["id"], "BDG-002/B", NIKS[17], full_name="Eko Saputra")

    async def found(q: str) -> list[str]:
        r = await reg.get("/api/v1/inmates", q=q)
        assert r.status_code == 200, r.text
        return sorted(i["registration_number"] for i in r.json()["data"])

    assert await found("bdg-00") == ["BDG-002/B", "Bdg-001/A"]
    assert await found("BDG-001") == ["Bdg-001/A"]
    assert await found("siti aminah") == ["Bdg-001/A"]
    assert await found("ÁMÍNAH") == ["Bdg-001/A"]  # a needle outside ASCII still finds names
    assert await found("002/b") == ["BDG-002/B"]


async def test_a_taken_registration_number_or_nik_is_a_conflict_naming_the_field(
    registry: Registry,
):
    reg = registry
    here = await facility(reg, "LP-DUP")
    await inmate(reg, here["id"], "D.1", NIKS[18])
    body = {
        "full_name": "Dewi Lestari",
        "sex": "F",
        "date_of_birth": "1991-04-12",
        "facility_id": here["id"],
        "admission_date": "2023-01-10",
    }
    both = await reg.post(
        "/api/v1/inmates", {**body, "registration_number": "D.1", "nik": NIKS[18]}
    )
    assert problem(both, 409, "registration_number")["type"].endswith("registration-number-taken")
    number = await reg.post(
        "/api/v1/inmates", {**body, "registration_number": "D.1", "nik": NIKS[0]}
    )
    assert problem(number, 409, "registration_number")["type"].endswith("registration-number-taken")
    nik = await reg.post("/api/v1/inmates", {**body, "registration_number": "D.2", "nik": NIKS[18]})
    assert problem(nik, 409, "nik")["type"].endswith("nik-taken")
    assert NIKS[18] not in nik.text
    assert len(await reg.rows(Inmate)) == 1


async def test_subject_access_export_holds_everything_and_is_the_only_place_with_the_nik(
    registry: Registry,
):
    reg = registry
    here = await facility(reg, "LP-SAR")
    person = await inmate(reg, here["id"], "S.1", NIKS[12], consent=BOTH)
    dup = await inmate(reg, here["id"], "S.1-D", NIKS[13])
    await reg.post(
        f"/api/v1/inmates/{person['id']}/merge",
        {"duplicate_id": dup["id"], "merged_on": "2024-01-02"},
    )
    await reg.post(
        f"/api/v1/inmates/{person['id']}/absence",
        {"reason": "hospital", "absent_from": "2024-02-01"},
    )

    url = f"/api/v1/inmates/{person['id']}/subject-access"
    problem(await reg.get(url, reg.officer("LP-SAR")), 403)
    problem(await reg.get(url, reg.industry), 403)
    problem(await reg.get(f"/api/v1/inmates/{uuid.uuid4()}/subject-access"), 404)
    r = await reg.get(url)
    assert r.status_code == 200, r.text
    export = r.json()
    assert export["nik"] == NIKS[12]
    assert export["inmate"]["id"] == person["id"]
    assert export["merged_record_ids"] == [dup["id"]]
    assert [m["kind"] for m in export["movements"]] == ["merge", "absence"]
    assert [e["event_type"] for e in export["events_published"]] == [
        "id.bekal.registry.inmate.shared.v2",
        "id.bekal.registry.inmate.temporarily_absent.v1",
    ]
    # The share as it carried the name and birth year, opened for the person (sealed on the
    # wire); the person's key itself is not in the export.
    shared = export["events_published"][0]["data"]
    assert shared["full_name"] == person["full_name"] and "personal" in shared
    assert shared["birth_year"] == int(person["date_of_birth"][:4])
    assert "inmate.registered" in [a["action"] for a in export["audit_trail"]]
    # The export is itself a read of the record, and audited.
    trail = (
        await reg.get(
            "/api/v1/audit", inmate_id=person["id"], action="inmate.subject_access_exported"
        )
    ).json()
    assert trail["count"] == 1
    # Nowhere else: detail, list, audit trail.
    for other in (
        await reg.get(f"/api/v1/inmates/{person['id']}"),
        await reg.get("/api/v1/inmates"),
        await reg.get("/api/v1/audit"),
    ):
        assert other.status_code == 200 and NIKS[12] not in other.text


# --- candidates and who may see what ----------------------------------------------------------


async def test_candidates_are_consenting_people_released_within_the_window(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-CND")
    there = await facility(reg, "LP-CND2")
    soon = await inmate(
        reg, here["id"], "K.1", NIKS[14], consent=BOTH, expected_release_date="2025-03-01"
    )
    later = await inmate(
        reg, here["id"], "K.2", NIKS[15], consent=BOTH, expected_release_date="2025-12-31"
    )
    await inmate(reg, here["id"], "K.3", NIKS[16], expected_release_date="2025-02-01")  # no consent
    await inmate(
        reg, here["id"], "K.4", NIKS[17], consent=BOTH, expected_release_date="2024-12-31"
    )  # past
    await inmate(
        reg, there["id"], "K.5", NIKS[18], consent=BOTH, expected_release_date="2025-02-01"
    )

    url = f"/api/v1/facilities/{here['id']}/candidates"
    r = await reg.get(url, today="2025-01-01")
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["data"]] == [soon["id"], later["id"]]
    r = await reg.get(url, today="2025-01-01", months=6)
    assert [i["id"] for i in r.json()["data"]] == [soon["id"]]
    # Someone away on leave is still a candidate; someone released is not.
    await reg.post(
        f"/api/v1/inmates/{later['id']}/release", {"kind": "parole", "released_on": "2024-12-01"}
    )
    assert (await reg.get(url, today="2025-01-01")).json()["count"] == 1

    problem(await reg.get(url, months=0), 422, "months")
    assert (await reg.get(url, reg.officer("LP-CND"), today="2025-01-01")).json()["count"] == 1
    problem(await reg.get(url, reg.officer("LP-CND2")), 404)
    problem(await reg.get(f"/api/v1/facilities/{uuid.uuid4()}/candidates"), 404)
    problem(await reg.get(url, reg.industry), 403)


async def test_facility_staff_cannot_read_or_probe_another_facilitys_inmates(registry: Registry):
    reg = registry
    mine = await facility(reg, "LP-MINE")
    theirs = await facility(reg, "LP-THEIRS")
    own = await inmate(reg, mine["id"], "P.1", "3171010101010001")
    other = await inmate(reg, theirs["id"], "P.2", "3171010101010002")
    officer = reg.officer("LP-MINE")
    missing = await reg.get(f"/api/v1/inmates/{uuid.uuid4()}", officer)
    foreign = await reg.get(f"/api/v1/inmates/{other['id']}", officer)
    # Another facility's inmate looks exactly like one that does not exist.
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"]
    for action, body in (
        ("absence", {"reason": "court", "absent_from": "2024-01-01"}),
        ("death", {"died_on": "2024-01-01"}),
        ("consent", BOTH),
    ):
        problem(await reg.post(f"/api/v1/inmates/{other['id']}/{action}", body, officer), 404)
    listed = (await reg.get("/api/v1/inmates", officer)).json()
    assert [i["id"] for i in listed["data"]] == [own["id"]]
    assert (await reg.get("/api/v1/inmates", officer, facility_id=theirs["id"])).json()[
        "count"
    ] == 0

    # Industry tokens read no inmate at all, not even with a facility claim.
    for url in ("/api/v1/inmates", f"/api/v1/inmates/{own['id']}"):
        problem(await reg.get(url, reg.industry), 403)
    problem(await reg.client.get("/api/v1/inmates"), 401)
    # Nothing about the other facility's inmate changed.
    assert (await reg.get(f"/api/v1/inmates/{other['id']}")).json()["status"] == "in_custody"


async def test_name_search_ignores_case_and_accents(registry: Registry):
    reg = registry
    here = await facility(reg, "LP-SRC")
    await inmate(reg, here["id"], "Q.1", "3171010101010003", full_name="Nur Aḥmad Fauzī")
    for q in ("fauzi", "AHMAD", "nur ahmad", "Fauzī", "Q.1"):
        assert (await reg.get("/api/v1/inmates", q=q)).json()["count"] == 1, q
    assert (await reg.get("/api/v1/inmates", q="fauziah")).json()["count"] == 0


async def test_no_nik_in_any_event_list_audit_entry_or_log_line(
    registry: Registry, capfd: pytest.CaptureFixture[str]
):
    reg = registry
    here = await facility(reg, "LP-NIK")
    nik = "3273015708920007"
    person = await inmate(reg, here["id"], "Z.1", nik, consent=BOTH)
    pid = person["id"]
    await reg.post(
        f"/api/v1/inmates/{pid}/absence", {"reason": "court", "absent_from": "2024-01-01"}
    )
    await reg.post(f"/api/v1/inmates/{pid}/return", {"returned_on": "2024-01-02"})
    await reg.post(f"/api/v1/inmates/{pid}/consent", {"training": False, "data_sharing": True})
    await reg.post(f"/api/v1/inmates/{pid}/erasure")
    # A wrong NIK in a request is not echoed back in the problem either.
    bad = await reg.post("/api/v1/inmates", {"nik": "32730157089200X7"})
    assert bad.status_code == 422 and "32730157089200X7" not in bad.text

    texts = [
        (await reg.get("/api/v1/inmates")).text,
        (await reg.get(f"/api/v1/inmates/{pid}")).text,
        (await reg.get("/api/v1/audit", limit=500)).text,
    ]
    records = await reg.published()
    assert len(events_for(records, pid)) == 5
    for p in records:
        assert nik.encode() not in p.raw()
    for row in await reg.rows(OutboxMessage):
        assert nik not in row.payload
    for entry in await reg.rows(AuditEntry):
        assert nik not in (entry.detail or "")
    for text in texts:
        assert nik not in text
    logs = capfd.readouterr()
    assert "inmate_erased" in logs.out + logs.err
    assert nik not in logs.out + logs.err and "32730157089200X7" not in logs.out + logs.err
    assert await count(reg.app.state.db, Inmate) == 1


async def test_a_new_expected_release_date_shares_the_person_again_and_obeys_the_rules(
    registry: Registry,
):
    reg = registry
    home = await facility(reg, "LP-ERD")
    await facility(reg, "LP-ERD-OTHER")
    shared = await inmate(reg, home["id"], "ERD.1", NIKS[17], consent=BOTH)
    unshared = await inmate(reg, home["id"], "ERD.2", NIKS[18])

    r = await reg.post(
        f"/api/v1/inmates/{shared['id']}/expected-release",
        {"expected_release_date": "2026-03-31"},
        reg.officer("LP-ERD"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["expected_release_date"] == "2026-03-31"
    # Another facility's officer cannot tell the person exists.
    problem(
        await reg.post(
            f"/api/v1/inmates/{shared['id']}/expected-release",
            {"expected_release_date": "2026-04-30"},
            reg.officer("LP-ERD-OTHER"),
        ),
        404,
    )
    problem(
        await reg.post(
            f"/api/v1/inmates/{unshared['id']}/expected-release",
            {"expected_release_date": "2022-12-31"},
        ),
        422,
        "expected_release_date",
    )
    r = await reg.post(
        f"/api/v1/inmates/{unshared['id']}/release",
        {"kind": "free", "released_on": "2025-01-01"},
    )
    assert r.status_code == 200, r.text
    gone = problem(
        await reg.post(
            f"/api/v1/inmates/{unshared['id']}/expected-release",
            {"expected_release_date": "2026-03-31"},
        ),
        409,
        "status",
    )
    assert gone["type"].endswith("inmate-not-in-custody")

    events = [p.event for p in await reg.published()]
    again = [e for e in events if isinstance(e, InmateShared)]
    # Shared twice, the second time whole with the new date; the unshared person never.
    assert [(str(e.participant_id), e.expected_release_date) for e in again] == [
        (shared["id"], date(2026, 6, 30)),
        (shared["id"], date(2026, 3, 31)),
    ]
    assert all(e.facility_code == "LP-ERD" for e in again)
    (entry,) = await reg.rows(
        AuditEntry,
        AuditEntry.inmate_id == uuid.UUID(shared["id"]),
        AuditEntry.action == "inmate.expected_release_updated",
    )
    assert entry.actor == "officer"
    assert json.loads(entry.detail) == {"from": "2026-06-30", "to": "2026-03-31"}


async def test_erasure_also_clears_the_name_from_kept_events_and_replayable_answers(
    registry: Registry,
):
    reg = registry
    here = await facility(reg, "LP-COPY")
    body = {
        "registration_number": "C.1",
        "full_name": "Kartika Sari",
        "nik": NIKS[0],
        "sex": "F",
        "date_of_birth": "1991-04-12",
        "facility_id": here["id"],
        "admission_date": "2023-01-10",
        "consent": BOTH,
    }
    key = {**reg.admin, "Idempotency-Key": "reg-c1"}
    r = await reg.post("/api/v1/inmates", body, key)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    # Before: the subject-access export shows every copy of the person's data the registry keeps.
    export = (await reg.get(f"/api/v1/inmates/{pid}/subject-access")).json()
    assert [s["body"]["full_name"] for s in export["stored_responses"]] == ["Kartika Sari"]
    assert export["events_published"][0]["data"]["full_name"] == "Kartika Sari"

    assert (await reg.post(f"/api/v1/inmates/{pid}/erasure")).status_code == 200
    for row in await reg.rows(OutboxMessage):
        assert "Kartika" not in row.payload
    assert "Kartika" not in json.dumps(
        (await reg.get(f"/api/v1/inmates/{pid}/subject-access")).json()
    )
    # A replay of the registration's key no longer answers with the old record.
    replay = await reg.post("/api/v1/inmates", body, key)
    assert problem(replay, 409, "registration_number")["type"].endswith("registration-number-taken")
    assert "Kartika" not in replay.text
