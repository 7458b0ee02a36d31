"""The analyst's writing commands on a database nothing has polled yet (issue 12)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli


def test_cli_set_status_before_the_first_poll_takes_the_proposals_from_the_configuration(tmp_path: Path) -> None:
    runner = CliRunner(env={"MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"})
    result = runner.invoke(
        cli, ["set-status", "it-article5-guarantee", "proposal", "--note", "tabled at the summit", "--by", "alice"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("it-article5-guarantee: discussion -> proposal (change 1, by alice)")
    status = runner.invoke(cli, ["status", "--json"])
    assert '"status": "proposal"' in status.output
    unknown = runner.invoke(cli, ["set-status", "nope", "proposal", "--note", "x"])
    assert unknown.exit_code == 2 and "nope" in unknown.output
