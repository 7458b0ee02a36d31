"""Starting fast: `monitor --help` and a poll with nothing due load neither python-telegram-bot, matplotlib nor
Alembic (not even the first poll, which creates the SQLite file), a poll whose feeds all answer 304 loads no feed
parser, HTML reader, fuzzy matcher or status cue (checked in a fresh interpreter's `sys.modules`, not timed), and
the help that lists the lazily imported commands says what those commands say of themselves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from monitor import cli as cli_module
from monitor import config
from monitor.cli.lazy import LAZY_COMMANDS, load_command, summary
from monitor.feedserver import FeedServer, Response

from .conftest import REPLAY

HEAVY = ("telegram", "matplotlib", "alembic")
STORAGE = ("sqlalchemy", "sqlmodel", "aiohttp", "httpx", "pydantic", "rapidfuzz", "feedparser")  # not for printing help
KYIV = REPLAY.parent / "single_snapshots" / "kyivindependent__plakhovgroup_2024-07-26__df6a163.xml"

_RUN = """
import json, sys
from monitor.cli import cli
try:
    cli(sys.argv[1:], prog_name="monitor")
except SystemExit:
    pass
heavy = sorted(({name.split(".")[0] for name in sys.modules} | set(sys.modules)) & set(%r))
print(json.dumps(heavy), file=sys.stderr)
"""


def _loaded(*args: str, among: tuple[str, ...] = HEAVY) -> list[str]:
    """The packages or modules `among` (the heavy ones) a fresh interpreter has imported after `monitor ARGS`."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN % (among,), *args], capture_output=True, text=True, timeout=120, check=False
    )
    last = done.stderr.strip().splitlines()[-1]
    loaded = json.loads(last)
    assert isinstance(loaded, list)
    return loaded


def _one_feed(server: FeedServer, folder: Path) -> Path:
    """A configuration with one real feed, served by `server`, and a database in `folder`."""
    server.serve("/kyiv.xml", Response.from_file(KYIV))
    path = folder / "feeds.yaml"
    path.write_text(
        f"settings:\n  database_url: sqlite:///{folder / 'm.db'}\n"
        f"sources:\n  - {{id: kyiv, name: Kyiv, url: '{server.url('/kyiv.xml')}'}}\n"
    )
    return path


def test_startup_help_imports_no_heavy_library() -> None:
    assert _loaded("--help") == []


def test_startup_help_imports_neither_the_database_nor_the_network_stack() -> None:
    assert _loaded("--help", among=STORAGE) == []


def test_startup_poll_with_nothing_due_imports_no_heavy_library(tmp_path: Path) -> None:
    with FeedServer() as server:
        path = _one_feed(server, tmp_path)
        assert _loaded("poll", "--config", str(path)) == []  # creates the database from the schema script

        assert _loaded("poll", "--config", str(path)) == []  # nothing due now
        network_and_reading = ("aiohttp", "httpx", "feedparser", "rapidfuzz", "bs4", "w3lib")
        assert _loaded("poll", "--config", str(path), among=network_and_reading) == []


def test_startup_run_with_nothing_due_and_no_token_imports_no_heavy_library(tmp_path: Path) -> None:
    """The README's cron line: with no token, digests are printed, and python-telegram-bot is not needed."""
    with FeedServer() as server:
        path = _one_feed(server, tmp_path)
        _loaded("run", "--config", str(path))  # creates the database and polls
        assert _loaded("run", "--config", str(path)) == []  # nothing due now, nothing to send


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_startup_lazy_command_summary_is_its_own_short_help(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    for limit in (40, 80, 10_000):
        assert summary(name, limit) == command.get_short_help_str(limit)


def test_startup_help_lists_every_command_once() -> None:
    group = cli_module.cli
    context = click.Context(group)
    names = group.list_commands(context)
    assert len(names) == len(set(names))
    assert set(LAZY_COMMANDS) <= set(names) and {"poll", "run", "feeds", "demo"} <= set(names)


def test_startup_environment_names_are_the_configuration_s() -> None:
    from monitor import env

    assert (env.TOKEN_ENV, env.DATABASE_ENV) == (config.TOKEN_ENV, config.DATABASE_ENV)


def test_startup_poll_where_every_feed_answers_304_loads_no_parser_or_matcher_library(tmp_path: Path) -> None:
    with FeedServer() as server:
        path = _one_feed(server, tmp_path)
        reading = ("feedparser", "feedparser_rs", "bs4", "rapidfuzz", "monitor.cue_phrases")
        assert "feedparser" in _loaded("poll", "--config", str(path), among=reading)  # the first poll reads
        assert _loaded("poll", "--force", "--config", str(path), among=reading) == []  # all 304
