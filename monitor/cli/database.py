"""`monitor db`: bring the schema up to date, copy a whole database into a new, empty one, or bring SQLite's
full-text index up to date."""

from __future__ import annotations

import click

from monitor.cli.options import CommandError, config_option, handle_errors
from monitor.redact import redact


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@config_option
@handle_errors
def db_upgrade(config_path: str | None) -> None:
    """Create the database, or migrate it to this version's schema.

    Example:

        MONITOR_DATABASE_URL=sqlite:///data/monitor.db monitor db upgrade
    """
    from monitor.config import load_config
    from monitor.store.db import create_db_engine
    from monitor.store.schema import schema_state, upgrade

    config = load_config(config_path)

    engine = create_db_engine(config.database_url)
    applied = upgrade(engine)
    _current, head = schema_state(engine)
    click.echo(f"{'upgraded' if applied else 'already'} at schema revision {head}: {redact(config.database_url)}")


@db.command("copy")
@config_option
@click.option("--to", "target", required=True, metavar="URL", help="The database to fill: new and empty.")
@handle_errors
def db_copy(config_path: str | None, target: str) -> None:
    """Copy everything in the configured database into another, empty one: to move from SQLite to
    PostgreSQL. Both are brought to this version's schema first. Stop cron and the bot while it copies.

    Example:

        monitor db copy --to postgresql+psycopg://monitor@db.example.org/monitor
    """
    from monitor.config import load_config
    from monitor.store.db import copy_database
    from monitor.store.schema import open_database

    config = load_config(config_path)
    source = open_database(config.database_url)
    destination = open_database(target)
    counts = copy_database(source, destination)
    click.echo(f"copied {sum(counts.values())} rows in {len(counts)} tables to {redact(target)}")
    for table, rows in counts.items():
        click.echo(f"  {table}: {rows}")


@db.command("index")
@config_option
@handle_errors
def db_index(config_path: str | None) -> None:
    """Bring SQLite's full-text index up to date: index the items stored since the last search, as a search
    does before it answers (polls leave that to it). From cron where searches are rare, so that the first one
    does not wait for weeks of items. Nothing to do on PostgreSQL.

    Example:

        monitor db index
    """
    from monitor.cli.output import open_config
    from monitor.store import fulltext

    _config, engine = open_config(config_path)
    caught = fulltext.catch_up(engine)
    if caught.waiting:  # the index could not be written (a full disk); a read-only file open_config refused
        raise CommandError(f"{caught.waiting} items not indexed: {caught.reason}")
    click.echo(f"indexed {caught.indexed} items")
