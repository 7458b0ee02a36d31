"""Engine factory, migrations and the cron run lock.

This is the one place that knows which database it talks to. SQLite-only statements (pragmas, the
transaction recipe) live in `_sqlite_setup` below; everything else is portable SQL through SQLAlchemy.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url

from alembic import command
from monitor.config import PROJECT_ROOT
from monitor.errors import DatabaseBusyError, DatabaseError, LockedError

T = TypeVar("T")
MIGRATIONS = PROJECT_ROOT / "alembic"
BUSY_TIMEOUT_MS = 30_000


def create_db_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite, the parent folder is created and the pragmas are set."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(f"database URL {url!r} is not valid: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise DatabaseError(f"database URL {url!r}: driver not available: {exc}") from None


# --- SQLite only -------------------------------------------------------------------------------------------
def _sqlite_engine(url: sa.URL) -> Engine:
    """`?timeout=SECONDS` in the URL sets how long a writer waits for another to finish (default 30)."""
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        timeout = float(str(url.query.get("timeout", BUSY_TIMEOUT_MS / 1000)))
    except ValueError:
        raise DatabaseError(f"database URL {url.render_as_string()}: timeout must be a number of seconds") from None
    url = url.difference_update_query(["timeout"])
    engine = sa.create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False})
    sa.event.listen(engine, "connect", lambda dbapi_connection, _record: _sqlite_setup(dbapi_connection, timeout))
    # pysqlite starts transactions lazily and never for DDL; take control so that a unit of work, and a
    # migration, is one real transaction (SQLAlchemy's documented recipe), and take the write lock up front.
    sa.event.listen(engine, "begin", lambda connection: _begin_immediate(connection, timeout))
    return engine


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


# --- migrations --------------------------------------------------------------------------------------------
NOT_MODELLED = ("item_fts",)  # SQLite's FTS5 index and its shadow tables, created by migration 0004


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate's filter: the full-text index is made by hand in a migration, not by the models."""
    return not (type_ == "table" and reflected and compare_to is None and (name or "").startswith(NOT_MODELLED))


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, this code's head revision)."""
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    head = script.get_current_head()
    assert head is not None
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    known = {revision.revision for revision in script.walk_revisions()}
    if current is not None and current not in known:
        raise DatabaseError(
            f"the database {engine.url.render_as_string()} is at schema revision {current}, which this version "
            "of monitor does not know: it was made by a newer version; upgrade monitor instead"
        )
    return current, head


def upgrade(engine: Engine) -> bool:
    """Bring the schema to this code's head. Returns whether anything was applied."""
    try:
        current, head = schema_state(engine)
        if current == head:
            return False
        url = engine.url.render_as_string(hide_password=False)
        with _migration_lock(url):
            # Another process may have migrated while this one waited for the lock: look again.
            current, head = schema_state(engine)
            if current == head:
                return False
            config = alembic_config(url)
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        return True
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"database {engine.url.render_as_string()}: {first_line(exc)}") from None
    except sa.exc.DatabaseError as exc:
        raise DatabaseError(f"database {engine.url.render_as_string()} is not usable: {first_line(exc)}") from None


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Migrate one process at a time (two cron runs starting on a fresh path): a blocking kernel lock beside
    the run lock. A migration takes a moment, so waiting is right; the kernel drops it if the process dies."""
    run = lock_path(url)
    path = run.with_name(run.name.removesuffix(".lock") + ".migrate.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def open_database(url: str) -> Engine:
    """An engine on an up-to-date schema: what every command uses, so a fresh path just works."""
    engine = create_db_engine(url)
    upgrade(engine)
    return engine


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


# --- run lock ----------------------------------------------------------------------------------------------
def lock_path(url: str) -> Path:
    """The lock file beside a SQLite database, or a per-URL file in the temp folder for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).expanduser().with_name(Path(parsed.database).name + ".lock")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"monitor-{digest}.lock"


@contextmanager
def run_lock(url: str, *, now: datetime | None = None) -> Iterator[None]:
    """Hold the run lock, or raise `LockedError` at once. The kernel drops it when the process dies."""
    path = lock_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise LockedError(f"another monitor run is working ({holder}); lock {path}; exiting") from None
        stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {stamp}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
