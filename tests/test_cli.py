"""The `monitor` command: help everywhere, clean one-line errors, exit codes for cron, JSON for machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.feedserver import FeedServer, Response
from monitor.store.locks import run_lock

from .conftest import REPLAY, ROOT

KYIV = REPLAY.parent / "single_snapshots" / "kyivindependent__plakhovgroup_2024-07-26__df6a163.xml"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):  # the lazily imported commands too
        command = group.get_command(context, name)
        found.append(prefix + (name,))
        if isinstance(command, click.Group):
            found.extend(_commands(command, prefix + (name,)))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=" ".join)
def test_cli_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    if not isinstance(cli.commands.get(path[0]), click.Group) or len(path) > 1 or path == ("feeds",):
        assert "Example:" in result.output


def _write_config(tmp_path: Path, sources: dict[str, str], extra: str = "") -> Path:
    lines = [
        "settings:",
        f"  database_url: sqlite:///{tmp_path / 'm.db'}",
        "  poll: {connect_timeout: 1s, read_timeout: 1s, total_timeout: 3s}",
        "sources:",
    ]
    lines += [f"  - {{id: {key}, name: {key}, url: '{url}'}}" for key, url in sources.items()]
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def test_cli_poll_json_summary_and_partial_failure_exits_zero(tmp_path: Path, server: FeedServer) -> None:
    server.serve("/kyiv.xml", Response.from_file(KYIV))
    config = _write_config(tmp_path, {"kyiv": server.url("/kyiv.xml"), "gone": server.url("/missing.xml")})
    result = CliRunner().invoke(cli, ["poll", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["feeds_due"], summary["feeds_ok"], summary["feeds_failed"], summary["items_new"]) == (2, 1, 1, 20)
    failed = next(feed for feed in summary["feeds"] if feed["source"] == "gone")
    assert failed["status"] == 404 and "HTTP 404" in failed["error"]

    again = CliRunner().invoke(cli, ["poll", "--config", str(config), "--json"])
    assert json.loads(again.stdout)["feeds_due"] == 0

    forced = CliRunner().invoke(cli, ["poll", "--config", str(config), "--source", "kyiv", "--force"])
    assert forced.exit_code == 0
    assert "1 feeds: 0 ok, 1 not modified, 0 failed; 0 new items, 0 updated" in forced.stdout


def test_cli_poll_exits_one_when_nothing_could_be_polled(tmp_path: Path, server: FeedServer) -> None:
    config = _write_config(tmp_path, {"a": server.url("/nope-a"), "b": server.url("/nope-b")})
    result = CliRunner().invoke(cli, ["poll", "--config", str(config)])
    assert result.exit_code == 1
    assert "2 feeds: 0 ok, 0 not modified, 2 failed" in result.stdout


def test_cli_broken_config_exits_two_with_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("sources:\n  - {id: a, name: A, url: 'gopher://x'}\nsettings: {poll: {speed: fast}}\n")
    for command in (["check"], ["poll"], ["feeds"]):
        result = CliRunner().invoke(cli, [*command, "--config", str(path)])
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            f"error: {path}:2: sources[0].url: 'gopher://x' is not an http or https URL",
            f"error: {path}:3: settings.poll.speed: unknown key",
        ]


def test_cli_unknown_source_is_a_clear_error(tmp_path: Path, server: FeedServer) -> None:
    config = _write_config(tmp_path, {"a": server.url("/a")})
    result = CliRunner().invoke(cli, ["poll", "--config", str(config), "--source", "zzz"])
    assert result.exit_code == 2
    assert "no source with id 'zzz'" in result.stderr


def test_cli_poll_while_another_run_holds_the_lock_exits_at_once(tmp_path: Path, server: FeedServer) -> None:
    config = _write_config(tmp_path, {"a": server.url("/a")})
    with run_lock(f"sqlite:///{tmp_path / 'm.db'}"):
        result = CliRunner().invoke(cli, ["poll", "--config", str(config)])
    assert result.exit_code == 0
    assert "another monitor run is working" in result.stderr
    assert server.requests == []


def test_cli_feeds_shows_health_and_reset_clears_it(tmp_path: Path, server: FeedServer) -> None:
    server.serve("/gone.xml", Response(b"", status=410))
    config = _write_config(tmp_path, {"gone": server.url("/gone.xml")})
    CliRunner().invoke(cli, ["poll", "--config", str(config)])
    records = json.loads(CliRunner().invoke(cli, ["feeds", "--config", str(config), "--json"]).stdout)
    assert [(r["id"], r["health"], r["last_status_code"]) for r in records] == [("gone", "disabled", 410)]
    assert "410" in records[0]["disabled_reason"]
    table = CliRunner().invoke(cli, ["feeds", "--config", str(config)]).stdout
    assert "gone" in table and "disabled" in table

    reset = CliRunner().invoke(cli, ["feeds", "--config", str(config), "reset", "gone"])
    assert reset.exit_code == 0, reset.output
    records = json.loads(CliRunner().invoke(cli, ["feeds", "--config", str(config), "--json"]).stdout)
    assert records[0]["health"] == "new"


def test_cli_db_upgrade_creates_the_database(tmp_path: Path) -> None:
    config = _write_config(tmp_path, {})
    first = CliRunner().invoke(cli, ["db", "upgrade", "--config", str(config)])
    assert first.exit_code == 0 and first.stdout.startswith("upgraded at schema revision")
    second = CliRunner().invoke(cli, ["db", "upgrade", "--config", str(config)])
    assert second.stdout.startswith("already at schema revision")
    assert (tmp_path / "m.db").exists()


def test_cli_demo_runs_offline_from_any_folder(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "5 feeds: 5 ok, 0 not modified, 0 failed" in run.stdout
    assert "Meloni Suggests NATO-light Mechanism for Ukraine Security" in run.stdout
    assert (tmp_path / "monitor-demo.db").exists()
    again = subprocess.run(
        [sys.executable, "-m", "monitor", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert "5 feeds: 0 ok, 5 not modified, 0 failed; 0 new items" in again.stdout
    assert again.stdout.rstrip().endswith("Nothing new since the last digest.")
    # A status is dated when its report was published (Reuters, 28 Feb 2026), not when the demo polled it.
    assert "us-security-backstop: proposal since 2026-02-28" in run.stdout
    assert "discussion → proposal (on 2026-02-28)" in run.stdout


def test_cli_readme_quick_start_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "\n    .ci/run\n" in readme  # the README's test command is CI's own script
    ci = (ROOT / ".ci" / "run").read_text()
    for step in ("pip install -e '.[test]'", "ruff check", "ruff format --check", "\nmypy", " pytest "):
        assert step in ci
    assert "monitor demo" in readme
