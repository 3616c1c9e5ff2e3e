"""A test that leaves a database connection or an app's background task behind fails itself.

Tests share one event loop, and migrations run in threads with loops of their own: a pooled
connection or a task left behind by one test outlives its app, and is finalised later, by the
garbage collector, on whatever thread and loop happen to run a collection (a migration's, once:
it hung there). Here each test answers for what it made instead. After its teardown:

- no connection of a pool made during the test (its fixtures' included) is still open: every
  engine was disposed and every connection given back (one still checked out is named with the
  task that took it);
- no outbox relay, consumer runner, broker connection, person-key reader or reporting
  generation task made during the test is still running: every app's lifespan ran to its end.

Resources of fixtures of a wider scope (a module's served app, the session's brokers and
servers, which run in processes of their own) belong to that scope and are not counted against
the test. What a test leaked is kept referenced for the rest of the session, so that no later
collection finalises it on another loop; its tasks are cancelled.

Costs a few dictionary operations per connection and per test: pool events and the ``__init__``
of the few classes watched, no scan of the heap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool

from bekal.reporting.generations import Projections
from bekal.shared.db import Database
from bekal.shared.messaging.consumer import ConsumerRunner
from bekal.shared.messaging.outbox import OutboxRelay
from bekal.shared.messaging.person_keys import PersonKeyRing
from bekal.shared.service import Messaging


@dataclass
class _Owner:
    """What is being set up or run: one test, or a fixture of a wider scope."""

    name: str
    checked: bool  # a test's own: checked when the test's teardown is over
    dialects: set[int] = field(default_factory=set)  # id() of its engines' dialects
    workers: list[Any] = field(default_factory=list)  # relays, runners, messaging, key rings


@dataclass
class _Connection:
    dbapi: Any  # held, so that no collection finalises it on another loop
    record: Any
    dialect: int
    owner: _Owner


CHECKED_OUT = "checked out"
_WIDER = _Owner("a fixture of a wider scope", checked=False)
_current: list[_Owner] = [_WIDER]
_open: dict[int, _Connection] = {}  # id(dbapi connection) -> what opened it
_out: dict[int, Any] = {}  # id(connection record) -> the record, while checked out
_dialect_owner: dict[int, _Owner] = {}  # the engines of tests' own databases
_wider_dialects: set[int] = set()  # the engines of databases of wider-scoped fixtures
_leaked: list[Any] = []  # kept alive for the session: see the module's docstring
_takers: dict[int, str] = {}  # id(connection record) -> the task that checked it out


def _owner() -> _Owner:
    return _current[-1]


@contextlib.contextmanager
def _owned_by(owner: _Owner) -> Iterator[None]:
    _current.append(owner)
    try:
        yield
    finally:
        _current.pop()


def _pool_dialect(record: Any) -> int:
    pool: Pool = record._ConnectionRecord__pool
    return id(pool._dialect)


@event.listens_for(Pool, "connect")
def _connected(dbapi: Any, record: Any) -> None:
    dialect = _pool_dialect(record)
    if dialect in _wider_dialects:
        return
    owner = _dialect_owner.get(dialect, _owner())
    if owner.checked:
        _open[id(dbapi)] = _Connection(dbapi, record, dialect, owner)


@event.listens_for(Pool, "close")
def _closed(dbapi: Any, record: Any) -> None:
    _open.pop(id(dbapi), None)


@event.listens_for(Pool, "close_detached")
def _closed_detached(dbapi: Any) -> None:
    _open.pop(id(dbapi), None)


@event.listens_for(Pool, "checkout")
def _checked_out(dbapi: Any, record: Any, proxy: Any) -> None:
    _out[id(record)] = record
    # Who took it, named if it is never given back: the task, and the coroutine it runs.
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is not None:
        _takers[id(record)] = f"{task.get_name()} ({getattr(task.get_coro(), '__qualname__', '?')})"


@event.listens_for(Pool, "checkin")
def _checked_in(dbapi: Any, record: Any) -> None:
    _out.pop(id(record), None)
    _takers.pop(id(record), None)


def _watch(cls: type, owner_of: Callable[[Any], _Owner]) -> None:
    """Note each instance of ``cls`` with its owner, from its ``__init__``."""
    init = cls.__init__

    @functools.wraps(init)
    def watched(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        owner = owner_of(self)
        if owner.checked:
            owner.workers.append(self)

    cls.__init__ = watched  # type: ignore[misc]


def _database_owner(db: Database) -> _Owner:
    owner = _owner()
    if owner.checked:
        _dialect_owner[id(db.engine.dialect)] = owner
        owner.dialects.add(id(db.engine.dialect))
    else:  # its connections, opened later from a test, are not that test's
        _wider_dialects.add(id(db.engine.dialect))
    return owner


def _owner_of_db(db: Database) -> _Owner:
    dialect = id(db.engine.dialect)
    return _WIDER if dialect in _wider_dialects else _dialect_owner.get(dialect, _owner())


# Databases first: a relay's or a runner's owner is its database's (an app of a wider scope
# starts its relay later, from a test).
_watch(Database, _database_owner)
_watch(OutboxRelay, lambda relay: _owner_of_db(relay.db))
_watch(ConsumerRunner, lambda runner: _owner_of_db(runner.db))
_watch(Messaging, lambda messaging: _owner_of_db(messaging.db))
_watch(PersonKeyRing, lambda ring: _owner())
_watch(Projections, lambda projections: _owner_of_db(projections.control))


def _running_tasks(worker: Any) -> list[asyncio.Task[Any]]:
    """The worker's background task (``_task``) or tasks (``_tasks``) not done yet."""
    tasks = [getattr(worker, "_task", None), *getattr(worker, "_tasks", ())]
    return [task for task in tasks if task is not None and not task.done()]


def leaks_of(owner: _Owner) -> list[str]:
    """What ``owner`` left behind, described; forgotten here and kept alive for the session."""
    found: list[str] = []
    for key, connection in list(_open.items()):
        if connection.record.dbapi_connection is not connection.dbapi:
            del _open[key]  # closed by a connect event that failed, without a close event
            continue
        if connection.owner is owner or connection.dialect in owner.dialects:
            del _open[key]
            _leaked.append(connection)
            if id(connection.record) in _out:
                taker = _takers.pop(id(connection.record), "outside a task")
                state = f"{CHECKED_OUT} by {taker}"
            else:
                state = "in an undisposed pool"
            found.append(f"database connection {connection.dbapi!r} still open ({state})")
    for key, record in list(_out.items()):
        if _pool_dialect(record) in owner.dialects:
            del _out[key]
            _takers.pop(key, None)
            _leaked.append(record)
    for worker in owner.workers:
        for task in _running_tasks(worker):
            found.append(f"{type(worker).__name__} task {task.get_name()!r} still running")
            _leaked.append(worker)
            task.cancel()  # so that it does not go on into the tests after this one
    for dialect in owner.dialects:
        _dialect_owner.pop(dialect, None)
    owner.dialects.clear()
    owner.workers.clear()
    return found


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: Any) -> Any:
    if fixturedef.scope == "function":
        return (yield)
    with _owned_by(_WIDER):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    owner = _Owner(item.nodeid, checked=True)
    item.stash[_OWNER] = owner
    with _owned_by(owner):
        return (yield)


_OWNER = pytest.StashKey[_Owner]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    result = yield
    owner = item.stash.get(_OWNER, None)
    if owner is not None:
        found = leaks_of(owner)
        # A connection left checked out names the task that took it. The one seen (reporting's
        # fuzzed API on PostgreSQL, under the full suite's load) was a rebuild's migration
        # thread that a stop did not wait for (82b3060); it was a warning until two full runs
        # without it.
        if found:
            pytest.fail(
                "left behind after the test and its fixtures were torn down:\n  "
                + "\n  ".join(found),
                pytrace=False,
            )
    return result
