"""Benchmark: latency (p50/p99) and throughput of the main read and write endpoints under load.

The four services run as ``bekal serve`` processes on PostgreSQL (databases created and dropped
here) with a dedicated embedded broker, as in ``national_scale.py``. After a little seeding
through the public APIs (facilities, a bulk import of inmates, sessions, one completed course
whose certificates are issued), each endpoint in turn gets ``--concurrency`` workers sending
requests back to back for ``--seconds`` seconds over loopback (an asyncio httpx client: the
load generator shares the machine's cores with the services, as it would on one laptop).

    .venv/bin/python benchmarks/http_load.py [--seconds 15] [--concurrency 16] [--inmates 20000]
        [--only search,create,enrol]

Every request's status is checked: errors are counted and shown, never timed as successes.
The public verification's rate limit is raised for the run (it would refuse the load).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline
from harness import machine, percentile, pg_dsn, pg_server_version, platform_on_postgres, table
from national_scale import Api, fetch, scalar, wait_for, write_csv

from bekal.registry.domain import PROVINCES
from bekal.shared.events.catalogue import CertificateIssued

Call = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


@dataclass
class Outcome:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


async def load(name: str, call: Call, *, seconds: float, concurrency: int) -> Outcome:
    """``concurrency`` workers calling back to back until ``seconds`` have passed."""
    out = Outcome(name)
    counter = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                r = await call(client, next(counter))
                elapsed = time.perf_counter() - t
                if r.status_code < 300:
                    out.latencies.append(elapsed)
                else:
                    out.errors[r.status_code] = out.errors.get(r.status_code, 0) + 1
                    if sum(out.errors.values()) == 1:
                        print(f"  {name}: first error {r.status_code} {r.text[:300]}", flush=True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - started
    ok = len(out.latencies)
    print(
        f"  {name}: {ok:,} ok, {sum(out.errors.values())} errors in {out.seconds:.1f} s = "
        f"{ok / out.seconds:,.0f}/s, p50 {percentile(out.latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(out.latencies, 99) * 1000:.1f} ms",
        flush=True,
    )
    return out


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bekal-http-") as tmp_name:
        tmp = Path(tmp_name)
        pipeline.quiet_logs(tmp / "bench.log")
        print(f"machine: {machine()}; PostgreSQL {await pg_server_version()}", flush=True)
        async with platform_on_postgres(tmp) as run:
            api = Api(run)
            dsn = {s: pg_dsn(db) for s, db in run.databases.items()}
            try:
                seeded = await seed(run, api, dsn, args, tmp)
            finally:
                await api.close()
            results = await drive(run, seeded, args)
    print()
    print(
        f"## HTTP under load ({machine()}; {args.concurrency} concurrent workers, "
        f"{args.seconds:.0f} s per endpoint)"
    )
    print()
    print(
        table(
            ["endpoint", "requests", "errors", "per second", "p50 ms", "p99 ms"],
            [
                (
                    r.name,
                    len(r.latencies),
                    sum(r.errors.values()),
                    len(r.latencies) / r.seconds,
                    percentile(r.latencies, 50) * 1000,
                    percentile(r.latencies, 99) * 1000,
                )
                for r in results
            ],
        )
    )


@dataclass
class Seeded:
    facility_ids: list[str]
    facility_of_session: dict[str, str]
    free_people: dict[str, list[str]]  # by session: consenting people not yet enrolled
    session_ids: list[str]
    names: list[str]
    codes: list[str]


async def seed(
    run: Any, api: Api, dsn: dict[str, str], args: argparse.Namespace, tmp: Path
) -> Seeded:
    n_facilities = 20
    codes = [f"LP-{i:04d}" for i in range(n_facilities)]
    facilities = []
    for i, code in enumerate(codes):
        facilities.append(
            await api(
                "POST",
                "registry",
                "/api/v1/facilities",
                as_="corrections",
                expect=201,
                json={
                    "code": code,
                    "name": f"Lapas Contoh {i:04d}",
                    "kind": "lapas",
                    "facility_class": "IIA",
                    "province": PROVINCES[i % len(PROVINCES)],
                    "regional_office": f"Kanwil {PROVINCES[i % len(PROVINCES)]}",
                    "capacity": 1500,
                    "active": True,
                },
            )
        )
    facility_ids = [f["id"] for f in facilities]
    path = tmp / "inmates.csv"
    consenting = write_csv(path, args.inmates, codes, random.Random(3))
    job = await api(
        "POST",
        "registry",
        "/api/v1/imports",
        as_="corrections",
        expect=202,
        content=path.read_bytes(),
        headers={"Content-Type": "text/csv"},
    )

    async def imported() -> bool:
        nonlocal job
        job = await api("GET", "registry", f"/api/v1/imports/{job['id']}", as_="corrections")
        return bool(job["status"] in ("done", "failed"))

    await wait_for("the import", imported, within=3600, every=1.0)

    async def shared() -> bool:
        n = await scalar(dsn["training"], "SELECT count(*) FROM participants")
        return int(n or 0) >= consenting

    await wait_for("participants in training", shared, within=3600, every=1.0)
    program = await api(
        "POST",
        "training",
        "/api/v1/programs",
        as_="industry",
        expect=201,
        json={
            "code": "WUB-BATIK-LOAD",
            "title": "Penumbuhan WUB IKM Batik",
            "sector": "batik",
            "partner": "Yayasan Batik Indonesia",
            "days": 5,
            "hours": 40,
            "min_attendance_share": 0.8,
            "competency_units": [{"code": "BTK-01", "title": "Membatik tulis"}],
        },
    )
    people: dict[str, list[str]] = {}
    for r in await fetch(dsn["training"], "SELECT id, facility_id FROM participants ORDER BY id"):
        people.setdefault(r["facility_id"], []).append(r["id"])
    start = date(2025, 6, 2)
    session_ids: list[str] = []
    facility_of_session: dict[str, str] = {}
    for fid in facility_ids:
        s = await api(
            "POST",
            "training",
            "/api/v1/sessions",
            as_="industry",
            expect=201,
            json={
                "program_id": program["id"],
                "facility_id": fid,
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(days=4)).isoformat(),
                "capacity": 10_000,
            },
        )
        await api("POST", "training", f"/api/v1/sessions/{s['id']}/open", as_="industry")
        session_ids.append(s["id"])
        facility_of_session[s["id"]] = fid
    # One course completed at the first facility, so there are certificates to verify.
    first = session_ids[0]
    graduates = people[facility_ids[0]][:50]
    del people[facility_ids[0]][:50]
    await api(
        "POST",
        "training",
        f"/api/v1/sessions/{first}/enrollments",
        as_="industry",
        expect=201,
        json={"participant_ids": graduates},
    )
    await api("POST", "training", f"/api/v1/sessions/{first}/start", as_="industry")
    for d in range(5):
        await api(
            "PUT",
            "training",
            f"/api/v1/sessions/{first}/attendance",
            as_="industry",
            json={
                "date": (start + timedelta(days=d)).isoformat(),
                "records": [{"participant_id": p, "status": "present"} for p in graduates],
            },
        )
    await api(
        "PUT",
        "training",
        f"/api/v1/sessions/{first}/assessments",
        as_="industry",
        json={
            "assessor": "Instruktur",
            "results": [
                {"participant_id": p, "unit_code": "BTK-01", "result": "competent"}
                for p in graduates
            ],
        },
    )
    await api("POST", "training", f"/api/v1/sessions/{first}/complete", as_="industry")

    async def certified() -> bool:
        n = await scalar(
            dsn["reporting"],
            "SELECT count(*) FROM inbox WHERE event_type = $1",
            CertificateIssued.event_type(),
        )
        return int(n or 0) >= len(graduates)

    await wait_for("certificates", certified, within=600)
    verification = [
        r["verification_code"]
        for r in await fetch(dsn["certification"], "SELECT verification_code FROM certificates")
    ]
    names = [
        r["full_name"].split()[0]
        for r in await fetch(dsn["training"], "SELECT full_name FROM participants LIMIT 200")
    ]
    return Seeded(
        facility_ids=facility_ids,
        facility_of_session=facility_of_session,
        free_people={s: people[facility_of_session[s]] for s in session_ids[1:]},
        session_ids=session_ids[1:],
        names=names,
        codes=verification,
    )


async def drive(run: Any, seeded: Seeded, args: argparse.Namespace) -> list[Outcome]:
    corrections = run.bearer("corrections")
    industry = run.bearer("industry")
    registry, training = run.url("registry"), run.url("training")
    reporting, certification = run.url("reporting"), run.url("certification")
    tag = uuid.uuid4().hex[:6].upper()
    # One new person per enrolment request: enrolments are unique per session and person.
    queue = [(sid, pid) for sid, pids in seeded.free_people.items() for pid in pids]
    random.Random(5).shuffle(queue)

    async def search(c: httpx.AsyncClient, i: int) -> httpx.Response:
        q = seeded.names[i % len(seeded.names)]
        return await c.get(f"{registry}/api/v1/inmates?q={q}&limit=20", headers=corrections)

    async def create(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.post(
            f"{registry}/api/v1/inmates",
            headers=corrections,
            json={
                "registration_number": f"LOAD-{tag}-{i}",
                "full_name": "Budi Santoso",
                "nik": f"{3500000000000000 + i:016d}",
                "sex": "M",
                "date_of_birth": "1990-01-01",
                "facility_id": seeded.facility_ids[i % len(seeded.facility_ids)],
                "admission_date": "2022-01-10",
                "expected_release_date": "2025-12-10",
                "consent": {"training": False, "data_sharing": False},
            },
        )

    async def enrol(c: httpx.AsyncClient, i: int) -> httpx.Response:
        sid, pid = queue[i]
        return await c.post(
            f"{training}/api/v1/sessions/{sid}/enrollments",
            headers=industry,
            json={"participant_ids": [pid]},
        )

    async def indicators(c: httpx.AsyncClient, i: int) -> httpx.Response:
        return await c.get(
            f"{reporting}/api/v1/indicators?group_by=province,year", headers=industry
        )

    async def verify(c: httpx.AsyncClient, i: int) -> httpx.Response:
        code = seeded.codes[i % len(seeded.codes)]
        return await c.get(f"{certification}/public/verify/{code}")

    plan: list[tuple[str, Call]] = [
        ("GET registry /api/v1/inmates?q= (search)", search),
        ("POST registry /api/v1/inmates (create)", create),
        ("POST training /sessions/{id}/enrollments (1 person)", enrol),
        ("GET reporting /api/v1/indicators?group_by=province,year", indicators),
        ("GET certification /public/verify/{code}", verify),
    ]
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        plan = [(n, c) for n, c in plan if c.__name__ in wanted]
    results = []
    for name, call in plan:
        await asyncio.sleep(2)  # let the previous endpoint's events settle
        results.append(await load(name, call, seconds=args.seconds, concurrency=args.concurrency))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="workers in flight")
    parser.add_argument("--inmates", type=int, default=20_000, help="imported before the load")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated endpoints to load: search,create,enrol,indicators,verify",
    )
    asyncio.run(main(parser.parse_args()))
