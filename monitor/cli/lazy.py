"""The `monitor` group's commands that live in other modules, imported only when one of them runs.

`monitor --help` lists them from the table below without importing them (and with them SQLAlchemy, Alembic,
python-telegram-bot or matplotlib); a test keeps each summary equal to its command's own short help.
"""

from __future__ import annotations

import importlib

import click

# name -> (module:attribute, the command's short help as click derives it from the docstring)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "bot": ("monitor.cli.telegram_commands:bot", "Run the subscriber bot (long polling, or a webhook)."),
    "chart": (
        "monitor.cli.analyst:chart",
        "Draw a timeline (PNG, SVG or PDF by the extension): one row per proposal with its status over time "
        "(coloured bands, a marker at each "
        "change: filled when confirmed, hollow when unconfirmed, a cross when rejected, a diamond for an "
        "analyst's decision), and its reports per day beneath.",
    ),
    "confirm": (
        "monitor.cli.review:confirm",
        "Confirm a reported change (see `monitor review`): recorded with who, when and why.",
    ),
    "digest": ("monitor.cli.telegram_commands:digest", "Compose and send the digests that are due (cron)."),
    "eval": (
        "monitor.cli.match:eval_command",
        "Score the matcher, beside a keyword-only baseline, on labelled JSON Lines files.",
    ),
    "export": (
        "monitor.cli.analyst:export",
        "Export a whole table: items and matches as stored, history (each change with each report behind it) "
        "and proposals (where each stands) as their views.",
    ),
    "history": (
        "monitor.cli.analyst:history",
        "Status changes, oldest first, each with the reports behind it (source, sentence, score, link), and "
        "the analyst's name and note for reviewed ones.",
    ),
    "items": (
        "monitor.cli.analyst:items",
        "Stored reports, newest first, with the proposals they matched and the status each reports.",
    ),
    "match": (
        "monitor.cli.match:match_command",
        "Match news items read as JSON Lines on stdin against the tracked proposals.",
    ),
    "reject": (
        "monitor.cli.review:reject",
        "Reject a reported change (see `monitor review`): it stays in the history, marked rejected, with who, "
        "when and why.",
    ),
    "rematch": (
        "monitor.cli.match:rematch",
        "Re-run matching over every stored item and rebuild the derived statuses from scratch.",
    ),
    "replay": (
        "monitor.cli.match:replay",
        "Ingest a folder of feed snapshots in time order, as if each were polled at its time (simulated clock).",
    ),
    "review": (
        "monitor.cli.review:review_command",
        "What needs an analyst: changes reported but not confirmed (and withdrawals flagged for review), then "
        "matches scoring under the threshold.",
    ),
    "search": (
        "monitor.cli.analyst:search",
        "Full-text search over report titles and summaries, best match first, with the matched words "
        "highlighted (marked **like this** in JSON and CSV).",
    ),
    "set-status": (
        "monitor.cli.review:set_status",
        "Record an analyst's decision on a proposal's status, up or down the ladder: a new, confirmed change of "
        "kind `analyst` with who, when and why, which subscribers are told of.",
    ),
    "status": (
        "monitor.cli.analyst:status",
        "Where each proposal stands and since when: its status, its latest change and whether that is "
        "confirmed, the evidence behind the status, and the latest report.",
    ),
}


def load_command(name: str) -> click.Command:
    module, _, attribute = LAZY_COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


def summary(name: str, limit: int) -> str:
    """A lazy command's short help cut to `limit` as click cuts it, without importing the command."""
    return click.Command(name, help=LAZY_COMMANDS[name][1]).get_short_help_str(limit)


class LazyGroup(click.Group):
    """A click group that imports the commands of `LAZY_COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            command = load_command(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                if not loaded.hidden:
                    rows.append((name, loaded.get_short_help_str(limit)))
            else:
                rows.append((name, summary(name, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
