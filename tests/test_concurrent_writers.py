"""Many writers on one SQLite file, as on a real host: the poll of the Reuters replay runs in this process while
a bot-like writer (/start, /frequency), an analyst's loop of decisions and the analyst's `monitor set-status`
command write at the same time in their own processes. None of them fails, none says "database is locked",
and every write is there afterwards. Then: a writer that holds the lock is waited for, and one that holds it
past the timeout gets one clear line saying what to run again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import load_config
from monitor.feedserver import FeedServer
from monitor.store import history, models
from monitor.store.schema import open_database

from .conftest import ROOT, FakeClock, make_config
from .test_poll_replay import _expected, _replay, _snapshots
from .writers import ANALYST_PROPOSAL, BOT_CHATS, FREQUENCIES

CLI_PROPOSAL = "ca-ua-2024"
# Every other snapshot of the replay: eight polls, each a long write transaction with new items and edits, are
# overlap enough for the other writers; the whole replay took twice as long and proved nothing more.
EVERY = 2


def _cli(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MONITOR_")}
    env.update(MONITOR_DATABASE_URL=url, MONITOR_CONFIG=str(ROOT / "feeds.yaml"))
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def _fresh(url: str) -> Engine:
    """A migrated database that knows the proposals, as after a first poll."""
    engine = open_database(url)
    with Session(engine) as session:
        history.sync_proposals(load_config(ROOT / "feeds.yaml", env={}).proposals, session=session)
        session.commit()
    return engine


def test_poll_bot_and_analysts_write_at_once_without_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = _fresh(url)
    base = load_config(ROOT / "feeds.yaml", env={})
    stop = tmp_path / "stop"
    writers = {
        role: subprocess.Popen(
            [sys.executable, "-m", "tests.writers", role, url, str(stop), minimum],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role, minimum in (("bot", "60"), ("analyst", "30"))
    }
    calls: list[subprocess.CompletedProcess[str]] = []

    def analyst_commands() -> None:
        ladder = base.settings.status.ladder
        while len(calls) < 4 or not stop.exists():
            calls.append(_cli(["set-status", CLI_PROPOSAL, ladder[len(calls) % 2 + 1], "--note", "by hand"], url))

    commands = threading.Thread(target=analyst_commands)
    commands.start()
    with FeedServer() as server:
        config = make_config(
            base, url, {"reuters": server.url("/reuters.xml"), "reuters-direct": server.url("/reuters-direct.xml")}
        )
        _replay(server, config, engine, FakeClock(), EVERY)  # asserts every feed poll came out "ok"
    stop.touch()
    commands.join(300)
    done = {role: process.communicate(timeout=300) for role, process in writers.items()}

    for role, process in writers.items():
        out, err = done[role]
        assert process.returncode == 0, f"{role}: {err}"
        assert "locked" not in err
    for call in calls:
        assert call.returncode == 0, call.stderr
        assert "locked" not in call.stderr + call.stdout
    bot_writes, analyst_writes = int(done["bot"][0]), int(done["analyst"][0])
    with Session(engine) as session:
        subscribers = session.exec(select(models.Subscriber).where(col(models.Subscriber.chat_id) >= BOT_CHATS)).all()
        assert len(subscribers) == (bot_writes + 1) // 2
        updated = [row for row in subscribers if row.chat_id < BOT_CHATS + bot_writes // 2]
        assert all(row.frequency == FREQUENCIES[row.chat_id % len(FREQUENCIES)] for row in updated)
        decided = session.exec(
            select(models.StatusChange.proposal_id, sa.func.count())
            .where(models.StatusChange.kind == "analyst")
            .group_by(models.StatusChange.proposal_id)
        ).all()
        assert dict(decided) == {ANALYST_PROPOSAL: analyst_writes, CLI_PROPOSAL: len(calls)}
        for source_id, prefix in (("reuters", "reuters"), ("reuters-direct", "reuters_direct")):
            identities, _edits = _expected(_snapshots(prefix, EVERY))
            stored = session.exec(
                select(sa.func.count()).select_from(models.Item).where(models.Item.source_id == source_id)
            ).one()
            assert stored == len(identities)
    print(f"concurrent writers: {bot_writes} bot writes, {analyst_writes} analyst decisions, {len(calls)} CLI calls")
    engine.dispose()


def test_writer_waits_for_a_lock_held_a_moment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    _fresh(url).dispose()
    holder = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(3.0, lambda: holder.execute("COMMIT"))
    release.start()
    result = _cli(["set-status", CLI_PROPOSAL, "signed", "--note", "waited for the lock"], url)
    release.join()
    holder.close()
    assert result.returncode == 0, result.stderr
    assert "signed" in result.stdout


def test_writer_past_the_busy_timeout_says_what_to_run_again(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    _fresh(f"sqlite:///{path}").dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = _cli(["set-status", CLI_PROPOSAL, "signed", "--note", "x"], f"sqlite:///{path}?timeout=1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: database sqlite:///{path} stayed locked by another process for 1 s; nothing was written: "
        "run `monitor set-status` again"
    ]
