"""The review loop: `review` lists what needs an analyst; `confirm`, `reject` and `set-status` record their
decisions, with who and why, through `monitor.store.review`. History is never rewritten silently."""

from __future__ import annotations

import click
from sqlmodel import Session

from monitor.cli.options import config_option, handle_errors, now
from monitor.cli.output import (
    Column,
    analyst_name,
    by_option,
    emit,
    field,
    note_option,
    open_config,
    output_options,
    state_cell,
)
from monitor.store import queries, review


@click.command("review")
@config_option
@click.option("--threshold", default=0.9, show_default=True, help="List matches scoring under this (0..1).")
@output_options
@handle_errors
def review_command(config_path: str | None, threshold: float, as_json: bool, as_csv: bool) -> None:
    """What needs an analyst: changes reported but not confirmed (and withdrawals flagged for review), then
    matches scoring under the threshold. Act on a change by its id with `monitor confirm` or `monitor reject`;
    correct a status with `monitor set-status`.

    Example:

        monitor review --threshold 0.95

        monitor confirm 12 --note "Confirmed by the ministry's statement"
    """
    _config, engine = open_config(config_path, writes=False)
    with Session(engine) as session:
        listing = queries.review_queue(threshold, session=session)
    columns: list[Column] = [
        ("kind", field("kind")),
        ("id", field("id")),
        ("proposal", field("proposal_id")),
        ("what", field("what")),
        ("state", state_cell("state")),
        ("score", field("score")),
        ("at", field("at")),
        ("sources", field("sources")),
        ("title", field("title", 80)),
    ]
    emit(listing, as_json, as_csv, columns, "Nothing to review.")


@click.command()
@config_option
@click.argument("change_id", type=int)
@note_option
@by_option
@handle_errors
def confirm(config_path: str | None, change_id: int, note: str, by: str | None) -> None:
    """Confirm a reported change (see `monitor review`): recorded with who, when and why. An upgrade above the
    proposal's status moves the status up, and subscribers are told.

    Example:

        monitor confirm 12 --note "Signed text published on the government site" --by alice
    """
    config, engine = open_config(config_path)
    with Session(engine) as session:
        change = review.confirm_change(
            change_id, note, analyst_name(by), config.settings.status.ladder, now(), session=session
        )
        proposal = queries.current_status(session=session, proposals=[change.proposal_id]).records()[0]
        message = f"change {change_id} confirmed by {change.decided_by}: {change.proposal_id} is {proposal['status']}"
        session.commit()
    click.echo(message)


@click.command()
@config_option
@click.argument("change_id", type=int)
@note_option
@by_option
@handle_errors
def reject(config_path: str | None, change_id: int, note: str, by: str | None) -> None:
    """Reject a reported change (see `monitor review`): it stays in the history, marked rejected, with who,
    when and why. No status moves.

    Example:

        monitor reject 12 --note "The report is about NATO membership, not the guarantee"
    """
    _config, engine = open_config(config_path)
    with Session(engine) as session:
        change = review.reject_change(change_id, note, analyst_name(by), now(), session=session)
        message = f"change {change_id} rejected by {change.decided_by}: {change.proposal_id} stays as it was"
        session.commit()
    click.echo(message)


@click.command("set-status")
@config_option
@click.argument("proposal_id")
@click.argument("new_status", metavar="STATUS")
@note_option
@by_option
@handle_errors
def set_status(config_path: str | None, proposal_id: str, new_status: str, note: str, by: str | None) -> None:
    """Record an analyst's decision on a proposal's status, up or down the ladder: a new, confirmed change of
    kind `analyst` with who, when and why, which subscribers are told of. Nothing earlier is rewritten.

    Example:

        monitor set-status it-article5-guarantee proposal --note "Formal proposal tabled at the summit"
    """
    config, engine = open_config(config_path)
    with Session(engine) as session:
        change = review.set_status(
            proposal_id, new_status, note, analyst_name(by), config.settings.status.ladder, now(), session=session
        )
        message = (
            f"{proposal_id}: {change.from_status} -> {change.to_status} (change {change.id}, by {change.decided_by})"
        )
        session.commit()
    click.echo(message)


REVIEW_COMMANDS: list[click.Command] = [review_command, confirm, reject, set_status]
