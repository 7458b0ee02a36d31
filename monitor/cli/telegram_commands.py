"""The Telegram commands: `digest` (compose and send the digests that are due) and `bot` (the subscriber bot)."""

from __future__ import annotations

from typing import Any

import click

from monitor.cli.options import config_option, digests_said, handle_errors, now
from monitor.config import TOKEN_ENV, Config, load_config
from monitor.errors import ConfigError, LockedError
from monitor.redact import environment_secrets, redact
from monitor.store.locks import run_lock
from monitor.store.schema import open_database


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Print the digests that are due instead of sending them; change nothing.")
@handle_errors
def digest(config_path: str | None, dry_run: bool) -> None:
    """Compose and send the digests that are due (cron). Without MONITOR_TELEGRAM_TOKEN they are printed.

    Each digest is composed once per subscriber and window, and its parts are sent in order; a part Telegram
    confirmed is never sent again, so after a crash or an outage the next run resumes where this one stopped.

    Example:

        monitor digest --dry-run
    """
    config = load_config(config_path)
    engine = open_database(config.database_url)
    try:
        with run_lock(config.database_url, now=now()):
            _digest(config, engine, dry_run)
    except LockedError as exc:
        click.echo(str(exc), err=True)


def _digest(config: Config, engine: Any, dry_run: bool) -> None:
    from monitor.delivery import run_digest

    summary = run_digest(config, engine, now, dry_run=dry_run)
    if summary.delivery is not None:
        report = summary.delivery
        delivered = (report.sent, report.failed, report.deferred, len(report.deactivated))
        click.echo(digests_said(summary.composed, delivery=delivered), err=True)
        for error in report.errors:
            click.echo(redact(f"warning: {error}", environment_secrets()), err=True)
    elif not dry_run:
        click.echo(digests_said(summary.composed, summary.printed), err=True)


@click.command()
@config_option
@click.option(
    "--webhook-url",
    default=None,
    metavar="URL",
    help="Receive updates by webhook at this public https URL instead of long polling.",
)
@click.option("--listen", default="127.0.0.1", show_default=True, help="Address the webhook server listens on.")
@click.option("--port", default=8443, show_default=True, type=int, help="Port the webhook server listens on.")
@handle_errors
def bot(config_path: str | None, webhook_url: str | None, listen: str, port: int) -> None:
    """Run the subscriber bot (long polling, or a webhook). Needs MONITOR_TELEGRAM_TOKEN.

    Subscribers use /start, /stop, /proposals, /status ID, /history ID, /follow ID, /unfollow ID,
    /frequency instant|hourly|daily|weekly [hour], /only signed|proposal|all, /digest and /help; admin chats
    (settings.telegram.admin_chats) also /stats and /feeds.

    Example:

        MONITOR_TELEGRAM_TOKEN=123:abc monitor bot
    """
    from telegram.error import InvalidToken, NetworkError

    from monitor.bot import SubscriberBot
    from monitor.notify import TelegramConfigError

    config = load_config(config_path)
    if not config.telegram_token:
        raise ConfigError(["MONITOR_TELEGRAM_TOKEN is not set: the bot needs a token from @BotFather"])
    engine = open_database(config.database_url)
    app = SubscriberBot(config, engine, now).application(config.telegram_token)
    try:
        if webhook_url:
            app.run_webhook(listen=listen, port=port, webhook_url=webhook_url, url_path="telegram")
        else:
            app.run_polling()
    except InvalidToken:
        raise TelegramConfigError(f"Telegram refused the bot token ({TOKEN_ENV})") from None
    except NetworkError as exc:
        api = config.settings.telegram.api_url
        raise TelegramConfigError(f"cannot reach the Telegram Bot API at {api}: {exc.message}") from None
