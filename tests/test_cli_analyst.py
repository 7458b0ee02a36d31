"""The analysts' commands on the corpus database: help with an example, stable JSON and CSV columns, exports
that survive a round trip, clean one-line errors, review actions in the history, no colour when piped."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from monitor.cli.analyst import ANALYST_COMMANDS
from monitor.cli.output import JSON_COLUMNS

from .conftest import QUOKKA, corpus_url

GROUP = click.Group("monitor", commands=ANALYST_COMMANDS)
ANSI = "\x1b["


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    return CliRunner(env={"MONITOR_DATABASE_URL": corpus_url(tmp_path_factory, "cli"), "FORCE_COLOR": None})


def invoke(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(GROUP, list(args))
    assert ANSI not in result.output
    return result


@pytest.mark.parametrize("command", ANALYST_COMMANDS, ids=lambda command: command.name or "")
def test_cli_analyst_every_command_has_help_with_an_example(command: click.Command) -> None:
    result = CliRunner().invoke(GROUP, [command.name or "", "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and f"monitor {command.name}" in result.output


def test_cli_status_table_json_and_csv_agree(runner: CliRunner) -> None:
    table = invoke(runner, "status")
    assert table.exit_code == 0, table.output
    assert "dk-ua-2024" in table.output and "discussion->signed" in table.output
    records = json.loads(invoke(runner, "status", "--json").output)
    rows = list(csv.DictReader(io.StringIO(invoke(runner, "status", "--csv").output)))
    assert len(records) == len(rows) == 16
    assert list(records[0]) == list(rows[0]) == [
        "proposal_id", "title", "status", "since", "in_config", "latest_change_id", "latest_kind", "latest_from",
        "latest_to", "latest_state", "evidence", "reports", "last_report_at",
    ]  # fmt: skip
    dk = next(row for row in rows if row["proposal_id"] == "dk-ua-2024")
    # since: when the signing was first reported (the wire, 07:00), not when it was polled (12:00)
    assert (dk["status"], dk["since"], dk["latest_state"]) == ("signed", "2026-07-25T07:00:00+00:00", "confirmed")


def test_cli_history_of_one_proposal_between_dates(runner: CliRunner) -> None:
    rows = json.loads(
        invoke(runner, "history", "dk-ua-2024", "--since", "2026-07-20", "--until", "2026-07-20", "--json").output
    )
    assert [(r["from_status"], r["to_status"], r["source_id"]) for r in rows] == [("discussion", "proposal", "gov")]
    everything = json.loads(invoke(runner, "history", "--json").output)
    assert {r["proposal_id"] for r in everything} >= {"dk-ua-2024", "us-security-backstop", "it-ua-2024"}
    unknown = invoke(runner, "history", "no-such-proposal")
    assert unknown.exit_code == 2 and unknown.output == "error: no proposal 'no-such-proposal' in the database\n"
    bad = invoke(runner, "history", "--since", "last week")
    assert bad.exit_code == 2 and "is not a date" in bad.output


def test_cli_items_filters(runner: CliRunner) -> None:
    signed = json.loads(invoke(runner, "items", "--status", "signed", "--since", "2026-07-01", "--json").output)
    assert {(r["proposal_id"], r["source_id"]) for r in signed} == {
        ("dk-ua-2024", "gov"),
        ("dk-ua-2024", "wire"),
        ("it-ua-2024", "blog"),
        ("fr-ua-2024", "blog"),
    }
    blog = json.loads(invoke(runner, "items", "--source", "blog", "--proposal", "reassurance-force", "--json").output)
    assert [r["score"] < 0.9 for r in blog] == [True]
    assert len(json.loads(invoke(runner, "items", "--limit", "0", "--json").output)) > 1900
    assert invoke(runner, "items", "--status", "ratified").exit_code == 2


def test_cli_search_highlights_and_reports_bad_syntax_in_one_line(runner: CliRunner) -> None:
    found = invoke(runner, "search", QUOKKA)
    assert found.exit_code == 0 and "Zoo news from Perth" in found.output and QUOKKA in found.output
    (hit,) = json.loads(invoke(runner, "search", QUOKKA, "--json").output)
    assert hit["snippet"] == f"A **{QUOKKA}** was seen near the harbour."
    bad = invoke(runner, "search", "security AND AND")
    assert bad.exit_code == 2
    assert bad.output.count("\n") == 1 and bad.output.startswith("error: search 'security AND AND': fts5: syntax error")


@pytest.mark.parametrize("table", ["items", "matches", "history", "proposals"])
def test_cli_export_round_trips_through_csv_json_and_jsonl(runner: CliRunner, tmp_path: Path, table: str) -> None:
    out = tmp_path / f"{table}.csv"
    result = invoke(runner, "export", table, "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as handle:
        from_csv = list(csv.DictReader(handle))
    from_json = json.loads(invoke(runner, "export", table, "--format", "json").output)
    from_jsonl = [json.loads(line) for line in invoke(runner, "export", table, "--format", "jsonl").output.splitlines()]
    assert from_json == from_jsonl and len(from_json) == len(from_csv) > 0
    assert [list(record) for record in from_json[:1]] == [list(row) for row in from_csv[:1]]
    assert [{key: _from_csv(key, value) for key, value in row.items()} for row in from_csv] == [
        {key: _from_csv(key, _as_csv(value)) for key, value in record.items()} for record in from_json
    ]


def _from_csv(key: str, text: str) -> object:
    return json.loads(text) if key in JSON_COLUMNS and text else text


def _as_csv(value: object) -> str:
    if isinstance(value, list):
        return json.dumps(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_cli_chart_writes_a_png_of_every_proposal(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "timeline.png"
    result = invoke(runner, "chart", "--out", str(out), "--proposal", "dk-ua-2024", "--proposal", "it-ua-2024")
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {out}: 2 proposals\n" and out.read_bytes()[:4] == b"\x89PNG"
    assert invoke(runner, "chart", "--out", str(out), "--proposal", "nope").exit_code == 2


def test_cli_review_then_confirm_reject_and_set_status_show_in_history(runner: CliRunner) -> None:
    queue = json.loads(invoke(runner, "review", "--json").output)
    open_changes = {r["proposal_id"]: r["id"] for r in queue if r["kind"] == "change"}
    assert set(open_changes) == {"it-ua-2024", "fr-ua-2024"}
    italy, france = open_changes["it-ua-2024"], open_changes["fr-ua-2024"]

    confirmed = invoke(runner, "confirm", str(italy), "--note", "Seen the signed text", "--by", "alice")
    assert confirmed.output == f"change {italy} confirmed by alice: it-ua-2024 is signed\n"
    rejected = invoke(runner, "reject", str(france), "--note", "Misread", "--by", "bob")
    assert rejected.exit_code == 0, rejected.output
    again = invoke(runner, "reject", str(france), "--note", "twice")
    assert (
        again.exit_code == 2
        and again.output == f"error: change {france} is already rejected by bob: only open changes can be reviewed\n"
    )
    assert invoke(runner, "confirm", str(italy)).exit_code == 2  # --note is required

    moved = invoke(runner, "set-status", "it-ua-2024", "proposal", "--note", "Signing postponed", "--by", "carol")
    assert moved.exit_code == 0 and moved.output.startswith("it-ua-2024: signed -> proposal (change ")
    history = json.loads(invoke(runner, "history", "it-ua-2024", "--json").output)
    assert [(r["kind"], r["to_status"], r["state"], r["decided_by"], r["note"]) for r in history] == [
        ("upgrade", "signed", "confirmed", "alice", "Seen the signed text"),
        ("analyst", "proposal", "confirmed", "carol", "Signing postponed"),
    ]
    table = invoke(runner, "history", "fr-ua-2024").output
    assert "rejected" in table and "bob" in table and "Misread" in table
    assert "No status changes" not in table and not [
        r for r in json.loads(invoke(runner, "review", "--json").output) if r["kind"] == "change"
    ]


def test_cli_piped_output_has_no_colour_codes(runner: CliRunner) -> None:
    env = {**os.environ, **{k: v for k, v in (runner.env or {}).items() if v is not None}, "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    code = "from monitor.cli.analyst import ANALYST_COMMANDS as c; import click; click.Group(commands=c)()"
    for args in (["status"], ["search", "agreement"]):
        result = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.strip() and ANSI not in result.stdout


def test_cli_export_matches_json_carries_lists_not_strings(runner: CliRunner) -> None:
    matches = json.loads(invoke(runner, "export", "matches", "--format", "json").output)
    assert matches and all(isinstance(m["actors"], list) and isinstance(m["sentences"], list) for m in matches)
    assert any(m["sentences"] and all(isinstance(s, str) for s in m["sentences"]) for m in matches)
    (first,) = [
        json.loads(line) for line in invoke(runner, "export", "matches", "--format", "jsonl").output.splitlines()
    ][:1]
    assert isinstance(first["sentences"], list)


def test_cli_export_and_chart_into_a_missing_folder_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    exported = invoke(runner, "export", "items", "--format", "csv", "--out", str(missing / "x.csv"))
    assert exported.exit_code == 2
    assert exported.output == f"error: --out {missing / 'x.csv'}: cannot write: No such file or directory\n"
    drawn = invoke(runner, "chart", "--out", str(missing / "x.png"))
    assert drawn.exit_code == 2
    assert drawn.output == f"error: --out {missing / 'x.png'}: cannot write: No such file or directory\n"


def test_cli_export_dash_is_standard_output(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(runner, "export", "proposals", "--format", "jsonl", "--out", "-")
    assert result.exit_code == 0 and len(result.output.splitlines()) > 1
    assert all(json.loads(line)["proposal_id"] for line in result.output.splitlines())
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(("name", "magic"), [("t.svg", b"<?xml"), ("t.pdf", b"%PDF"), ("T.PNG", b"\x89PNG")])
def test_cli_chart_format_follows_the_extension(runner: CliRunner, tmp_path: Path, name: str, magic: bytes) -> None:
    result = invoke(runner, "chart", "--out", str(tmp_path / name), "--proposal", "dk-ua-2024")
    assert result.exit_code == 0, result.output
    assert (tmp_path / name).read_bytes().startswith(magic)


def test_cli_chart_refuses_an_extension_it_cannot_draw(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "chart", "--out", str(tmp_path / "t.gif"))
    assert result.exit_code == 2 and "PNG, SVG or PDF" in result.output
    assert not (tmp_path / "t.gif").exists()


def test_cli_limit_zero_means_all_everywhere_and_negative_is_refused(runner: CliRunner) -> None:
    every = json.loads(invoke(runner, "search", "security", "--limit", "0", "--json").output)
    assert len(every) > len(json.loads(invoke(runner, "search", "security", "--limit", "3", "--json").output)) == 3
    assert len(json.loads(invoke(runner, "items", "--limit", "0", "--json").output)) > 50
    for command in (["search", "security"], ["items"]):
        refused = invoke(runner, *command, "--limit", "-1")
        assert refused.exit_code == 2 and "-1 is not in the range x>=0" in refused.output


def test_cli_items_unknown_source_is_the_same_error_as_an_unknown_proposal(runner: CliRunner) -> None:
    source = invoke(runner, "items", "--source", "nope")
    proposal = invoke(runner, "items", "--proposal", "nope")
    assert (source.exit_code, proposal.exit_code) == (2, 2)
    assert source.output == "error: no feed 'nope' in the database\n"
    assert proposal.output == "error: no proposal 'nope' in the database\n"


@pytest.mark.parametrize("query", ["U.S.", "Kyiv's", "a-b", "security-guarantee", "title:x"])
def test_cli_search_quotes_plain_words_for_fts5(runner: CliRunner, query: str) -> None:
    result = invoke(runner, "search", query, "--json")
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.output), list)


def test_cli_search_empty_query_and_a_huge_one_are_one_short_line(runner: CliRunner) -> None:
    empty = invoke(runner, "search", "  ")
    assert (empty.exit_code, empty.output) == (2, "error: search: empty query\n")
    huge = invoke(runner, "search", "nothing-like-this " * 6000)
    assert huge.exit_code == 0 and huge.output.startswith("Nothing matches ") and len(huge.output) < 120
    broken = invoke(runner, "search", "AND " * 30000)
    assert broken.exit_code == 2 and broken.output.count("\n") == 1 and len(broken.output) < 250
    assert invoke(runner, "search", f'"{QUOKKA}" OR U.S.', "--json").exit_code == 0
