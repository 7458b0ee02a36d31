"""A poll whose every due feed answers a plain 304 is recorded from the SQLite file alone (monitor/head_start.py's
`quiet_poll`, monitor/store/idle.py's `record_quiet_run`), without loading SQLAlchemy: the rows the full poll
writes, and anything else (news, a failure, a move, a batch short of every feed due) left to the full poll, with
no answer lost or fetched twice."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor import head_start
from monitor.config import Config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store.schema import open_database

from .conftest import ROOT, FakeClock, rss, write_config
from .reliability.harness import held_until
from .test_head_start import _database, _settled

# What a run writes that the network decides, not the code: how long each answer took, and (feeds answering in
# any order) which feed's poll got which id
_TIMED = {"duration_ms"}


def _copy(config: Config, path: Path) -> Config:
    """`config` on a copy of its database file (the same feeds.yaml: the copy is as settled as the original)."""
    with sqlite3.connect(_database(config)) as original, sqlite3.connect(path) as copy:
        original.backup(copy)
    return replace(config, settings=config.settings.model_copy(update={"database_url": f"sqlite:///{path}"}))


def _rows(config: Config, table: str, where: str = "") -> list[dict[str, Any]]:
    with sqlite3.connect(_database(config)) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(f"SELECT * FROM {table} {where}").fetchall()
    left = _TIMED | ({"id"} if table == "feed_poll" else set())
    return sorted(({k: row[k] for k in row.keys() if k not in left} for row in rows), key=repr)


def _last_run(config: Config) -> list[dict[str, Any]]:
    return _rows(config, "poll_run", "WHERE id = (SELECT max(id) FROM poll_run)")


def _three_feeds(tmp_path: Path, server: FeedServer, database: Path) -> Path:
    """A feeds.yaml of three feeds of one report each, on `database`."""
    for i in range(3):
        server.serve(f"/{i}.xml", Response(rss((f"report {i}", f"https://x.test/{i}", "text"))))
    feeds = [{"id": f"f{i}", "name": f"f{i}", "url": server.url(f"/{i}.xml")} for i in range(3)]
    return write_config(tmp_path / "feeds.yaml", f"sqlite:///{database}", feeds)


def _reporting_what_loaded(*args: str) -> str:
    """Python code running `monitor ARGS` that writes, last, which of the database layer's packages it loaded."""
    return (
        "import atexit, sys\n"
        "loaded = lambda: sorted({n.split('.')[0] for n in sys.modules} & {'sqlalchemy', 'sqlmodel', 'alembic'})\n"
        "atexit.register(lambda: print('loaded', loaded(), file=sys.stderr))\n"
        "from monitor.cli import cli\n"
        f"cli({list(args)!r})\n"
    )


def test_a_quiet_poll_writes_what_the_full_poll_writes(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    settled = _settled(tmp_path, server, clock, base_config, 4)
    quiet, full = _copy(settled, tmp_path / "quiet.db"), _copy(settled, tmp_path / "full.db")
    now = clock.advance(days=1)
    head = head_start.start(quiet, now, force=True)
    assert head is not None and head.complete
    try:
        summary = head_start.quiet_poll(head, quiet, now, clock, force=True)
    finally:
        head.close()
    expected = run_poll(full, open_database(full.database_url), clock, force=True)
    assert summary is not None
    assert (summary.feeds_due, summary.count("not-modified")) == (expected.feeds_due, expected.count("not-modified"))
    assert sorted(summary.feeds, key=repr) == sorted(expected.feeds, key=repr)  # what `monitor poll` prints
    for table in ("source", "feed_poll", "item", "event"):
        assert _rows(quiet, table) == _rows(full, table), table
    mine, theirs = _last_run(quiet), _last_run(full)
    assert mine == theirs and mine[0]["feeds_not_modified"] == 4 and mine[0]["finished_at"] is not None


@pytest.mark.parametrize("change", ["news", "failure", "move"])
def test_any_other_answer_leaves_the_poll_to_the_full_run(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config, change: str
) -> None:
    config = _settled(tmp_path, server, clock, base_config, 4)
    if change == "news":
        body = rss(("report 2", "https://x.test/2", "text"), ("news", "https://x.test/news", "text"))
        server.serve("/2.xml", Response(body))
    elif change == "failure":
        server.serve("/2.xml", Response(b"gone", status=500))
    else:
        server.serve("/2.xml", Response(b"", status=301, headers={"Location": server.url("/2-new.xml")}))
        server.serve("/2-new.xml", Response(rss(("report 2", "https://x.test/2", "text"))))
    runs, before = _rows(config, "poll_run"), len(server.requests)
    now = clock.advance(days=1)
    head = head_start.start(config, now, force=True)
    assert head is not None
    try:
        assert head_start.quiet_poll(head, config, now, clock, force=True) is None
        assert _rows(config, "poll_run") == runs  # nothing written
        summary = run_poll(config, open_database(config.database_url), clock, force=True, head=head)
    finally:
        head.close()
    outcomes = {feed.source_id: feed.outcome for feed in summary.feeds}
    expected = {"news": "ok", "failure": "failed", "move": "not-modified"}[change]  # moved: the same body again
    assert outcomes == {"f0": "not-modified", "f1": "not-modified", "f2": expected, "f3": "not-modified"}
    moved = {feed.source_id: feed.moved_to for feed in summary.feeds if feed.moved_to}
    assert moved == ({"f2": server.url("/2-new.xml")} if change == "move" else {})
    assert summary.items_new == (change == "news")
    asked = sorted(request.path for request in server.requests[before:])
    assert asked == sorted(["/0.xml", "/1.xml", "/2.xml", "/3.xml"] + (["/2-new.xml"] if change == "move" else []))
    assert {row["lease_owner"] for row in _rows(config, "source")} == {None}


def test_a_batch_short_of_every_feed_due_is_not_waited_for(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    feeds = head_start.HEAD_ROUNDS + 1  # concurrency 1: the head start takes 8, the poll leases the ninth
    config = _settled(tmp_path, server, clock, base_config, feeds, batch=1, concurrency=1)
    now = clock.advance(days=1)
    head = head_start.start(config, now, force=True)
    assert head is not None and not head.complete
    try:
        started = time.monotonic()
        assert head_start.quiet_poll(head, config, now, clock, force=True) is None
        assert time.monotonic() - started < 0.5  # at once, not after the answers
        summary = run_poll(config, open_database(config.database_url), clock, force=True, head=head)
    finally:
        head.close()
    assert (summary.feeds_due, summary.count("not-modified")) == (feeds, feeds)


def test_a_feed_that_cannot_answer_304_is_not_waited_for(
    tmp_path: Path, server: FeedServer, clock: FakeClock, base_config: Config
) -> None:
    """A feed with neither an ETag nor a Last-Modified to send answers 200: the full poll loads at once."""
    config = _settled(tmp_path, server, clock, base_config, 3)
    with sqlite3.connect(_database(config)) as connection:
        connection.execute("UPDATE source SET etag = NULL, last_modified = NULL WHERE id = 'f1'")
    release, asked = threading.Event(), threading.Event()
    server.serve("/1.xml", held_until(rss(("report 1", "https://x.test/1", "text")), release, asked))
    threading.Timer(3, release.set).start()  # were the answer waited for, it would come after 3 s
    now = clock.advance(days=1)
    head = head_start.start(config, now, force=True)
    assert head is not None
    try:
        started = time.monotonic()
        assert head_start.quiet_poll(head, config, now, clock, force=True) is None
        assert time.monotonic() - started < 1 and not release.is_set()  # before f1's answer
        release.set()
        summary = run_poll(config, open_database(config.database_url), clock, force=True, head=head)
    finally:
        head.close()
    outcomes = {feed.source_id: feed.outcome for feed in summary.feeds}
    assert outcomes == {"f0": "not-modified", "f1": "ok", "f2": "not-modified"} and summary.items_new == 0


def test_monitor_poll_records_a_quiet_run_without_loading_the_database_layer(
    tmp_path: Path, server: FeedServer
) -> None:
    path = _three_feeds(tmp_path, server, tmp_path / "cli.db")
    code = _reporting_what_loaded("poll", "--force", "--json", "--config", str(path))
    outputs = []
    for _ in range(2):  # the first run makes the file and polls in full
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        outputs.append((run.stdout, run.stderr.strip()))
    (first, first_loaded), (second, second_loaded) = outputs
    assert '"feeds_ok": 3' in first and "sqlalchemy" in first_loaded
    assert '"feeds_not_modified": 3' in second and second_loaded == "loaded []"
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        runs = connection.execute("SELECT feeds_due, feeds_not_modified, finished_at IS NOT NULL FROM poll_run")
        assert runs.fetchall() == [(3, 0, 1), (3, 3, 1)]
        assert connection.execute("SELECT count(*) FROM feed_poll").fetchone() == (6,)


def test_monitor_run_records_a_quiet_run_only_when_its_digests_would_do_nothing(
    tmp_path: Path, server: FeedServer
) -> None:
    """The cron line: no token, so digests go to standard output (an instant subscriber, told at the first run)."""
    database = tmp_path / "cron.db"
    path = _three_feeds(tmp_path, server, database)
    code = _reporting_what_loaded("run", "--config", str(path))

    def cron(doubt: str = "") -> tuple[str, str]:
        with sqlite3.connect(database) as connection:  # the feeds are due again
            connection.execute("UPDATE source SET next_poll_at = '2000-01-01 00:00:00.000000'")
            if doubt:
                connection.execute(doubt)
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout, run.stderr

    first = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "loaded ['alembic', 'sqlalchemy', 'sqlmodel']" not in first.stderr
    out, err = cron()
    assert "3 feeds: 0 ok, 3 not modified, 0 failed" in out
    assert "digests: 0 composed, 0 parts printed" in err and "loaded []" in err
    out, err = cron("UPDATE subscriber SET frequency = 'daily', last_digest_at = NULL")  # a digest due
    assert "3 feeds: 0 ok, 3 not modified, 0 failed" in out
    assert "loaded ['sqlalchemy', 'sqlmodel']" in err  # the full run, which decides what the digest holds
    with sqlite3.connect(database) as connection:
        runs = connection.execute("SELECT feeds_due, feeds_not_modified, finished_at IS NOT NULL FROM poll_run")
        assert runs.fetchall() == [(3, 0, 1), (3, 3, 1), (3, 3, 1)]
