"""The schema comes from Alembic and matches the models; SQLite runs with WAL, foreign keys and a busy
timeout; a newer database is refused; the cron lock excludes a second run and dies with its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from monitor.config import SourceConfig
from monitor.errors import DatabaseError, LockedError
from monitor.store import models, sources
from monitor.store.db import create_db_engine, insert_returning
from monitor.store.locks import lock_path, run_lock
from monitor.store.schema import include_object, open_database, schema_state, upgrade

from .conftest import ROOT


def test_db_upgrade_head_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        opts = {"compare_type": True, "render_as_batch": True, "include_object": include_object}
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, SQLModel.metadata) == []


@pytest.mark.sqlite_only
def test_db_alembic_command_line_builds_the_same_schema(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / "by-alembic.db"
    env = {**os.environ, "MONITOR_DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    other = create_db_engine(f"sqlite:///{path}")
    assert sa.inspect(other).get_table_names() == sa.inspect(engine).get_table_names()
    assert schema_state(other)[0] == schema_state(other)[1]
    other.dispose()


@pytest.mark.sqlite_only
def test_db_sqlite_pragmas(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_db_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO feed_poll (run_id, source_id, polled_at, outcome, items_seen, items_new, items_updated, "
            "duration_ms) VALUES (999, 'nope', '2026-01-01', 'ok', 0, 0, 0, 0)"
        )


def test_db_fresh_path_is_created_and_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'm.db'}"
    engine = open_database(url)
    assert (tmp_path / "nested" / "dir" / "m.db").exists()
    assert upgrade(engine) is False
    engine.dispose()


def test_db_newer_schema_is_refused_untouched(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(DatabaseError, match="made by a newer version"):
        upgrade(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "9999_from_the_future"


def test_db_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="junk.db"):
        open_database(f"sqlite:///{path}")


@pytest.mark.sqlite_only
def test_lock_excludes_a_second_holder(database_url: str) -> None:
    with run_lock(database_url):
        with pytest.raises(LockedError, match=r"another monitor run is working \(pid \d+"):
            with run_lock(database_url):
                pass
    with run_lock(database_url):
        pass


@pytest.mark.sqlite_only
def test_lock_of_a_killed_process_is_not_stale(database_url: str) -> None:
    code = (
        "import sys, time\n"
        "from monitor.store.locks import run_lock\n"
        f"with run_lock({database_url!r}):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError), run_lock(database_url):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
    assert lock_path(database_url).exists()
    started = time.monotonic()
    with run_lock(database_url):
        assert time.monotonic() - started < 1


@pytest.mark.parametrize("per_statement", [None, 3], ids=["one-statement", "three-rows-a-statement"])
def test_insert_returning_stores_what_sa_insert_stores(
    engine: Engine, per_statement: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The item insert of a poll's hot path (through the driver on SQLite) against SQLAlchemy's own insert."""
    if per_statement is not None:
        monkeypatch.setattr(engine.dialect, "insertmanyvalues_max_parameters", per_statement * 15)
    item = models.Item.__table__  # type: ignore[attr-defined]
    now = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    with Session(engine) as session:
        feeds = [SourceConfig(id=source, name=source, url=f"https://{source}.example/") for source in "ab"]
        sources.sync_sources(feeds, 600, now, session=session)
        session.commit()

    def rows(source_id: str) -> list[dict[str, Any]]:
        return [
            {
                "source_id": source_id,
                "key": f"k{n}",
                "guid": None if n % 2 else f"g{n}",
                "link": f"https://news.example/{n}",
                "canonical_url": None,
                "story_id": None,
                "title": f"Title {n} ‘quoted’ – €",
                "summary": "" if n % 3 else "Summary with 'quotes' and \"double\" ones.",
                "author": None,
                "published_at": now + timedelta(hours=n) if n % 4 else now.astimezone(timezone(timedelta(hours=2))),
                "published_fallback": None,
                "first_seen_at": now,
                "updated_at": now,
                "version": 1,
                "content_hash": f"{n:064d}",
            }
            for n in range(10)
        ]

    with engine.begin() as connection:
        ours = dict(insert_returning(connection, item, rows("a"), ("key", "id")))
        statement = sa.insert(item).returning(item.c.key, item.c.id)
        theirs = {key: id_ for key, id_ in connection.execute(statement, rows("b"))}  # noqa: C416 - Row to pair

    assert sorted(ours) == sorted(theirs) == [f"k{n}" for n in range(10)]
    columns = [c for c in item.c if c.name not in ("id", "source_id")]
    query = sa.select(*columns).order_by(item.c.key)
    with engine.connect() as connection:
        stored = {
            source: [tuple(r) for r in connection.execute(query.where(item.c.source_id == source))] for source in "ab"
        }
        raw = connection.exec_driver_sql("SELECT published_at FROM item ORDER BY source_id, key").scalars().all()
        ids = connection.execute(sa.select(item.c.key, item.c.id).where(item.c.source_id == "a")).all()
    assert stored["a"] == stored["b"]
    assert raw[:10] == raw[10:]  # the same text (SQLite) or value (PostgreSQL) in the database itself
    assert {key: id_ for key, id_ in ids} == ours  # noqa: C416 - Row to pair
