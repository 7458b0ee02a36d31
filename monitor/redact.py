"""Secrets out of every message: the bot token and any password in a URL.

Pure: takes text (and the secrets known to the caller) and returns text. Applied where a message leaves the
program (the one-line errors, the log handler) and where one is stored (a feed's or a part's last error), so
neither stderr, the logs nor the database ever hold a token or a password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from monitor.env import DATABASE_ENV, TOKEN_ENV

MASK = "***"

# user:password@ in any URL; a Bot API path `/bot<id>:<secret>/`.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^\s/:@]*):(?P<secret>[^\s/@]+)@", re.IGNORECASE)
_BOT_PATH = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with each of `secrets`, every URL password and every Bot API token path masked."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return _BOT_PATH.sub(f"/bot{MASK}", text)


def environment_secrets(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The secrets the environment hands the monitor: the bot token and the database password."""
    env = os.environ if env is None else env
    return secrets_of(env.get(TOKEN_ENV), env.get(DATABASE_ENV, ""))


def secrets_of(token: str | None, database_url: str) -> tuple[str, ...]:
    """The secrets in a configuration: its bot token and its database password."""
    found = [(token or "").strip(), url_password(database_url)]
    return tuple(secret for secret in found if secret)


def url_password(url: str) -> str:
    """The password in a database URL, or ""."""
    if not url:
        return ""
    from sqlalchemy.engine import make_url  # here, not at import: the command line starts without SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    try:
        return str(make_url(url).password or "")
    except (ArgumentError, ValueError):  # unparsable: the pattern in `redact` still masks user:pass@
        return ""
