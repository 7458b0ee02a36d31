"""What every `monitor` command shares: the clock it reads, its options, and errors as one clean line each."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import click

from monitor.errors import DatabaseBusyError, MonitorError
from monitor.redact import environment_secrets, redact

F = TypeVar("F", bound=Callable[..., Any])
EXIT_BROKEN = 2  # configuration or database unusable


def now() -> datetime:
    """The one clock the commands read."""
    return datetime.now(UTC)


class CommandError(click.ClickException):
    """A monitor error as the user sees it: its lines, and exit status 2."""

    exit_code = EXIT_BROKEN

    def show(self, file: Any = None) -> None:
        for line in redact(self.message, environment_secrets()).splitlines():
            click.echo(f"error: {line}", err=True)


def handle_errors(function: F) -> F:
    """Turn a `MonitorError` into its one-line messages and exit status 2, never a traceback."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DatabaseBusyError as exc:
            command = click.get_current_context(silent=True)
            name = f"`{command.command_path}`" if command else "the command"
            raise CommandError(f"{exc}; nothing was written: run {name} again") from None
        except MonitorError as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:
            if not _database_error(exc):
                raise
            text = str(getattr(exc, "orig", None) or exc).splitlines()
            raise CommandError(f"database: {text[0] if text else type(exc).__name__}") from None

    return wrapper  # type: ignore[return-value]


def _database_error(exc: BaseException) -> bool:
    """Whether SQLAlchemy raised it, without importing SQLAlchemy for commands that never load it (--help)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Configuration file (default: $MONITOR_CONFIG, ./feeds.yaml, then the bundled feeds.yaml).",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Write JSON instead of a table.")(function)


class RedactSecrets(logging.Filter):
    """Mask the bot token and passwords wherever they would appear in a log line (httpx logs request URLs),
    and give a logged exception as its one line instead of a traceback."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:  # the exception's own line, not a traceback
            exc = record.exc_info[1]
            message += f" ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = redact(message, self.secrets), None
        return True


def setup_logging(secrets: tuple[str, ...] = (), level: int = logging.WARNING) -> None:
    """Warnings and errors to stderr; the token and passwords never appear."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def digests_said(composed: int, printed: int = 0, delivery: tuple[int, int, int, int] | None = None) -> str:
    """The line a run writes of its digests: parts printed without a token, else (sent, failed, deferred,
    subscribers deactivated) through Telegram."""
    if delivery is None:
        return f"digests: {composed} composed, {printed} parts printed"
    sent, failed, deferred, deactivated = delivery
    return (
        f"digests: {composed} composed; {sent} parts sent, {failed} failed, {deferred} deferred; "
        f"{deactivated} subscribers deactivated"
    )
