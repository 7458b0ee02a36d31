"""`monitor feeds`, `feeds reset` and `replay` as an operator meets them (issue 12)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli
from monitor.feedserver import FeedServer, Response

from .conftest import REPLAY
from .faults import closed_port_url
from .test_cli import KYIV, _write_config


def _feeds(config: Path) -> dict[str, dict[str, object]]:
    result = CliRunner().invoke(cli, ["feeds", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    return {record["id"]: record for record in json.loads(result.stdout)}


def test_cli_feeds_names_never_succeeded_failing_and_removed(tmp_path: Path, server: FeedServer) -> None:
    server.serve("/kyiv.xml", Response.from_file(KYIV))
    down = closed_port_url()
    config = _write_config(tmp_path, {"kyiv": server.url("/kyiv.xml"), "dead": down, "flaky": server.url("/flaky")})
    server.serve("/flaky", Response.from_file(KYIV))
    CliRunner().invoke(cli, ["poll", "--config", str(config)])
    server.serve("/flaky", Response(b"", status=503))
    CliRunner().invoke(cli, ["poll", "--config", str(config), "--force"])

    records = _feeds(config)
    assert {key: record["health"] for key, record in records.items()} == {
        "kyiv": "ok",
        "dead": "never succeeded",
        "flaky": "failing",
    }

    config = _write_config(tmp_path, {"kyiv": server.url("/kyiv.xml")})  # `dead` and `flaky` removed
    records = _feeds(config)
    assert {key: (record["health"], record["in_config"]) for key, record in records.items()} == {
        "kyiv": ("ok", True),
        "dead": ("removed", False),
        "flaky": ("removed", False),
    }
    table = CliRunner().invoke(cli, ["feeds", "--config", str(config)]).stdout
    assert "dead" in table and "removed" in table


def test_cli_feeds_reset_leaves_a_healthy_feed_alone_and_names_a_removed_one(
    tmp_path: Path, server: FeedServer
) -> None:
    server.serve("/kyiv.xml", Response.from_file(KYIV))
    config = _write_config(tmp_path, {"kyiv": server.url("/kyiv.xml"), "hang": closed_port_url()})
    CliRunner().invoke(cli, ["poll", "--config", str(config)])

    healthy = CliRunner().invoke(cli, ["feeds", "--config", str(config), "reset", "kyiv"])
    assert healthy.exit_code == 0 and healthy.stdout == "kyiv: healthy (ok); nothing to reset\n"
    assert _feeds(config)["kyiv"]["health"] == "ok"

    failing = CliRunner().invoke(cli, ["feeds", "--config", str(config), "reset", "hang"])
    assert failing.exit_code == 0 and "reset; it will be polled on the next run" in failing.stdout

    config = _write_config(tmp_path, {"kyiv": server.url("/kyiv.xml")})
    removed = CliRunner().invoke(cli, ["feeds", "--config", str(config), "reset", "hang"])
    assert removed.exit_code == 2
    assert removed.stderr == f"error: feed 'hang' is no longer in {config}: it is not polled, nothing to reset\n"
    unknown = CliRunner().invoke(cli, ["feeds", "--config", str(config), "reset", "nope"])
    assert unknown.exit_code == 2 and "no feed 'nope'" in unknown.stderr


def test_cli_replay_without_db_leaves_the_live_database_alone(tmp_path: Path, server: FeedServer) -> None:
    server.serve("/kyiv.xml", Response.from_file(KYIV))
    config = _write_config(tmp_path, {"kyiv": server.url("/kyiv.xml")})
    CliRunner().invoke(cli, ["poll", "--config", str(config)])
    live = tmp_path / "m.db"
    before = sqlite3.connect(live).execute("SELECT id, in_config FROM source").fetchall()

    result = CliRunner().invoke(cli, ["replay", str(REPLAY), "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: replay needs --db URL")
    assert sqlite3.connect(live).execute("SELECT id, in_config FROM source").fetchall() == before == [("kyiv", 1)]
