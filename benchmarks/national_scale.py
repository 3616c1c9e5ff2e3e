"""Benchmark: the platform at national scale on PostgreSQL, and the ceiling of the same machine.

The four services run as ``bekal serve`` processes (each on a PostgreSQL database of its own,
created and dropped here) against a dedicated broker on free ports: the embedded broker (Tansu,
the default), a local Apache Kafka cluster of ``--nodes`` 1 or 3 (topics with as many replicas,
idempotent producers, as in production), or ``--broker both``, one after the other. Through their
public APIs only, the script registers ~530 facilities, bulk-imports 300,000 inmates (30%
consenting, so shared with the industry side), schedules 1,000 sessions, enrols 25,000 people,
releases some of them mid-course, completes the sessions (certificates follow on their own),
releases graduates and records their follow-ups. Every stage prints its throughput; the lag from
a release in the registry to the withdrawal counted in reporting is given as p50/p99.

Timestamps come from the services' databases (outbox ``created_at``/``sent_at``, inbox
``handled_at``, all written by the same machine's clock), so a stage's rate is its rows over the
time from its first to its last row; HTTP stages are timed by the client.

Then, in the same run: the ceiling. Raw aiokafka produce and consume of the same records (same
keys, values and headers) on the same broker, raw asyncpg inserts of the same rows (executemany
and COPY) into the same tables, raw consume-and-insert; and the platform's own relay and consumer
classes on the same backlog, in this process, as a share of that ceiling. Every event stage of
the flow is printed as a share of the same broker's ceiling too: publishing of raw produce,
applying of raw consume (the broker alone) and of raw consume-and-insert.

    .venv/bin/python benchmarks/national_scale.py             # national scale (about 6-11 min)
    .venv/bin/python benchmarks/national_scale.py --scale 0.05  # a quick run
    .venv/bin/python benchmarks/national_scale.py --scale 0.1 --broker both --nodes 3
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline
from harness import (
    CpuSampler,
    Running,
    add_broker_arguments,
    brokers_wanted,
    gather_limited,
    label,
    machine,
    percentile,
    pg_dsn,
    pg_server_version,
    platform_on_postgres,
    started_broker,
    table,
)
from pipeline import Outboxed

from bekal.registry.domain import PROVINCES
from bekal.registry.importer import COLUMNS
from bekal.shared.events.catalogue import (
    CertificateIssued,
    EnrollmentWithdrawn,
    FollowUpRecorded,
    InmateReleased,
    InmateShared,
    ParticipantCompleted,
    ParticipantEnrolled,
)
from bekal.shared.events.personal import PersonKey, key_id

FIRST = ["Siti", "Budi", "Rina", "Agus", "Dewi", "Eko", "Ayu", "Joko", "Sri", "Ahmad", "Nur"]
LAST = ["Aminah", "Santoso", "Wulandari", "Saputra", "Lestari", "Hidayat", "Rahayu", "Fauzi"]
SECTORS = ["batik", "kayu", "pangan", "tenun", "kulit", "logam", "keramik", "bordir"]
SESSION_DAYS = 5
PER_SESSION = 25
CONSENT_SHARE = 0.3
FIRST_START = date(2025, 1, 6)

results: list[tuple[str, int, str, float, str]] = []  # stage, count, unit, per second, note
cpu_rows: list[tuple[str, float, str]] = []  # stage, cores in all, the busiest processes
cpu: CpuSampler | None = None  # while the flow runs


def record(
    stage: str,
    count: int,
    seconds: float,
    unit: str,
    note: str = "",
    *,
    window: tuple[datetime | None, datetime | None] | None = None,
) -> float:
    """A stage's rate; with the CPU sampler running, also the cores each process used in it:
    over ``window`` (its first and last row), or the ``seconds`` that just ended."""
    rate = count / seconds if seconds > 0 else float("nan")
    results.append((stage, count, unit, rate, note))
    used = ""
    if cpu is not None:
        if window is None:
            end = time.time()
            start, end = end - seconds, end
        else:
            first, last = window
            start, end = (first.timestamp(), last.timestamp()) if first and last else (0.0, 0.0)
        cores = cpu.cores(start, end)
        if cores:
            cpu_rows.append((stage, sum(cores.values()), _busiest(cores)))
            used = f" (cores: {sum(cores.values()):.2f})"
    line = f"  {stage}: {count:,} {unit} in {seconds:.1f} s = {rate:,.0f}/s {note}{used}"
    print(line, flush=True)
    return rate


def _busiest(cores: dict[str, float], n: int = 6) -> str:
    busiest = list(cores.items())[:n]
    return ", ".join(f"{group} {used:.2f}" for group, used in busiest if used >= 0.01)


def span(first: datetime | None, last: datetime | None) -> float:
    if first is None or last is None:
        return float("nan")
    return (last - first).total_seconds()


class Api:
    """The public APIs over loopback HTTP, with a bearer token per ministry."""

    def __init__(self, run: Running) -> None:
        self.run = run
        self.http = httpx.AsyncClient(
            timeout=120, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
        )

    async def __call__(
        self, method: str, service: str, path: str, *, as_: str, expect: int = 200, **kw: Any
    ) -> Any:
        headers = {**self.run.bearer(as_), **kw.pop("headers", {})}
        r = await self.http.request(method, self.run.url(service) + path, headers=headers, **kw)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {service}{path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    async def close(self) -> None:
        await self.http.aclose()


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], *, within: float, every: float = 0.5
) -> float:
    """Poll until ``check`` is true; the seconds it took."""
    started = time.perf_counter()
    deadline = started + within
    while not await check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
    return time.perf_counter() - started


# --- the national flow ----------------------------------------------------------------------


def write_csv(path: Path, rows: int, facility_codes: list[str], rnd: random.Random) -> int:
    """The inmates file; consenting people will be released late in 2025 (the courses' window)."""
    consenting = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        # By header name: the importer takes the columns in any order and more may be added.
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), restval="")
        w.writeheader()
        for i in range(rows):
            born = date(1965, 1, 1) + timedelta(days=rnd.randrange(0, 14000))
            admitted = date(2020, 1, 1) + timedelta(days=rnd.randrange(0, 1700))
            consent = rnd.random() < CONSENT_SHARE
            if consent:
                consenting += 1
                release = date(2025, 11, 1) + timedelta(days=rnd.randrange(0, 60))
            else:
                release = date(2025, 1, 1) + timedelta(days=rnd.randrange(0, 2000))
            w.writerow(
                {
                    "registration_number": f"BN.{i:07d}",
                    "full_name": f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                    "nik": f"{3200000000000000 + i:016d}",
                    "sex": rnd.choice("FM"),
                    "date_of_birth": born.isoformat(),
                    "education_level": rnd.choice(["SD", "SMP", "SMA", ""]),
                    "facility_code": facility_codes[i % len(facility_codes)],
                    "admission_date": admitted.isoformat(),
                    "expected_release_date": release.isoformat(),
                    "status": "in_custody",
                    "consent_training": "ya" if consent else "tidak",
                    "consent_data_sharing": "ya" if consent else "tidak",
                }
            )
    return consenting


async def scalar(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def inbox_span(dsn: str, event_type: str) -> tuple[int, datetime | None, datetime | None]:
    row = (
        await fetch(
            dsn,
            "SELECT count(*), min(handled_at), max(handled_at) FROM inbox WHERE event_type = $1",
            event_type,
        )
    )[0]
    return int(row[0]), row[1], row[2]


async def inbox_count(dsn: str, event_type: str) -> int:
    return int(
        await scalar(dsn, "SELECT count(*) FROM inbox WHERE event_type = $1", event_type) or 0
    )


async def national_flow(run: Running, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rnd = random.Random(7)
    api = Api(run)
    dsn = {s: pg_dsn(db) for s, db in run.databases.items()}
    n_facilities = max(4, round(530 * args.scale))
    n_inmates = max(2000, round(300_000 * args.scale))
    n_sessions = max(4, round(1000 * args.scale))
    n_releases = max(20, round(200 * args.scale))
    n_followups = max(20, round(5000 * args.scale))
    conc = args.concurrency
    out: dict[str, Any] = {}
    global cpu
    cpu = CpuSampler({s: p.pid for s, p in run.platform.processes.items()}, run.databases)
    cpu.start()
    try:
        # 1. Facilities (registry) -> training and reporting replicas.
        print(f"facilities: {n_facilities}", flush=True)
        codes = [f"LP-{i:04d}" for i in range(n_facilities)]
        kinds = ["lapas", "rutan", "lapas_perempuan", "lpka"]

        def facility(i: int) -> Callable[[], Awaitable[Any]]:
            return lambda: api(
                "POST",
                "registry",
                "/api/v1/facilities",
                as_="corrections",
                expect=201,
                json={
                    "code": codes[i],
                    "name": f"Lapas Contoh {i:04d}",
                    "kind": kinds[i % len(kinds)],
                    "facility_class": ["I", "IIA", "IIB", "III"][i % 4],
                    "province": PROVINCES[i % len(PROVINCES)],
                    "regional_office": f"Kanwil {PROVINCES[i % len(PROVINCES)]}",
                    "capacity": 1500,
                    "active": True,
                },
            )

        started = time.perf_counter()
        facilities = await gather_limited([facility(i) for i in range(n_facilities)], conc)
        record("facilities created (HTTP)", n_facilities, time.perf_counter() - started, "requests")
        facility_ids = [f["id"] for f in facilities]

        async def replicas_have_facilities() -> bool:
            t = await scalar(dsn["training"], "SELECT count(*) FROM facilities")
            r = await scalar(dsn["reporting"], "SELECT count(*) FROM facilities")
            return bool(t == n_facilities and r == n_facilities)

        await wait_for("facility replicas", replicas_have_facilities, within=600)

        # 2. Bulk import of the inmates (registry) -> InmateShared -> training and reporting.
        path = tmp / "inmates.csv"
        consenting = write_csv(path, n_inmates, codes, rnd)
        body = path.read_bytes()
        print(
            f"import: {n_inmates:,} lines ({len(body) / 2**20:.1f} MiB), {consenting:,} consenting",
            flush=True,
        )
        job = await api(
            "POST",
            "registry",
            "/api/v1/imports?filename=inmates.csv",
            as_="corrections",
            expect=202,
            content=body,
            headers={**run.bearer("corrections"), "Content-Type": "text/csv"},
        )

        async def import_done() -> bool:
            nonlocal job
            job = await api("GET", "registry", f"/api/v1/imports/{job['id']}", as_="corrections")
            if job["status"] == "failed":
                raise RuntimeError(f"import failed: {job['failure']}")
            return bool(job["status"] == "done")

        await wait_for("the import", import_done, within=7200, every=1.0)
        if job["created"] != n_inmates:
            raise RuntimeError(
                f"import created {job['created']} of {n_inmates}: {job['errors'][:3]}"
            )
        created_at = datetime.fromisoformat(job["created_at"])
        finished_at = datetime.fromisoformat(job["finished_at"])
        record(
            "inmates imported (bulk, HTTP job)",
            n_inmates,
            span(created_at, finished_at),
            "rows",
            window=(created_at, finished_at),
        )

        shared_type = InmateShared.event_type()

        async def shared_everywhere() -> bool:
            t = await inbox_count(dsn["training"], shared_type)
            r = await inbox_count(dsn["reporting"], shared_type)
            return t >= consenting and r >= consenting

        await wait_for(
            "InmateShared in training and reporting", shared_everywhere, within=14400, every=2
        )
        row = (
            await fetch(
                dsn["registry"],
                "SELECT count(*), min(sent_at), max(sent_at), "
                "percentile_disc(0.99) WITHIN GROUP (ORDER BY sent_at - created_at) "
                "FROM outbox WHERE event_type = $1",
                shared_type,
            )
        )[0]
        waited = row[3].total_seconds() if row[3] is not None else float("nan")
        record(
            "InmateShared published (registry relay)",
            int(row[0]),
            span(row[1], row[2]),
            "events",
            f"(p99 wait in the outbox {waited:.1f} s)",
            window=(row[1], row[2]),
        )
        for service in ("training", "reporting"):
            n, first, last = await inbox_span(dsn[service], shared_type)
            record(
                f"InmateShared applied ({service} consumer)",
                n,
                span(first, last),
                "events",
                window=(first, last),
            )
        n, _, last = await inbox_span(dsn["reporting"], shared_type)
        record(
            "InmateShared, import start -> last in reporting",
            n,
            span(created_at, last),
            "events",
            window=(created_at, last),
        )
        out["consenting"] = consenting

        # 3. Programs and sessions (training).
        programs = []
        for j, sector in enumerate(SECTORS):
            programs.append(
                await api(
                    "POST",
                    "training",
                    "/api/v1/programs",
                    as_="industry",
                    expect=201,
                    json={
                        "code": f"WUB-{sector.upper()}-{j}",
                        "title": f"Penumbuhan WUB IKM {sector.title()}",
                        "sector": sector,
                        "partner": "Balai Besar Industri",
                        "days": SESSION_DAYS,
                        "hours": 40,
                        "min_attendance_share": 0.8,
                        "competency_units": [
                            {"code": f"{sector[:3].upper()}-01", "title": "Dasar produksi"},
                            {"code": f"{sector[:3].upper()}-02", "title": "Usaha dan pemasaran"},
                        ],
                    },
                )
            )
        starts = [FIRST_START + timedelta(days=7 * (i % 40)) for i in range(n_sessions)]

        def session(i: int) -> Callable[[], Awaitable[Any]]:
            async def go() -> Any:
                made = await api(
                    "POST",
                    "training",
                    "/api/v1/sessions",
                    as_="industry",
                    expect=201,
                    json=session_body(i),
                )
                await api("POST", "training", f"/api/v1/sessions/{made['id']}/open", as_="industry")
                return made

            return go

        def session_body(i: int) -> dict[str, Any]:
            return {
                "program_id": programs[i % len(programs)]["id"],
                "facility_id": facility_ids[i % n_facilities],
                "start_date": starts[i].isoformat(),
                "end_date": (starts[i] + timedelta(days=SESSION_DAYS - 1)).isoformat(),
                "capacity": PER_SESSION,
                "instructors": [{"name": "Instruktur", "institution": "Balai Besar"}],
            }

        started = time.perf_counter()
        sessions = await gather_limited([session(i) for i in range(n_sessions)], conc)
        record(
            "sessions scheduled and opened (HTTP)",
            2 * n_sessions,
            time.perf_counter() - started,
            "requests",
        )

        # 4. Enrolment: 25 people of the session's facility, none in two sessions.
        people = await fetch(
            dsn["training"], "SELECT id, facility_id FROM participants ORDER BY id"
        )
        by_facility: dict[str, list[str]] = {}
        for p in people:
            by_facility.setdefault(p["facility_id"], []).append(p["id"])
        rosters: list[list[str]] = []
        for s in sessions:
            pool = by_facility[s["facility_id"]]
            rosters.append(pool[:PER_SESSION])
            del pool[:PER_SESSION]
        n_enrolments = sum(len(r) for r in rosters)

        def enrol(i: int) -> Callable[[], Awaitable[Any]]:
            return lambda: api(
                "POST",
                "training",
                f"/api/v1/sessions/{sessions[i]['id']}/enrollments",
                as_="industry",
                expect=201,
                json={"participant_ids": rosters[i]},
            )

        started = time.perf_counter()
        await gather_limited([enrol(i) for i in range(n_sessions)], conc)
        elapsed = time.perf_counter() - started
        record("enrolment requests (HTTP, 25 people each)", n_sessions, elapsed, "requests")
        record("enrolments", n_enrolments, elapsed, "enrolments")
        enrolled_type = ParticipantEnrolled.event_type()

        async def reporting_has_enrolments() -> bool:
            return await inbox_count(dsn["reporting"], enrolled_type) >= n_enrolments

        waited = await wait_for("enrolments in reporting", reporting_has_enrolments, within=7200)
        n, first, last = await inbox_span(dsn["reporting"], enrolled_type)
        record(
            "ParticipantEnrolled applied (reporting)",
            n,
            span(first, last),
            "events",
            window=(first, last),
        )

        started = time.perf_counter()
        await gather_limited(
            [
                partial(
                    api, "POST", "training", f"/api/v1/sessions/{s['id']}/start", as_="industry"
                )
                for s in sessions
            ],
            conc,
        )
        record("sessions started (HTTP)", n_sessions, time.perf_counter() - started, "requests")

        # 5. Lag: people released mid-course in the registry -> withdrawn in training ->
        #    counted in reporting. Sent at a steady pace, one at a time per session.
        released: set[str] = set()
        releases = []
        for i in range(n_releases):
            pid = rosters[i % n_sessions][-1 - i // n_sessions]
            released.add(pid)
            on = starts[i % n_sessions] + timedelta(days=2)
            releases.append((pid, on))
        pace = 1 / args.release_rate
        started = time.perf_counter()
        for k, (pid, on) in enumerate(releases):
            await api(
                "POST",
                "registry",
                f"/api/v1/inmates/{pid}/release",
                as_="corrections",
                json={"kind": "parole", "released_on": on.isoformat()},
            )
            await asyncio.sleep(max(0.0, started + (k + 1) * pace - time.perf_counter()))
        withdrawn_type = EnrollmentWithdrawn.event_type()

        async def withdrawals_counted() -> bool:
            return await inbox_count(dsn["reporting"], withdrawn_type) >= n_releases

        await wait_for("withdrawals in reporting", withdrawals_counted, within=1800)
        out["lag"] = await release_lag(dsn, released)

        # 6. Attendance, assessments and completion; certificates follow on their own.
        n_pass = 0

        def close(i: int) -> Callable[[], Awaitable[Any]]:
            async def go() -> None:
                nonlocal n_pass
                sid = sessions[i]["id"]
                roster = [p for p in rosters[i] if p not in released]
                weak = set(roster[: max(1, len(roster) // 10)])  # about 1 in 10 misses days
                for d in range(SESSION_DAYS):
                    await api(
                        "PUT",
                        "training",
                        f"/api/v1/sessions/{sid}/attendance",
                        as_="industry",
                        json={
                            "date": (starts[i] + timedelta(days=d)).isoformat(),
                            "records": [
                                {
                                    "participant_id": p,
                                    "status": "absent" if p in weak and d < 3 else "present",
                                }
                                for p in roster
                            ],
                        },
                    )
                units = [u["code"] for u in programs[i % len(programs)]["competency_units"]]
                await api(
                    "PUT",
                    "training",
                    f"/api/v1/sessions/{sid}/assessments",
                    as_="industry",
                    json={
                        "assessor": "Instruktur",
                        "results": [
                            {"participant_id": p, "unit_code": u, "result": "competent"}
                            for p in roster
                            for u in units
                        ],
                    },
                )
                done = await api(
                    "POST", "training", f"/api/v1/sessions/{sid}/complete", as_="industry"
                )
                n_pass += sum(1 for e in done["enrollments"] if e["status"] == "completed")

            return go

        started = time.perf_counter()
        await gather_limited([close(i) for i in range(n_sessions)], conc)
        record(
            "attendance + assessment + completion (HTTP)",
            n_sessions * (SESSION_DAYS + 2),
            time.perf_counter() - started,
            "requests",
        )
        completed_type = ParticipantCompleted.event_type()
        issued_type = CertificateIssued.event_type()

        async def certified_everywhere() -> bool:
            return await inbox_count(dsn["reporting"], issued_type) >= n_pass

        await wait_for("certificates in reporting", certified_everywhere, within=7200, every=1)
        n, first, last = await inbox_span(dsn["certification"], completed_type)
        record(
            "certificates issued (certification consumer)",
            n,
            span(first, last),
            "events",
            window=(first, last),
        )
        n, first, last = await inbox_span(dsn["reporting"], issued_type)
        record(
            "CertificateIssued applied (reporting)",
            n,
            span(first, last),
            "events",
            window=(first, last),
        )
        out["completed"] = n_pass

        # 7. Graduates released, then followed up three months later.
        graduates = [
            r["participant_id"]
            for r in await fetch(
                dsn["training"],
                "SELECT participant_id FROM enrollments WHERE status = 'completed' "
                "ORDER BY participant_id LIMIT $1",
                n_followups,
            )
        ]
        release_day = date(2025, 11, 20)
        started = time.perf_counter()
        await gather_limited(
            [
                partial(
                    api,
                    "POST",
                    "registry",
                    f"/api/v1/inmates/{pid}/release",
                    as_="corrections",
                    json={"kind": "free", "released_on": release_day.isoformat()},
                )
                for pid in graduates
            ],
            conc,
        )
        record(
            "graduates released (HTTP)", len(graduates), time.perf_counter() - started, "requests"
        )

        async def training_knows() -> bool:
            n = await scalar(
                dsn["training"],
                "SELECT count(*) FROM participants WHERE released_on IS NOT NULL",
            )
            return int(n or 0) >= len(graduates) + n_releases

        await wait_for("releases in training", training_knows, within=1800)
        enrolment_of = {
            r["participant_id"]: r["id"]
            for r in await fetch(
                dsn["training"],
                "SELECT id, participant_id FROM enrollments WHERE status = 'completed'",
            )
        }
        situations = ["business_started_with_nib", "employed_by_ikm", "not_working", "unreachable"]
        started = time.perf_counter()
        await gather_limited(
            [
                partial(
                    api,
                    "PUT",
                    "training",
                    f"/api/v1/enrollments/{enrolment_of[pid]}/follow-ups/3",
                    as_="industry",
                    json={
                        "situation": situations[k % len(situations)],
                        "recorded_on": (release_day + timedelta(days=92)).isoformat(),
                    },
                )
                for k, pid in enumerate(graduates)
            ],
            conc,
        )
        record(
            "follow-ups recorded (HTTP)", len(graduates), time.perf_counter() - started, "requests"
        )
        followup_type = FollowUpRecorded.event_type()

        async def followups_counted() -> bool:
            return await inbox_count(dsn["reporting"], followup_type) >= len(graduates)

        await wait_for("follow-ups in reporting", followups_counted, within=1800)

        # What reporting shows at the end, as a check that the flow did what it says.
        got = await api("GET", "reporting", "/api/v1/indicators?group_by=year", as_="industry")
        totals = {
            k: sum(int(r.get(k) or 0) for r in got["data"])
            for k in ("enrolled", "withdrawn", "completed", "not_completed", "certified")
        }
        print(f"reporting totals: {totals}", flush=True)
        out["totals"] = totals
        out["counts"] = {
            "facilities": n_facilities,
            "inmates": n_inmates,
            "consenting": consenting,
            "sessions": n_sessions,
            "enrolments": n_enrolments,
            "releases mid-course": n_releases,
            "completed": n_pass,
            "follow-ups": len(graduates),
        }
        return out
    finally:
        await cpu.stop()
        cpu = None
        await api.close()


async def release_lag(dsn: dict[str, str], released: set[str]) -> dict[str, list[float]]:
    """Per released person: registry outbox row -> training outbox row -> reporting inbox row."""
    released_at = {
        r["aggregate_id"]: r["created_at"]
        for r in await fetch(
            dsn["registry"],
            "SELECT aggregate_id, created_at FROM outbox WHERE event_type = $1",
            InmateReleased.event_type(),
        )
        if r["aggregate_id"] in released
    }
    withdrawn = {}
    for r in await fetch(
        dsn["training"],
        "SELECT event_id, payload, created_at FROM outbox WHERE event_type = $1",
        EnrollmentWithdrawn.event_type(),
    ):
        pid = json.loads(r["payload"])["participant_id"]
        if pid in released:
            withdrawn[r["event_id"]] = (pid, r["created_at"])
    handled = {
        r["event_id"]: r["handled_at"]
        for r in await fetch(
            dsn["reporting"],
            "SELECT event_id, handled_at FROM inbox WHERE event_type = $1",
            EnrollmentWithdrawn.event_type(),
        )
    }
    to_training: list[float] = []
    to_reporting: list[float] = []
    for event_id, (pid, at_training) in withdrawn.items():
        start = released_at.get(pid)
        end = handled.get(event_id)
        if start is None or end is None:
            continue
        to_training.append((at_training - start).total_seconds())
        to_reporting.append((end - start).total_seconds())
    return {"training": to_training, "reporting": to_reporting}


# --- the ceiling --------------------------------------------------------------------------------


async def ceiling(run: Running, args: argparse.Namespace) -> dict[str, float]:
    """The pipeline module's figures on the InmateShared events the registry really wrote."""
    rows = [
        Outboxed(
            event_id=str(r["event_id"]),
            topic=r["topic"],
            aggregate_id=r["aggregate_id"],
            event_type=r["event_type"],
            payload=r["payload"],
            traceparent=r["traceparent"],
            created_at=r["created_at"],
        )
        for r in await fetch(
            pg_dsn(run.databases["registry"]),
            "SELECT event_id, topic, aggregate_id, event_type, payload, traceparent, created_at "
            "FROM outbox WHERE event_type = $1 ORDER BY seq",
            InmateShared.event_type(),
        )
    ]
    # The shares are sealed with the registry's person keys: the raw ceilings open them with
    # the same keys, and the runner's stage reads them from their topic (pipeline.KEYS).
    for person, generation, secret in await fetch(
        pg_dsn(run.databases["registry"]),
        "SELECT participant_id, generation, secret FROM person_keys",
    ):
        pipeline.KEYS[str(person)] = PersonKey(key_id(str(person), generation), bytes(secret))
    return await pipeline.measure(
        run.broker,
        rows,
        lambda stage, count, seconds, unit: record(stage, count, seconds, unit),
        profile=args.profile,
    )


# --- main ---------------------------------------------------------------------------------------


def stage_ratios(rows: list[tuple[str, int, str, float, str]], rates: dict[str, float]) -> str:
    """Each event stage of the flow as a share of the raw ceiling on the same broker, same run.

    Publishing against raw produce; applying against raw consume (the broker alone) and raw
    consume-and-insert (the broker and the database). HTTP stages do not touch the broker.
    """

    def share(rate: float, ceiling: str) -> str:
        return pipeline.shown(pipeline.ratio({"stage": rate, **rates}, "stage", ceiling))

    out: list[tuple[str, float, str, str, str]] = []
    for stage, _count, _unit, rate, _note in rows:
        if "published" in stage or stage.startswith("platform: OutboxRelay"):
            out.append((stage, rate, "raw produce", share(rate, "raw produce"), "-"))
        elif (
            "applied" in stage
            or stage.endswith("consumer)")
            or stage.startswith("platform: ConsumerRunner")
        ):
            out.append(
                (
                    stage,
                    rate,
                    "raw consume",
                    share(rate, "raw consume"),
                    share(rate, "raw consume+insert"),
                )
            )
    return table(["event stage", "per second", "ceiling", "ratio", "/ raw consume+insert"], out)


async def main(args: argparse.Namespace) -> None:
    # The benchmark's own in-process clients log as the services do, to a file, not the screen.
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bekal-national-") as tmp_name:
        tmp = Path(tmp_name)
        pipeline.quiet_logs(tmp / "bench.log")
        print(f"machine: {machine()}; PostgreSQL {await pg_server_version()}", flush=True)
        print(f"scale {args.scale}", flush=True)
        extra = {"OUTBOX_POLL_INTERVAL_SECONDS": "0.5"}
        for kind in brokers_wanted(args):
            results.clear()
            cpu_rows.clear()
            root = tmp / kind
            with started_broker(kind, root / "broker", nodes=args.nodes) as broker:
                name = label(broker)
                print(f"broker: {name} at {broker.bootstrap_servers}", flush=True)
                async with platform_on_postgres(root, extra_env=extra, broker=broker) as run:
                    started = time.perf_counter()
                    flow: dict[str, Any] = {}
                    if not args.ceiling_only:
                        flow = await national_flow(run, args, root)
                    else:
                        await quick_inmates(run, args, root)
                    flow_seconds = time.perf_counter() - started
                    rates = await ceiling(run, args)
            runs[name] = {
                "results": list(results),
                "cpu": list(cpu_rows),
                "flow": flow,
                "flow_seconds": flow_seconds,
                "rates": rates,
                "finished": machine(),
            }
            print(f"  (done at {machine()})", flush=True)

    for name, got in runs.items():
        print_run(name, got)
    if len(runs) > 1:
        print()
        print(f"## Both brokers ({machine()})")
        print()
        print(pipeline.compare({name: got["rates"] for name, got in runs.items()}))


def print_run(name: str, got: dict[str, Any]) -> None:
    flow, rates = got["flow"], got["rates"]
    print()
    print(f"## Figures on {name} ({got['finished']})")
    print()
    if flow.get("counts"):
        print("counts: " + ", ".join(f"{k} {v:,}" for k, v in flow["counts"].items()))
        print(f"the national flow took {got['flow_seconds'] / 60:.1f} min")
        print()
    print(table(["stage", "count", "unit", "per second", "note"], got["results"]))
    if got["cpu"]:
        print()
        print(f"CPU during each stage, in cores ({os.cpu_count()} on this machine), by process:")
        print()
        print(table(["stage", "cores in all", "the busiest"], got["cpu"]))
    lag = flow.get("lag")
    if lag:
        print()
        print(
            table(
                ["release in the registry ->", "n", "p50 s", "p99 s", "max s"],
                [
                    (
                        f"withdrawal in {where}",
                        len(v),
                        percentile(v, 50),
                        percentile(v, 99),
                        max(v) if v else float("nan"),
                    )
                    for where, v in (
                        ("training (its outbox row)", lag["training"]),
                        ("reporting (its inbox row)", lag["reporting"]),
                    )
                ],
            )
        )
    print()
    print(stage_ratios(got["results"], rates))
    print()
    print(pipeline.ratios(rates))


async def quick_inmates(run: Running, args: argparse.Namespace, tmp: Path) -> None:
    """For --ceiling-only: one facility and inmates imported, so the registry's outbox has rows."""
    api = Api(run)
    try:
        f = await api(
            "POST",
            "registry",
            "/api/v1/facilities",
            as_="corrections",
            expect=201,
            json={
                "code": "LP-0000",
                "name": "Lapas Contoh",
                "kind": "lapas",
                "facility_class": "IIA",
                "province": "Jawa Barat",
                "regional_office": "Kanwil Jawa Barat",
                "capacity": 1500,
                "active": True,
            },
        )
        del f
        path = tmp / "inmates.csv"
        n = max(2000, round(300_000 * args.scale))
        write_csv(path, n, ["LP-0000"], random.Random(7))
        job = await api(
            "POST",
            "registry",
            "/api/v1/imports",
            as_="corrections",
            expect=202,
            content=path.read_bytes(),
            headers={**run.bearer("corrections"), "Content-Type": "text/csv"},
        )

        async def done() -> bool:
            nonlocal job
            job = await api("GET", "registry", f"/api/v1/imports/{job['id']}", as_="corrections")
            return bool(job["status"] in ("done", "failed"))

        await wait_for("the import", done, within=7200, every=1.0)
    finally:
        await api.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = national scale")
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    parser.add_argument(
        "--release-rate", type=float, default=10.0, help="mid-course releases per second (lag)"
    )
    add_broker_arguments(parser)
    parser.add_argument("--profile", action="store_true", help="cProfile the relay and consumer")
    parser.add_argument(
        "--ceiling-only", action="store_true", help="import inmates, then only the ceiling part"
    )
    asyncio.run(main(parser.parse_args()))
