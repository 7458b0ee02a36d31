"""A database made by a newer version of monitor (an `alembic_version` this code does not know) is refused
with exit status 2 and one clear line, and left exactly as it was: the file's bytes and every table."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store.schema import open_database

from ..conftest import SIGNED_DK, FakeClock, rss, write_config
from .harness import connect, database_files, monitor_env, run_monitor

FUTURE = "9999_from_a_newer_monitor"


@pytest.fixture
def newer_database(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A database with content, whose schema revision is one this code has never heard of."""
    path = tmp_path / "monitor.db"
    with FeedServer() as feeds:
        feeds.serve("/dk.xml", Response(rss(SIGNED_DK)))
        sources = [{"id": "dk", "name": "DK", "url": feeds.url("/dk.xml"), "tier": "official"}]
        config_path = write_config(tmp_path / "feeds.yaml", f"sqlite:///{path}", sources)
        engine = open_database(f"sqlite:///{path}")
        run_poll(load_config(config_path, env={}), engine, FakeClock())
        engine.dispose()
    with connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (FUTURE,))
        connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, monitor_env(config_path)


@pytest.mark.parametrize("command", [["poll"], ["run"], ["db", "upgrade"]])
def test_newer_database_is_refused_untouched(newer_database: tuple[Path, dict[str, str]], command: list[str]) -> None:
    path, env = newer_database
    before = path.read_bytes()
    with connect(path) as connection:
        dump = list(connection.iterdump())
    assert f"'{FUTURE}'" in "\n".join(dump)

    result = run_monitor(command, env, timeout=60)

    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "newer version" in lines[0] and FUTURE in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert path.read_bytes() == before, "the database file was changed"
    wal = [file for file in database_files(path) if file.name.endswith("-wal")]
    assert all(file.stat().st_size == 0 for file in wal), "something was written to the WAL"
    with connect(path) as connection:
        assert list(connection.iterdump()) == dump
