"""The schema's version: Alembic migrations, and opening a database on the current schema.

`open_database` is what every command uses, so a fresh path just works; concurrent upgrades take a lock
(a PostgreSQL advisory lock, or a file lock beside a SQLite database) so that one migrates and the others wait.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from monitor.env import PROJECT_ROOT
from monitor.errors import DatabaseError
from monitor.store.db import MIGRATION_LOCK_KEY, advisory_lock, create_db_engine, first_line
from monitor.store.locks import lock_path
from monitor.store.revisions import MIGRATIONS, head_revision

if TYPE_CHECKING:  # Alembic takes a while to import: only when a migration may be needed
    from alembic.config import Config as AlembicConfig


# --- migrations --------------------------------------------------------------------------------------------
NOT_MODELLED = ("item_fts",)  # SQLite's FTS5 tables (0004) and PostgreSQL's full-text index item_fts_pg (0006)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate's filter: the full-text indexes are made by hand in migrations, not by the models."""
    hand_made = type_ in ("table", "index") and (name or "").startswith(NOT_MODELLED)
    return not (hand_made and reflected and compare_to is None)


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
    try:
        if _created_from_script(engine):
            return True
        current, head = schema_state(engine)
        if current == head:
            return False
        with _migration_lock(engine):
            # Another process may have migrated while this one waited for the lock: look again.
            current, head = schema_state(engine)
            if current == head:
                return False
            migrate(engine)
        return True
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"database {engine.url.render_as_string()}: {first_line(exc)}") from None
    except sa.exc.DatabaseError as exc:
        raise DatabaseError(f"database {engine.url.render_as_string()} is not usable: {first_line(exc)}") from None


def migrate(engine: Engine) -> None:
    """Run every migration the database lacks, in one transaction (`migration_transaction`); the caller holds
    the migration lock or owns the database alone."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with migration_transaction(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _created_from_script(engine: Engine) -> bool:
    """On an empty SQLite file, build the head schema in one step from `sqlite_schema.sql` (no Alembic, no
    table rebuilt by copy); False when the file is not empty or the script is not at the head revision."""
    if engine.dialect.name != "sqlite" or (head := head_revision()) is None:
        return False
    from monitor.store import sqlite_schema

    if not _empty(engine) or (script := sqlite_schema.script_for(head)) is None:
        return False
    with _migration_lock(engine):  # another process may have made it while this one waited: look again
        if not _empty(engine):
            return False
        with engine.connect() as connection:
            sqlite_schema.create(connection.connection.driver_connection, script)  # type: ignore[arg-type]
    return True


def _empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar() == 0


def _at_head(engine: Engine) -> bool:
    """Whether the database is already at this code's one head revision, read from the migration files
    without importing Alembic (a cron run that needs no migration starts faster). Unsure means no."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.DBAPIError:
        return False
    return current == [head]


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Migrate one process at a time (two cron runs starting on a fresh path, or workers on several hosts
    starting together): a blocking lock that its holder's death drops. On PostgreSQL a database advisory lock,
    on SQLite a kernel lock on a file beside the run lock. A migration takes a moment, so waiting is right."""
    if engine.dialect.name == "postgresql":
        with advisory_lock(engine, MIGRATION_LOCK_KEY, wait=True):
            yield
        return
    run = lock_path(engine.url.render_as_string(hide_password=False))
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


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """One transaction for migrations. On SQLite, with foreign keys off while they run, as SQLite's own recipe
    for altering a table has it: a batch migration rebuilds a table by copy, drop and rename, and SQLite will
    not drop a table that others point at with them on, not even deferred. Before the commit PRAGMA
    foreign_key_check must find nothing, so no migration leaves a key dangling."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:  # a pragma that is a no-op inside a transaction: set on the driver's connection, before one
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                yield connection
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
                if dangling:
                    table, rowid, parent, _ = dangling[0]
                    raise DatabaseError(
                        f"the migration left {len(dangling)} foreign keys dangling, e.g. {table} row {rowid} -> "
                        f"{parent}; nothing was changed"
                    )
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
