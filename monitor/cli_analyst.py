"""The analysts' commands: status, history, items, search, export, chart, and the review actions.

Thin: each builds the config and engine, calls `monitor.queries` (reads), `monitor.review` (writes) or
`monitor.chart`, and prints. Every listing is a table on a terminal (plain, without colour, when piped) and
JSON or CSV with `--json` / `--csv`, with the column names of `monitor.queries`, which are stable.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor import queries, review
from monitor.cli_options import CommandError, config_option, handle_errors, json_option, now
from monitor.config import Config, load_config
from monitor.db import open_database

Column = tuple[str, Callable[[dict[str, Any]], "str | Text"]]  # a table heading, and how to show a record
STATE_STYLES = {"confirmed": "green", "unconfirmed": "yellow", "review": "magenta", "rejected": "red"}


# --- shared plumbing ----------------------------------------------------------------------------------------
def _time(value: str | None, end: bool = False) -> datetime | None:
    """A date (2026-03-01) or a time (2026-03-01T12:00) in UTC; as an end bound, a date means its whole day."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (2026-03-01) or a time (2026-03-01T12:00)") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed + timedelta(days=1) if end and len(value) == 10 else parsed


def _since_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--since",
        metavar="DATE",
        callback=lambda _ctx, _param, value: _time(value),
        help="From this date or time (UTC), included.",
    )(function)


def _until_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--until",
        metavar="DATE",
        callback=lambda _ctx, _param, value: _time(value, end=True),
        help="Up to this date (its whole day) or time (UTC).",
    )(function)


def _output(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--csv", "as_csv", is_flag=True, help="Write CSV instead of a table.")(function)
    return json_option(function)


def _by_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--by", default=None, metavar="NAME", help="Who decides (default: the OS user).")(function)


def _note_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--note", required=True, help="Why: recorded with the decision.")(function)


def _open(config_path: str | None) -> tuple[Config, Engine]:
    config = load_config(config_path)
    return config, open_database(config.database_url)


def _user(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _check_proposals(session: Session, ids: Iterable[str]) -> None:
    known = {row["proposal_id"] for row in queries.current_status(session=session, retired=True).records()}
    unknown = sorted(set(ids) - known)
    if unknown:
        raise CommandError(f"no proposal {', '.join(map(repr, unknown))} in the database")


def plain(value: Any) -> Any:
    """A value as JSON carries it: times and dates in ISO 8601."""
    return value.isoformat() if isinstance(value, datetime | date) else value


def cell(value: Any) -> str:
    """A value as CSV carries it: empty for null, true/false, ISO 8601 times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(plain(value))


def write_listing(listing: queries.Listing, fmt: str, out: TextIO) -> None:
    """`listing` as csv, json (one array) or jsonl (one object a line)."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(listing.columns)
        writer.writerows([cell(value) for value in row] for row in listing.rows)
        return
    records = [{key: plain(value) for key, value in record.items()} for record in listing.records()]
    if fmt == "jsonl":
        out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    else:
        out.write(json.dumps(records, ensure_ascii=False) + "\n")


def _show(value: Any, width: int = 0) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        return f"{value:.2f}"
    text = str(plain(value))
    return text[: width - 1] + "…" if width and len(text) > width else text


def _emit(
    listing: queries.Listing,
    as_json: bool,
    as_csv: bool,
    columns: Sequence[Column],
    empty: str,
) -> None:
    """JSON or CSV (every column) when asked; else a table of `columns` (heading, how to show a record)."""
    if as_json or as_csv:
        buffer = io.StringIO()
        write_listing(listing, "json" if as_json else "csv", buffer)
        click.echo(buffer.getvalue(), nl=False)
        return
    console = Console(highlight=False)
    piped = not console.is_terminal
    if piped:  # no colour codes, and one line per row (wide enough that nothing wraps)
        console = Console(highlight=False, color_system=None, width=2000)
    if not listing.rows:
        console.print(empty, markup=False)
        return
    table = Table(box=None, header_style="bold")
    for heading, _ in columns:
        table.add_column(heading, no_wrap=piped)
    for record in listing.records():
        table.add_row(*(show(record) for _, show in columns))
    console.print(table)


def _field(name: str, width: int = 0) -> Callable[[dict[str, Any]], str]:
    return lambda record: _show(record[name], width)


def _state(name: str) -> Callable[[dict[str, Any]], Text]:
    return lambda record: Text(_show(record[name]), style=STATE_STYLES.get(record[name] or "", ""))


# --- listings -----------------------------------------------------------------------------------------------
@click.command()
@config_option
@click.option("--all", "retired", is_flag=True, help="Include proposals no longer in feeds.yaml.")
@_output
@handle_errors
def status(config_path: str | None, retired: bool, as_json: bool, as_csv: bool) -> None:
    """Where each proposal stands and since when: its status, its latest change and whether that is
    confirmed, the evidence behind the status, and the latest report.

    Example:

        monitor status

        monitor status --csv > status.csv
    """
    _config, engine = _open(config_path)
    with Session(engine) as session:
        listing = queries.current_status(session=session, retired=retired)
    move = lambda r: f"{r['latest_from']}->{r['latest_to']}" if r["latest_change_id"] else ""  # noqa: E731
    columns: list[Column] = [
        ("proposal", _field("proposal_id")),
        ("status", lambda r: Text(r["status"], style="bold")),
        ("since", _field("since")),
        ("latest change", move),
        ("state", _state("latest_state")),
        ("evidence", _field("evidence")),
        ("reports", _field("reports")),
        ("last report", _field("last_report_at")),
    ]
    _emit(listing, as_json, as_csv, columns, "No proposals in the database yet: run `monitor poll`.")


@click.command()
@config_option
@click.argument("proposal_id", required=False)
@_since_option
@_until_option
@_output
@handle_errors
def history(
    config_path: str | None,
    proposal_id: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Status changes, oldest first, each with the reports behind it (source, sentence, score, link), and the
    analyst's name and note for reviewed ones. One row per change and report.

    Example:

        monitor history it-article5-guarantee

        monitor history --since 2026-03-01 --until 2026-03-07 --json
    """
    _config, engine = _open(config_path)
    with Session(engine) as session:
        if proposal_id:
            _check_proposals(session, [proposal_id])
        listing = queries.status_history(session=session, proposal=proposal_id, since=since, until=until)
    columns: list[Column] = [
        ("change", _field("change_id")),
        ("observed", _field("observed_at")),
        ("proposal", _field("proposal_id")),
        ("move", lambda r: f"{r['from_status']}->{r['to_status']} {r['kind']}"),
        ("state", _state("state")),
        ("by", _field("decided_by")),
        ("note", _field("note", 40)),
        ("source", _field("source_id")),
        ("score", _field("score")),
        ("sentence", _field("sentence", 70)),
        ("link", _field("link")),
    ]
    _emit(listing, as_json, as_csv, columns, "No status changes match.")


@click.command()
@config_option
@click.option("--proposal", "proposal_id", default=None, metavar="ID", help="Only reports matched to this proposal.")
@click.option("--source", "source_id", default=None, metavar="ID", help="Only reports from this feed.")
@_since_option
@click.option("--status", "reported", default=None, metavar="STATUS", help="Only reports of this status.")
@click.option("--limit", default=50, show_default=True, help="At most this many rows (0: all).")
@_output
@handle_errors
def items(
    config_path: str | None,
    proposal_id: str | None,
    source_id: str | None,
    since: datetime | None,
    reported: str | None,
    limit: int,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Stored reports, newest first, with the proposals they matched and the status each reports.

    Example:

        monitor items --proposal reassurance-force --since 2026-03-01

        monitor items --status signed --limit 0 --csv > signed.csv
    """
    config, engine = _open(config_path)
    ladder = config.settings.status.ladder
    if reported and reported not in ladder:
        raise CommandError(f"--status {reported!r}: not a status ({', '.join(ladder)})")
    with Session(engine) as session:
        if proposal_id:
            _check_proposals(session, [proposal_id])
        listing = queries.items(
            session=session, proposal=proposal_id, source=source_id, since=since, status=reported, limit=limit or None
        )
    columns: list[Column] = [
        ("item", _field("item_id")),
        ("published", _field("published_at")),
        ("source", _field("source_id")),
        ("proposal", _field("proposal_id")),
        ("status", _field("status")),
        ("score", _field("score")),
        ("title", _field("title", 90)),
    ]
    _emit(listing, as_json, as_csv, columns, "No reports match.")


@click.command()
@config_option
@click.argument("query")
@click.option("--limit", default=20, show_default=True, help="At most this many results.")
@_output
@handle_errors
def search(config_path: str | None, query: str, limit: int, as_json: bool, as_csv: bool) -> None:
    """Full-text search over report titles and summaries, best match first, with the matched words
    highlighted (marked **like this** in JSON and CSV). SQLite FTS5 syntax: words, "exact phrases", AND, OR,
    NOT, prefix*, NEAR(a b). Needs SQLite: on another database, a plain unranked search for every word.

    Example:

        monitor search '"security guarantees" AND Italy'

        monitor search 'reassur* NOT Gaza' --json
    """
    _config, engine = _open(config_path)
    if engine.dialect.name != "sqlite":
        click.echo("note: full-text search needs SQLite; this is a plain, unranked word search", err=True)
    with Session(engine) as session:
        listing = queries.search(query, session=session, limit=limit)
    columns: list[Column] = [
        ("item", _field("item_id")),
        ("published", _field("published_at")),
        ("source", _field("source_id")),
        ("score", _field("score")),
        ("title", _field("title", 60)),
        ("snippet", lambda r: _highlight(r["snippet"])),
        ("link", _field("link")),
    ]
    _emit(listing, as_json, as_csv, columns, f"Nothing matches {query!r}.")


def _highlight(snippet: str) -> Text:
    text = Text()
    for index, part in enumerate(snippet.split("**")):
        text.append(part, style="bold yellow" if index % 2 else "")
    return text


@click.command()
@config_option
@click.argument("table", type=click.Choice(queries.EXPORTS))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None, help="File (default: stdout).")
@handle_errors
def export(config_path: str | None, table: str, fmt: str, out: str | None) -> None:
    """Export a whole table: items and matches as stored, history (each change with each report behind it)
    and proposals (where each stands) as their views. Column names are stable; times are ISO 8601 UTC.

    Example:

        monitor export history --format csv --out history.csv

        monitor export items --format jsonl | jq -r .title
    """
    _config, engine = _open(config_path)
    with Session(engine) as session:
        listing = queries.export(table, session=session)
    if out is None:
        buffer = io.StringIO()
        write_listing(listing, fmt, buffer)
        click.echo(buffer.getvalue(), nl=False)
        return
    with open(out, "w", encoding="utf-8", newline="") as handle:
        write_listing(listing, fmt, handle)
    click.echo(f"wrote {len(listing.rows)} {table} rows to {out}", err=True)


@click.command()
@config_option
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default="timeline.png", show_default=True)
@click.option("--proposal", "proposal_ids", multiple=True, metavar="ID", help="Only this proposal (repeatable).")
@handle_errors
def chart(config_path: str | None, out: str, proposal_ids: tuple[str, ...]) -> None:
    """Draw a PNG timeline: one row per proposal with its status over time (coloured bands, a marker at each
    change: filled when confirmed, hollow when unconfirmed, a cross when rejected, a diamond for an analyst's
    decision), and its reports per day beneath.

    Example:

        monitor chart --out timeline.png

        monitor chart --proposal it-article5-guarantee --proposal reassurance-force --out two.png
    """
    from monitor.chart import draw_timelines  # matplotlib is slow to import: only for this command

    config, engine = _open(config_path)
    with Session(engine) as session:
        _check_proposals(session, proposal_ids)
        lines = queries.timelines(session=session, proposals=proposal_ids)
    if not lines:
        raise CommandError("no proposals in the database yet: run `monitor poll` first")
    drawn = draw_timelines(lines, config.settings.status.ladder, Path(out), now())
    click.echo(f"wrote {out}: {len(drawn.rows)} proposals")


# --- review -------------------------------------------------------------------------------------------------
@click.command("review")
@config_option
@click.option("--threshold", default=0.9, show_default=True, help="List matches scoring under this (0..1).")
@_output
@handle_errors
def review_command(config_path: str | None, threshold: float, as_json: bool, as_csv: bool) -> None:
    """What needs an analyst: changes reported but not confirmed (and withdrawals flagged for review), then
    matches scoring under the threshold. Act on a change by its id with `monitor confirm` or `monitor reject`;
    correct a status with `monitor set-status`.

    Example:

        monitor review --threshold 0.95

        monitor confirm 12 --note "Confirmed by the ministry's statement"
    """
    _config, engine = _open(config_path)
    with Session(engine) as session:
        listing = queries.review_queue(threshold, session=session)
    columns: list[Column] = [
        ("kind", _field("kind")),
        ("id", _field("id")),
        ("proposal", _field("proposal_id")),
        ("what", _field("what")),
        ("state", _state("state")),
        ("score", _field("score")),
        ("at", _field("at")),
        ("sources", _field("sources")),
        ("title", _field("title", 80)),
    ]
    _emit(listing, as_json, as_csv, columns, "Nothing to review.")


@click.command()
@config_option
@click.argument("change_id", type=int)
@_note_option
@_by_option
@handle_errors
def confirm(config_path: str | None, change_id: int, note: str, by: str | None) -> None:
    """Confirm a reported change (see `monitor review`): recorded with who, when and why. An upgrade above the
    proposal's status moves the status up, and subscribers are told.

    Example:

        monitor confirm 12 --note "Signed text published on the government site" --by alice
    """
    config, engine = _open(config_path)
    with Session(engine) as session:
        change = review.confirm_change(
            change_id, note, _user(by), config.settings.status.ladder, now(), session=session
        )
        proposal = queries.current_status(session=session, proposals=[change.proposal_id]).records()[0]
        message = f"change {change_id} confirmed by {change.decided_by}: {change.proposal_id} is {proposal['status']}"
        session.commit()
    click.echo(message)


@click.command()
@config_option
@click.argument("change_id", type=int)
@_note_option
@_by_option
@handle_errors
def reject(config_path: str | None, change_id: int, note: str, by: str | None) -> None:
    """Reject a reported change (see `monitor review`): it stays in the history, marked rejected, with who,
    when and why. No status moves.

    Example:

        monitor reject 12 --note "The report is about NATO membership, not the guarantee"
    """
    _config, engine = _open(config_path)
    with Session(engine) as session:
        change = review.reject_change(change_id, note, _user(by), now(), session=session)
        message = f"change {change_id} rejected by {change.decided_by}: {change.proposal_id} stays as it was"
        session.commit()
    click.echo(message)


@click.command("set-status")
@config_option
@click.argument("proposal_id")
@click.argument("new_status", metavar="STATUS")
@_note_option
@_by_option
@handle_errors
def set_status(config_path: str | None, proposal_id: str, new_status: str, note: str, by: str | None) -> None:
    """Record an analyst's decision on a proposal's status, up or down the ladder: a new, confirmed change of
    kind `analyst` with who, when and why, which subscribers are told of. Nothing earlier is rewritten.

    Example:

        monitor set-status it-article5-guarantee proposal --note "Formal proposal tabled at the summit"
    """
    config, engine = _open(config_path)
    with Session(engine) as session:
        change = review.set_status(
            proposal_id, new_status, note, _user(by), config.settings.status.ladder, now(), session=session
        )
        message = (
            f"{proposal_id}: {change.from_status} -> {change.to_status} (change {change.id}, by {change.decided_by})"
        )
        session.commit()
    click.echo(message)


ANALYST_COMMANDS: list[click.Command] = [
    status,
    history,
    items,
    search,
    export,
    chart,
    review_command,
    confirm,
    reject,
    set_status,
]
