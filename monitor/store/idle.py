"""A cron run with nothing due, answered from the SQLite file alone: no SQLAlchemy, no sync, no parser.

Most runs of `monitor poll` from cron find no feed due. The full run first loads SQLAlchemy and the models, makes
the database agree with feeds.yaml and frees the leases of dead workers; before it, `monitor poll` (without
`--force` or `--source`) asks `idle_run`, which records the run and returns its id only when the database file
says for sure that the full run would do nothing else:
- the database is a local SQLite file at the schema revision this code writes (`monitor.store.revisions`);
- the last run ended, and it synced a feeds.yaml byte for byte like this one, read by this version of the code
  (`poll_run.config_digest`, migration 0010);
- no feed is leased, no item waits for the full-text index, and no enabled feed is due by `now`.
Anything else (another database, a changed feeds.yaml, a busy or unreadable file) returns None having written
nothing, and the full run decides. The checks and the write are one `BEGIN IMMEDIATE` transaction, so a run at
work (its feeds leased) or starting (its sync under way) is seen or waited for; the run lock is not needed.
Reads the clock it is given and the files it is pointed at, nothing else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from monitor.env import DATABASE_ENV, DEFAULT_DATABASE_URL, config_digest, config_path
from monitor.store.revisions import head_revision

_SQLITE = "sqlite:///"
_BUSY_SECONDS = 2.0  # a writer holding the file longer: the full run waits its turn instead

# SQLite stores times as SQLAlchemy writes them for `UTCDateTime`: UTC, no offset, always with microseconds
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_DUE = (
    "SELECT 1 FROM source WHERE in_config AND enabled AND health != 'disabled' "
    "AND (next_poll_at IS NULL OR next_poll_at <= ?) LIMIT 1"
)


def idle_run(
    explicit_config: str | None, env: Mapping[str, str], now: datetime, *, busy_seconds: float = _BUSY_SECONDS
) -> int | None:
    """Record a run that found nothing due and return its id, or None (nothing written) unless sure. A database
    that another writer holds for longer than `busy_seconds` is left to the full run, which waits its turn."""
    try:
        text = config_path(explicit_config, env).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    database = _sqlite_file(env.get(DATABASE_ENV) or _database_url(text))
    if database is None or not database.is_file():
        return None
    try:
        return _record_if_idle(database, config_digest(text), now, busy_seconds)
    except sqlite3.Error:
        return None


def _record_if_idle(database: Path, digest: str, now: datetime, busy_seconds: float) -> int | None:
    connection = sqlite3.connect(f"{database.absolute().as_uri()}?mode=rw", uri=True, timeout=busy_seconds)
    try:
        connection.isolation_level = None  # transactions as written below
        connection.execute("BEGIN IMMEDIATE")
        stamp = now.astimezone(UTC).strftime(_TIME_FORMAT)
        head = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        last = connection.execute("SELECT finished_at, config_digest FROM poll_run ORDER BY id DESC LIMIT 1").fetchone()
        if (
            head != [(head_revision(),)]
            or last is None
            or last[0] is None
            or last[1] != digest
            or connection.execute("SELECT 1 FROM source WHERE lease_owner IS NOT NULL LIMIT 1").fetchone()
            or connection.execute("SELECT 1 FROM item_fts_pending LIMIT 1").fetchone()
            or connection.execute(_DUE, (stamp,)).fetchone()
        ):
            connection.execute("ROLLBACK")
            return None
        cursor = connection.execute(
            "INSERT INTO poll_run (started_at, finished_at, forced, feeds_due, feeds_ok, feeds_not_modified, "
            "feeds_failed, items_new, items_updated, config_digest) VALUES (?, ?, 0, 0, 0, 0, 0, 0, 0, ?)",
            (stamp, stamp, digest),
        )
        connection.execute("COMMIT")
        return cursor.lastrowid
    finally:
        connection.close()


def _database_url(text: str) -> str:
    """settings.database_url as feeds.yaml gives it ('' where the file cannot say)."""
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return ""
    settings = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(settings, dict) or "database_url" not in settings:
        return DEFAULT_DATABASE_URL
    url = settings["database_url"]
    return url if isinstance(url, str) else ""


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL (relative to the working folder, as SQLAlchemy has it); None for
    any other database, an in-memory one, or a URL with options or escapes, which only SQLAlchemy should read."""
    if not url.startswith(_SQLITE) or any(c in url for c in "?%#"):
        return None
    path = url[len(_SQLITE) :]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser()
