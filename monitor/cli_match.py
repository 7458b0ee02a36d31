"""`monitor match` and `monitor eval`: the matcher on JSON Lines from stdin, and its scores on a labels file.

Both load the proposals with `monitor.config.load_config` and build one `Matcher`. Neither touches the
database or the network; `match` reads stdin and writes stdout, `eval` reads the labels file it is given.
The main CLI registers them with `cli.add_command(match_command, "match")` and `cli.add_command(eval_command,
"eval")`.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import click

from monitor.cli_options import config_option, handle_errors
from monitor.config import Config, load_config
from monitor.evaluate import evaluate, render_evaluation
from monitor.match import Match, Matcher


def _load(config_path: str | None) -> Config:
    return load_config(config_path)


def _match_json(match: Match) -> dict[str, Any]:
    return {
        "proposal": match.proposal,
        "score": match.score,
        "status": match.status,
        "evidence": match.status_sentence,
    }


def _item(line: str) -> tuple[str, str, str]:
    """(id, title, summary) from one input line; ValueError says what is wrong with it."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    item_id, title, summary = data.get("id"), data.get("title"), data.get("summary", "")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or item_id == "":
        raise ValueError('"id" must be a non-empty string or number')
    if not isinstance(title, str):
        raise ValueError('"title" must be a string')
    if summary is None:
        summary = ""
    if not isinstance(summary, str):
        raise ValueError('"summary" must be a string')
    return str(item_id), title, summary


def match_lines(matcher: Matcher, lines: TextIO, out: TextIO, err: TextIO) -> int:
    """Match every JSON line; report bad lines on `err`. Returns the number of bad lines."""
    bad = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item_id, title, summary = _item(line)
        except ValueError as exc:
            bad += 1
            reason = str(exc).splitlines()[0] if str(exc) else "not valid JSON"
            err.write(f"line {number}: {reason}\n")
            continue
        matches = [_match_json(m) for m in matcher.match(title, summary)]
        out.write(json.dumps({"id": item_id, "matches": matches}, ensure_ascii=False) + "\n")
    return bad


@click.command("match")
@config_option
@handle_errors
def match_command(config_path: str | None) -> None:
    """Match news items read as JSON Lines on stdin against the tracked proposals.

    Each input line is an object {"id", "title", "summary", "published"?, "source"?}; each output line is
    {"id", "matches": [{"proposal", "score", "status", "evidence"}]}. Nothing is written to the database.
    A bad line is reported on stderr with its line number, the others are still matched, and the command
    then exits with status 1.

    Example:

        echo '{"id": "1", "title": "Ukraine, Japan ink 10-year security pact", "summary": ""}' | monitor match
    """
    config = _load(config_path)
    matcher = Matcher(config.proposals, config.settings.status.ladder)
    bad = match_lines(matcher, sys.stdin, sys.stdout, sys.stderr)
    if bad:
        raise click.exceptions.Exit(1)


@click.command("eval")
@click.argument("labels", type=click.Path(dir_okay=False))
@click.option("--mistakes", is_flag=True, help="Also list every pair the matcher got wrong.")
@config_option
@handle_errors
def eval_command(labels: str, mistakes: bool, config_path: str | None) -> None:
    """Score the matcher, beside a keyword-only baseline, on a labelled JSON Lines file.

    Prints matching precision, recall and F1 over (item, proposal) pairs (items marked "vague" are skipped)
    and status accuracy over pairs both labelled and matched.

    Example:

        monitor eval eval/dev.jsonl --mistakes
    """
    config = _load(config_path)
    result = evaluate(labels, config.proposals, config.settings.status.ladder)
    click.echo(render_evaluation(result, mistakes=mistakes))
