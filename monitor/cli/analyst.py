"""The analysts' reading commands: status, history, items, search, export and chart.

Thin: each builds the config and engine, calls `monitor.store.queries` (reads) or `monitor.chart`, and prints through
`monitor.cli.output`. The review actions are in `monitor.cli.review`.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import click
from rich.text import Text
from sqlmodel import Session

from monitor.cli.options import CommandError, config_option, handle_errors, now
from monitor.cli.output import (
    Column,
    check_proposals,
    check_sources,
    emit,
    field,
    open_config,
    output_options,
    since_option,
    state_cell,
    until_option,
    write_listing,
)
from monitor.cli.review import REVIEW_COMMANDS
from monitor.store import fulltext, queries


@click.command()
@config_option
@click.option("--all", "retired", is_flag=True, help="Include proposals no longer in feeds.yaml.")
@output_options
@handle_errors
def status(config_path: str | None, retired: bool, as_json: bool, as_csv: bool) -> None:
    """Where each proposal stands and since when: its status, its latest change and whether that is
    confirmed, the evidence behind the status, and the latest report.

    Example:

        monitor status

        monitor status --csv > status.csv
    """
    _config, engine = open_config(config_path, writes=False)
    with Session(engine) as session:
        listing = queries.current_status(session=session, retired=retired)
    move = lambda r: f"{r['latest_from']}->{r['latest_to']}" if r["latest_change_id"] else ""  # noqa: E731
    columns: list[Column] = [
        ("proposal", field("proposal_id")),
        ("status", lambda r: Text(r["status"], style="bold")),
        ("since", field("since")),
        ("latest change", move),
        ("state", state_cell("latest_state")),
        ("evidence", field("evidence")),
        ("reports", field("reports")),
        ("last report", field("last_report_at")),
    ]
    emit(listing, as_json, as_csv, columns, "No proposals in the database yet: run `monitor poll`.")


@click.command()
@config_option
@click.argument("proposal_id", required=False)
@since_option
@until_option
@output_options
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
    _config, engine = open_config(config_path, writes=False)
    with Session(engine) as session:
        if proposal_id:
            check_proposals(session, [proposal_id])
        listing = queries.status_history(session=session, proposal=proposal_id, since=since, until=until)
    columns: list[Column] = [
        ("change", field("change_id")),
        ("happened", field("happened_at")),
        ("observed", field("observed_at")),
        ("proposal", field("proposal_id")),
        ("move", lambda r: f"{r['from_status']}->{r['to_status']} {r['kind']}"),
        ("state", state_cell("state")),
        ("by", field("decided_by")),
        ("note", field("note", 40)),
        ("source", field("source_id")),
        ("score", field("score")),
        ("sentence", field("sentence", 70)),
        ("link", field("link")),
    ]
    emit(listing, as_json, as_csv, columns, "No status changes match.")


@click.command()
@config_option
@click.option("--proposal", "proposal_id", default=None, metavar="ID", help="Only reports matched to this proposal.")
@click.option("--source", "source_id", default=None, metavar="ID", help="Only reports from this feed.")
@since_option
@click.option("--status", "reported", default=None, metavar="STATUS", help="Only reports of this status.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(min=0), help="At most this many rows (0: all)."
)
@output_options
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
    config, engine = open_config(config_path, writes=False)
    ladder = config.settings.status.ladder
    if reported and reported not in ladder:
        raise CommandError(f"--status {reported!r}: not a status ({', '.join(ladder)})")
    with Session(engine) as session:
        if proposal_id:
            check_proposals(session, [proposal_id])
        if source_id:
            check_sources(session, [source_id])
        listing = queries.items(
            session=session, proposal=proposal_id, source=source_id, since=since, status=reported, limit=limit or None
        )
    columns: list[Column] = [
        ("item", field("item_id")),
        ("published", field("published_at")),
        ("source", field("source_id")),
        ("proposal", field("proposal_id")),
        ("status", field("status")),
        ("score", field("score")),
        ("title", field("title", 90)),
    ]
    emit(listing, as_json, as_csv, columns, "No reports match.")


@click.command()
@config_option
@click.argument("query")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(min=0), help="At most this many results (0: all)."
)
@output_options
@handle_errors
def search(config_path: str | None, query: str, limit: int, as_json: bool, as_csv: bool) -> None:
    """Full-text search over report titles and summaries, best match first, with the matched words
    highlighted (marked **like this** in JSON and CSV). SQLite FTS5 syntax: words, "exact phrases", AND, OR,
    NOT, prefix*, NEAR(a b); any other token (U.S., Kyiv's, a-b) is searched as a phrase. SQLite uses its
    FTS5 index, which first takes the reports stored since the last search (polls leave that to it);
    PostgreSQL its own full-text search (where NEAR(a b) reads as a AND b).

    Example:

        monitor search '"security guarantees" AND Italy'

        monitor search 'reassur* NOT Gaza' --json
    """
    _config, engine = open_config(config_path, writes=False)
    if engine.dialect.name not in ("sqlite", "postgresql"):
        click.echo("note: full-text search needs SQLite or PostgreSQL; this is a plain, unranked word search", err=True)
    if (caught := fulltext.catch_up(engine)).waiting:
        click.echo(
            f"note: {caught.waiting} items stored since the last search are not in the full-text index and are not "
            f"searched: {caught.reason}",
            err=True,
        )
    with Session(engine) as session:
        listing = fulltext.search(query, session=session, limit=limit or None)
    columns: list[Column] = [
        ("item", field("item_id")),
        ("published", field("published_at")),
        ("source", field("source_id")),
        ("score", field("score")),
        ("title", field("title", 60)),
        ("snippet", lambda r: _highlight(r["snippet"])),
        ("link", field("link")),
    ]
    emit(listing, as_json, as_csv, columns, f"Nothing matches {fulltext.shorten(query)!r}.")


def _highlight(snippet: str) -> Text:
    text = Text()
    for index, part in enumerate(snippet.split("**")):
        text.append(part, style="bold yellow" if index % 2 else "")
    return text


@click.command()
@config_option
@click.argument("table", type=click.Choice(queries.EXPORTS))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File, or - for stdout (the default).")
@handle_errors
def export(config_path: str | None, table: str, fmt: str, out: str | None) -> None:
    """Export a whole table: items and matches as stored, history (each change with each report behind it)
    and proposals (where each stands) as their views. Column names are stable; times are ISO 8601 UTC.

    Example:

        monitor export history --format csv --out history.csv

        monitor export items --format jsonl | jq -r .title
    """
    _config, engine = open_config(config_path, writes=False)
    with Session(engine) as session:
        listing = queries.export(table, session=session)
    if out is None or out == "-":
        buffer = io.StringIO()
        write_listing(listing, fmt, buffer)
        click.echo(buffer.getvalue(), nl=False)
        return
    try:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            write_listing(listing, fmt, handle)
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(listing.rows)} {table} rows to {out}", err=True)


@click.command()
@config_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="timeline.png",
    show_default=True,
    help="The file to draw: PNG, SVG or PDF by its extension.",
)
@click.option("--proposal", "proposal_ids", multiple=True, metavar="ID", help="Only this proposal (repeatable).")
@handle_errors
def chart(config_path: str | None, out: str, proposal_ids: tuple[str, ...]) -> None:
    """Draw a timeline (PNG, SVG or PDF by the extension): one row per proposal with its status over time
    (coloured bands, a marker at each change: filled when confirmed, hollow when unconfirmed, a cross when
    rejected, a diamond for an analyst's decision), and its reports per day beneath.

    Example:

        monitor chart --out timeline.png

        monitor chart --proposal it-article5-guarantee --proposal reassurance-force --out two.png
    """
    from monitor.chart import draw_timelines  # matplotlib is slow to import: only for this command

    if Path(out).suffix.lower() not in CHART_FORMATS:
        raise CommandError(f"--out {out}: the chart is drawn as PNG, SVG or PDF: name a .png, .svg or .pdf file")
    config, engine = open_config(config_path, writes=False)
    with Session(engine) as session:
        check_proposals(session, proposal_ids)
        lines = queries.timelines(session=session, proposals=proposal_ids)
    if not lines:
        raise CommandError("no proposals in the database yet: run `monitor poll` first")
    try:
        drawn = draw_timelines(lines, config.settings.status.ladder, Path(out), now())
    except OSError as exc:
        raise CommandError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"wrote {out}: {len(drawn.rows)} proposals")


CHART_FORMATS = (".png", ".svg", ".pdf")


# --- review -------------------------------------------------------------------------------------------------
ANALYST_COMMANDS: list[click.Command] = [status, history, items, search, export, chart, *REVIEW_COMMANDS]
