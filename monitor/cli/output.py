"""What the analysts' commands share: options, opening the database, and listings printed as a table on a
terminal (plain, without colour, when piped) or as JSON or CSV with stable column names."""

from __future__ import annotations

import csv
import getpass
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.cli.options import CommandError, json_option
from monitor.config import Config, load_config
from monitor.store import history, queries, sources
from monitor.store.schema import open_database

Column = tuple[str, Callable[[dict[str, Any]], "str | Text"]]  # a table heading, and how to show a record
STATE_STYLES = {"confirmed": "green", "unconfirmed": "yellow", "review": "magenta", "rejected": "red"}


def parse_time(value: str | None, end: bool = False) -> datetime | None:
    """A date (2026-03-01) or a time (2026-03-01T12:00) in UTC; as an end bound, a date means its whole day."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (2026-03-01) or a time (2026-03-01T12:00)") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed + timedelta(days=1) if end and len(value) == 10 else parsed


def since_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--since",
        metavar="DATE",
        callback=lambda _ctx, _param, value: parse_time(value),
        help="From this date or time (UTC), included.",
    )(function)


def until_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--until",
        metavar="DATE",
        callback=lambda _ctx, _param, value: parse_time(value, end=True),
        help="Up to this date (its whole day) or time (UTC).",
    )(function)


def output_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--csv", "as_csv", is_flag=True, help="Write CSV instead of a table.")(function)
    return json_option(function)


def by_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--by", default=None, metavar="NAME", help="Who decides (default: the OS user).")(function)


def note_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--note", required=True, help="Why: recorded with the decision.")(function)


def open_config(config_path: str | None, *, writes: bool = True) -> tuple[Config, Engine]:
    """The configuration and its database; a command that only reads passes `writes=False`. For one that
    writes, the proposals are brought in line with the configuration first, whatever has run before."""
    config = load_config(config_path)
    engine = open_database(config.database_url, writes=writes)
    if writes:
        with Session(engine) as session:
            history.sync_proposals(config.proposals, session=session)
            session.commit()
    return config, engine


def analyst_name(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def check_proposals(session: Session, ids: Iterable[str]) -> None:
    known = {row["proposal_id"] for row in queries.current_status(session=session, retired=True).records()}
    unknown = sorted(set(ids) - known)
    if unknown:
        raise CommandError(f"no proposal {', '.join(map(repr, unknown))} in the database")


def check_sources(session: Session, ids: Iterable[str]) -> None:
    known = {row.id for row in sources.all_sources(session=session)}
    unknown = sorted(set(ids) - known)
    if unknown:
        raise CommandError(f"no feed {', '.join(map(repr, unknown))} in the database")


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


JSON_COLUMNS = frozenset({"actors", "sentences", "follows"})  # stored as JSON text: exported as real lists


def _json_value(key: str, value: Any) -> Any:
    if key in JSON_COLUMNS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return plain(value)


def write_listing(listing: queries.Listing, fmt: str, out: TextIO) -> None:
    """`listing` as csv, json (one array) or jsonl (one object a line)."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(listing.columns)
        writer.writerows([cell(value) for value in row] for row in listing.rows)
        return
    records = [{key: _json_value(key, value) for key, value in record.items()} for record in listing.records()]
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


def emit(
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


def field(name: str, width: int = 0) -> Callable[[dict[str, Any]], str]:
    return lambda record: _show(record[name], width)


def state_cell(name: str) -> Callable[[dict[str, Any]], Text]:
    return lambda record: Text(_show(record[name]), style=STATE_STYLES.get(record[name] or "", ""))


# --- listings -----------------------------------------------------------------------------------------------
