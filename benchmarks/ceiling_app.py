"""The ceiling of each HTTP endpoint: a bare ASGI app that runs the endpoint's own statements.

``http_load.py`` captures, from PostgreSQL's statement log, the statements (and their parameters)
that a few real requests of each endpoint ran, and writes them to a JSON plan. This app answers
``GET /<endpoint>`` by replaying one captured request's statements on asyncpg (no framework, no
auth, no ORM, no templates), each of its transactions rolled back at the end so that a write can
be replayed again, and returns the rows it read as JSON. ``GET /static`` answers a fixed body
without touching the database: the load generator's own ceiling against this server.

    CEILING_PLAN=plan.json .venv/bin/python benchmarks/ceiling_app.py --port 8099

The plan: ``{"dsn": {service: dsn}, "endpoints": {name: {"service": s, "requests": [request]}}}``
where a request is a list of transactions, a transaction a list of steps, and a step
``{"sql": text, "params": [[text or null, ...], ...]}`` (more than one parameter list: the same
statement run back to back, replayed with ``executemany`` as asyncpg's pipeline would).
Parameters are the log's text forms; each ``$n`` is cast from text to the type PostgreSQL
inferred for it when the service prepared the statement.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PARAM = re.compile(r"\$(\d+)\b")
STATIC = b'{"status":"ok"}'


class Ceiling:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.pools: dict[str, asyncpg.Pool] = {}
        self.cast: dict[tuple[str, str], str] = {}  # (service, statement) -> text-cast statement
        self.counters = {name: itertools.count() for name in plan["endpoints"]}
        self.failures = 0

    async def start(self) -> None:
        size = int(os.environ.get("CEILING_POOL_SIZE", "20"))
        for service, dsn in self.plan["dsn"].items():
            self.pools[service] = await asyncpg.create_pool(dsn, min_size=2, max_size=size)
        for endpoint in self.plan["endpoints"].values():
            service = endpoint["service"]
            async with self.pools[service].acquire() as conn:
                for request in endpoint["requests"]:
                    for transaction in request:
                        for step in transaction:
                            key = (service, step["sql"])
                            if key not in self.cast:
                                self.cast[key] = await cast_statement(conn, step["sql"])

    async def stop(self) -> None:
        for pool in self.pools.values():
            await pool.close()

    async def replay(self, name: str) -> list[Any]:
        endpoint = self.plan["endpoints"][name]
        service = endpoint["service"]
        requests = endpoint["requests"]
        request = requests[next(self.counters[name]) % len(requests)]
        rows: list[Any] = []
        async with self.pools[service].acquire() as conn:
            for transaction in request:
                tx = conn.transaction()
                await tx.start()
                try:
                    for step in transaction:
                        sql = self.cast[(service, step["sql"])]
                        if len(step["params"]) > 1:
                            await conn.executemany(sql, step["params"])
                        else:
                            found = await conn.fetch(sql, *step["params"][0])
                            rows.extend(dict(r) for r in found)
                finally:
                    await tx.rollback()
        return rows

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await self.start()
                    except Exception as exc:
                        await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        name = scope["path"].strip("/")
        if name == "static":
            await answer(send, 200, STATIC)
            return
        if name not in self.plan["endpoints"]:
            await answer(send, 404, b'{"error":"no such endpoint"}')
            return
        try:
            rows = await self.replay(name)
        except Exception as exc:  # counted by the load generator as a failed request
            self.failures += 1
            if self.failures <= 3:
                print(f"ceiling {name}: {exc!r}", file=sys.stderr, flush=True)
            await answer(send, 500, json.dumps({"error": repr(exc)}).encode())
            return
        await answer(send, 200, json.dumps(rows, default=str).encode())


async def cast_statement(conn: asyncpg.Connection, sql: str) -> str:
    """``sql`` with every ``$n`` read as text and cast to the type the server infers for it."""
    if not PARAM.search(sql):
        return sql
    statement = await conn.prepare(sql)
    oids = [t.oid for t in statement.get_parameters()]
    names = [await conn.fetchval("SELECT format_type($1::oid, NULL)", oid) for oid in oids]
    return PARAM.sub(lambda m: f"(${m.group(1)}::text::{names[int(m.group(1)) - 1]})", sql)


async def answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def load_app() -> Ceiling:
    with open(os.environ["CEILING_PLAN"], encoding="utf-8") as f:
        return Ceiling(json.load(f))


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # As `bekal serve` runs the services (uvicorn's defaults: uvloop and httptools when present).
    uvicorn.run(
        load_app(),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )
