"""Benchmark: p50/p99 and throughput of the main endpoints, each against its ceiling.

The four services run as ``bekal serve`` processes on PostgreSQL (databases created and dropped
here) with a dedicated embedded broker, as in ``national_scale.py``. After seeding through the
public APIs (``--facilities``, a bulk import of ``--inmates`` people, ``--enrolments`` people in
completed courses of the past, sessions of 30 started, sessions of 5 ready to complete, one
completed course whose certificates are issued) and waiting for the events to be applied (a
certificate for every completion, reporting holding every enrolment and certificate, every
outbox sent), each endpoint in turn gets ``--concurrency`` connections sending requests back to
back for ``--seconds``.

**National volume.** ``--national`` seeds 530 facilities, 300,000 inmates and 25,000 enrolments
of the past (sessions of 30 at facility after facility over eight programs, each scheduled,
filled, started, attended, assessed and completed through training's API, about one in ten
missing days and not completing). The seeding runs ``--seed-concurrency`` requests at a time
and prints each stage's wall time. The built databases are not cached for a later run: the
person keys that open the events' personal fields live only on the broker's compacted topic
(and in the consuming services' memory; the registry's outbox has sent them already), so
services on restored databases with a fresh broker would hold none of them, and training would
send its completions without the names, as it does after a consent is withdrawn.

The load generator is Debian's ``wrk`` by default (``--generator wrk``: one thread, a Lua
script per endpoint for its method, body and credentials), or the Python client this script
used before (``--generator python``: an asyncio httpx client, which at these rates can be the
bottleneck itself).

**The ceiling.** Before the load, a few requests of each endpoint run with PostgreSQL's
``log_statement = 'all'`` on the services' databases; the statements each request ran, with
their parameters, are read back from the server's log and replayed by ``ceiling_app.py`` (a
bare ASGI app on asyncpg: no framework, no auth, no ORM, each transaction rolled back) against
a copy of the same databases taken just before. The same generator with the same concurrency
drives the ceiling right after the endpoint; the table shows the endpoint's rate as a share of
it. ``GET /static`` of the same app (no database) is the generator's own ceiling on this
server. Needs the server's log to be readable (it is read through ``/proc``; run as root or as
the server's user); ``--no-ceiling`` skips all of it.

    .venv/bin/python benchmarks/http_load.py [--national | --facilities 20 --inmates 10000
        --enrolments 0] [--seconds 10]
        [--concurrency 16] [--generator wrk|python] [--only search_name,create,...]
        [--plan-out plan.json]

Every request's status is checked: errors are counted and shown, never timed as successes.
The public verification's rate limit is raised for the run (it would refuse the load).

**Memory.** Each service's resident memory is read from ``/proc/<pid>/status``: at rest, once
the data is loaded and before the first request of the measurement (``VmRSS``, and ``VmHWM``,
the highest it has been since the process started: the seed's peak), and under load, the
highest ``VmRSS`` sampled every 0.1 s while the endpoints ran, and ``VmHWM`` at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline
from harness import (
    PG_ADMIN_DSN,
    gather_limited,
    machine,
    percentile,
    pg_dsn,
    pg_server_version,
    platform_on_postgres,
    table,
)
from national_scale import Api, fetch, scalar, wait_for, write_csv

from bekal.devtools.broker import free_port
from bekal.registry.domain import PROVINCES

HERE = Path(__file__).resolve().parent
COUNTER = "@N@"  # replaced by a request counter (8 digits) in a body or path
START = date(2025, 6, 2)
DAYS = 5


@dataclass
class Req:
    method: str
    path: str
    body: str | None = None


@dataclass
class Endpoint:
    key: str
    label: str
    service: str
    headers: dict[str, str]
    requests: list[Req]
    once: bool = False  # each request may be sent only once: the run stops when all are sent
    captures: int = 16  # requests of it whose statements the ceiling replays
    # The service keeps what a first request works out (reporting's indicators, until the
    # projections change): one request is sent before the captured ones, so the ceiling replays
    # what a request costs once warm, as nearly every request of the load does.
    warm: bool = False


@dataclass
class Outcome:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    p50: float = float("nan")  # ms
    p99: float = float("nan")
    generator_cpu: float = float("nan")  # the generator's CPU seconds per wall second

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else float("nan")


def numbered(text: str, n: int) -> str:
    return text.replace(COUNTER, f"{n:08d}")


# --- load generators -----------------------------------------------------------------------


async def load_python(
    base: str, ep: Endpoint, *, seconds: float, concurrency: int, first: int = 0
) -> Outcome:
    """``concurrency`` httpx workers calling back to back until ``seconds`` have passed."""
    out = Outcome()
    latencies: list[float] = []
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {**ep.headers, "Content-Type": "application/json"}
    cpu = time.process_time()
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                i = next(counter)
                if ep.once and i >= len(ep.requests):
                    return
                req = ep.requests[i % len(ep.requests)]
                n = first + i
                t = time.perf_counter()
                r = await client.request(
                    req.method,
                    base + numbered(req.path, n),
                    content=numbered(req.body, n) if req.body is not None else None,
                    headers=headers,
                )
                if r.status_code < 300:
                    latencies.append(time.perf_counter() - t)
                else:
                    key = str(r.status_code)
                    out.errors[key] = out.errors.get(key, 0) + 1
                    if sum(out.errors.values()) == 1:
                        print(f"    first error {r.status_code} {r.text[:300]}", flush=True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - started
    out.ok = len(latencies)
    out.p50 = percentile(latencies, 50) * 1000
    out.p99 = percentile(latencies, 99) * 1000
    out.generator_cpu = (time.process_time() - cpu) / out.seconds
    return out


def lua_string(text: str) -> str:
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local reqs = {
%(requests)s
}
local headers = {
%(headers)s
}
local once = %(once)s
local first_number = %(first)d

sent, ok, bad, first_at, last_at = 0, 0, 0, 0, 0
statuses = ""

request = function()
  if sent == 0 then first_at = now() end
  if once and sent >= #reqs then
    wrk.thread:stop()
  end
  local r = reqs[(sent %% #reqs) + 1]
  local n = string.format("%%08d", first_number + sent)
  sent = sent + 1
  local path = string.gsub(r[2], "@N@", n)
  local body = r[3]
  if body ~= nil then body = string.gsub(body, "@N@", n) end
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  return wrk.format(r[1], path, h, body)
end

response = function(status, hdrs, body)
  if status < 300 then
    ok = ok + 1
    last_at = now()
  else
    bad = bad + 1
    if bad <= 1 then
      statuses = statuses .. status .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local t = threads[1]
  io.write(string.format(
    "BENCH-RESULT ok=%%d bad=%%d seconds=%%.6f p50=%%.3f p99=%%.3f " ..
    "connect=%%d read=%%d write=%%d timeout=%%d\n",
    t:get("ok"), t:get("bad"), t:get("last_at") - t:get("first_at"),
    latency:percentile(50) / 1000.0, latency:percentile(99) / 1000.0,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write("BENCH-FIRST-ERROR " .. (t:get("statuses") or "") .. "\n")
end
"""


def lua_script(ep: Endpoint, first: int, headers: dict[str, str]) -> str:
    rows = []
    for r in ep.requests:
        body = lua_string(r.body) if r.body is not None else "nil"
        rows.append(f"  {{{lua_string(r.method)}, {lua_string(r.path)}, {body}}},")
    head = [f"  [ {lua_string(k)} ] = {lua_string(v)}," for k, v in headers.items()]
    return LUA % {
        "requests": "\n".join(rows),
        "headers": "\n".join(head),
        "once": "true" if ep.once else "false",
        "first": first,
    }


RESULT = re.compile(
    r"BENCH-RESULT ok=(\d+) bad=(\d+) seconds=([\d.eE+-]+) p50=([\d.]+) p99=([\d.]+) "
    r"connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+)"
)


async def load_wrk(
    base: str,
    ep: Endpoint,
    *,
    seconds: float,
    concurrency: int,
    tmp: Path,
    first: int = 0,
    content_type: bool = True,
) -> Outcome:
    """``wrk`` with one thread and ``concurrency`` connections for ``seconds``."""
    headers = dict(ep.headers)
    if content_type:
        headers["Content-Type"] = "application/json"
    script = tmp / f"{ep.key}-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(lua_script(ep, first, headers), encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        base,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    stdout, _ = await proc.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = stdout.decode(errors="replace")
    m = RESULT.search(text)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}")
    out = Outcome(
        ok=int(m[1]),
        seconds=float(m[3]),
        p50=float(m[4]),
        p99=float(m[5]),
    )
    if int(m[2]):
        out.errors["status"] = int(m[2])
    for i, what in enumerate(("connect", "read", "write", "timeout"), start=6):
        if int(m[i]):
            out.errors[what] = int(m[i])
    first_error = re.search(r"BENCH-FIRST-ERROR (.*)", text)
    if out.errors and first_error and first_error[1].strip():
        print(f"    first error {first_error[1].strip()[:300]}", flush=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out.generator_cpu = cpu / wall
    return out


# --- memory ----------------------------------------------------------------------------------


def resident(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its highest (``VmRSS``, ``VmHWM``), in MiB; NaN
    once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return float("nan"), float("nan")
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def mib(name: str) -> float:
        value = fields.get(name, "").split()  # "123456 kB"
        return int(value[0]) / 1024 if value else float("nan")

    return mib("VmRSS"), mib("VmHWM")


@dataclass
class Memory:
    """Each service's resident memory at rest and under load (MiB)."""

    pids: dict[str, int]
    rest: dict[str, tuple[float, float]] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    end: dict[str, float] = field(default_factory=dict)

    def at_rest(self) -> None:
        self.rest = {s: resident(pid) for s, pid in self.pids.items()}
        for s, (rss, hwm) in self.rest.items():
            print(f"  {s} at rest: VmRSS {rss:,.0f} MiB, VmHWM {hwm:,.0f} MiB", flush=True)

    async def sample(self, every: float = 0.1) -> None:
        """Until cancelled: the highest VmRSS of each service."""
        while True:
            for s, pid in self.pids.items():
                rss, _ = resident(pid)
                if rss == rss:
                    self.peak[s] = max(self.peak.get(s, 0.0), rss)
            await asyncio.sleep(every)

    def at_end(self) -> None:
        self.end = {s: resident(pid)[1] for s, pid in self.pids.items()}

    def rows(self) -> list[tuple[Any, ...]]:
        nan = float("nan")
        return [
            (
                s,
                self.rest.get(s, (nan, nan))[0],
                self.rest.get(s, (nan, nan))[1],
                self.peak.get(s, nan),
                self.end.get(s, nan),
            )
            for s in self.pids
        ]


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time so far (``/proc/<pid>/stat``); NaN once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return float("nan")
    fields = text.rpartition(")")[2].split()  # after the command's name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the run --------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    if args.generator == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk), or use --generator python")
    with tempfile.TemporaryDirectory(prefix="bekal-http-") as tmp_name:
        tmp = Path(tmp_name)
        pipeline.quiet_logs(tmp / "bench.log")
        print(f"machine: {machine()}; PostgreSQL {await pg_server_version()}", flush=True)
        async with platform_on_postgres(tmp) as run:
            api = Api(run)
            dsn = {s: pg_dsn(db) for s, db in run.databases.items()}
            try:
                seeded = await seed(run, api, dsn, args, tmp)
                seeding = seeded.stages
                volume = seeded.volume
                endpoints = await plan_endpoints(run, api, seeded, args)
            finally:
                await api.close()
            rows, memory = await drive(run, endpoints, args, tmp)
        print(f"machine at the end: {machine()}", flush=True)
    print()
    print(
        f"## HTTP under load ({machine()}; generator {args.generator}, {args.concurrency} "
        f"connections, {args.seconds:.0f} s per endpoint; {args.facilities:,} facilities, "
        f"{args.inmates:,} inmates, {args.enrolments:,} enrolments of the past)"
    )
    print()
    print("Seeding, through the services' APIs and events (wall time of each stage):")
    print()
    print(table(["stage", "what", "seconds"], seeding))
    print()
    print("In the databases after seeding: " + ", ".join(f"{v:,} {k}" for k, v in volume.items()))
    print()
    print(
        table(
            [
                "endpoint",
                "ok",
                "errors",
                "req/s",
                "p50 ms",
                "p99 ms",
                "ceiling req/s",
                "ceiling p99 ms",
                "ceiling errors",
                "share",
                "p99 < 50 ms, share >= 0.5",
                "generator CPU",
                "service CPU ms/req",
            ],
            rows,
        )
    )
    print()
    print("Resident memory of each service (MiB): at rest, after loading and before the load;")
    print("under load, the highest VmRSS sampled while the endpoints ran, and VmHWM at the end.")
    print()
    print(
        table(
            [
                "service",
                "at rest VmRSS",
                "at rest VmHWM",
                "under load max VmRSS",
                "VmHWM at the end",
            ],
            memory.rows(),
        )
    )


@dataclass
class Seeded:
    facility_ids: list[str]
    free_people: dict[str, list[str]]  # by enrolment session: consenting people not enrolled
    roll_sessions: list[tuple[str, list[str]]]  # sessions of 30, started: (id, participants)
    ready_sessions: list[str]  # started, attended and assessed: ready to complete
    names: list[str]
    numbers: list[str]
    inmate_ids: list[str]
    codes: list[str]
    stages: list[tuple[str, str, float]] = field(default_factory=list)  # stage, what, seconds
    volume: dict[str, int] = field(default_factory=dict)  # rows in the databases after seeding


class Stages:
    """Each seeding stage's wall time, printed as it ends and kept for the summary."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str, float]] = []
        self.started = time.perf_counter()

    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)


class _Stage:
    def __init__(self, stages: Stages, name: str) -> None:
        self.stages = stages
        self.name = name
        self.what = ""

    def __enter__(self) -> _Stage:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        seconds = time.perf_counter() - self.t0
        self.stages.done.append((self.name, self.what, seconds))
        print(f"  seed: {self.name}: {self.what} in {seconds:,.1f} s", flush=True)


HISTORY_SECTORS = ["batik", "kayu", "pangan", "tenun", "kulit", "logam", "keramik", "bordir"]
HISTORY_FIRST_START = date(2025, 1, 6)  # courses of the past, a week apart over 40 weeks
HISTORY_SIZE = 30


async def seed(
    run: Any, api: Api, dsn: dict[str, str], args: argparse.Namespace, tmp: Path
) -> Seeded:
    stages = Stages()
    conc = args.seed_concurrency
    n_facilities = args.facilities
    codes = [f"LP-{i:04d}" for i in range(n_facilities)]
    kinds = ["lapas", "rutan", "lapas_perempuan", "lpka"]

    async def facility(i: int) -> Any:
        province = PROVINCES[i % len(PROVINCES)]
        return await api(
            "POST",
            "registry",
            "/api/v1/facilities",
            as_="corrections",
            expect=201,
            json={
                "code": codes[i],
                "name": f"Lapas Contoh {i:04d}",
                # The first is a lapas, as before: the load's sessions are held there.
                "kind": kinds[i % len(kinds)],
                "facility_class": ["IIA", "I", "IIB", "III"][i % 4],
                "province": province,
                "regional_office": f"Kanwil {province}",
                "capacity": 1500,
                "active": True,
            },
        )

    with stages.stage("facilities (registry API) and their replicas") as st:
        facilities = await gather_limited([partial(facility, i) for i in range(n_facilities)], conc)
        facility_ids = [f["id"] for f in facilities]

        async def replicas() -> bool:
            t = await scalar(dsn["training"], "SELECT count(*) FROM facilities")
            r = await scalar(dsn["reporting"], "SELECT count(*) FROM facilities")
            return bool(t == n_facilities and r == n_facilities)

        await wait_for("facility replicas", replicas, within=600)
        provinces = len({PROVINCES[i % len(PROVINCES)] for i in range(n_facilities)})
        st.what = f"{n_facilities:,} in {provinces} provinces"

    path = tmp / "inmates.csv"
    consenting = write_csv(path, args.inmates, codes, random.Random(3))
    with stages.stage("bulk import (registry job)") as st:
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
            if job["status"] == "failed":
                raise RuntimeError(f"the import failed: {job.get('failure')}")
            return bool(job["status"] == "done")

        await wait_for("the import", imported, within=7200, every=1.0)
        if job["created"] != args.inmates:
            raise RuntimeError(f"the import created {job['created']} of {args.inmates}")
        st.what = f"{args.inmates:,} inmates ({consenting:,} consenting)"

    with stages.stage("the consenting shared with training and reporting, after the import") as st:

        async def shared() -> bool:
            t = await scalar(dsn["training"], "SELECT count(*) FROM participants")
            r = await scalar(dsn["reporting"], "SELECT count(*) FROM participants")
            return int(t or 0) >= consenting and int(r or 0) >= consenting

        await wait_for("participants in training and reporting", shared, within=7200, every=1.0)
        st.what = f"{consenting:,} participants"

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
            "days": DAYS,
            "hours": 40,
            "min_attendance_share": 0.8,
            "competency_units": [{"code": "BTK-01", "title": "Membatik tulis"}],
        },
    )
    people: dict[str, list[str]] = {}
    for r in await fetch(dsn["training"], "SELECT id, facility_id FROM participants ORDER BY id"):
        people.setdefault(r["facility_id"], []).append(r["id"])

    async def new_session(
        fid: str,
        *,
        opened: bool = True,
        of: dict[str, Any] = program,
        start: date = START,
        capacity: int = 10_000,
    ) -> str:
        s = await api(
            "POST",
            "training",
            "/api/v1/sessions",
            as_="industry",
            expect=201,
            json={
                "program_id": of["id"],
                "facility_id": fid,
                "start_date": start.isoformat(),
                "end_date": (start + timedelta(days=DAYS - 1)).isoformat(),
                "capacity": capacity,
            },
        )
        if opened:
            await api("POST", "training", f"/api/v1/sessions/{s['id']}/open", as_="industry")
        return str(s["id"])

    async def enrol_and_start(sid: str, pids: list[str]) -> None:
        await api(
            "POST",
            "training",
            f"/api/v1/sessions/{sid}/enrollments",
            as_="industry",
            expect=201,
            json={"participant_ids": pids},
        )
        await api("POST", "training", f"/api/v1/sessions/{sid}/start", as_="industry")

    async def attend_and_assess(
        sid: str,
        pids: list[str],
        *,
        start: date = START,
        units: tuple[str, ...] = ("BTK-01",),
        absent: frozenset[str] = frozenset(),
    ) -> None:
        for d in range(DAYS):
            await api(
                "PUT",
                "training",
                f"/api/v1/sessions/{sid}/attendance",
                as_="industry",
                json=attendance_body(start + timedelta(days=d), pids, absent if d < 3 else ()),
            )
        await api(
            "PUT",
            "training",
            f"/api/v1/sessions/{sid}/assessments",
            as_="industry",
            json=assessment_body(pids, units),
        )

    # One course completed at the first facility, so there are certificates to verify.
    first = await new_session(facility_ids[0])
    graduates = people[facility_ids[0]][:50]
    del people[facility_ids[0]][:50]
    await enrol_and_start(first, graduates)
    await attend_and_assess(first, graduates)
    await api("POST", "training", f"/api/v1/sessions/{first}/complete", as_="industry")

    if args.enrolments:
        await history(
            api,
            args,
            stages,
            facility_ids,
            people,
            new_session,
            enrol_and_start,
            attend_and_assess,
        )

    # People for the other sessions, taken from the facilities in turn.
    def take(n: int, turn: int) -> tuple[str, list[str]]:
        for k in range(len(facility_ids)):
            fid = facility_ids[1 + (turn + k) % (len(facility_ids) - 1)]
            if len(people[fid]) >= n:
                taken = people[fid][:n]
                del people[fid][:n]
                return fid, taken
        raise SystemExit(f"not enough consenting people left: raise --inmates ({args.inmates})")

    rolls = [take(30, i) for i in range(args.roll_sessions)]
    ready = [take(5, i) for i in range(args.completions)]

    async def roll(fid: str, pids: list[str]) -> tuple[str, list[str]]:
        sid = await new_session(fid)
        await enrol_and_start(sid, pids)
        return sid, pids

    async def ready_session(fid: str, pids: list[str]) -> str:
        sid = await new_session(fid)
        await enrol_and_start(sid, pids)
        await attend_and_assess(sid, pids)
        return sid

    with stages.stage("the load's sessions (training API)") as st:
        roll_sessions = await gather_limited([partial(roll, fid, p) for fid, p in rolls], conc)
        ready_sessions = await gather_limited(
            [partial(ready_session, fid, p) for fid, p in ready], conc
        )
        opened = await gather_limited([partial(new_session, fid) for fid in facility_ids[1:]], conc)
        enrol_sessions = dict(zip(opened, facility_ids[1:], strict=True))
        st.what = (
            f"{len(roll_sessions)} of 30 started, {len(ready_sessions)} of 5 ready to "
            f"complete, {len(enrol_sessions)} open for enrolment"
        )

    with stages.stage("certificates and reporting's projections caught up (events)") as st:
        volume: dict[str, int] = {}
        shown = time.perf_counter()

        async def settled() -> bool:
            nonlocal shown
            if await caught_up(dsn, volume):
                return True
            if time.perf_counter() - shown > 30:
                shown = time.perf_counter()
                print(f"    waiting: {volume}", flush=True)
            return False

        await wait_for("certificates and projections", settled, within=7200, every=1)
        st.what = (
            f"{volume['certificates']:,} certificates, {volume['enrollments']:,} enrolments "
            "in reporting"
        )
    print(
        f"  seed: {time.perf_counter() - stages.started:,.0f} s in all; in the databases: "
        f"{', '.join(f'{v:,} {k}' for k, v in volume.items())}",
        flush=True,
    )
    # A sample of the certificates: the load's requests are written into a script.
    verification = [
        r["verification_code"]
        for r in await fetch(
            dsn["certification"],
            "SELECT verification_code FROM certificates ORDER BY random() LIMIT 1000",
        )
    ]
    names = [
        r["full_name"].split()[0]
        for r in await fetch(dsn["training"], "SELECT full_name FROM participants LIMIT 200")
    ]
    rnd = random.Random(7)
    numbers = [f"{rnd.randrange(args.inmates):07d}" for _ in range(200)]
    inmate_ids = [
        str(r["id"])
        for r in await fetch(dsn["registry"], "SELECT id FROM inmates ORDER BY random() LIMIT 200")
    ]
    return Seeded(
        facility_ids=facility_ids,
        free_people={sid: people[fid] for sid, fid in enrol_sessions.items()},
        roll_sessions=roll_sessions,
        ready_sessions=ready_sessions,
        names=names,
        numbers=numbers,
        inmate_ids=inmate_ids,
        codes=verification,
        stages=stages.done,
        volume=volume,
    )


async def history(
    api: Api,
    args: argparse.Namespace,
    stages: Stages,
    facility_ids: list[str],
    people: dict[str, list[str]],
    new_session: Callable[..., Awaitable[str]],
    enrol_and_start: Callable[[str, list[str]], Awaitable[None]],
    attend_and_assess: Callable[..., Awaitable[None]],
) -> None:
    """Courses of the past, ``--enrolments`` people in sessions of 30 at facility after
    facility over several programs, each scheduled, opened, filled, started, attended (about one
    in ten missing three days, so not completing), assessed and completed through training's
    API: the certificates follow from the events."""
    programs = []
    for j, sector in enumerate(HISTORY_SECTORS):
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
                    "days": DAYS,
                    "hours": 40,
                    "min_attendance_share": 0.8,
                    "competency_units": [
                        {"code": f"{sector[:3].upper()}-01", "title": "Dasar produksi"},
                        {"code": f"{sector[:3].upper()}-02", "title": "Usaha dan pemasaran"},
                    ],
                },
            )
        )
    sizes = [HISTORY_SIZE] * (args.enrolments // HISTORY_SIZE)
    if args.enrolments % HISTORY_SIZE:
        sizes.append(args.enrolments % HISTORY_SIZE)
    # Facility after facility (the first is the graduates'), as many courses at each as its
    # consenting people allow; the rest of its people stay for the load.
    courses: list[tuple[int, str, list[str]]] = []
    others = facility_ids[1:] or facility_ids
    turn = 0
    for i, size in enumerate(sizes):
        for _ in range(len(others)):
            fid = others[turn % len(others)]
            turn += 1
            if len(people[fid]) >= size:
                courses.append((i, fid, people[fid][:size]))
                del people[fid][:size]
                break
        else:
            raise SystemExit(
                f"not enough consenting people for {args.enrolments:,} enrolments: raise --inmates"
            )

    async def course(i: int, fid: str, pids: list[str]) -> int:
        of = programs[i % len(programs)]
        start = HISTORY_FIRST_START + timedelta(days=7 * (i % 40))
        sid = await new_session(fid, of=of, start=start, capacity=len(pids))
        await enrol_and_start(sid, pids)
        await attend_and_assess(
            sid,
            pids,
            start=start,
            units=tuple(u["code"] for u in of["competency_units"]),
            absent=frozenset(pids[: len(pids) // 10]),
        )
        done = await api("POST", "training", f"/api/v1/sessions/{sid}/complete", as_="industry")
        return sum(1 for e in done["enrollments"] if e["status"] == "completed")

    with stages.stage("courses of the past (training API, 11 requests a course)") as st:
        passed = await gather_limited(
            [partial(course, i, fid, pids) for i, fid, pids in courses], args.seed_concurrency
        )
        st.what = (
            f"{len(courses):,} sessions at {len({fid for _, fid, _ in courses}):,} facilities, "
            f"{sum(len(p) for _, _, p in courses):,} enrolments, {sum(passed):,} completed"
        )


async def caught_up(dsn: dict[str, str], volume: dict[str, int]) -> bool:
    """Every outbox sent, a certificate for every completion, and reporting holding every
    enrolment and certificate; ``volume`` gets the counts."""
    queries = {
        "inmates": ("registry", "SELECT count(*) FROM inmates"),
        "facilities": ("registry", "SELECT count(*) FROM facilities"),
        "participants": ("training", "SELECT count(*) FROM participants"),
        "sessions": ("training", "SELECT count(*) FROM sessions"),
        "enrollments": ("training", "SELECT count(*) FROM enrollments"),
        "completed": ("training", "SELECT count(*) FROM enrollments WHERE status = 'completed'"),
        "attendance records": ("training", "SELECT count(*) FROM attendance_records"),
        "certificates": ("certification", "SELECT count(*) FROM certificates"),
        "reporting enrollments": ("reporting", "SELECT count(*) FROM enrollments"),
        "reporting certificates": ("reporting", "SELECT count(*) FROM certificates"),
    }
    for name, (service, sql) in queries.items():
        volume[name] = int(await scalar(dsn[service], sql) or 0)
    unsent = 0
    for service in dsn:
        unsent += int(
            await scalar(dsn[service], "SELECT count(*) FROM outbox WHERE sent_at IS NULL") or 0
        )
    return (
        unsent == 0
        and volume["certificates"] == volume["completed"]
        and volume["reporting certificates"] == volume["certificates"]
        and volume["reporting enrollments"] == volume["enrollments"]
    )


def attendance_body(day: date, pids: list[str], absent: Collection[str] = ()) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "records": [
            {"participant_id": p, "status": "absent" if p in absent else "present"} for p in pids
        ],
    }


def assessment_body(pids: list[str], units: tuple[str, ...] = ("BTK-01",)) -> dict[str, Any]:
    return {
        "assessor": "Instruktur",
        "results": [
            {"participant_id": p, "unit_code": u, "result": "competent"}
            for p in pids
            for u in units
        ],
    }


async def page_cookie(base: str, preset: str, page: str) -> dict[str, str]:
    """The staff pages' session cookie of a preset user (the development sign-in). The cookie is
    marked Secure outside development, so it is carried by hand over plain HTTP."""
    cookie = ""

    def keep(r: httpx.Response) -> None:
        nonlocal cookie
        for value in r.headers.get_list("set-cookie"):
            m = re.match(r"bekal_staf=([^;]*)", value)
            if m:
                cookie = m[1]

    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        signin = await c.get("/staf/masuk")
        keep(signin)
        m = re.search(r'name="csrf_token" value="([^"]+)"', signin.text)
        if m is None:
            raise RuntimeError(f"{base}/staf/masuk has no form token: {signin.status_code}")
        c.cookies.clear()
        r = await c.post(
            "/staf/masuk/pengembang",
            data={"preset": preset, "csrf_token": m[1], "next": "/staf"},
            headers={"Cookie": f"bekal_staf={cookie}"},
        )
        if r.status_code != 303:
            raise RuntimeError(f"signing in as {preset}: {r.status_code} {r.text[:300]}")
        keep(r)
        c.cookies.clear()
        first = await c.get(page, headers={"Cookie": f"bekal_staf={cookie}"})
        if first.status_code != 200:
            raise RuntimeError(f"{page}: {first.status_code} {first.text[:300]}")
        keep(first)  # the session as the page leaves it (its form token set)
    return {"Cookie": f"bekal_staf={cookie}"}


async def plan_endpoints(
    run: Any, api: Api, seeded: Seeded, args: argparse.Namespace
) -> list[Endpoint]:
    corrections = run.bearer("corrections")
    industry = run.bearer("industry")
    tag = uuid.uuid4().hex[:6].upper()
    # One new person per enrolment request: enrolments are unique per session and person.
    queue = [(sid, pid) for sid, pids in seeded.free_people.items() for pid in pids]
    random.Random(5).shuffle(queue)
    # Far more than a run sends; at national volume all of them would make a script of
    # megabytes.
    del queue[20_000:]
    # A day's attendance of a session of 30, each session and day in turn (sent again, a day
    # replaces what was recorded).
    roll_days = [
        (sid, pids, START + timedelta(days=d))
        for d in range(DAYS)
        for sid, pids in seeded.roll_sessions
    ]
    first_roll = seeded.roll_sessions[0][0]
    failed_pages: set[str] = set()

    async def signed_in(key: str, service: str, preset: str, page: str) -> dict[str, str]:
        try:
            return await page_cookie(run.url(service), preset, page)
        except RuntimeError as exc:  # the page is left out and said so; the rest still runs
            print(f"  {key}: left out: {exc}", flush=True)
            failed_pages.add(key)
            return {}

    registry_page = await signed_in(
        "people_page", "registry", "registry-admin", "/staf/warga-binaan"
    )
    training_page = await signed_in(
        "attendance_page",
        "training",
        "training-admin",
        f"/staf/sesi/{first_roll}/absensi?tanggal={START.isoformat()}",
    )
    certification_page = await signed_in(
        "certificates_page", "certification", "certification-admin", "/staf/sertifikat"
    )
    create_body = json.dumps(
        {
            "registration_number": f"LOAD-{tag}-{COUNTER}",
            "full_name": "Budi Santoso",
            "nik": f"35000000{COUNTER}",
            "sex": "M",
            "date_of_birth": "1990-01-01",
            "facility_id": seeded.facility_ids[1],
            "admission_date": "2022-01-10",
            "expected_release_date": "2025-12-10",
            "consent": {"training": False, "data_sharing": False},
        }
    )
    get = "GET"
    endpoints = [
        Endpoint(
            "search_name",
            "GET registry /api/v1/inmates?q={name}",
            "registry",
            corrections,
            [Req(get, f"/api/v1/inmates?q={q}&limit=20") for q in seeded.names],
        ),
        Endpoint(
            "search_number",
            "GET registry /api/v1/inmates?q={number}",
            "registry",
            corrections,
            [Req(get, f"/api/v1/inmates?q={q}&limit=20") for q in seeded.numbers],
        ),
        Endpoint(
            "person",
            "GET registry /api/v1/inmates/{id}",
            "registry",
            corrections,
            [Req(get, f"/api/v1/inmates/{i}") for i in seeded.inmate_ids],
        ),
        Endpoint(
            "people_page",
            "GET registry /staf/warga-binaan (page)",
            "registry",
            registry_page,
            [Req(get, "/staf/warga-binaan")],
        ),
        Endpoint(
            "indicators",
            "GET reporting /api/v1/indicators?group_by=province,year",
            "reporting",
            industry,
            [Req(get, "/api/v1/indicators?group_by=province,year")],
            warm=True,
        ),
        Endpoint(
            "verify",
            "GET certification /public/verify/{code}",
            "certification",
            {},
            [Req(get, f"/public/verify/{c}") for c in seeded.codes],
        ),
        Endpoint(
            "certificates_page",
            "GET certification /staf/sertifikat (page)",
            "certification",
            certification_page,
            [Req(get, "/staf/sertifikat")],
        ),
        Endpoint(
            "attendance_page",
            "GET training /staf/sesi/{id}/absensi (page, 30 people)",
            "training",
            training_page,
            [
                Req(get, f"/staf/sesi/{sid}/absensi?tanggal={day.isoformat()}")
                for sid, _, day in roll_days
            ],
        ),
        Endpoint(
            "create",
            "POST registry /api/v1/inmates",
            "registry",
            corrections,
            [Req("POST", "/api/v1/inmates", create_body)],
        ),
        Endpoint(
            "enrol",
            "POST training /sessions/{id}/enrollments (1 person)",
            "training",
            industry,
            [
                Req(
                    "POST",
                    f"/api/v1/sessions/{sid}/enrollments",
                    json.dumps({"participant_ids": [pid]}),
                )
                for sid, pid in queue
            ],
            once=True,
        ),
        Endpoint(
            "attendance",
            "PUT training /sessions/{id}/attendance (30 people)",
            "training",
            industry,
            [
                Req(
                    "PUT",
                    f"/api/v1/sessions/{sid}/attendance",
                    json.dumps(attendance_body(day, pids)),
                )
                for sid, pids, day in roll_days
            ],
        ),
        Endpoint(
            "assessment",
            "PUT training /sessions/{id}/assessments (30 people)",
            "training",
            industry,
            [
                Req(
                    "PUT",
                    f"/api/v1/sessions/{sid}/assessments",
                    json.dumps(assessment_body(pids)),
                )
                for sid, pids in seeded.roll_sessions
            ],
        ),
        Endpoint(
            "completion",
            "POST training /sessions/{id}/complete (5 people)",
            "training",
            industry,
            [Req("POST", f"/api/v1/sessions/{sid}/complete") for sid in seeded.ready_sessions],
            once=True,
            captures=8,
        ),
    ]
    return [ep for ep in endpoints if ep.key not in failed_pages]


# --- the ceiling ----------------------------------------------------------------------------


ENTRY = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) \[(\d+)\] (\w+):  (.*)$")
EXECUTE = re.compile(r"^execute [^:]+: (.*)$", re.S)
SHORT_FRAME = re.compile(r"\((?:[^()]*/)?([^/()]+)\)$")
PARAMETER = re.compile(r"\$(\d+) = (NULL|'((?:[^']|'')*)')", re.S)


@dataclass
class Statement:
    at: float
    pid: int
    sql: str
    params: list[str | None] = field(default_factory=list)


@dataclass
class Transaction:
    pid: int
    began: float
    ended: float = 0.0
    statements: list[Statement] = field(default_factory=list)


async def server_log() -> Path:
    """The file the server writes its log to: the collector's, or its standard error's (read
    through /proc while a backend of ours is alive)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        collector = await conn.fetchval("SHOW logging_collector")
        current = await conn.fetchval("SELECT pg_current_logfile()")
        data = await conn.fetchval("SHOW data_directory")
        pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        stderr = await asyncio.to_thread(os.path.realpath, f"/proc/{pid}/fd/2")
    finally:
        await conn.close()
    if collector == "on" and current:
        return Path(current) if Path(current).is_absolute() else Path(data) / current
    return Path(stderr)


def parse_log(text: str) -> list[Statement]:
    entries: list[list[Any]] = []
    for line in text.splitlines():
        m = ENTRY.match(line)
        if m:
            if m[2] != "UTC":
                raise RuntimeError(f"the server logs in {m[2]}: set log_timezone = 'UTC'")
            entries.append([m[1], int(m[3]), m[4], m[5]])
        elif entries:  # a continued line: the server writes a tab before it
            entries[-1][3] += "\n" + line.removeprefix("\t")
    statements: list[Statement] = []
    last: dict[int, Statement] = {}
    for stamp, pid, level, text in entries:
        if level == "LOG":
            if text.startswith("statement: "):
                sql = text[len("statement: ") :]
            else:
                m = EXECUTE.match(text)
                if not m:
                    continue
                sql = m[1]
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
            last[pid] = Statement(at, pid, sql)
            statements.append(last[pid])
        elif level == "DETAIL" and text.startswith("parameters: ") and pid in last:
            values: dict[int, str | None] = {}
            for m in PARAMETER.finditer(text):
                values[int(m[1])] = None if m[2] == "NULL" else m[3].replace("''", "'")
            last[pid].params = [values.get(i) for i in range(1, max(values, default=0) + 1)]
    return statements


def transactions(statements: list[Statement]) -> list[Transaction]:
    open_: dict[int, Transaction] = {}
    done: list[Transaction] = []
    for s in statements:
        word = s.sql.strip().rstrip(";").split(None, 1)[0].upper() if s.sql.strip() else ""
        if word in ("BEGIN", "START"):
            open_[s.pid] = Transaction(s.pid, s.at)
        elif word in ("COMMIT", "ROLLBACK", "END") and s.pid in open_:
            tx = open_.pop(s.pid)
            tx.ended = s.at
            done.append(tx)
        elif s.pid in open_ and not internal(s.sql):
            open_[s.pid].statements.append(s)
    return done


def internal(sql: str) -> bool:
    """asyncpg's and SQLAlchemy's own queries (type introspection, pings), not the endpoint's."""
    text = sql.strip().lower()
    return not text or text == ";" or "pg_catalog." in text or text.startswith("show ")


def relay_only(tx: Transaction) -> bool:
    """The outbox relay's own transactions (it runs beside the request, woken by its commit):
    they take its advisory lock, or touch nothing but the outbox (a ``SET LOCAL`` of the
    transaction's own settings beside it: the relay's poll sets its plan cache mode first)."""
    return any("pg_try_advisory_xact_lock" in s.sql for s in tx.statements) or all(
        "outbox" in s.sql or s.sql.lstrip().upper().startswith("SET LOCAL ") for s in tx.statements
    )


def steps(txs: list[Transaction]) -> list[list[dict[str, Any]]]:
    """Each transaction's statements, the same statement run back to back as one step."""
    out: list[list[dict[str, Any]]] = []
    for tx in txs:
        run: list[dict[str, Any]] = []
        for s in tx.statements:
            if run and run[-1]["sql"] == s.sql and s.params:
                run[-1]["params"].append(s.params)
            else:
                run.append({"sql": s.sql, "params": [s.params]})
        out.append(run)
    return out


async def admin(sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        return await conn.execute(sql, *args)
    finally:
        await conn.close()


async def terminate(db: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            db,
        )
    finally:
        await conn.close()


async def backends(dbs: dict[str, str]) -> dict[int, str]:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        rows = await conn.fetch("SELECT pid, datname FROM pg_stat_activity")
    finally:
        await conn.close()
    service_of = {db: s for s, db in dbs.items()}
    return {r["pid"]: service_of[r["datname"]] for r in rows if r["datname"] in service_of}


async def capture(run: Any, endpoints: list[Endpoint], copies: dict[str, str]) -> dict[str, Any]:
    """Copies of the services' databases (named in ``copies`` as they are made), then a few
    requests of each endpoint with every statement logged; the statements each request ran, as
    ``ceiling_app.py``'s plan."""
    log = await server_log()
    if not os.access(log, os.R_OK):
        raise RuntimeError(f"cannot read the server's log {log}: run as its user, or --no-ceiling")
    await asyncio.sleep(5)  # the seed's last events consumed: the copies hold them
    for service, db in run.databases.items():
        copies[service] = f"{db}_ceiling"
        await admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
        try:
            await terminate(db)
            await admin(f'CREATE DATABASE "{copies[service]}" TEMPLATE "{db}"')
        finally:
            await admin(f"ALTER DATABASE \"{db}\" SET log_statement = 'all'")
            await admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
    await asyncio.sleep(2)
    offset = log.stat().st_size
    windows: list[tuple[str, int, float, float]] = []
    pids: dict[int, str] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for ep in endpoints:
            numbered_ = any(COUNTER in r.path or COUNTER in (r.body or "") for r in ep.requests)
            # A request numbered anew each time (a new person) is captured as often as asked:
            # replaying one INSERT from every connection would queue on its unique key.
            n = ep.captures if numbered_ else min(ep.captures, len(ep.requests))
            if ep.warm:
                await asyncio.sleep(0.3)
                for req in ep.requests[:n]:
                    warming = await client.request(
                        req.method, run.url(ep.service) + req.path, headers=ep.headers
                    )
                    if warming.status_code >= 300:
                        print(f"  ceiling {ep.key}: warming {warming.status_code}", flush=True)
            for j in range(n):
                req = ep.requests[j % len(ep.requests)]
                number = 90_000_000 + j
                await asyncio.sleep(0.3)  # whatever the previous request set off, done
                t0 = time.time()
                r = await client.request(
                    req.method,
                    run.url(ep.service) + numbered(req.path, number),
                    content=numbered(req.body, number) if req.body is not None else None,
                    headers={**ep.headers, "Content-Type": "application/json"},
                )
                t1 = time.time()
                if r.status_code >= 300:
                    print(
                        f"  ceiling {ep.key}: capture request {r.status_code} {r.text[:300]}",
                        flush=True,
                    )
                    continue
                windows.append((ep.key, j, t0, t1))
            if ep.once:
                del ep.requests[:n]
            pids.update(await backends(run.databases))
    await asyncio.sleep(5)  # what the captured requests set off (certificates, projections)
    for db in run.databases.values():
        await admin(f'ALTER DATABASE "{db}" RESET log_statement')
        await terminate(db)  # the pools reconnect (pre-ping) without the setting
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    txs = transactions(parse_log(text))
    by_key = {ep.key: ep for ep in endpoints}
    plan: dict[str, Any] = {"dsn": {s: pg_dsn(c) for s, c in copies.items()}, "endpoints": {}}
    margin = 0.002
    for key, _j, t0, t1 in windows:
        service = by_key[key].service
        mine = sorted(
            (
                tx
                for tx in txs
                if pids.get(tx.pid) == service
                and t0 - margin <= tx.began <= t1 + margin
                # A page's session may end after its answer is sent (a dependency's cleanup).
                and tx.ended <= t1 + 0.25
                and tx.statements
                and not relay_only(tx)
            ),
            key=lambda tx: tx.began,
        )
        if not mine:
            print(f"  ceiling {key}: a request with no statements found in the log", flush=True)
            continue
        entry = plan["endpoints"].setdefault(key, {"service": service, "requests": []})
        entry["requests"].append(steps(mine))
    for key, entry in plan["endpoints"].items():
        first = entry["requests"][0]
        statements = sum(len(s["params"]) for tx in first for s in tx)
        tables = sorted(
            {
                m
                for tx in first
                for s in tx
                for m in re.findall(r"(?:FROM|INTO|UPDATE|JOIN)\s+\"?(\w+)", s["sql"], re.I)
            }
        )
        print(
            f"  ceiling {key}: {len(entry['requests'])} requests captured; the first ran "
            f"{statements} statements in {len(first)} transaction(s) on {', '.join(tables)}",
            flush=True,
        )
    return plan


async def start_ceiling(plan: dict[str, Any], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    path = tmp / "ceiling-plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    port = free_port()
    log = (tmp / "ceiling.log").open("wb")
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, str(HERE / "ceiling_app.py"), "--port", str(port)],
        env={**os.environ, "CEILING_PLAN": str(path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(timeout=5) as c:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the ceiling app exited:\n{(tmp / 'ceiling.log').read_text()}")
            try:
                if (await c.get(base + "/static")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the ceiling app did not start")
            await asyncio.sleep(0.5)
    return proc, base


async def profile(
    run: Any,
    ep: Endpoint,
    generate: Callable[[str, Endpoint], Awaitable[Outcome]],
    args: argparse.Namespace,
    tmp: Path,
) -> None:
    """The endpoint's load again, its service sampled by py-spy: where its process's time goes.
    An endpoint whose requests are sent once gets those the measured load left (give it more
    with ``--completions``; the sampler's busy share counts the seconds after they ran out)."""
    if not ep.requests:
        print(f"  {ep.label}: no requests left to profile", flush=True)
        return
    pid = run.platform.processes[ep.service].pid
    raw = tmp / f"{ep.key}.pyspy"
    spy = await asyncio.create_subprocess_exec(
        args.py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(args.seconds))),
        "--rate",
        "200",
        "--nonblocking",
        "--function",
        "--format",
        "raw",
        "--output",
        str(raw),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1)
    out = await generate(run.url(ep.service), ep)
    await spy.wait()
    print(f"  {ep.label} under py-spy: {out.rate:,.0f}/s, p99 {out.p99:.1f} ms", flush=True)
    text = await asyncio.to_thread(raw.read_text, encoding="utf-8", errors="replace")
    if args.profile_out:
        where = Path(f"{args.profile_out}.{ep.key}")
        await asyncio.to_thread(where.write_text, text, encoding="utf-8")
    total = 0
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [SHORT_FRAME.sub(r"(\1)", f) for f in stack.split(";")]
        total += n
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + n
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
    if not total:
        print("    py-spy recorded nothing", flush=True)
        return
    busy = total / (200 * max(1, round(args.seconds)))
    print(
        f"    {total:,} samples of the busy process (busy {busy:.0%} of the time); "
        "top frames by samples in them (inclusive):",
        flush=True,
    )
    for f, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:40]:
        print(f"    {n / total:6.1%}  {f}", flush=True)
    print("    top frames by own samples (self):", flush=True)
    for f, n in sorted(leaf.items(), key=lambda kv: -kv[1])[:25]:
        print(f"    {n / total:6.1%}  {f}", flush=True)


async def drive(
    run: Any, endpoints: list[Endpoint], args: argparse.Namespace, tmp: Path
) -> tuple[list[tuple[Any, ...]], Memory]:
    memory = Memory({s: p.pid for s, p in run.platform.processes.items()})
    memory.at_rest()
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        endpoints = [ep for ep in endpoints if ep.key in wanted]

    async def generate(base: str, ep: Endpoint, *, content_type: bool = True) -> Outcome:
        if args.generator == "wrk":
            return await load_wrk(
                base,
                ep,
                seconds=args.seconds,
                concurrency=args.concurrency,
                tmp=tmp,
                content_type=content_type,
            )
        return await load_python(base, ep, seconds=args.seconds, concurrency=args.concurrency)

    plan: dict[str, Any] = {"endpoints": {}}
    copies: dict[str, str] = {}
    proc: subprocess.Popen[bytes] | None = None
    ceiling = ""
    rows: list[tuple[Any, ...]] = []
    try:
        if not args.no_ceiling:
            plan = await capture(run, endpoints, copies)
            if args.plan_out:
                text = json.dumps(plan, indent=1)
                await asyncio.to_thread(Path(args.plan_out).write_text, text, encoding="utf-8")
            proc, ceiling = await start_ceiling(plan, tmp)
            static = Endpoint(
                "static", "GET /static (no database)", "", {}, [Req("GET", "/static")]
            )
            out = await generate(ceiling, static, content_type=False)
            print(
                f"  generator's ceiling, GET /static of the ceiling app: {out.rate:,.0f}/s, "
                f"p99 {out.p99:.1f} ms, generator CPU {out.generator_cpu:.2f}",
                flush=True,
            )
            rows.append(
                (
                    static.label,
                    out.ok,
                    sum(out.errors.values()),
                    out.rate,
                    out.p50,
                    out.p99,
                    float("nan"),
                    float("nan"),
                    "-",
                    float("nan"),
                    "-",
                    out.generator_cpu,
                    float("nan"),
                )
            )
        for ep in endpoints:
            if not ep.requests:
                print(f"  {ep.label}: left out: the capture sent all its requests", flush=True)
                continue
            await asyncio.sleep(3)  # let the previous endpoint's events settle
            sampler = asyncio.create_task(memory.sample())
            pid = run.platform.processes[ep.service].pid
            cpu = cpu_seconds(pid)
            try:
                out = await generate(run.url(ep.service), ep)
            finally:
                sampler.cancel()
            # The service's CPU a request answered: it depends less on the machine's load than
            # the rate does (its relay and consumer, if busy, are counted in it too).
            cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / out.ok if out.ok else float("nan")
            if ep.once:  # sent (or in flight when it stopped): a profiled load gets others
                del ep.requests[: out.ok + sum(out.errors.values()) + args.concurrency]
            print(
                f"  {ep.label}: {out.ok:,} ok, {sum(out.errors.values())} errors in "
                f"{out.seconds:.1f} s = {out.rate:,.0f}/s, p50 {out.p50:.1f} ms, "
                f"p99 {out.p99:.1f} ms (generator CPU {out.generator_cpu:.2f}; the service's "
                f"CPU {cpu_ms:.2f} ms a request)",
                flush=True,
            )
            top = Outcome()
            if ep.key in plan["endpoints"]:
                path = Endpoint(ep.key, ep.key, "", {}, [Req("GET", f"/{ep.key}")])
                top = await generate(ceiling, path, content_type=False)
                print(
                    f"    ceiling: {top.ok:,} ok, {sum(top.errors.values())} errors = "
                    f"{top.rate:,.0f}/s, p50 {top.p50:.1f} ms, p99 {top.p99:.1f} ms",
                    flush=True,
                )
            if ep.key in args.profile.split(","):
                await profile(run, ep, generate, args, tmp)
            share = out.rate / top.rate if top.ok else float("nan")
            met = "yes" if out.p99 < 50 and share >= 0.5 else "no"
            rows.append(
                (
                    ep.label,
                    out.ok,
                    sum(out.errors.values()),
                    out.rate,
                    out.p50,
                    out.p99,
                    top.rate if top.ok else float("nan"),
                    top.p99 if top.ok else float("nan"),
                    sum(top.errors.values()) if top.ok else "-",
                    share,
                    met if top.ok else "-",
                    out.generator_cpu,
                    cpu_ms,
                )
            )
    finally:
        memory.at_end()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        for copy in copies.values():
            await admin(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
    return rows, memory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="connections in flight")
    parser.add_argument(
        "--national",
        action="store_true",
        help="the national data set: 530 facilities, 300,000 inmates, 25,000 enrolments of the "
        "past with their certificates (each overridden by its own option)",
    )
    parser.add_argument("--facilities", type=int, default=None, help="default 20 (530 national)")
    parser.add_argument(
        "--inmates", type=int, default=None, help="imported before the load: default 10,000"
    )
    parser.add_argument(
        "--enrolments",
        type=int,
        default=None,
        help="people in completed courses of the past, 30 a session: default 0 (25,000 national)",
    )
    parser.add_argument(
        "--seed-concurrency", type=int, default=16, help="seeding requests in flight"
    )
    parser.add_argument(
        "--roll-sessions", type=int, default=20, help="sessions of 30 for attendance, assessment"
    )
    parser.add_argument(
        "--completions", type=int, default=120, help="sessions of 5 made ready to complete"
    )
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--no-ceiling", action="store_true", help="the endpoints only")
    parser.add_argument("--plan-out", default="", help="write the ceiling's plan (JSON) here")
    parser.add_argument(
        "--profile",
        default="",
        help="endpoints loaded again under py-spy (e.g. search_name,enrol)",
    )
    parser.add_argument(
        "--profile-out", default="", help="py-spy's raw stacks written here (.KEY added)"
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated endpoints: search_name, search_number, person, people_page, "
        "indicators, verify, certificates_page, attendance_page, create, enrol, attendance, "
        "assessment, completion",
    )
    parsed = parser.parse_args()
    for name, small, national in (
        ("facilities", 20, 530),
        ("inmates", 10_000, 300_000),
        ("enrolments", 0, 25_000),
    ):
        if getattr(parsed, name) is None:
            setattr(parsed, name, national if parsed.national else small)
    if parsed.facilities < 2:
        parser.error("--facilities: at least 2 (the first holds the certified course)")
    asyncio.run(main(parsed))
