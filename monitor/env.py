"""The environment variables the monitor reads, by name, and the configuration file they point at: importable
without loading anything else."""

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from monitor import __version__

SQLITE_PREFIX = "sqlite:///"

CONFIG_ENV = "MONITOR_CONFIG"
DATABASE_ENV = "MONITOR_DATABASE_URL"
TOKEN_ENV = "MONITOR_TELEGRAM_TOKEN"
API_URL_ENV = "MONITOR_TELEGRAM_API_URL"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "feeds.yaml"
DEFAULT_DATABASE_URL = "sqlite:///monitor.db"  # settings.database_url when feeds.yaml names none


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The file to read: an explicit path, then $MONITOR_CONFIG, then ./feeds.yaml, then the bundled default."""
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    local = Path("feeds.yaml")
    return local if local.exists() else DEFAULT_CONFIG_PATH


def config_digest(text: str) -> str:
    """What a poll records of the feeds.yaml it synced (`poll_run.config_digest`): the file's text and the code's
    version."""
    return hashlib.sha256(f"{__version__}\0{text}".encode()).hexdigest()


def sqlite_file(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL (relative to the working folder, as SQLAlchemy has it); None for
    any other database, an in-memory one, or a URL with options or escapes, which only SQLAlchemy should read."""
    if not url.startswith(SQLITE_PREFIX) or any(c in url for c in "?%#"):
        return None
    path = url[len(SQLITE_PREFIX) :]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser()
