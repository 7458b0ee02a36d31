"""A cron run with nothing due is answered from the SQLite file alone (monitor/store/idle.py): it is recorded as the
full run records it, in a fraction of the time, and only when the file says for sure that the full run would do
nothing else; every doubt leaves the decision, and the writing, to the full run."""

from __future__ import annotations

import json
import os
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
from monitor.digest import is_due
from monitor.feedserver import FeedServer, Response
from monitor.store import outbox, sources
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


def test_items_waiting_for_the_full_text_index_leave_the_run_idle(polled: Setup) -> None:
    """The full run would not index them either: the next search does (`fulltext.catch_up`)."""
    config, database = polled
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM item_fts_pending").fetchone() == (2,)
    assert idle_run(str(config), {}, LATER) is not None


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
    assert schema_state(engine)[1] == head_revision() == "0011"


# --- `monitor run`: the digests as well ----------------------------------------------------------------------
MODULES = (
    "import sys; from monitor.cli import cli; cli(sys.argv[1:], standalone_mode=False); "
    "print('loaded:', sorted(m for m in ('sqlalchemy', 'sqlmodel', 'pydantic', 'telegram') if m in sys.modules),"
    " file=sys.stderr)"
)


def _monitor_run(config: Path, env: dict[str, str] | None = None) -> tuple[str, list[str], list[str]]:
    """`monitor run` in a process of its own: its output, its lines on stderr, and the heavy modules it loaded."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}
    done = subprocess.run(
        [sys.executable, "-c", MODULES, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**environment, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    said = done.stderr.splitlines()
    loaded = json.loads(said[-1].removeprefix("loaded: ").replace("'", '"'))
    return done.stdout, said[:-1], loaded


def _subscriber(database: Path, chat: int, frequency: str, last_digest_at: str | None) -> None:
    """A subscriber who was told every event there is so far."""
    when = f"'{last_digest_at}'" if last_digest_at else "NULL"
    _sql(
        database,
        "INSERT INTO subscriber (chat_id, chat_type, active, frequency, hour, min_status, last_event_id, "
        "last_admin_event_id, last_digest_at, subscribed_at, updated_at) VALUES "
        f"({chat}, 'private', 1, '{frequency}', 8, 'all', (SELECT coalesce(max(id), 0) FROM event), "
        f"(SELECT coalesce(max(id), 0) FROM event), {when}, {FAR}, {FAR})",
    )


@pytest.fixture
def digested(polled: Setup) -> Setup:
    """`polled`, and one full `monitor run` since, which added the standard-output subscriber (the reports name
    no proposal: there is no event to tell)."""
    config, database = polled
    _out, said, loaded = _monitor_run(config)
    assert said == ["digests: 0 composed, 0 parts printed"] and "sqlalchemy" in loaded
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM subscriber WHERE chat_id = 0").fetchone() == (1,)
    return polled


def test_a_cron_run_with_no_feed_and_no_digest_due_loads_no_database_layer(digested: Setup) -> None:
    config, database = digested
    _subscriber(database, 42, "daily", None)  # due (never had one), with nothing to tell: the full run
    full = _monitor_run(config)
    with sqlite3.connect(database) as connection:
        [(stamp,)] = connection.execute("SELECT last_digest_at FROM subscriber WHERE chat_id = 42").fetchall()
    assert stamp is not None and "sqlalchemy" in full[2]  # its next digest is due from now on

    before = len(_runs(database))
    idle = _monitor_run(config)
    assert idle[2] == []  # neither SQLAlchemy, SQLModel, pydantic nor Telegram
    assert (
        idle[:2]
        == full[:2]
        == ("No feed is due. (Use --force to poll anyway.)\n", ["digests: 0 composed, 0 parts printed"])
    )
    assert len(_runs(database)) == before + 1  # the run is recorded as the full run records it


def test_with_a_token_and_nothing_to_send_telegram_is_not_asked(digested: Setup) -> None:
    config, _database = digested
    out, said, loaded = _monitor_run(config, {"MONITOR_TELEGRAM_TOKEN": "123:not-a-real-token"})
    assert loaded == [] and out == "No feed is due. (Use --force to poll anyway.)\n"
    assert said == ["digests: 0 composed; 0 parts sent, 0 failed, 0 deferred; 0 subscribers deactivated"]


DIGEST_DOUBTS: dict[str, Callable[[Path, Path], object]] = {
    "an event the standard output was not told": lambda _c, db: _sql(
        db, "INSERT INTO event (kind, created_at, detail) VALUES ('report', '2026-01-01 00:00:00.000000', '{}')"
    ),
    "a daily subscriber is due": lambda _c, db: _subscriber(db, 7, "daily", "2000-01-01 00:00:00.000000"),
    "an hourly subscriber is due": lambda _c, db: _subscriber(db, 7, "hourly", "2000-01-01 00:00:00.000000"),
    "a part waits in the outbox": lambda _c, db: _sql(
        db,
        "INSERT INTO digest (subscriber_id, kind, first_event_id, last_event_id, composed_at, parts, state) "
        "SELECT id, 'digest', 1, 1, '2026-01-01 00:00:00.000000', 1, 'pending' FROM subscriber WHERE chat_id = 0",
        "INSERT INTO digest_part (digest_id, seq, text, attempts) SELECT max(id), 1, 'waiting', 0 FROM digest",
    ),
    "admin chats are configured": lambda c, _db: c.write_text(
        c.read_text().replace("settings:\n", "settings:\n  telegram: {admin_chats: [5]}\n")
    ),
    "the digests' time zone is not one": lambda c, _db: c.write_text(
        c.read_text().replace("settings:\n", "settings:\n  digest: {timezone: Mars/Olympus}\n")
    ),
    "no standard-output subscriber yet": lambda _c, db: _sql(db, "DELETE FROM subscriber WHERE chat_id = 0"),
}


@pytest.mark.parametrize("doubt", DIGEST_DOUBTS)
def test_any_digest_to_compose_or_send_leaves_the_run_to_the_full_path(digested: Setup, doubt: str) -> None:
    config, database = digested
    assert idle_run(str(config), {}, LATER, digests=True) is not None  # quiet before
    DIGEST_DOUBTS[doubt](config, database)
    before = _runs(database)
    assert idle_run(str(config), {}, LATER, digests=True) is None
    assert _runs(database) == before
    if doubt not in ("admin chats are configured", "the digests' time zone is not one"):
        assert idle_run(str(config), {}, LATER) is not None  # the poll alone is still idle


@pytest.mark.parametrize("frequency", ["instant", "hourly", "daily", "weekly"])
@pytest.mark.parametrize("hours_ago", [None, 0.5, 2, 30, 24 * 8])
def test_the_fast_answer_agrees_with_the_full_runs_choice_of_due_subscribers(
    digested: Setup, frequency: str, hours_ago: float | None
) -> None:
    config, database = digested
    last = (LATER - timedelta(hours=hours_ago)).strftime("%Y-%m-%d %H:%M:%S.%f") if hours_ago is not None else None
    _subscriber(database, 9, frequency, last)
    engine = open_database(f"sqlite:///{database}")
    with Session(engine) as session:
        row = outbox.subscriber(9, session=session)
        assert row is not None
        due = frequency != "instant" and is_due(row.frequency, row.hour, row.last_digest_at, LATER, UTC)
    engine.dispose()
    assert (idle_run(str(config), {}, LATER, digests=True) is None) == due
