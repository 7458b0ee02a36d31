"""The `monitor` command: thin commands that build the config, engine and clients and call the pipeline.

Errors become one clean line per problem and a non-zero exit; tables on a terminal, JSON when asked.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from monitor import __version__
from monitor.cli.database import db
from monitor.cli.feeds import feeds
from monitor.cli.lazy import LazyGroup
from monitor.cli.options import config_option, digests_said, handle_errors, json_option, now, setup_logging
from monitor.env import TOKEN_ENV, sqlite_file
from monitor.errors import LockedError
from monitor.redact import environment_secrets, redact

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.head_start import HeadStart
    from monitor.outcomes import FeedOutcome, PollSummary
    from monitor.parse_pool import Parser

# The heavy libraries (SQLAlchemy, Alembic, feedparser, python-telegram-bot, matplotlib) are imported inside
# the commands that use them, so `monitor --help` and a cron run with nothing to do start at once.
EXIT_NOTHING_POLLED = 1


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(__version__, prog_name="monitor")
def cli() -> None:
    """Guarantee Watch: poll news feeds on security guarantees for Ukraine, track each proposal's status
    with its evidence, and send Telegram digests.

    Example:

        monitor demo          # the whole pipeline on bundled sample feeds, offline

        monitor poll          # what cron runs
    """


@cli.command()
@config_option
@handle_errors
def check(config_path: str | None) -> None:
    """Validate the configuration file. Every problem is one line: FILE:LINE: FIELD: message.

    Example:

        monitor check --config feeds.yaml
    """
    from monitor.config import load_config

    config = load_config(config_path)
    enabled = sum(1 for source in config.sources if source.enabled)
    click.echo(
        f"{config.path}: ok: {len(config.sources)} sources ({enabled} enabled), "
        f"{len(config.proposals)} proposals, database {redact(config.database_url)}"
    )


@cli.command()
@config_option
@click.option("--source", "sources", multiple=True, metavar="ID", help="Poll only this feed (repeatable).")
@click.option("--force", is_flag=True, help="Poll even feeds that are not due yet.")
@json_option
@handle_errors
def poll(config_path: str | None, sources: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Poll the feeds that are due and store every new or edited report. Safe to run from cron.

    Exits 0 when some feeds fail (each failure is recorded on its feed), 1 when feeds were due and none could
    be polled, 2 when the configuration or database is broken. While another run works, exits 0 at once.

    Example:

        monitor poll --source kyiv-independent --force
    """
    if not (force or sources):
        from monitor.store.idle import idle_run

        if (run_id := idle_run(config_path, os.environ, now())) is not None:
            _print_nothing_due(run_id, as_json)  # answered from the SQLite file alone (monitor/store/idle.py)
            return
    from monitor.config import load_config
    from monitor.store.locks import run_lock

    config = load_config(config_path)
    try:
        with run_lock(config.database_url, now=now()), _opened(config, sources, force, quiet=True) as opened:
            summary = _poll_with_progress(config, opened, sources, force, show=not as_json)
    except LockedError as exc:
        click.echo(str(exc), err=True)
        return
    _print_summary(summary, as_json)
    if summary.nothing_polled:
        sys.exit(EXIT_NOTHING_POLLED)


@dataclass
class _Opened:
    """What a poll starts from: the database, and the work begun while it opened (`_opened`)."""

    engine: Any
    head: HeadStart | None = None
    parser: Parser | None = None
    quiet: PollSummary | None = None  # the poll, done and recorded without the database layer

    def poll(self, config: Config, sources: tuple[str, ...], force: bool, **progress: Any) -> PollSummary:
        if self.quiet is not None:
            return self.quiet
        from monitor.pipeline import run_poll

        matcher = self.parser.matcher if self.parser else None
        return run_poll(
            config, self.engine, now, only=sources, force=force, head=self.head, parser=self.parser, matcher=matcher,
            **progress,
        )  # fmt: skip


@contextmanager
def _opened(
    config: Config, sources: tuple[str, ...], force: bool, quiet: bool = False, digests: bool = False
) -> Iterator[_Opened]:
    """Under the run lock: the database, and where the SQLite file allows it a head start (the first feeds leased
    and on the network while the database layer loads) and the parser's worker processes loading for a poll of
    many new feeds (`monitor.head_start`), all closed at the end of the block. With `quiet`, a head start that
    holds every feed due waits for their answers first: where each is a plain 304, the poll is recorded then,
    and the database layer is never loaded (`head_start.quiet_poll`; with `digests`, only where the digests would
    then do nothing)."""
    opened = _Opened(None)
    try:
        if not sources and (database := sqlite_file(config.database_url)):
            from monitor import head_start

            first_run = not database.exists()
            if first_run:  # every feed is new: the parser processes load while the network code does
                opened.parser = head_start.early_parser(config, None)
            started = now()
            opened.head = head_start.start(config, started, force=force)
            if not first_run:
                opened.parser = head_start.early_parser(config, opened.head)
            if quiet and opened.head and not opened.parser:  # not many first polls, which answer 200
                opened.quiet = head_start.quiet_poll(opened.head, config, started, now, force=force, digests=digests)
                if opened.quiet:
                    yield opened
                    return
        from monitor.store.schema import open_database

        opened.engine = open_database(config.database_url)
        yield opened
    finally:
        if opened.head:
            opened.head.close()
        if opened.parser:
            opened.parser.close()


def _print_nothing_due(run_id: int | None, as_json: bool) -> None:
    click.echo(json.dumps(_summary_json(run_id)) if as_json else "No feed is due. (Use --force to poll anyway.)")


def _summary_json(
    run_id: int | None,
    due: int = 0,
    ok: int = 0,
    not_modified: int = 0,
    failed: int = 0,
    new: int = 0,
    updated: int = 0,
    feeds: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """What `monitor poll --json` prints of a run, whether the full run or the idle answer made it."""
    return {
        "run_id": run_id,
        "feeds_due": due,
        "feeds_ok": ok,
        "feeds_not_modified": not_modified,
        "feeds_failed": failed,
        "items_new": new,
        "items_updated": updated,
        "feeds": list(feeds),
    }


def _poll_with_progress(
    config: Config, opened: _Opened, sources: tuple[str, ...], force: bool, show: bool
) -> PollSummary:
    gc.freeze()  # what is loaded by now lives until the command ends: no collection need walk it again
    if not (show and sys.stderr.isatty()):  # cron's runs: no progress bar, and rich is not even imported
        return opened.poll(config, sources, force)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=None)

        def started(total: int) -> None:
            progress.update(task, total=total)

        def advanced(outcome: FeedOutcome) -> None:
            progress.update(task, advance=1, description=f"{outcome.source_id}: {outcome.outcome}")

        return opened.poll(config, sources, force, on_feed=advanced, on_start=started)


def _print_summary(summary: PollSummary, as_json: bool) -> None:
    if summary.feeds_due == 0:
        _print_nothing_due(summary.run_id, as_json)
        return
    if as_json:
        counts = (summary.count("ok"), summary.count("not-modified"), summary.count("failed"))
        feeds = [_outcome_json(feed) for feed in summary.feeds]
        totals = (summary.items_new, summary.items_updated)
        click.echo(json.dumps(_summary_json(summary.run_id, summary.feeds_due, *counts, *totals, feeds)))
        return
    from rich.console import Console

    console = Console(soft_wrap=True)
    for feed in sorted(summary.feeds, key=lambda f: f.source_id):
        if feed.outcome == "failed":
            console.print(f"[red]failed[/] {feed.source_id}: {feed.error}", markup=True, highlight=False)
        elif feed.warning:
            console.print(f"[yellow]warning[/] {feed.source_id}: {feed.warning}", markup=True, highlight=False)
        if feed.moved_to:
            console.print(f"moved {feed.source_id}: now polled at {feed.moved_to}", highlight=False)
    console.print(
        f"{summary.feeds_due} feeds: {summary.count('ok')} ok, {summary.count('not-modified')} not modified, "
        f"{summary.count('failed')} failed; {summary.items_new} new items, {summary.items_updated} updated",
        highlight=False,
    )


def _outcome_json(feed: FeedOutcome) -> dict[str, Any]:
    return {
        "source": feed.source_id,
        "outcome": feed.outcome,
        "status": feed.status,
        "error": feed.error,
        "warning": feed.warning,
        "items_new": feed.items_new,
        "items_updated": feed.items_updated,
        "moved_to": feed.moved_to,
        "health": feed.health,
        "next_poll_at": feed.next_poll_at.isoformat() if feed.next_poll_at else None,
    }


@cli.command()
@config_option
@click.option(
    "--db",
    "db_path",
    default="monitor-demo.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="SQLite file the demo writes.",
)
@handle_errors
def demo(config_path: str | None, db_path: str) -> None:
    """Run the whole pipeline offline: serve the bundled sample feeds on 127.0.0.1, poll them into a local
    SQLite file and show what was found.

    Example:

        monitor demo --db /tmp/demo.db
    """
    from rich.console import Console
    from sqlmodel import Session

    from monitor.cli.match import show_statuses
    from monitor.config import load_config
    from monitor.demo import run_demo
    from monitor.store import items

    base = load_config(config_path, env={})
    config, engine, summary = run_demo(base, f"sqlite:///{db_path}", now)
    console = Console(soft_wrap=True)
    console.print(
        f"[bold]Guarantee Watch demo[/]: {len(config.sources)} sample feeds served on 127.0.0.1, database {db_path}"
    )
    _print_summary(summary, as_json=False)
    with Session(engine) as session:
        total = items.count_items(session=session)
        recent = items.recent_items(8, session=session)
    console.print(f"{total} items stored. Latest:", highlight=False)
    for item in recent:
        flag = " (date missing: first seen)" if item.published_fallback else ""
        console.print(
            f"  {item.published_at:%Y-%m-%d %H:%M}  [{item.source_id}] {item.title}{flag}",
            highlight=False,
            markup=False,
        )
    console.print("\nProposal statuses derived from these reports, with their evidence:", highlight=False)
    show_statuses(engine)
    from monitor.delivery import run_digest

    console.print("\nThe digest a subscriber following everything would get (no Telegram token is set):")
    if not run_digest(config, engine, now).printed:
        console.print("Nothing new since the last digest.")


@cli.command()
@config_option
@handle_errors
def run(config_path: str | None) -> None:
    """Poll the due feeds, then send the digests that are due: the one cron line.

    Exit status as for `monitor poll`. While another run works, exits 0 at once.

    Example:

        */10 * * * * cd /srv/guarantee-watch && .venv/bin/monitor run >> /var/log/monitor.log 2>&1
    """
    from monitor.store.idle import idle_run

    if (run_id := idle_run(config_path, os.environ, now(), digests=True)) is not None:
        _print_nothing_due(run_id, as_json=False)  # nothing due, no digest to compose or send (monitor/store/idle.py)
        click.echo(digests_said(0, delivery=(0, 0, 0, 0) if os.environ.get(TOKEN_ENV) else None), err=True)
        return
    from monitor.config import load_config
    from monitor.store.locks import run_lock

    config = load_config(config_path)
    try:
        with run_lock(config.database_url, now=now()), _opened(config, (), False, quiet=True, digests=True) as opened:
            summary = _poll_with_progress(config, opened, (), False, show=True)
            _print_summary(summary, as_json=False)
            if opened.quiet:  # every feed answered 304 and no digest to compose or send, as for an idle run
                click.echo(digests_said(0, delivery=(0, 0, 0, 0) if config.telegram_token else None), err=True)
            else:
                from monitor.cli.telegram_commands import _digest

                _digest(config, opened.engine, dry_run=False)
    except LockedError as exc:
        click.echo(str(exc), err=True)
        return
    if summary.nothing_polled:
        sys.exit(EXIT_NOTHING_POLLED)


cli.add_command(db)
cli.add_command(feeds)


def _collect_less() -> None:
    """Spare a command the cyclic collector's passes over objects that live as long as it does: the modules,
    the configuration, the compiled rules. The collector wakes after 10,000 new objects, not 700 (importing
    SQLAlchemy alone made it walk every object alive a dozen times), and at exit, where it would walk them all
    again for nothing while the interpreter tears down (0.4 s after a warm poll), they are frozen first."""
    gc.set_threshold(10_000, 10, 10)
    atexit.register(gc.freeze)  # registered first: runs after every other exit handler


def main() -> None:
    _collect_less()
    setup_logging(environment_secrets())
    cli(prog_name="monitor")
