"""What the platform benchmarks share: PostgreSQL databases, broker, the four services, tables."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bekal.devtools import apache_kafka
from bekal.devtools.broker import Broker, EmbeddedBroker, free_port
from bekal.devtools.devrun import SERVICES, Platform
from bekal.shared.auth import mint_token
from bekal.shared.settings import Settings

PG_ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_dsn(name: str) -> str:
    """asyncpg's DSN for database ``name`` on the same server."""
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def sqlalchemy_url(name: str) -> str:
    return pg_dsn(name).replace("postgresql://", "postgresql+asyncpg://", 1)


async def create_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def databases(prefix: str, names: Iterable[str]) -> AsyncIterator[dict[str, str]]:
    """Fresh PostgreSQL databases ``<prefix>_<name>``, dropped at the end: name -> database."""
    made: dict[str, str] = {}
    try:
        for name in names:
            made[name] = f"{prefix}_{name}"
            await create_database(made[name])
        yield made
    finally:
        for db in made.values():
            await drop_database(db)


# --- brokers -----------------------------------------------------------------------------------

BROKER_CHOICES = ("tansu", "apache-kafka", "both")


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--broker`` and ``--nodes``, the same in every script that takes either broker."""
    parser.add_argument(
        "--broker",
        choices=BROKER_CHOICES,
        default="tansu",
        help="the embedded broker (Tansu), a local Apache Kafka cluster, or both one after the "
        "other in the same run (default: tansu)",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        choices=(1, 3),
        default=3,
        help="Apache Kafka nodes; topics get as many replicas, min.insync.replicas 2 on three, "
        "and producers are idempotent, as in production (default: 3)",
    )


def brokers_wanted(args: argparse.Namespace) -> list[str]:
    return ["tansu", "apache-kafka"] if args.broker == "both" else [args.broker]


def label(broker: Broker) -> str:
    """How a broker is named in the figures: ``tansu 0.6.0``, ``apache-kafka 4.4.0 x3``."""
    nodes = f" x{broker.nodes}" if isinstance(broker, apache_kafka.ApacheKafka) else ""
    return f"{broker.name} {broker.version}{nodes}"


def replication_factor(broker: Broker) -> int:
    """Every node holds a replica on Apache Kafka (as production's three); Tansu has one."""
    return broker.nodes if isinstance(broker, apache_kafka.ApacheKafka) else 1


def broker_settings(broker: Broker) -> dict[str, Any]:
    """The settings a client on ``broker`` takes, as production's on Apache Kafka."""
    return {
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "kafka_enable_idempotence": broker.idempotent,
        "kafka_replication_factor": replication_factor(broker),
    }


def broker_env(broker: Broker) -> dict[str, str]:
    """The same as ``broker_settings``, for a service process's environment."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_ENABLE_IDEMPOTENCE": str(broker.idempotent).lower(),
        "KAFKA_REPLICATION_FACTOR": str(replication_factor(broker)),
    }


@contextmanager
def started_broker(kind: str, directory: Path, *, nodes: int = 3) -> Iterator[Broker]:
    """A broker of this run's own on free ports: Tansu, or an Apache Kafka cluster of ``nodes``."""
    directory.mkdir(parents=True, exist_ok=True)
    broker: Broker
    if kind == "tansu":
        embedded = EmbeddedBroker(port=free_port(), log_file=directory / "tansu.log")
        embedded.start()
        broker = embedded
    elif kind == "apache-kafka":
        cluster = apache_kafka.ApacheKafka(nodes=nodes, directory=directory / "apache-kafka")
        cluster.start()
        broker = cluster
    else:
        raise ValueError(f"unknown broker {kind!r}")
    try:
        yield broker
    finally:
        broker.stop()


def run_tag() -> str:
    return f"bekal_bench_{uuid.uuid4().hex[:8]}"


@dataclass
class Running:
    """The broker and the four services as processes, each on its own PostgreSQL database."""

    root: Path
    broker: Broker
    platform: Platform
    databases: dict[str, str]
    namespace: str
    tokens: dict[str, str] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.platform.url(service)

    def settings(self, service: str, **overrides: Any) -> Settings:
        """Settings like the service's own (same broker, namespace), for in-process clients."""
        values: dict[str, Any] = {
            "service_name": service,
            "environment": "test",
            "database_url": sqlalchemy_url(self.databases[service]),
            **broker_settings(self.broker),
            "kafka_namespace": self.namespace,
            "auth_dev_key_file": self.platform.key_file,
            "log_json": True,
        }
        values.update(overrides)
        return Settings(**values)

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


ROLES: dict[str, tuple[str, list[str]]] = {
    "corrections": ("corrections", ["registry_admin"]),
    "industry": (
        "industry",
        [
            "training_admin",
            "training_officer",
            "certification_admin",
            "reporting_viewer",
        ],
    ),
}


@asynccontextmanager
async def platform_on_postgres(
    root: Path, *, extra_env: dict[str, str] | None = None, broker: Broker | None = None
) -> AsyncIterator[Running]:
    """The four services as ``bekal serve`` processes on ``broker`` (by default an embedded
    broker of their own on a free port, stopped at the end; a given one is left running)."""
    tag = run_tag()
    async with databases(tag, SERVICES) as dbs:
        (root / "var" / "log").mkdir(parents=True, exist_ok=True)
        own = broker is None
        if broker is None:
            embedded = EmbeddedBroker(
                port=free_port(), log_file=root / "var" / "log" / "broker.log"
            )
            embedded.start()
            broker = embedded
        namespace = f"{tag}."
        env = {
            **broker_env(broker),
            "KAFKA_NAMESPACE": namespace,
            "ENVIRONMENT": "test",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
            # The benchmark asks for many verifications from one address on purpose.
            "VERIFY_RATE_LIMIT_PER_MINUTE": "100000000",
        }
        env.update(extra_env or {})
        p = Platform(
            root=root,
            ports={s: free_port() for s in SERVICES},
            bootstrap_servers=broker.bootstrap_servers,
            database_urls={s: sqlalchemy_url(dbs[s]) for s in SERVICES},
            extra_env=env,
        )
        try:
            p.start()
            await asyncio.to_thread(p.wait_ready, 180)
            running = Running(
                root=root, broker=broker, platform=p, databases=dbs, namespace=namespace
            )
            settings = Settings(auth_dev_key_file=p.key_file)
            for who, (ministry, roles) in ROLES.items():
                running.tokens[who] = mint_token(
                    settings,
                    subject=f"bench-{who}",
                    ministry=ministry,
                    roles=roles,
                    ttl_seconds=6 * 3600,
                )
            yield running
        finally:
            await asyncio.to_thread(p.stop)
            if own:
                broker.stop()


# --- figures -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table, so what is printed can go into a document as it is."""
    body = [[_cell(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for r in body:
        lines.append(
            "| "
            + " | ".join(
                c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths, strict=True)
            )
            + " |"
        )
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").replace("%", "").isdigit()


def machine() -> str:
    """One line on where the figures come from."""
    cores = os.cpu_count()
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cores} cores "
        f"({host.processor() or host.machine()}); Python {sys.version.split()[0]}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


async def pg_server_version() -> str:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await fn()
    return result, time.perf_counter() - started


async def gather_limited(
    jobs: Sequence[Callable[[], Awaitable[Any]]], concurrency: int
) -> list[Any]:
    """Run ``jobs`` with at most ``concurrency`` at a time, results in order."""
    results: list[Any] = [None] * len(jobs)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(jobs)):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            results[i] = await jobs[i]()

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return results


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


# --- where the CPU went ---------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def _processes() -> Iterator[tuple[int, Path]]:
    """Each running process's pid and ``/proc`` entry (none on a machine without ``/proc``)."""
    for entry in _PROC.iterdir() if _PROC.exists() else ():
        if entry.name.isdigit():
            yield int(entry.name), entry


def _command(entry: Path) -> str | None:
    """A process's command line, its arguments joined by spaces; None once it has ended."""
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _cpu_ticks(entry: Path) -> int | None:
    """The CPU a process has used (user and system), in clock ticks; None once it has ended."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


def _is_broker(command: str) -> bool:
    return "tansu" in command or "kafka.Kafka" in command


def servers_cpu() -> dict[str, float]:
    """CPU seconds the broker's processes and PostgreSQL's server processes have used so far.
    A stage's servers are the other side of its rate: on two cores, what the broker and the
    database spend an event is what the benchmark's process cannot. A process that ends takes
    its time with it."""
    used = {"broker": 0.0, "PostgreSQL": 0.0}
    for _, entry in _processes():
        command = _command(entry)
        if command is None:
            continue
        if command.startswith("postgres"):
            group = "PostgreSQL"
        elif _is_broker(command):
            group = "broker"
        else:
            continue
        ticks = _cpu_ticks(entry)
        if ticks is not None:
            used[group] += ticks / _TICKS
    return used


class CpuSampler:
    """CPU time of the run's processes, by group, sampled every ``every`` seconds from
    ``/proc``: each service (its pid), PostgreSQL's server processes of each service's database
    (their command line names the database), the broker's processes and this benchmark.

    ``cores(start, end)`` is a group's CPU time over a window of wall-clock time (``time.time``)
    divided by its length: 1.0 is one core busy throughout. A process that ended keeps the time
    it had used. On a machine without ``/proc`` nothing is sampled and every window is empty.
    """

    def __init__(
        self, services: dict[str, int], databases: dict[str, str], *, every: float = 0.5
    ) -> None:
        self.services = {pid: f"{name}" for name, pid in services.items()}
        self.databases = {db: f"postgres ({name})" for name, db in databases.items()}
        self.every = every
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._used: dict[int, tuple[str, int]] = {}  # pid -> (group, ticks at last sight)
        self._task: asyncio.Task[None] | None = None

    def _group(self, pid: int) -> str | None:
        if pid in self.services:
            return self.services[pid]
        if pid == os.getpid():
            return "benchmark"
        command = _command(_PROC / str(pid))
        if command is None:
            return None
        if command.startswith("postgres:"):
            return next((g for db, g in self.databases.items() if f" {db} " in command), None)
        return "broker" if _is_broker(command) else None

    def sample(self) -> None:
        if not _PROC.exists():
            return
        for pid, entry in _processes():
            known = self._used.get(pid)
            group = known[0] if known else self._group(pid)
            if group is None:
                continue
            ticks = _cpu_ticks(entry)
            if ticks is not None:
                self._used[pid] = (group, ticks)
        total: dict[str, float] = {}
        for group, ticks in self._used.values():
            total[group] = total.get(group, 0.0) + ticks / _TICKS
        self.samples.append((time.time(), total))

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _at(self, when: float) -> tuple[float, dict[str, float]]:
        """The sample nearest to ``when``."""
        return min(self.samples, key=lambda s: abs(s[0] - when))

    def cores(self, start: float, end: float) -> dict[str, float]:
        """Each group's cores over the window, busiest first (empty if not sampled)."""
        if not self.samples or end <= start:
            return {}
        (t0, first), (t1, last) = self._at(start), self._at(end)
        if t1 <= t0:
            return {}
        used = {g: (last.get(g, 0.0) - first.get(g, 0.0)) / (t1 - t0) for g in last}
        return dict(sorted(used.items(), key=lambda kv: -kv[1]))
