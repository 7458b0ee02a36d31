"""Migration 0007 on SQLite and PostgreSQL: a database at 0006 with rows keeps every row through the upgrade
and back; the event indexes are there and the redundant ones gone; the database's CHECK constraints are the
models' and refuse what they should; proposal -> status_change is a deferred foreign key that `monitor
rematch` can live with; a value outside the checks stops the upgrade with one line."""

from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from alembic import command
from monitor.cli import cli
from monitor.config import Config
from monitor.delivery import run_digest
from monitor.errors import DatabaseError
from monitor.feedserver import FeedServer
from monitor.rematch import run_rematch
from monitor.store.db import create_db_engine
from monitor.store.models import CHECKED
from monitor.store.schema import alembic_config, migration_transaction, open_database
from monitor.vocabulary import values

from .conftest import T2, FakeClock, add_local_changes, local_config

REDUNDANT = {  # index -> the unique constraint that leads with its column
    "item": ("ix_item_source_id", "uq_item_source_id_key"),
    "item_version": ("ix_item_version_item_id", "uq_item_version_item_id_version"),
    "item_match": ("ix_item_match_item_id", "uq_item_match_item_id_item_version_proposal_id_matcher_version"),
    "evidence": ("ix_evidence_change_id", "uq_evidence_change_id_match_id"),
    "digest": ("ix_digest_subscriber_id", "uq_digest_subscriber_id_kind_last_event_id"),
    "digest_part": ("ix_digest_part_digest_id", "uq_digest_part_digest_id_seq"),
}
CHECKED_COLUMNS = [(table, column) for table, columns in CHECKED.items() for column in columns]


def _at_0006_with_rows(base: Config, url: str) -> Engine:
    """A database filled by real polls and a digest run, then taken down to 0006."""
    open_database(url).dispose()
    engine = create_db_engine(url)
    add_local_changes(base, url, engine)
    with FeedServer() as server:
        run_digest(local_config(base, url, server), engine, FakeClock(T2), out=io.StringIO())
    command.downgrade(alembic_config(url), "0006")
    return engine


def _rows(engine: Engine) -> dict[str, list[Any]]:
    """Every row of every table the database has now (its own columns, not the models')."""
    tables = sa.MetaData()
    tables.reflect(engine, only=[table.name for table in SQLModel.metadata.sorted_tables])
    with engine.connect() as connection:
        return {
            table.name: [tuple(row) for row in connection.execute(sa.select(table).order_by(*table.primary_key))]
            for table in sorted(tables.tables.values(), key=lambda table: table.name)
        }


def _indexes(engine: Engine, table: str) -> set[str]:
    return {index["name"] for index in sa.inspect(engine).get_indexes(table) if index["name"]}


def _revision(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())


def test_migration_0007_keeps_every_row_up_and_down(base_config: Config, database_url: str) -> None:
    engine = _at_0006_with_rows(base_config, database_url)
    before = _rows(engine)
    filled = {"source", "feed_poll", "item", "item_match", "status_change", "evidence", "event", "subscriber"}
    assert filled | {"digest", "digest_part", "digest_event"} <= {name for name, rows in before.items() if rows}
    assert "ix_item_source_id" in _indexes(engine, "item") and "ix_event_change_id" not in _indexes(engine, "event")

    command.upgrade(alembic_config(database_url), "0007")
    assert _rows(engine) == before
    assert {"ix_event_change_id", "ix_event_match_id"} <= _indexes(engine, "event")
    for table, (index, unique) in REDUNDANT.items():
        assert index not in _indexes(engine, table)
        (constraint,) = [u for u in sa.inspect(engine).get_unique_constraints(table) if u["name"] == unique]
        assert constraint["column_names"][0] == index.removeprefix(f"ix_{table}_")  # still indexed, by the key

    command.downgrade(alembic_config(database_url), "0006")
    assert _rows(engine) == before
    assert "ix_item_source_id" in _indexes(engine, "item") and "ix_event_change_id" not in _indexes(engine, "event")
    assert not sa.inspect(engine).get_check_constraints("source")
    engine.dispose()


def test_migration_0007_checks_are_the_models(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    for table, columns in CHECKED.items():
        found = {check["name"]: check["sqltext"] for check in inspector.get_check_constraints(table)}
        assert set(found) == {f"ck_{table}_{column}" for column in columns}, table
        for column, kind in columns.items():
            assert all(f"'{value}'" in found[f"ck_{table}_{column}"] for value in values(kind)), (table, column)


def test_migration_0007_checks_refuse_values_outside_the_vocabulary(base_config: Config, database_url: str) -> None:
    engine = _at_0006_with_rows(base_config, database_url)
    command.upgrade(alembic_config(database_url), "head")
    refused, accepted = [], []
    for table, column in CHECKED_COLUMNS:
        for value in (*values(CHECKED[table][column]), "bogus"):
            try:
                with engine.connect() as connection:
                    changed = connection.execute(sa.table(table, sa.column(column)).update().values({column: value}))
                    assert changed.rowcount > 0, table  # every checked table has rows to try
                    connection.rollback()
                accepted.append((table, column, value))
            except sa.exc.IntegrityError:
                refused.append((table, column, value))
    assert refused == [(table, column, "bogus") for table, column in CHECKED_COLUMNS]
    assert len(accepted) == sum(len(values(CHECKED[t][c])) for t, c in CHECKED_COLUMNS)
    engine.dispose()


def test_migration_0007_proposal_key_is_checked_at_commit(base_config: Config, database_url: str) -> None:
    engine = _at_0006_with_rows(base_config, database_url)
    command.upgrade(alembic_config(database_url), "head")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql("UPDATE proposal SET status_change_id = 999999")
    # rematch deletes the machine-made changes before it clears the proposals' pointers to them: deferred, fine
    with FeedServer() as server:  # rematch reads no feed; the configuration names the same sources
        summary = run_rematch(local_config(base_config, database_url, server), engine)
    assert summary.changes > 0
    with engine.connect() as connection:
        pointed = connection.exec_driver_sql("SELECT count(*) FROM proposal WHERE status_change_id IS NOT NULL")
        assert pointed.scalar()
    engine.dispose()


def test_migration_0007_refuses_a_value_outside_the_checks_in_one_line(base_config: Config, database_url: str) -> None:
    engine = _at_0006_with_rows(base_config, database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE event SET kind = 'gossip' WHERE id = (SELECT min(id) FROM event)")
    result = CliRunner().invoke(cli, ["db", "upgrade"], env={"MONITOR_DATABASE_URL": database_url})
    assert result.exit_code != 0
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "event.kind holds 'gossip' (1 row); correct or delete those rows first" in result.output
    assert _revision(engine) == "0006"
    engine.dispose()


@pytest.mark.sqlite_only
def test_migration_transaction_refuses_a_dangling_key_and_turns_keys_back_on(tmp_path: Any) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    insert = (
        "INSERT INTO feed_poll (run_id, source_id, polled_at, outcome, items_seen, items_new, items_updated, "
        "duration_ms) VALUES (999, 'nope', '2026-01-01', 'ok', 0, 0, 0, 0)"
    )
    with pytest.raises(
        DatabaseError,
        match=r"left 2 foreign keys dangling, e\.g\. feed_poll row 1 -> (poll_run|source); nothing was changed",
    ):
        with migration_transaction(engine) as connection:
            connection.exec_driver_sql(insert)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("SELECT count(*) FROM feed_poll").scalar() == 0
    engine.dispose()
