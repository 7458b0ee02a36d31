"""Engine factory, transactions (retried, or off the event loop), copying a database, PostgreSQL's advisory
locks (the run lock itself is `monitor.store.locks`'s). Migrations are `monitor.store.schema`'s.

This is the one place that knows which database it talks to. SQLite-only statements (pragmas, the
transaction recipe) live in `_sqlite_setup` below; everything else is portable SQL through SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import os
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from monitor.errors import DatabaseBusyError, DatabaseError, LockedError
from monitor.redact import redact

if TYPE_CHECKING:  # Alembic takes a while to import: only when a migration may be needed
    pass

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000


_OPEN: weakref.WeakSet[Engine] = weakref.WeakSet()  # the engines made here and still alive


@atexit.register
def _close_engines() -> None:
    """Close the pooled connections of every engine still alive when the process exits, rather than leave them
    to the interpreter's teardown (whose collector `monitor.cli` spares): SQLite checkpoints the WAL and removes
    the -wal and -shm files when the last connection to a file closes, and PostgreSQL ends the sessions now."""
    for engine in list(_OPEN):
        engine.dispose()


def create_db_engine(url: str, *, writes: bool = True) -> Engine:
    """An engine for `url`; for SQLite, the parent folder is created and the pragmas are set. A SQLite file
    this process cannot write is opened read-only for a command that only reads (`writes=False`), and
    refused with "database is read-only" for one that writes. Its connections are closed at exit."""
    engine = _create_engine(url, writes)
    _OPEN.add(engine)
    return engine


def _create_engine(url: str, writes: bool) -> Engine:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(f"database URL {redact(url)!r} is not valid: {redact(str(exc))}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, writes)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        hint = " (pip install -e '.[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
        raise DatabaseError(f"database URL {redact(url)!r}: driver not available: {exc}{hint}") from None


# --- SQLite only -------------------------------------------------------------------------------------------
def _sqlite_engine(url: sa.URL, writes: bool) -> Engine:
    """`?timeout=SECONDS` in the URL sets how long a writer waits for another to finish (default 30)."""
    if not url.database or url.database == ":memory:":
        # Each connection would get its own empty database: nothing would be kept.
        raise DatabaseError(f"the database URL {url.render_as_string()} names no file (e.g. sqlite:///monitor.db)")
    try:
        timeout = float(str(url.query.get("timeout", BUSY_TIMEOUT_MS / 1000)))
    except ValueError:
        raise DatabaseError(f"database URL {url.render_as_string()}: timeout must be a number of seconds") from None
    url = url.difference_update_query(["timeout"])
    assert url.database  # checked above
    path = Path(url.database).expanduser()
    connect_args: dict[str, Any] = {"timeout": timeout, "check_same_thread": False}
    read_only = path.exists() and not _writable(path)
    if read_only and writes:
        raise DatabaseError(f"database is read-only: {path}")
    if read_only:
        # A read-only connection cannot make the WAL files; without them no writer is at work (a writer keeps
        # them while it is connected), so the file can be read as it is.
        beside = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        query = {"mode": "ro", "uri": "true"} | ({} if all(map(Path.exists, beside)) else {"immutable": "1"})
        url = url.set(database=path.resolve().as_uri(), query=query)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args=connect_args)
    if read_only:
        sa.event.listen(
            engine, "connect", lambda dbapi_connection, _record: _sqlite_setup_read_only(dbapi_connection, timeout)
        )
        sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
        return engine
    sa.event.listen(engine, "connect", lambda dbapi_connection, _record: _sqlite_setup(dbapi_connection, timeout))
    # pysqlite starts transactions lazily and never for DDL; take control so that a unit of work, and a
    # migration, is one real transaction (SQLAlchemy's documented recipe), and take the write lock up front.
    sa.event.listen(engine, "begin", lambda connection: _begin_immediate(connection, timeout))
    return engine


def _writable(path: Path) -> bool:
    """Whether this process can change the database: the file, and the folder its WAL files live in."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _sqlite_setup_read_only(dbapi_connection: Any, timeout: float) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")


def _sqlite_setup(dbapi_connection: Any, timeout: float) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection: sa.Connection, timeout: float) -> None:
    """`BEGIN IMMEDIATE`: a transaction that may write takes SQLite's one write lock before it reads, so it
    waits in the busy handler for another writer to finish instead of failing when it first writes (a
    deferred transaction that read and then writes gets "database is locked" at once). Where SQLite still
    answers busy without waiting the timeout out, try again with a short backoff until the timeout is spent."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except sa.exc.OperationalError as exc:
            if not is_busy(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise DatabaseBusyError(
                    f"database {connection.engine.url.render_as_string()} stayed locked by another process for "
                    f"{timeout:g} s"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def is_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked" or "busy", whichever layer reports it."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


# PostgreSQL's "try the transaction again" errors: deadlock detected, serialization failure.
_TRANSIENT_SQLSTATES = ("40P01", "40001")


def is_transient(exc: BaseException) -> bool:
    """An error after which the same unit of work, run again from the start, may well succeed."""
    if isinstance(exc, DatabaseBusyError):
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.DBAPIError):
        return False
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in _TRANSIENT_SQLSTATES or is_busy(exc)


def retrying(unit: Callable[[], T], *, attempts: int = 4, pause: float = 0.05) -> T:
    """Run a unit of work (one whole transaction), again from the start when it failed for a transient reason
    (SQLite busy, a PostgreSQL deadlock or serialization failure), with a short backoff."""
    for attempt in range(attempts):
        try:
            return unit()
        except (sa.exc.DBAPIError, DatabaseBusyError) as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            time.sleep(pause * 2**attempt)
    raise AssertionError("unreachable")


async def in_session(engine: Engine, work: Callable[[Session], T]) -> T:
    """`work` in a session of its own on a worker thread, so that an event loop never waits on the database.

    `work` commits what it writes; what it returns must be usable once the session is closed (plain values,
    or rows whose columns it has read)."""

    def run() -> T:
        with Session(engine) as session:
            return work(session)

    return await asyncio.to_thread(run)


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


MIGRATION_LOCK_KEY = _lock_key("monitor: migration")
RUN_LOCK_KEY = _lock_key("monitor: run")


@contextmanager
def advisory_lock(engine: Engine, key: int, *, wait: bool, shared: bool = False) -> Iterator[bool]:
    """A PostgreSQL session-level advisory lock, held on its own connection for the block: yields whether it
    was taken (always, with `wait`). The server drops it when the holder's connection ends."""
    function = f"pg{'' if wait else '_try'}_advisory_lock{'_shared' if shared else ''}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        taken = connection.execute(sa.text(f"SELECT {function}(:key)"), {"key": key}).scalar()
        try:
            yield wait or bool(taken)
        finally:
            if wait or taken:
                unlock = f"pg_advisory_unlock{'_shared' if shared else ''}"
                connection.execute(sa.text(f"SELECT {unlock}(:key)"), {"key": key})


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


# --- copying a database -----------------------------------------------------------------------------------
def copy_database(source: Engine, target: Engine, *, chunk: int = 1000) -> dict[str, int]:
    """Copy every table's rows from `source` into `target` (both at this code's schema head; `target` empty),
    in one transaction on the target; returns the rows copied per table. On PostgreSQL the id sequences are
    moved past the copied ids. Views and full-text indexes need no copying: they follow the tables (SQLite's
    is filled in bulk once the items are in)."""
    from sqlmodel import SQLModel

    import monitor.store.models  # noqa: F401  (registers the tables)

    tables = SQLModel.metadata.sorted_tables
    with target.connect() as connection:
        filled = [table.name for table in tables if connection.execute(sa.select(table).limit(1)).first()]
    if filled:
        raise DatabaseError(
            f"database {target.url.render_as_string()} is not empty ({', '.join(filled)}): nothing copied"
        )
    counts: dict[str, int] = {}
    with source.connect() as reading, target.begin() as writing:
        for table in tables:
            counts[table.name] = 0
            result = reading.execution_options(yield_per=chunk).execute(sa.select(table).order_by(*table.primary_key))
            for rows in result.partitions():
                writing.execute(table.insert(), [row._asdict() for row in rows])
                counts[table.name] += len(rows)
        from monitor.store.fulltext import index_new_items

        index_new_items(session=writing)  # SQLite's insert trigger only noted the copied items (migration 0009)
        if target.dialect.name == "postgresql":
            for table in tables:
                if "id" in table.c and isinstance(table.c.id.type, sa.Integer) and table.c.id.primary_key:
                    writing.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"coalesce(max(id), 1), max(id) IS NOT NULL) FROM {table.name}"
                        )
                    )
    return counts


# --- run lock on PostgreSQL (`monitor.store.locks.run_lock` takes it) ------------------------------------------
def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


@contextmanager
def postgres_run_lock(url: str, *, exclusive: bool) -> Iterator[None]:
    """The run lock on a shared PostgreSQL database: an advisory lock, shared unless `exclusive`."""
    parsed = make_url(url)
    engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    try:
        with advisory_lock(engine, RUN_LOCK_KEY, wait=False, shared=not exclusive) as taken:
            if not taken:
                what = "monitor runs are working" if exclusive else "a monitor rematch is rebuilding the history"
                raise LockedError(f"{what} on {parsed.render_as_string()} (advisory lock); exiting")
            yield
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"database {parsed.render_as_string()}: {first_line(exc)}") from None
    finally:
        engine.dispose()


# --- inserts through the driver (SQLite) -------------------------------------------------------------------
def _processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """The column's bind processing; for a date and time, answering again from its last result when given the
    very same (immutable) object: a batch's rows carry one `now` in several columns, and formatting a datetime
    is most of what binding a row costs."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None or not isinstance(getattr(column.type, "impl", column.type), sa.DateTime):
        return process
    last: list[Any] = [_UNSEEN, None]

    def processed(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return processed


_UNSEEN = object()


def insert_returning(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], returning: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """Insert `rows` (dicts with the same keys) and return `returning` of each, in no fixed order. On SQLite
    through the driver, with each column's own SQLAlchemy bind processing applied in one loop: the values
    stored are the ones `sa.insert` would store (tests/test_db.py), without its per-row bookkeeping, which the
    one writer paid for each of a big first poll's items. Elsewhere `sa.insert(...).returning(...)`."""
    if not rows:
        return []
    dialect = connection.dialect
    if dialect.name != "sqlite":
        statement = sa.insert(table).returning(*(table.c[name] for name in returning))
        return [tuple(row) for row in connection.execute(statement, rows)]
    names = list(rows[0])
    processors = [(name, _processor(table.c[name], dialect)) for name in names]
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) VALUES "
    tail = " RETURNING " + ", ".join(map(quote, returning))
    group = "(" + ", ".join("?" * len(names)) + ")"
    per_statement = max(1, dialect.insertmanyvalues_max_parameters // len(names))
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    found: list[tuple[Any, ...]] = []
    try:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = [
                row[name] if process is None else process(row[name]) for row in chunk for name, process in processors
            ]
            found += cursor.execute(head + ", ".join([group] * len(chunk)) + tail, values).fetchall()
    finally:
        cursor.close()
    return found
