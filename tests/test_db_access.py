"""A database the monitor may not write, or a URL that names no file: one clear line, and the commands that
only read still work on a read-only database (issue 12)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.feedserver import FeedServer, Response

from .conftest import ANIMAL, DK_PLANNED, QUOKKA, rss

# As root, file modes bind nobody: the read-only runs then drop to this unprivileged user.
NOBODY = 65534


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's own temporary folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="monitor-ro-"))
    path.chmod(0o755)
    yield path
    path.chmod(0o755)
    shutil.rmtree(path)


def _monitor(folder: Path, *args: str, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}
    env |= {"MONITOR_CONFIG": str(folder / "feeds.yaml"), "MONITOR_DATABASE_URL": f"sqlite:///{folder / 'm.db'}"}
    drop: list[str] = []
    if unprivileged and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file modes cannot be made to bind")
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    command = [*drop, sys.executable, "-m", "monitor", *args]
    return subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=120)


def _prepared(folder: Path, feed: str | None = None) -> Path:
    """A migrated database holding the proposals, and no feeds to poll (or the one at URL `feed`, polled)."""
    repo = Path(__file__).resolve().parent.parent
    text = (repo / "feeds.yaml").read_text()
    sources = f"[{{id: blog, name: Blog, url: '{feed}', tier: media, language: en}}]" if feed else "[]"
    without_feeds = text[: text.index("\nsources:")] + f"\nsources: {sources}\n" + text[text.index("\nproposals:") :]
    (folder / "feeds.yaml").write_text(without_feeds)
    assert _monitor(folder, "poll").returncode == 0
    for lock in folder.glob("*.lock"):
        lock.unlink()
    return folder / "m.db"


def test_db_read_only_file_refuses_writing_commands_in_one_line_and_serves_reading_ones(folder: Path) -> None:
    database = _prepared(folder)
    database.chmod(0o444)
    folder.chmod(0o777)  # the folder stays writable: only the file is protected

    poll = _monitor(folder, "poll", "--force", unprivileged=True)
    assert poll.returncode == 2
    assert poll.stderr.strip() == f"error: database is read-only: {database}"

    status = _monitor(folder, "status", "--json", unprivileged=True)
    assert status.returncode == 0, status.stderr
    assert "it-article5-guarantee" in status.stdout


def test_db_read_only_folder_serves_reading_commands(folder: Path) -> None:
    database = _prepared(folder)
    folder.chmod(0o555)

    for command in (["status"], ["items"], ["history"], ["review"], ["search", "guarantee"]):
        result = _monitor(folder, *command, unprivileged=True)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stderr == ""
    assert sorted(path.name for path in folder.iterdir()) == ["feeds.yaml", "m.db"], "nothing written beside it"

    poll = _monitor(folder, "poll", unprivileged=True)
    assert (poll.returncode, poll.stderr.strip()) == (2, f"error: database is read-only: {database}")


def test_search_indexes_what_polls_stored_and_says_what_a_read_only_file_leaves_out(
    folder: Path, server: FeedServer
) -> None:
    server.serve("/blog.xml", Response(rss(ANIMAL, DK_PLANNED)))
    database = _prepared(folder, server.url("/blog.xml"))
    with closing(sqlite3.connect(database)) as connection:
        waiting = connection.execute("SELECT count(*) FROM item_fts_pending").fetchone()[0]
        assert waiting == connection.execute("SELECT count(*) FROM item").fetchone()[0] > 1  # the poll only noted them
    database.chmod(0o444)
    folder.chmod(0o777)

    read_only = _monitor(folder, "search", QUOKKA, unprivileged=True)
    assert read_only.returncode == 0, read_only.stderr
    assert read_only.stderr == (
        f"note: {waiting} items stored since the last search are not in the full-text index and are not searched: "
        "attempt to write a readonly database\n"
    )
    assert "Nothing matches" in read_only.stdout

    database.chmod(0o644)
    found = _monitor(folder, "search", QUOKKA, "--json")
    assert (found.returncode, found.stderr) == (0, "")
    assert [hit["title"] for hit in json.loads(found.stdout)] == [ANIMAL[1]]
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT count(*) FROM item_fts_pending").fetchone()[0] == 0
        connection.execute("INSERT INTO item_fts(item_fts, rank) VALUES ('integrity-check', 1)")


def test_db_index_brings_the_index_up_to_date_from_cron(folder: Path, server: FeedServer) -> None:
    server.serve("/blog.xml", Response(rss(ANIMAL, DK_PLANNED)))
    database = _prepared(folder, server.url("/blog.xml"))
    database.chmod(0o444)
    folder.chmod(0o777)
    refused = _monitor(folder, "db", "index", unprivileged=True)
    assert (refused.returncode, refused.stderr) == (2, f"error: database is read-only: {database}\n")

    database.chmod(0o644)
    assert [_monitor(folder, "db", "index").stdout for _ in range(2)] == ["indexed 2 items\n", "indexed 0 items\n"]
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT count(*) FROM item_fts_pending").fetchone()[0] == 0
        connection.execute("INSERT INTO item_fts(item_fts, rank) VALUES ('integrity-check', 1)")
        assert connection.execute("SELECT count(*) FROM item_fts WHERE item_fts MATCH ?", (QUOKKA,)).fetchone() == (1,)


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_db_url_that_names_no_file_is_one_line(url: str) -> None:
    result = CliRunner().invoke(cli, ["poll"], env={"MONITOR_DATABASE_URL": url})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the database URL sqlite:") and "names no file" in result.stderr
    assert "no such table" not in result.output
