"""A cron run with nothing due is answered from the SQLite file alone (monitor/store/idle.py): it is recorded as the
full run records it, in a fraction of the time, and only when the file says for sure that the full run would do
nothing else; every doubt leaves the decision, and the writing, to the full run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from monitor.cli import cli
from monitor.feedserver import FeedServer, Response
from monitor.store import sources
from monitor.store.idle import idle_run
from monitor.store.revisions import head_revision
from monitor.store.schema import open_database, schema_state

from .conftest import ROOT, rss

Setup = tuple[Path, Path]  # feeds.yaml, the database file


@pytest.fixture
def polled(tmp_path: Path, server: FeedServer) -> Setup:
    """Two feeds polled once by the full run: both are next due in 30 minutes."""
    for name in ("a", "b"):
        server.serve(f"/{name}.xml", Response(rss((f"{name} report", f"https://x.test/{name}", "text"))))
    database = tmp_path / "m.db"
    config = tmp_path / "feeds.yaml"
    lines = ["settings:", f"  database_url: sqlite:///{database}", "  poll: {interval: 30m}", "sources:"]
    lines += [f"  - {{id: {name}, name: {name}, url: '{server.url(f'/{name}.xml')}'}}" for name in ("a", "b")]
    config.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["poll", "--config", str(config), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["feeds_ok"] == 2, result.output
    return config, database


def _runs(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT id, started_at, finished_at, forced, feeds_due, config_digest FROM poll_run ORDER BY id"
        ).fetchall()


def _sql(database: Path, *statements: str) -> None:
    with sqlite3.connect(database) as connection:
        for statement in statements:
            connection.execute(statement)


def test_a_run_with_nothing_due_is_recorded_without_loading_the_database_layer(
    polled: Setup, server: FeedServer
) -> None:
    config, database = polled
    fetched = len(server.requests)
    script = (
        "import sys; from monitor.cli import cli; cli(sys.argv[1:], standalone_mode=False); "
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'pydantic', 'httpx', 'feedparser') if m in sys.modules),"
        " file=sys.stderr)"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "poll", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert run.stderr.strip() == "[]"
    summary = json.loads(run.stdout)
    first, idle = _runs(database)
    assert summary == {
        "run_id": idle[0],
        "feeds_due": 0,
        "feeds_ok": 0,
        "feeds_not_modified": 0,
        "feeds_failed": 0,
        "items_new": 0,
        "items_updated": 0,
        "feeds": [],
    }
    assert idle[1] == idle[2] and idle[1] > first[2] and idle[3:] == (0, 0, first[5])  # started, ended, synced
    assert len(server.requests) == fetched

    text = CliRunner().invoke(cli, ["poll", "--config", str(config)])
    assert (text.exit_code, text.stdout) == (0, "No feed is due. (Use --force to poll anyway.)\n")
    assert len(_runs(database)) == 3


LATER = datetime.now(UTC) + timedelta(minutes=1)
FAR = "'2000-01-01 00:00:00.000000'"  # a next_poll_at long past


def _edit_config(config: Path, database: Path) -> None:
    config.write_text(config.read_text() + "# a comment\n")


DOUBTS: dict[str, Callable[[Path, Path], object]] = {
    "feeds.yaml changed, if only by a comment": _edit_config,
    "a feed is due": lambda _c, db: _sql(db, f"UPDATE source SET next_poll_at = {FAR} WHERE id = 'a'"),
    "a feed was never polled": lambda _c, db: _sql(db, "UPDATE source SET next_poll_at = NULL WHERE id = 'b'"),
    "a feed is leased": lambda _c, db: _sql(db, "UPDATE source SET lease_owner = 'host:1' WHERE id = 'a'"),
    "an item waits for the index": lambda _c, db: _sql(db, "INSERT INTO item_fts_pending SELECT id FROM item LIMIT 1"),
    "the last run did not end": lambda _c, db: _sql(
        db, "UPDATE poll_run SET finished_at = NULL WHERE id = (SELECT max(id) FROM poll_run)"
    ),
    "the last run synced no digest": lambda _c, db: _sql(db, "UPDATE poll_run SET config_digest = NULL"),
    "the schema is at another revision": lambda _c, db: _sql(db, "UPDATE alembic_version SET version_num = '0009'"),
    "the database is another one": lambda c, _db: c.write_text(
        c.read_text().replace("database_url: sqlite:///", "database_url: sqlite:///elsewhere-")
    ),
    "the URL has options": lambda c, _db: c.write_text(c.read_text().replace("m.db", "m.db?timeout=5")),
    "feeds.yaml is not YAML": lambda c, _db: c.write_text(c.read_text() + "settings: [\n"),
}


@pytest.mark.parametrize("doubt", DOUBTS)
def test_any_doubt_leaves_the_run_to_the_full_poll(polled: Setup, doubt: str) -> None:
    config, database = polled
    DOUBTS[doubt](config, database)
    before = _runs(database)
    assert idle_run(str(config), {}, LATER) is None
    assert _runs(database) == before


def test_a_busy_database_is_left_to_the_full_run(polled: Setup) -> None:
    config, database = polled
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert idle_run(str(config), {}, LATER, busy_seconds=0.05) is None
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert idle_run(str(config), {}, LATER) is not None


def test_the_environment_chooses_the_database_as_for_the_full_run(polled: Setup, tmp_path: Path) -> None:
    config, database = polled
    assert idle_run(str(config), {"MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}, LATER) is None
    assert idle_run(str(config), {"MONITOR_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/x"}, LATER) is None
    assert idle_run(str(config), {"MONITOR_DATABASE_URL": f"sqlite:///{database}"}, LATER) is not None
    assert idle_run(None, {"MONITOR_CONFIG": str(config)}, LATER) is not None


# one feed's state: (enabled, in_config, health, next_poll_at): whether a full run would find it due is what
# `sources.due_sources` says; the fast answer must agree
STATES = [
    (enabled, in_config, health, when)
    for enabled in (True, False)
    for in_config in (True, False)
    for health in ("ok", "failing", "disabled", "new")
    for when in (None, FAR, "'2999-01-01 00:00:00.000000'")
]


@pytest.mark.parametrize(("enabled", "in_config", "health", "when"), STATES)
def test_the_fast_answer_agrees_with_the_full_runs_choice_of_due_feeds(
    polled: Setup, enabled: bool, in_config: bool, health: str, when: str | None
) -> None:
    config, database = polled
    _sql(
        database,
        f"UPDATE source SET enabled = {int(enabled)}, in_config = {int(in_config)}, health = '{health}', "
        f"next_poll_at = {when or 'NULL'} WHERE id = 'a'",
    )
    engine = open_database(f"sqlite:///{database}")
    with Session(engine) as session:
        due = sources.due_sources(LATER, session=session)
    engine.dispose()
    assert (idle_run(str(config), {}, LATER) is None) == bool(due)


def test_the_head_read_from_the_migration_files_is_alembics(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert schema_state(engine)[1] == head_revision() == "0010"
