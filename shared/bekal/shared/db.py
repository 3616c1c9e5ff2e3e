"""Database access: one async engine per service, sessions that roll back unless committed."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    TypeDecorator,
    any_,
    bindparam,
    event,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, InvalidatePoolError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class GUID(TypeDecorator[uuid.UUID]):
    """UUIDs stored as 36-character strings: identical on SQLite and PostgreSQL."""

    impl = String(36)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, uuid.UUID):
            return str(value)
        return str(uuid.UUID(str(value)))  # a string is checked and written in canonical form

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(value)


class Database:
    """Owns the engine and hands out sessions."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        kwargs["pool_size"] = pool_size
        if not url.startswith("sqlite"):
            # Every connection the pool opens is kept, up to as many as before (``pool_size``
            # and SQLAlchemy's 10 of overflow). Overflow connections were closed as they came
            # back: at 16 requests at once a connection (a server process, the TLS attempt,
            # authentication) was opened and closed every few requests.
            kwargs["pool_size"] = pool_size + POOL_OVERFLOW
            kwargs["max_overflow"] = 0
        if url.startswith("sqlite"):
            _ensure_sqlite_dir(url)
            # Pooled, not a new connection per unit of work: opening one (a thread, the file,
            # the pragmas) cost several times the work itself, and capped a consumer at about
            # 150 events a second. Writers still queue on BEGIN IMMEDIATE.
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if not url.startswith("sqlite"):
            _check_on_checkout(self.engine.sync_engine)
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # SQLite's own transaction handling defers locks; BEGIN IMMEDIATE takes the write
            # lock up front so concurrent writers queue instead of failing mid-transaction.
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin_immediate)
        self.outbox_listeners: list[Callable[[], None]] = []
        self._checkpoints: set[asyncio.Task[bool]] = set()
        # What every unit of work finds in ``session.info`` (a service's ring of person keys).
        self.session_info: dict[str, Any] = {}

        class _Session(Session):
            """Per-database session class, so commit hooks stay with this database."""

        event.listen(_Session, "after_commit", self._after_commit)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=_Session
        )

    def _after_commit(self, session: Session) -> None:
        # Wake the outbox relay at once instead of waiting for its next poll.
        if session.info.pop("outbox_dirty", False):
            for listener in self.outbox_listeners:
                listener()
        if session.info.pop("checkpoint_after_commit", False) and self.is_sqlite:
            task = asyncio.get_running_loop().create_task(self.checkpoint())
            self._checkpoints.add(task)
            task.add_done_callback(self._checkpoints.discard)

    async def checkpoint(self) -> bool:
        """SQLite: copy the write-ahead log into the database file and empty it (``TRUNCATE``),
        so a page image holding an erased value is in no file any more. Returns whether it
        completed (a reader holding an old snapshot makes it wait, then retry).

        Run after an erasure commits (``checkpoint_after_commit``); with ``secure_delete`` on,
        the database file keeps no copy of the value either. PostgreSQL: nothing to do here
        (dead rows go at the next vacuum).
        """
        if not self.is_sqlite:
            return True
        for attempt in range(_CHECKPOINT_ATTEMPTS):
            async with self.engine.connect() as conn:
                # On the driver's connection: SQLAlchemy would open a transaction first, and a
                # checkpoint cannot run inside one.
                raw: Any = (await conn.get_raw_connection()).driver_connection
                cursor = await raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, *_ = await cursor.fetchone()
                await cursor.close()
            if not busy:
                return True
            await asyncio.sleep(0.05 * (attempt + 1))
        log.warning("sqlite_checkpoint_busy", attempts=_CHECKPOINT_ATTEMPTS)
        return False

    async def checkpoints_done(self) -> None:
        """Wait for the checkpoints commits have started (tests, shutdown)."""
        while self._checkpoints:
            await asyncio.gather(*list(self._checkpoints), return_exceptions=True)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: everything inside commits together or not at all.

        The caller commits explicitly; leaving the block without a commit rolls back (closing
        the session ends its transaction without committing; loaded objects stay readable).
        """
        async with self.sessionmaker() as session:
            session.info.update(self.session_info)
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.checkpoints_done()
        await self.engine.dispose()


def checkpoint_after_commit(session: AsyncSession) -> None:
    """Ask for a checkpoint once this unit of work commits (an erasure): on SQLite, no page of
    the database or its write-ahead log keeps what it removed (``Database.checkpoint``)."""
    session.info["checkpoint_after_commit"] = True


# A checkpoint waits for readers (busy_timeout) each time; a few attempts, then a warning.
_CHECKPOINT_ATTEMPTS = 20


async def plan_each_statement(session: AsyncSession, *, by_index: bool = False) -> None:
    """On PostgreSQL, plan this transaction's statements for their actual parameters.

    asyncpg prepares statements; after five executions PostgreSQL may switch one to a generic
    plan, made without the parameters' values. A batch's lookup (``among``) planned while its
    table was small stays a sequential scan as the table grows, and with the ids a parameter
    it cannot hash them: each row is compared with each id. Measured at 148 ms instead of 6 ms
    for 200 ids among 20,000 participants, and 46 ms instead of 1.5 ms in the inbox. The
    consumer's and the outbox relay's transactions pay one statement for this. Requests keep
    their cached plans: planning every statement cost registry search a fifth of its
    throughput under load.

    ``by_index``: and read through an index wherever one serves (sequential and bitmap scans
    off), whatever the statistics say. For a transaction that takes the first rows of an index
    in its order, as the outbox relay takes its next batch: in an outbox just filled and not yet
    analysed (a bulk import's rows; autovacuum off or not come round), PostgreSQL expected 50
    unsent rows and planned a bitmap scan of every row past the last one read, then a sort, for
    each batch: 24 us of its CPU a row read instead of 1.9, at 90,000 rows.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    if by_index:
        await session.execute(text(_PLAN_BY_INDEX))
    else:
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def set_locally(settings: Mapping[str, str]) -> str:
    """One PostgreSQL statement that gives ``settings`` (name: value) to the rest of the
    transaction: ``SET LOCAL`` takes one setting, and asyncpg prepares each statement alone."""
    return "SELECT " + ", ".join(
        f"set_config('{name}', '{value}', true)" for name, value in settings.items()
    )


_PLAN_BY_INDEX = set_locally(
    {"plan_cache_mode": "force_custom_plan", "enable_seqscan": "off", "enable_bitmapscan": "off"}
)


def among(
    session: AsyncSession,
    column: ColumnElement[Any] | QueryableAttribute[Any],
    values: Collection[Any],
) -> ColumnElement[bool]:
    """``column IN values`` for a batch's lookup, written for the database at hand.

    On PostgreSQL the values go as one array parameter (``column = ANY($1)``): the statement
    is the same whatever the number of values, so it is compiled and prepared once, where an
    IN list renders and casts one parameter per value on every execution (measured: 2.7 to
    4.0 ms instead of 5.9 to 7.7 ms for two lookups of 200 ids). Use it in a transaction that
    plans each statement (``plan_each_statement``), where PostgreSQL can hash the values. SQLite
    keeps the IN list.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def table_of(model: type[DeclarativeBase]) -> Table:
    """The table a declarative model is mapped to, for Core statements on it."""
    # SQLAlchemy types ``__table__`` as any FromClause (a model may map a join or a select);
    # every model here maps one Table, with its ``insert()``, ``update()`` and ``c``.
    return cast(Table, model.__table__)


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str] = (),
    update: Sequence[str] = (),
    unless_newer: str | None = None,
    returning: ColumnElement[Any] | None = None,
) -> list[Any]:
    """Insert a batch's rows with one statement; return ``returning`` of the rows written.

    Every row names the same columns, every column it needs (no Python-side defaults are
    applied). With ``key`` (the columns of a unique key) a row whose key is taken is not
    inserted: it is left out, and absent from what is returned, or with ``update`` those
    columns of the stored row take the incoming values. With ``unless_newer`` (a timestamp
    among them), a stored row newer than the incoming one is left as it is, and an incoming
    null keeps the stored value. Each key may come once in ``rows``.

    On PostgreSQL the values go as one array per column, ``INSERT ... SELECT FROM unnest(...)``:
    one statement execution, prepared once, with a dozen parameters instead of one per value.
    Measured for an inbox row and a participant per event, 200 events a statement: 75 us per
    event against 107 to 113 for the multi-row and executemany forms. The statement is built
    and compiled once per shape (``_array_insert``) and its arrays go to the driver as they
    are, each value through its column's type (and what it returns back through the returned
    column's type): building it again each time and binding every array through SQLAlchemy's
    array type was a fifth of a consumer's applying.
    SQLite gets an executemany of the same rows.
    """
    if not rows:
        return []
    names = tuple(rows[0])
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        shape = _array_insert(
            dialect, table, names, tuple(key), tuple(update), unless_newer, returning
        )
        arrays = tuple(
            [row[name] for row in rows] if process is None else [process(row[name]) for row in rows]
            for name, process in zip(names, shape.processors, strict=True)
        )
        connection = await session.connection()
        written = await connection.exec_driver_sql(shape.sql, arrays)
        if returning is None:
            return []
        if shape.returned is None:
            return list(written.scalars())
        return [shape.returned(value) for value in written.scalars()]
    statement = _upserting(sqlite_insert(table), table, key, update, unless_newer, returning)
    result = await session.execute(statement, list(rows))
    return list(result.scalars()) if returning is not None else []


class _ArrayInsert(NamedTuple):
    sql: str  # parameters $1..$n: one array per column, in the order of the rows' names
    processors: tuple[Callable[[Any], Any] | None, ...]  # each column's bind conversion
    returned: Callable[[Any], Any] | None  # the returned column's result conversion


@functools.cache
def _array_insert(
    dialect: Dialect,
    table: Table,
    names: tuple[str, ...],
    key: tuple[str, ...],
    update: tuple[str, ...],
    unless_newer: str | None,
    returning: ColumnElement[Any] | None,
) -> _ArrayInsert:
    """``insert_rows``'s statement on PostgreSQL for one shape of call, compiled once."""
    arrays = [bindparam(f"rows_{name}", type_=ARRAY(table.c[name].type)) for name in names]
    source = select(func.unnest(*arrays).table_valued(*names).render_derived())
    statement = _upserting(
        pg_insert(table).from_select(list(names), source),
        table,
        key,
        update,
        unless_newer,
        returning,
    )
    compiled = statement.compile(dialect=dialect)
    order = [f"rows_{name}" for name in names]
    if list(compiled.positiontup or ()) != order:
        raise RuntimeError(f"parameters of {table.name}'s array insert out of order")
    processors = _bind_processors(dialect, table, names)
    returned = (
        None
        if returning is None
        else returning.type.dialect_impl(dialect).result_processor(dialect, None)
    )
    return _ArrayInsert(str(compiled), processors, returned)


def _bind_processors(
    dialect: Dialect, table: Table, names: Sequence[str]
) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each named column's conversion of a value for the driver (None: sent as it is)."""
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)


def _upserting(
    statement: Any,
    table: Table,
    key: Sequence[str],
    update: Sequence[str],
    unless_newer: str | None,
    returning: ColumnElement[Any] | None,
) -> Any:
    """``statement`` (a dialect's insert) with ``insert_rows``'s conflict clause and returning."""
    if key and update:
        incoming = statement.excluded
        values: dict[str, Any] = {name: incoming[name] for name in update}
        newer = None
        if unless_newer is not None:
            stored, given = table.c[unless_newer], incoming[unless_newer]
            values[unless_newer] = func.coalesce(given, stored)
            newer = or_(stored.is_(None), given.is_(None), given >= stored)
        statement = statement.on_conflict_do_update(
            index_elements=list(key), set_=values, where=newer
        )
    elif key:
        statement = statement.on_conflict_do_nothing(index_elements=list(key))
    if returning is not None:
        statement = statement.returning(returning)
    return statement


async def copy_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write a bulk load's rows with PostgreSQL's ``COPY`` in the session's transaction.

    As ``insert_rows`` without a key: every row names the same columns, with every value it
    needs (columns left out take the table's own defaults, such as a serial's next value, in
    the order of ``rows``). Each value goes through its column's type (a GUID as text, a
    timestamp in UTC) and is sent in COPY's binary form: no statement to plan, no arrays of
    parameters to bind. SQLite gets ``insert_rows``.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await insert_rows(session, table, rows)
        return
    connection = await session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    processors = _bind_processors(dialect, table, names)
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # The driver begins SQLAlchemy's transaction with its first statement: a COPY before
        # any would commit on its own.
        await connection.execute(text("SELECT 1"))
    # Only the values of columns whose type converts them (GUIDs, timestamps) go through a
    # function; the others are sent as they are.
    converted = [(i, process) for i, process in enumerate(processors) if process is not None]
    records: list[list[Any]] = []
    for row in rows:
        values = [row[name] for name in names]
        for i, process in converted:
            values[i] = process(values[i])
        records.append(values)
    await driver.copy_records_to_table(
        table.name, records=records, columns=names, schema_name=table.schema
    )


def is_unavailable(exc: BaseException) -> bool:
    """True when the database could not be reached (as opposed to a rule or data error)."""
    if isinstance(exc, OperationalError | ConnectionError | OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    name = type(exc).__name__
    return name in {"CannotConnectNowError", "ConnectionDoesNotExistError", "InterfaceError"}


def _server_closed(proxy: Any) -> bool:
    """Whether the driver has seen the server close this connection (asyncpg's is_closed)."""
    driver = proxy.driver_connection
    return driver is not None and bool(driver.is_closed())


# Connections a PostgreSQL pool may open beyond the service's DATABASE_POOL_SIZE.
POOL_OVERFLOW = 10
# A pooled connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 2.0
_CHECKED_IN_AT = "bekal_checked_in_at"


def _check_on_checkout(engine: Engine) -> None:
    """What ``pool_pre_ping`` did, without its three round trips on every checkout.

    The pre-ping began a transaction, sent ``;`` and rolled back each time a request took a
    connection: 12 % of a person's page under py-spy, and three of its seven round trips to
    the server. Now a connection the server has closed (a terminated backend, a restart the
    driver has seen) is replaced without a round trip, and one idle for longer than
    ``PING_AFTER_IDLE_SECONDS`` is pinged as before; a connection back in the pool a moment
    ago was working then. A failed ping invalidates the pool, as the pre-ping did.
    """

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if _server_closed(proxy):
            raise DisconnectionError("the server closed the connection")
        at = record.info.get(_CHECKED_IN_AT)
        if at is None or time.monotonic() - at < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use a moment ago
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError("the ping of an idle connection failed") from exc
            raise


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and not path.startswith(":"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event emit BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Freed space is overwritten with zeros, so a deleted or overwritten value (an erased
    # person's name) does not linger in a free page or a cell's old place.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def new_metadata() -> MetaData:
    """Each service declares its own ``Base`` with this metadata: its Alembic history is its own."""
    return MetaData(naming_convention=NAMING_CONVENTION)
