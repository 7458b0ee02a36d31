"""The environment variables the monitor reads, by name, and the configuration file they point at: importable
without loading anything else."""

import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_ENV = "MONITOR_CONFIG"
DATABASE_ENV = "MONITOR_DATABASE_URL"
TOKEN_ENV = "MONITOR_TELEGRAM_TOKEN"
API_URL_ENV = "MONITOR_TELEGRAM_API_URL"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "feeds.yaml"


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The file to read: an explicit path, then $MONITOR_CONFIG, then ./feeds.yaml, then the bundled default."""
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    local = Path("feeds.yaml")
    return local if local.exists() else DEFAULT_CONFIG_PATH
