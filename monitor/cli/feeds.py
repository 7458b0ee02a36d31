"""`monitor feeds`: every feed's health, and `feeds reset` to give a failing or disabled feed a fresh start."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from monitor.cli.options import config_option, handle_errors, json_option, now
from monitor.errors import ConfigError


@click.group(invoke_without_command=True)
@config_option
@json_option
@click.pass_context
@handle_errors
def feeds(ctx: click.Context, config_path: str | None, as_json: bool) -> None:
    """Show every feed's health: state, last poll, next poll, failures, items and last error.

    Example:

        monitor feeds --json | jq '.[] | select(.health != "ok")'
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = config_path
        return
    from rich.console import Console
    from rich.table import Table
    from sqlmodel import Session

    from monitor.config import load_config
    from monitor.store import items, sources
    from monitor.store.schema import open_database

    config = load_config(config_path)
    engine = open_database(config.database_url)
    with Session(engine) as session:
        sources.sync_sources(config.sources, config.settings.poll.interval, now(), session=session)
        session.commit()
        rows = sources.all_sources(session=session)
        counts = items.item_counts_by_source(session=session)
    records = [_feed_record(row, counts.get(row.id, 0)) for row in rows]
    if as_json:
        click.echo(json.dumps(records))
        return
    table = Table("feed", "health", "last poll", "next poll", "fail", "items", "last error", box=None)
    styles = {"ok": "green", "failing": "red", "disabled": "red", "never succeeded": "red", "new": "dim"}
    for record in records:
        health = record["health"] if record["enabled"] or not record["in_config"] else "off"
        table.add_row(
            record["id"],
            f"[{styles.get(health, 'yellow')}]{health}[/]",
            _short(record["last_polled_at"]),
            _short(record["next_poll_at"]),
            str(record["consecutive_failures"]),
            str(record["items"]),
            (record["disabled_reason"] or record["last_error"] or "")[:70],
        )
    Console().print(table)


@feeds.command("reset")
@click.argument("source_id")
@click.pass_obj
@handle_errors
def feeds_reset(config_path: str | None, source_id: str) -> None:
    """Clear a feed's failures or its disabled state (after a 410), so that the next poll takes it.

    Example:

        monitor feeds reset nato-news
    """
    from sqlmodel import Session

    from monitor.config import load_config
    from monitor.store import sources
    from monitor.store.schema import open_database

    config = load_config(config_path)
    engine = open_database(config.database_url)
    configured = any(source.id == source_id for source in config.sources)
    with Session(engine) as session:
        row = sources.get_source(source_id, session=session)
        if row is None and not configured:
            raise ConfigError([f"no feed {source_id!r} in {config.path} or in the database"])
        if not configured:
            raise ConfigError([f"feed {source_id!r} is no longer in {config.path}: it is not polled, nothing to reset"])
        if row is not None and row.health in ("ok", "new") and not row.consecutive_failures:
            click.echo(f"{source_id}: healthy ({row.health}); nothing to reset")
            return
        sources.reset_source(source_id, session=session)
        session.commit()
    click.echo(f"{source_id}: reset; it will be polled on the next run")


def _feed_record(row: Any, items: int) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "tier": row.tier,
        "enabled": row.enabled,
        "in_config": row.in_config,
        "health": _health(row),
        "disabled_reason": row.disabled_reason,
        "last_polled_at": iso(row.last_polled_at),
        "last_success_at": iso(row.last_success_at),
        "next_poll_at": iso(row.next_poll_at),
        "consecutive_failures": row.consecutive_failures,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "items": items,
    }


def _health(row: Any) -> str:
    """What an operator needs to know first: removed, disabled, failing, or never fetched even once."""
    if not row.in_config:
        return "removed"
    if row.health in ("disabled", "failing") or not row.consecutive_failures:
        return str(row.health)
    return "never succeeded" if row.last_success_at is None else "failing"


def _short(iso: str | None) -> str:
    return iso.replace("T", " ")[:16] if iso else "-"
