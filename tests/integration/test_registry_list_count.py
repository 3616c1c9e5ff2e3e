"""The people list's total, on SQLite and PostgreSQL: exact up to the cap (LIST_COUNT_LIMIT),
"more than the cap" past it (``count_capped``), every match still reachable through the
cursor, and every page's reads audited as before; the audit trail's total capped alike."""

from __future__ import annotations

from typing import Any

import pytest

from bekal.registry.app import create_app
from bekal.registry.models import AuditEntry
from tests.support.apps import running
from tests.support.registry import SECRET, Registry

pytestmark = pytest.mark.integration

CAP = 3
# Five people named Siti (four in Tangerang, one in Pontianak), two others: seven in all.
PEOPLE = [
    ("TGR.001", "Siti Aminah", "LPP-TANGERANG"),
    ("TGR.002", "SITI Rahmawati", "LPP-TANGERANG"),
    ("TGR.003", "Ṣiti Nurhaliza", "LPP-TANGERANG"),
    ("TGR.004", "Siti Kartika", "LPP-TANGERANG"),
    ("PTK.001", "Siti Wulandari", "LAPAS-PONTIANAK"),
    ("PTK.002", "Budi Santoso", "LAPAS-PONTIANAK"),
    ("PTK.003", "Eko Prasetyo", "LAPAS-PONTIANAK"),
]


async def _registry_with_people(reg: Registry) -> None:
    for code in ("LPP-TANGERANG", "LAPAS-PONTIANAK"):
        await reg.facility(
            {
                "code": code,
                "name": f"Lapas {code}",
                "kind": "lapas",
                "facility_class": "IIA",
                "province": "Banten",
                "regional_office": "Kanwil Banten",
                "capacity": 600,
            }
        )
    for n, (number, name, code) in enumerate(PEOPLE):
        await reg.created(
            "/api/v1/inmates",
            {
                "registration_number": number,
                "full_name": name,
                "nik": f"36710153079500{n:02d}",
                "sex": "F",
                "date_of_birth": "1990-05-05",
                "facility_id": reg.facilities[code],
                "admission_date": "2022-03-01",
            },
            headers={**reg.admin, "Idempotency-Key": f"person-{n}"},
        )


async def inmates_audit(reg: Registry, **params: Any) -> dict[str, Any]:
    r = await reg.get("/api/v1/audit", None, **params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_total_past_the_cap_is_reported_as_capped_and_every_match_stays_reachable(
    database_url: str, make_settings: Any
):
    # No broker: the registry's events wait in its outbox, which this test does not read.
    settings = make_settings(
        "registry", database_url, pseudonym_secret=SECRET, list_count_limit=CAP
    )
    app = create_app(settings)
    async with running(app, consuming=False) as client:
        reg = Registry(app, client, settings)
        await _registry_with_people(reg)

        async def inmates(headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
            r = await reg.get("/api/v1/inmates", headers, **params)
            assert r.status_code == 200, r.text
            return dict(r.json())

        # More matches than the cap: the count is the cap, and says so.
        siti = await inmates(q="siti")
        assert (siti["count"], siti["count_capped"]) == (CAP, True)
        assert len(siti["data"]) == 5 and siti["next_cursor"] is None
        everyone = await inmates()
        assert (everyone["count"], everyone["count_capped"]) == (CAP, True)

        # The cursor still reads every match, each page saying the total is capped.
        seen: list[str] = []
        params: dict[str, Any] = {"q": "SÍTI", "limit": 2}
        while True:
            page = await inmates(**params)
            assert (page["count"], page["count_capped"]) == (CAP, True)
            seen += [i["registration_number"] for i in page["data"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == ["PTK.001", "TGR.001", "TGR.002", "TGR.003", "TGR.004"]

        # As many as the cap, or fewer: the exact total.
        pontianak = await inmates(facility_id=reg.facilities["LAPAS-PONTIANAK"])
        assert (pontianak["count"], pontianak["count_capped"]) == (3, False)
        few = await inmates(q="siti", facility_id=reg.facilities["LAPAS-PONTIANAK"])
        assert (few["count"], few["count_capped"]) == (1, False)
        assert [i["full_name"] for i in few["data"]] == ["Siti Wulandari"]
        none = await inmates(q="zzz")
        assert none == {"data": [], "count": 0, "count_capped": False, "next_cursor": None}
        # A facility officer's view is counted within their facility.
        officer = reg.officer("LPP-TANGERANG")
        theirs = await inmates(officer, q="siti")
        assert (theirs["count"], theirs["count_capped"]) == (CAP, True)
        assert len(theirs["data"]) == 4

        # Each search is still audited: one entry per person shown, capped total or not.
        listed = await reg.rows(AuditEntry, AuditEntry.action == "inmate.listed")
        shown = 5 + 7 + 5 + 3 + 1 + 0 + 4
        assert len(listed) == shown

        # The audit trail grows with every read: its count is capped the same way, and every
        # entry is still reached through the cursor.
        trail = await inmates_audit(reg, action="inmate.listed", limit=10)
        assert (trail["count"], trail["count_capped"]) == (CAP, True)
        entries = len(trail["data"])
        while trail["next_cursor"]:
            trail = await inmates_audit(
                reg, action="inmate.listed", limit=10, cursor=trail["next_cursor"]
            )
            assert (trail["count"], trail["count_capped"]) == (CAP, True)
            entries += len(trail["data"])
        assert entries == shown
        # One person's entries, as many as the cap or fewer: the exact total.
        times = {e.inmate_id: sum(o.inmate_id == e.inmate_id for o in listed) for e in listed}
        least = min(times, key=lambda inmate_id: times[inmate_id])
        assert times[least] <= CAP
        one = await inmates_audit(reg, action="inmate.listed", inmate_id=str(least))
        assert (one["count"], one["count_capped"]) == (times[least], False)

        # Integrators read what the field means in the OpenAPI document.
        schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
        fields = schema["InmatesPublic"]["properties"]
        assert "count_capped" in fields and "cap" in fields["count_capped"]["description"]
        assert "count_capped" in fields["count"]["description"]
        assert "count_capped" in schema["AuditEntriesPublic"]["properties"]
