"""The differencing attack on every public output finds no small count.

Banten enrols 92 in 2024: 30 + 30 + 30 in three sectors and 1 + 1 in two more; 2 more in 2023;
Kalimantan Barat 3 in 2024. Completions and certificates follow the same shape. An attacker
takes everything published without sign-in (the summary, the open data as JSON and as CSV: the
public endpoints take no filter) and subtracts: every total and margin minus the published
members under it, and every difference and sum of two figures. On the exact counts (what
officials read) the same attack gives each hidden 1 back; on the public outputs it gives no
number from 1 to 4.
"""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from bekal.reporting.app import create_app
from bekal.shared.events.base import Event
from bekal.shared.events.catalogue import CompetencyUnit
from bekal.shared.messaging.models import InboxMessage
from tests.support.apps import bearer, running
from tests.support.db import count
from tests.support.factories import (
    PONTIANAK,
    TANGERANG,
    certificate_issued,
    facility_registered,
    participant_completed,
    participant_enrolled,
    program_published,
    session_scheduled,
)
from tests.support.kafka import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

UNITS = [CompetencyUnit(code="U1", title="Unit")]
# (province's facility, year, sector, people): every one completes and is certified.
SHAPE = [
    ("banten", 2024, "batik", 30),
    ("banten", 2024, "kayu", 30),
    ("banten", 2024, "kuliner", 30),
    ("banten", 2024, "sablon", 1),
    ("banten", 2024, "anyaman", 1),
    ("banten", 2023, "batik", 2),
    ("kalbar", 2024, "batik", 3),
]


def history() -> list[Event]:
    facilities = {
        "banten": facility_registered(TANGERANG),
        "kalbar": facility_registered(PONTIANAK),
    }
    events: list[Event] = list(facilities.values())
    programs: dict[str, Any] = {}
    for place, year, sector, people in SHAPE:
        if sector not in programs:
            programs[sector] = program_published(
                title=f"Kursus {sector}", sector=sector, partner=None, competency_units=UNITS
            )
            events.append(programs[sector])
        session = session_scheduled(
            programs[sector],
            facilities[place],
            session_id=uuid.uuid4(),
            start_date=date(year, 3, 4),
            end_date=date(year, 3, 8),
            capacity=40,
        )
        events.append(session)
        for _ in range(people):
            enrolled = participant_enrolled(session, enrolled_on=date(year, 3, 1))
            done = participant_completed(
                enrolled,
                programs[sector],
                participant_name="Nama",
                start_date=date(year, 3, 4),
                end_date=date(year, 3, 8),
            )
            events += [enrolled, done, certificate_issued(done, issued_on=date(year, 3, 11))]
    return events


COUNTERS = ("enrolled", "completed", "certified")
KEYS = ("year", "province", "sector", "sex")


def relations(outputs: dict[str, Any], counter: str) -> list[tuple[int, list[int]]]:
    """Every published "whole = sum of parts" there is, for one counter: the total over the
    cells, over the years and over the provinces; each year and province over its cells."""
    cells = outputs["cells"]
    out: list[tuple[int, list[int]]] = [(outputs["totals"][counter], [c[counter] for c in cells])]
    for dim in ("year", "province"):
        margins = outputs[dim]
        out.append((outputs["totals"][counter], [m[counter] for m in margins]))
        members: dict[Any, list[int]] = defaultdict(list)
        for c in cells:
            members[c[dim]].append(c[counter])
        out += [(m[counter], members[m[dim]]) for m in margins]
    return out


def attack(outputs: dict[str, Any]) -> set[int]:
    """Every number the subtraction attack gets out of the outputs."""
    found: set[int] = set()
    for counter in COUNTERS:
        for whole, parts in relations(outputs, counter):
            found |= {whole - (sum(parts) - part) for part in parts}
            # and any subset of the parts left out, up to three of them
            for n in (2, 3):
                for left_out in itertools.combinations(range(len(parts)), n):
                    found.add(whole - sum(p for i, p in enumerate(parts) if i not in left_out))
        figures = [c[counter] for c in outputs["cells"]] + [outputs["totals"][counter]]
        figures += [m[counter] for dim in ("year", "province") for m in outputs[dim]]
        found |= {abs(a - b) for a, b in itertools.combinations(figures, 2)}
    return found


async def test_the_subtraction_attack_on_every_public_output_recovers_no_small_count(
    database_url: str, broker, make_settings
):
    settings = make_settings("reporting", database_url, broker)
    events = history()
    app = create_app(settings)
    async with running(app) as client:
        await publish(settings, events)

        async def applied() -> bool:
            return await count(app.state.db, InboxMessage) >= len(events)

        await wait_until(applied, within=120, what="history applied")

        summary = (await client.get("/public/summary")).json()
        open_data = (await client.get("/public/open-data.json")).json()
        response = await client.get("/public/open-data.csv")
        from_csv = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        # The CSV says what the JSON says.
        assert [[r[k] for k in [*KEYS, *COUNTERS]] for r in from_csv] == [
            ["" if r[k] is None else str(r[k]) for k in [*KEYS, *COUNTERS]]
            for r in open_data["rows"]
        ]
        public = {
            "cells": open_data["rows"],
            "totals": summary["totals"],
            "year": summary["by_year"],
            "province": summary["by_province"],
        }
        # Banten's two lone sectors: true 1 each.
        small = [
            r
            for r in public["cells"]
            if r["province"] == "Banten" and r["sector"] in ("sablon", "anyaman")
        ]
        assert len(small) == 2

        # What officials read is exact: there the attack gives the 1s back.
        admin = bearer(settings, ministry="industry", roles=["training_admin"])

        async def exact(group_by: str) -> list[dict[str, Any]]:
            body = (
                await client.get("/api/v1/indicators", headers=admin, params={"group_by": group_by})
            ).json()
            return [{**r, **{c: r[c] for c in COUNTERS}} for r in body["data"]]

        totals = (await client.get("/api/v1/indicators", headers=admin)).json()["totals"]
        true = {
            "cells": await exact(",".join(KEYS)),
            "totals": totals,
            "year": await exact("year"),
            "province": await exact("province"),
        }
        assert true["totals"]["enrolled"] == 97
        assert 1 in attack(true)

        recovered = attack(public)
        assert not {n for n in recovered if 0 < n < 5}, sorted(recovered)
        # Each published figure is its true count rounded to a multiple of 5.
        for published, exact_figures in (
            (public["cells"], true["cells"]),
            (public["year"], true["year"]),
            (public["province"], true["province"]),
        ):
            for p, t in zip(published, exact_figures, strict=True):
                for c in COUNTERS:
                    assert p[c] % 5 == 0 and abs(p[c] - t[c]) < 5, (p, t)
