"""The matching commands: `match` and `eval` (the matcher on JSON Lines from stdin, and its scores on a labels
file; neither touches the database or the network), `replay` (backtest a folder of snapshots) and `rematch`
(rebuild the derived statuses), and `show_statuses`, which prints where each proposal stands.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console
from sqlmodel import Session

from monitor.cli.options import CommandError, config_option, handle_errors, json_option, now
from monitor.config import load_config
from monitor.errors import LockedError
from monitor.evaluate import HALVES, evaluate_files, render_evaluation
from monitor.match import Match, Matcher
from monitor.redact import redact
from monitor.store.locks import run_lock
from monitor.store.schema import open_database


def _match_json(match: Match) -> dict[str, Any]:
    return {
        "proposal": match.proposal,
        "score": match.score,
        "status": match.status,
        "evidence": match.status_sentence,
    }


def _item(line: str) -> tuple[str, str, str, date | None]:
    """(id, title, summary, day published) from one input line; ValueError says what is wrong with it."""
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
    return str(item_id), title, summary, _published(data.get("published"))


def _published(value: object) -> date | None:
    """The day an optional "published" field names ("2025-03-02" or "2025-03-02T10:00:00+00:00")."""
    if value is None or value == "":
        return None
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError:
        raise ValueError(f'"published" must be an ISO 8601 date or time, not {str(value)[:40]!r}') from None


def match_lines(matcher: Matcher, lines: TextIO, out: TextIO, err: TextIO) -> int:
    """Match every JSON line; report bad lines on `err`. Returns the number of bad lines."""
    bad = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item_id, title, summary, published = _item(line)
        except ValueError as exc:
            bad += 1
            reason = str(exc).splitlines()[0] if str(exc) else "not valid JSON"
            err.write(f"line {number}: {reason}\n")
            continue
        matches = [_match_json(m) for m in matcher.match(title, summary, published)]
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
    config = load_config(config_path)
    matcher = Matcher(config.proposals, config.settings.status.ladder)
    bad = match_lines(matcher, sys.stdin, sys.stdout, sys.stderr)
    if bad:
        raise click.exceptions.Exit(1)


@click.command("eval")
@click.argument("labels", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--mistakes", is_flag=True, help="Also list every pair the matcher got wrong.")
@click.option(
    "--half",
    type=click.Choice(HALVES),
    default="all",
    show_default=True,
    help="Score one half of each file, split by day: the 1st, 3rd, ... day to tune on, the others to measure.",
)
@config_option
@handle_errors
def eval_command(labels: tuple[str, ...], mistakes: bool, half: str, config_path: str | None) -> None:
    """Score the matcher, beside a keyword-only baseline, on labelled JSON Lines files.

    Prints each file's matching precision, recall and F1 over (item, proposal) pairs (items marked "vague"
    are skipped) and status accuracy over pairs both labelled and matched; for several files, the pooled
    figures too.

    Example:

        monitor eval eval/dev.jsonl eval/dev2.jsonl --half measure --mistakes
    """
    config = load_config(config_path)
    results = evaluate_files(labels, config.proposals, config.settings.status.ladder, half=half)
    click.echo("\n\n".join(render_evaluation(result, mistakes=mistakes) for result in results))


@click.command()
@config_option
@handle_errors
def rematch(config_path: str | None) -> None:
    """Re-run matching over every stored item and rebuild the derived statuses from scratch.

    Run it after changing proposals, aliases or the corroboration policy in feeds.yaml. Deterministic: the
    same items and configuration always give the same history. Analysts' own decisions are kept.

    Example:

        monitor rematch && monitor history it-article5-guarantee
    """
    from monitor.rematch import run_rematch

    config = load_config(config_path)
    engine = open_database(config.database_url)
    try:
        with run_lock(config.database_url, now=now(), exclusive=True):
            result = run_rematch(config, engine)
    except LockedError as exc:
        raise CommandError(f"{exc}: try again when it has finished") from None
    click.echo(f"rematched {result.items} items: {result.matches} matches, {result.changes} status changes")
    if result.reviews_kept or result.reviews_dropped:
        click.echo(f"analysts' decisions: {result.reviews_kept} kept, {result.reviews_dropped} no longer apply")


@click.command()
@config_option
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--db",
    "database_url",
    default=None,
    metavar="URL",
    help="Database to replay into (required: a fresh one for a backtest, or the configured one, named).",
)
@click.option(
    "--tier",
    type=click.Choice(["official", "wire", "media", "blog"]),
    default="media",
    show_default=True,
    help="Tier given to the replayed feeds.",
)
@json_option
@handle_errors
def replay(config_path: str | None, folder: str, database_url: str | None, tier: str, as_json: bool) -> None:
    """Ingest a folder of feed snapshots in time order, as if each were polled at its time (simulated clock).

    Snapshot files are named NAME__2026-02-28T203713Z__anything.xml: NAME is the feed, the stamp its time.

    Example:

        monitor replay ../shared/corpus/real/replay_reuters_wl --db sqlite:///backtest.db
    """
    from monitor.replay import run_replay

    config = load_config(config_path)
    if not database_url:
        # A replay marks the configured feeds as removed, adds its own and tells subscribers what it found:
        # never on the live database by default.
        raise CommandError(
            "replay needs --db URL: a fresh database for a backtest (e.g. --db sqlite:///backtest.db); to replay "
            f"into the configured database, name it: --db {redact(config.database_url)}"
        )
    url = database_url
    config = replace(config, settings=config.settings.model_copy(update={"database_url": url}))
    engine = open_database(url)
    with run_lock(url, now=now()):
        result = run_replay(config, engine, Path(folder), tier=tier)  # type: ignore[arg-type]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "snapshots": result.snapshots,
                    "sources": list(result.sources),
                    "items_new": result.items_new,
                    "items_updated": result.items_updated,
                    "status_changes": result.changes,
                }
            )
        )
        return
    click.echo(
        f"replayed {result.snapshots} snapshots of {len(result.sources)} feeds: {result.items_new} new "
        f"items, {result.items_updated} updated, {result.changes} status changes"
    )
    show_statuses(engine)


def show_statuses(engine: Any, evidence: int = 3) -> None:
    """Each proposal's status and report count, then the changes behind it with their evidence."""
    from monitor.store import history

    console = Console(soft_wrap=True)
    marker = {"confirmed": "", "unconfirmed": " (reported, unconfirmed)", "review": " (for review)"}
    with Session(engine) as session:
        counts = history.match_counts(session=session)
        for proposal in history.statuses(session=session):
            reports, _latest = counts.get(proposal.id, (0, None))
            since = f" since {proposal.status_since:%Y-%m-%d}" if proposal.status_since else ""
            style = "bold" if reports else "dim"
            plural = "" if reports == 1 else "s"
            console.print(
                f"[{style}]{proposal.id}[/]: {proposal.status}{since}, {reports} matching report{plural}",
                highlight=False,
            )
            for change in history.changes(proposal.id, session=session):
                label = (
                    "withdrawal reported"
                    if change.kind == "withdrawal"
                    else (f"{change.from_status} -> {change.to_status}")
                )
                seen = "" if change.happened_at is None else f" (seen {change.observed_at:%Y-%m-%d})"
                happened = change.happened_at or change.observed_at
                console.print(
                    f"  {happened:%Y-%m-%d %H:%M}  {label}{marker.get(change.state, '')}"
                    f"  confidence {change.confidence:.2f}{seen}",
                    highlight=False,
                    markup=False,
                )
                assert change.id is not None
                for proof, item in history.evidence_for(change.id, session=session)[:evidence]:
                    console.print(f"      [{proof.source_id}] {proof.sentence[:160]}", highlight=False, markup=False)
                    if item.link:
                        console.print(f"        {item.link}", highlight=False, markup=False)
