"""Engine factory, migrations and the cron run lock.

This is the one place that knows which database it talks to. SQLite-only statements (pragmas, the
transaction recipe) live in `_sqlite_setup` below; everything else is portable SQL through SQLAlchemy.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from monitor.config import PROJECT_ROOT
from monitor.errors import DatabaseError, LockedError
from monitor.redact import redact

if TYPE_CHECKING:  # Alembic takes a while to import: only when a migration may be needed
    from alembic.config import Config as AlembicConfig

MIGRATIONS = PROJECT_ROOT / "alembic"
BUSY_TIMEOUT_MS = 30_000


def create_db_engine(url: str, *, writes: bool = True) -> Engine:
    """An engine for `url`; for SQLite, the parent folder is created and the pragmas are set. A SQLite file
    this process cannot write is opened read-only for a command that only reads (`writes=False`), and
    refused with "database is read-only" for one that writes."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(f"database URL {redact(url)!r} is not valid: {redact(str(exc))}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, writes)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise DatabaseError(f"database URL {parsed.render_as_string()!r}: driver not available: {exc}") from None


# --- SQLite only -------------------------------------------------------------------------------------------
def _sqlite_engine(url: sa.URL, writes: bool) -> Engine:
    if not url.database or url.database == ":memory:":
        # Each connection would get its own empty database: nothing would be kept.
        raise DatabaseError(f"the database URL {url.render_as_string()} names no file (e.g. sqlite:///monitor.db)")
    path = Path(url.database).expanduser()
    connect_args: dict[str, Any] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
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
    sa.event.listen(engine, "connect", _sqlite_setup_read_only if read_only else _sqlite_setup)
    # pysqlite starts transactions lazily and never for DDL; take control so that a unit of work, and a
    # migration, is one real transaction (SQLAlchemy's documented recipe).
    sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    return engine


def _writable(path: Path) -> bool:
    """Whether this process can change the database: the file, and the folder its WAL files live in."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _sqlite_setup_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _sqlite_setup(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# --- migrations --------------------------------------------------------------------------------------------
NOT_MODELLED = ("item_fts",)  # SQLite's FTS5 index and its shadow tables, created by migration 0004


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate's filter: the full-text index is made by hand in a migration, not by the models."""
    return not (type_ == "table" and reflected and compare_to is None and (name or "").startswith(NOT_MODELLED))


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, this code's head revision)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

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
    if _at_head(engine):
        return False
    from alembic import command

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
        raise DatabaseError(f"database {engine.url.render_as_string()}: {_first_line(exc)}") from None
    except sa.exc.DatabaseError as exc:
        raise DatabaseError(f"database {engine.url.render_as_string()} is not usable: {_first_line(exc)}") from None


_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*['\"]?([\w-]+)['\"]?", re.MULTILINE)


def _at_head(engine: Engine) -> bool:
    """Whether the database is already at this code's one head revision, read from the migration files
    without importing Alembic (a cron run that needs no migration starts faster). Unsure means no."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        return False
    try:
        with engine.connect() as connection:
            current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.DBAPIError:
        return False
    return current == list(heads)


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


def open_database(url: str, *, writes: bool = True) -> Engine:
    """An engine on an up-to-date schema: what every command uses, so a fresh path just works. A command
    that only reads (`writes=False`) also works on a database it may not change, if its schema is current."""
    engine = create_db_engine(url, writes=writes)
    if engine.url.query.get("mode") == "ro":
        current, head = schema_state(engine)
        if current != head:
            path = make_url(url).database
            raise DatabaseError(f"database is read-only: {path}; it needs migrating to revision {head} first")
        return engine
    upgrade(engine)
    return engine


def _first_line(exc: BaseException) -> str:
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
