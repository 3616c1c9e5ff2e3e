"""The benchmark scripts: which broker they take, and that a tiny run prints its ratios.

Nothing here is timed: a benchmark's figures are read by people, not asserted.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PG_ADMIN_DSN, _unavailable

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = ["pipeline.py", "national_scale.py"]
RATIO_LINE = re.compile(r"^\| (?P<name>[a-z+ /]+?) +\|[ \d,]+\|[ \d,]+\| (?P<ratio>[\d.]+|-) \|$")


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "BENCH_POSTGRES_DSN": PG_ADMIN_DSN},
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_names_both_brokers_and_the_node_count(script: str) -> None:
    result = run(str(BENCHMARKS / script), "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "--broker {tansu,apache-kafka,both}" in text
    assert "--nodes {1,3}" in text


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_broker_or_node_count_it_does_not_know_is_refused(script: str) -> None:
    for wrong in (["--broker", "redpanda"], ["--broker", "apache-kafka", "--nodes", "2"]):
        result = run(str(BENCHMARKS / script), *wrong)
        assert result.returncode == 2, (wrong, result.stdout, result.stderr)
        assert "invalid choice" in result.stderr


def _ratio_table(output: str) -> dict[str, float]:
    tail = output[output.index("| stage / its ceiling") :]
    ratios = {}
    for line in tail.splitlines()[2:]:
        match = RATIO_LINE.match(line)
        if not match:
            break
        ratios[match["name"]] = float(match["ratio"])
    return ratios


def test_a_tiny_pipeline_run_on_the_embedded_broker_prints_every_ratio(tmp_path: Path) -> None:
    async def reachable() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        asyncio.run(reachable())
    except Exception as exc:
        _unavailable("PostgreSQL at 127.0.0.1:5432", exc)

    result = run(
        str(BENCHMARKS / "pipeline.py"),
        *("--events", "300", "--broker", "tansu", "--rounds", "2"),
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "pipeline on tansu" in result.stdout
    # Two rounds of each platform stage beside its ceiling, each round's ratio printed.
    for stage in (r"consumer / raw consume\+insert", "outbox relay / raw produce"):
        by_round = re.search(
            stage + r", round by round: ([0-9.]+), ([0-9.]+); median ([0-9.]+)", result.stdout
        )
        assert by_round, (stage, result.stdout[-3000:])
        first, second, median = (float(v) for v in by_round.groups())
        assert min(first, second) <= median <= max(first, second) and first > 0 and second > 0
    ratios = _ratio_table(result.stdout)
    assert set(ratios) == {
        "outbox relay / raw produce",
        "consumer / raw consume",
        "consumer / raw consume+insert",
        "raw consume+insert / raw consume",
    }
    for name, value in ratios.items():
        assert math.isfinite(value) and value > 0, (name, value)


def test_each_event_stage_is_a_share_of_its_own_brokers_ceiling() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import national_scale
        import pipeline
    finally:
        sys.path.remove(str(BENCHMARKS))
    rates = {"raw produce": 1000.0, "raw consume": 4000.0, "raw consume+insert": 2000.0}
    stages = [
        ("facilities created (HTTP)", 10, "requests", 50.0, ""),
        ("InmateShared published (registry relay)", 90, "events", 250.0, ""),
        ("InmateShared applied (training consumer)", 90, "events", 1000.0, ""),
        ("certificates issued (certification consumer)", 9, "events", 400.0, ""),
    ]
    lines = national_scale.stage_ratios(stages, rates).splitlines()[2:]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert [c[0] for c in cells] == [s[0] for s in stages[1:]]  # HTTP has no broker ceiling
    assert cells[0][2:] == ["raw produce", "0.250", "-"]
    assert cells[1][2:] == ["raw consume", "0.250", "0.500"]
    assert cells[2][2:] == ["raw consume", "0.100", "0.200"]

    by_broker = {
        "tansu 0.6.0": {**rates, "relay": 500.0, "consumer": 1000.0},
        "apache-kafka 4.4.0 x3": {**rates, "raw produce": 2000.0, "relay": 500.0},
    }
    table = pipeline.compare(by_broker)
    relay = next(line for line in table.splitlines() if "outbox relay / raw produce" in line)
    assert [c.strip() for c in relay.strip("|").split("|")][1:] == ["0.500", "0.250"]
    missing = next(line for line in table.splitlines() if "consumer / raw consume+insert" in line)
    assert [c.strip() for c in missing.strip("|").split("|")][1:] == ["0.500", "-"]


def _pg_reachable() -> None:
    async def reachable() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        asyncio.run(reachable())
    except Exception as exc:
        _unavailable("PostgreSQL at 127.0.0.1:5432", exc)


def test_http_load_seeds_courses_of_the_past_through_the_services(tmp_path: Path) -> None:
    """The national seeding at a tiny scale: facilities, the bulk import, courses of the past
    completed through training's API, their certificates issued from the events and reporting
    caught up; then the load on top (one second an endpoint, no ceiling)."""
    _pg_reachable()
    result = run(
        str(BENCHMARKS / "http_load.py"),
        "--facilities",
        "5",
        "--inmates",
        "1000",
        "--enrolments",
        "70",
        "--roll-sessions",
        "2",
        "--completions",
        "12",
        "--seconds",
        "1",
        "--concurrency",
        "2",
        "--no-ceiling",
        "--only",
        "verify,certificates_page,search_name",
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    courses = re.search(
        r"courses of the past .*: (\d+) sessions at (\d+) facilities, (\d+) enrolments, "
        r"(\d+) completed",
        out,
    )
    assert courses is not None, out[-3000:]
    assert [int(g) for g in courses.groups()[:3]] == [3, 3, 70]  # 30 + 30 + 10, at 3 of 4
    # About one in ten misses three days of five and does not complete.
    assert 60 <= int(courses[4]) < 70
    line = re.search(r"^In the databases after seeding: (.*)$", out, re.M)
    assert line is not None, out[-3000:]
    volume = {m[2]: int(m[1].replace(",", "")) for m in re.finditer(r"([\d,]+) ([a-z ]+)", line[1])}
    assert volume["facilities"] == 5
    assert volume["inmates"] == 1000
    # The course at the first facility (50) and the courses of the past completed.
    assert volume["completed"] == 50 + int(courses[4])
    assert volume["certificates"] == volume["completed"] == volume["reporting certificates"]
    assert volume["reporting enrollments"] == volume["enrollments"]
    # 70 of the past, 50 certified, 2 sessions of 30 and 12 of 5 for the load.
    assert volume["enrollments"] == 70 + 50 + 60 + 60
    for label in ("/public/verify/{code}", "/staf/sertifikat", "/api/v1/inmates?q={name}"):
        row = next((r for r in out.splitlines() if label in r and r.startswith("|")), None)
        assert row is not None, (label, out[-3000:])
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert int(cells[1].replace(",", "")) > 0 and cells[2] == "0", row


def test_the_ceiling_leaves_out_the_relays_poll_but_not_a_request_that_sets_its_own() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import http_load
    finally:
        sys.path.remove(str(BENCHMARKS))

    def tx(*sql: str) -> http_load.Transaction:
        return http_load.Transaction(1, 0.0, 0.0, [http_load.Statement(0.0, 1, s) for s in sql])

    poll = "SELECT outbox.seq FROM outbox WHERE outbox.sent_at IS NULL ORDER BY outbox.seq"
    assert http_load.relay_only(tx("SET LOCAL plan_cache_mode = force_custom_plan", poll))
    assert http_load.relay_only(tx("SELECT pg_try_advisory_xact_lock($1)", poll))
    assert not http_load.relay_only(tx("SET LOCAL jit = off", "SELECT province FROM facilities"))
    enrol = "INSERT INTO enrollments (id) VALUES ($1)"
    assert not http_load.relay_only(tx(enrol, "INSERT INTO outbox (seq) VALUES ($1)"))


def test_the_cpu_sampler_counts_a_busy_process_and_not_a_sleeping_one() -> None:
    """A child that burns 0.6 s of CPU (by its own clock, however loaded the machine) and one
    that sleeps: the sampler's window over them shows the first's time and not the second's."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from harness import CpuSampler
    finally:
        sys.path.remove(str(BENCHMARKS))
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc on this machine")  # the sampler then reports nothing, by design
    burn = "import time\nwhile time.process_time() < 0.6: pass\ntime.sleep(0.3)"
    busy = subprocess.Popen([sys.executable, "-c", burn])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])

    async def sampled() -> tuple[dict[str, float], float]:
        sampler = CpuSampler({"busy": busy.pid, "idle": idle.pid}, {}, every=0.05)
        sampler.start()
        started = sampler.samples[0][0]
        await asyncio.to_thread(busy.wait)
        await asyncio.sleep(0.1)
        await sampler.stop()
        ended = sampler.samples[-1][0]
        return sampler.cores(started, ended), ended - started

    try:
        cores, seconds = asyncio.run(sampled())
    finally:
        idle.kill()
        busy.kill()
    assert cores["busy"] * seconds >= 0.5  # CPU seconds seen, of the 0.6 it used
    assert cores["idle"] * seconds < 0.2  # start-up only
    assert cores["busy"] > cores["idle"]
