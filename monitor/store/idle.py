"""What a cron run can do from the SQLite file alone, before SQLAlchemy loads: answer a run with nothing due,
or lease a busy run's first feeds.

Most runs of `monitor poll` from cron find no feed due. The full run first loads SQLAlchemy and the models, makes
the database agree with feeds.yaml and frees the leases of dead workers; before it, `monitor poll` (without
`--force` or `--source`) asks `idle_run`, which records the run and returns its id only when the database file
says for sure that the full run would do nothing else:
- the database is a local SQLite file at the schema revision this code writes (`monitor.store.revisions`);
- the last run ended, and it synced a feeds.yaml byte for byte like this one, read by this version of the code
  (`poll_run.config_digest`, migration 0010);
- no feed is leased, and no enabled feed is due by `now`.
`monitor run` also asks whether the digests would do nothing (`digests=True`): no part waits in the outbox, no
admin chat is configured, every subscriber that is not `instant` is not due, and no `instant` one has an event
it was not told yet; without a Telegram token, the standard-output subscriber exists already. Then no digest
is composed and nothing is sent (nor is Telegram asked anything: a rejected token shows at the next digest).
Anything else (another database, a changed feeds.yaml, a busy or unreadable file) returns None having written
nothing, and the full run decides. The checks and the write are one `BEGIN IMMEDIATE` transaction, so a run at
work (its feeds leased) or starting (its sync under way) is seen or waited for; the run lock is not needed.

`lease_first_batch` leases a poll's first batch of due feeds (`monitor.head_start` fetches them while the rest
of the run loads) under the same conditions but the last: the full run's sync of feeds.yaml would then change
nothing the lease reads, and it leases no feed twice, as the full run leases past the batch it is handed.
`record_quiet_run` records such a poll whose every feed (all due) answered a plain 304, as the full run records it.
Reads the clock it is given and the files it is pointed at, nothing else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from monitor.digest import STDOUT_CHAT, USER_KINDS, is_due
from monitor.env import DATABASE_ENV, DEFAULT_DATABASE_URL, TOKEN_ENV, config_digest, config_path, sqlite_file
from monitor.store.revisions import head_revision

_BUSY_SECONDS = 2.0  # a writer holding the file longer: the full run waits its turn instead

# SQLite stores times as SQLAlchemy writes them for `UTCDateTime`: UTC, no offset, always with microseconds
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_POLLED = "in_config AND enabled AND health != 'disabled'"  # the feeds `sources.due_sources` chooses from
_DUE_BY = "(next_poll_at IS NULL OR next_poll_at <= :now)"
_DUE = f"SELECT 1 FROM source WHERE {_POLLED} AND {_DUE_BY} LIMIT 1"
_LEASE = (  # sources.lease_due_sources' choice, in its order ({due}: the schedule's condition, unless forced)
    f"SELECT id, url, etag, last_modified, body_hash, last_status_code FROM source WHERE {_POLLED} {{due}}"
    "AND (lease_expires_at IS NULL OR lease_expires_at <= :now) ORDER BY id LIMIT :limit"
)
_UNSENT = (
    "SELECT 1 FROM digest_part p JOIN digest d ON d.id = p.digest_id WHERE d.state = 'pending' AND p.sent_at IS NULL "
    "LIMIT 1"
)
_UNTOLD = (  # an event an instant subscriber would be told now (pending_events in monitor.store.outbox)
    "SELECT 1 FROM subscriber s JOIN event e ON e.id > s.last_event_id "
    f"WHERE s.active AND s.frequency = 'instant' AND e.kind IN ({', '.join('?' * len(USER_KINDS))}) "
    "AND NOT EXISTS (SELECT 1 FROM digest_event t WHERE t.subscriber_id = s.id AND t.event_id = e.id) LIMIT 1"
)


def idle_run(
    explicit_config: str | None,
    env: Mapping[str, str],
    now: datetime,
    *,
    busy_seconds: float = _BUSY_SECONDS,
    digests: bool = False,
) -> int | None:
    """Record a run that found nothing due (and, with `digests`, no digest to compose or send) and return its id,
    or None (nothing written) unless sure. A database that another writer holds for longer than `busy_seconds`
    is left to the full run, which waits its turn."""
    try:
        text = config_path(explicit_config, env).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    settings = _settings(text)
    if settings is None:
        return None
    database = sqlite_file(env.get(DATABASE_ENV) or _database_url(settings))
    if database is None or not database.is_file():
        return None
    quiet = None
    if digests:
        zone = _digest_zone(settings)
        if zone is None:
            return None
        quiet = DigestsQuiet(zone, bool(env.get(TOKEN_ENV)))
    try:
        return _record_if_idle(database, config_digest(text), now, busy_seconds, quiet)
    except sqlite3.Error:
        return None


class DigestsQuiet:
    """Whether the digests of a run would compose and send nothing (see the module's notes)."""

    def __init__(self, zone: tzinfo, token: bool) -> None:
        self.zone, self.token = zone, token

    @classmethod
    def of(cls, zone: str, admin_chats: bool, token: bool) -> DigestsQuiet | None:
        """From loaded settings; None where the full run decides (admin chats get feed alerts every run)."""
        return None if admin_chats else cls(ZoneInfo(zone), token)

    def holds(self, connection: sqlite3.Connection, now: datetime) -> bool:
        if (
            not self.token
            and not connection.execute("SELECT 1 FROM subscriber WHERE chat_id = ?", (STDOUT_CHAT,)).fetchone()
        ):
            return False  # the full run adds the standard-output subscriber
        if connection.execute(_UNSENT).fetchone() or connection.execute(_UNTOLD, USER_KINDS).fetchone():
            return False
        scheduled = connection.execute(
            "SELECT frequency, hour, last_digest_at FROM subscriber WHERE active AND frequency != 'instant'"
        )
        return not any(is_due(f, h, _time(last), now, self.zone) for f, h, last in scheduled)


def _record_if_idle(
    database: Path, digest: str, now: datetime, busy_seconds: float, quiet: DigestsQuiet | None = None
) -> int | None:
    with _immediate(database, busy_seconds) as connection:
        stamp = now.astimezone(UTC).strftime(_TIME_FORMAT)
        if (
            not _settled(connection, digest)
            or connection.execute(_DUE, {"now": stamp}).fetchone()
            or (quiet is not None and not quiet.holds(connection, now))
        ):
            return None
        cursor = connection.execute(
            "INSERT INTO poll_run (started_at, finished_at, forced, feeds_due, feeds_ok, feeds_not_modified, "
            "feeds_failed, items_new, items_updated, config_digest) VALUES (?, ?, 0, 0, 0, 0, 0, 0, 0, ?)",
            (stamp, stamp, digest),
        )
        connection.execute("COMMIT")
        return cursor.lastrowid


class FirstBatch(NamedTuple):
    rows: list[tuple[str, str, str | None, str | None, str | None]]  # id, URL, ETag, Last-Modified, body digest
    complete: bool  # every feed due is in it


def lease_first_batch(
    database_url: str, digest: str, now: datetime, owner: str, lease_seconds: float, limit: int, *, force: bool
) -> FirstBatch | None:
    """Lease a poll's first `limit` feeds to `owner`, as `sources.lease_due_sources` chooses them, and return
    each one's id, URL, ETag, Last-Modified and body digest (those whose last answer was a 200 first); None
    (nothing written) unless the file is settled as `idle_run` requires it (at this code's revision, the last run
    ended having synced this very feeds.yaml, no feed leased), so that the full run's sync of the feeds would
    change nothing this lease read."""
    database = sqlite_file(database_url)
    if database is None or not database.is_file():
        return None
    try:
        with _immediate(database, _BUSY_SECONDS) as connection:
            if not _settled(connection, digest):
                return None
            stamp = now.astimezone(UTC).strftime(_TIME_FORMAT)
            due = "" if force else f"AND {_DUE_BY} "
            rows = connection.execute(_LEASE.format(due=due), {"now": stamp, "limit": limit + 1}).fetchall()
            complete = len(rows) <= limit
            # Those that brought a body last time first (stably): the likeliest to bring news, which the poll
            # then has soonest, and which ends at once the wait for a poll of 304s alone (`HeadStart.quiet`)
            chosen = sorted(rows[:limit], key=lambda row: row[5] != 200)
            until = (now + timedelta(seconds=lease_seconds)).astimezone(UTC).strftime(_TIME_FORMAT)
            leases = [(owner, until, row[0]) for row in chosen]
            connection.executemany("UPDATE source SET lease_owner = ?, lease_expires_at = ? WHERE id = ?", leases)
            connection.execute("COMMIT")
            return FirstBatch([row[:5] for row in chosen], complete)
    except sqlite3.Error:
        return None  # nothing written: the full run decides


class NotModified(NamedTuple):
    """A feed of a head start's batch that answered a plain 304, and when it is polled next."""

    source_id: str
    duration_ms: int
    next_poll_at: datetime


def record_quiet_run(
    database_url: str,
    owner: str,
    started_at: datetime,
    now: datetime,
    *,
    forced: bool,
    digest: str,
    feeds: Sequence[str],
    plan: Callable[[str, float], NotModified],
    digests: DigestsQuiet | None = None,
) -> tuple[int, list[NotModified]] | None:
    """Record a run whose every due feed, all leased to `owner` (a complete first batch), answered a plain 304, as
    the full run records it (`sources.start_run`, `sources.record_not_modified`, `sources.finish_run`): the run,
    each feed's poll and next poll (in the order of `feeds`, as they answered), its lease freed. `plan(feed id, its
    interval)` says when each is polled next. Returns the run's id and each feed's plan; None (nothing written)
    unless the feeds held are the run's `feeds` and, given `digests` (`monitor run`), they would compose and send
    nothing."""
    database = sqlite_file(database_url)
    if database is None:
        return None
    at = now.astimezone(UTC).strftime(_TIME_FORMAT)
    try:
        with _immediate(database, _BUSY_SECONDS) as connection:
            held = dict(connection.execute("SELECT id, interval_seconds FROM source WHERE lease_owner = ?", (owner,)))
            if held.keys() != set(feeds) or len(feeds) != len(held):
                return None
            if digests is not None and not digests.holds(connection, now):
                return None
            answers = [plan(source_id, held[source_id]) for source_id in feeds]
            run_id = connection.execute(
                "INSERT INTO poll_run (started_at, finished_at, forced, feeds_due, feeds_ok, feeds_not_modified, "
                "feeds_failed, items_new, items_updated, config_digest) VALUES (?, ?, ?, ?, 0, ?, 0, 0, 0, ?)",
                (started_at.astimezone(UTC).strftime(_TIME_FORMAT), at, forced, len(answers), len(answers), digest),
            ).lastrowid
            assert run_id is not None  # set by every INSERT
            nexts = [(a, a.next_poll_at.astimezone(UTC).strftime(_TIME_FORMAT)) for a in answers]
            connection.executemany(_NOT_MODIFIED, [(at, at, n, a.source_id) for a, n in nexts])
            connection.executemany(_FEED_POLL, [(run_id, a.source_id, at, a.duration_ms, n) for a, n in nexts])
            connection.execute("COMMIT")
            return run_id, answers
    except sqlite3.Error:
        return None


_FEED_POLL = (  # sources.record_not_modified's insert
    "INSERT INTO feed_poll (run_id, source_id, polled_at, outcome, status_code, error, items_seen, items_new, "
    "items_updated, duration_ms, next_poll_at) VALUES (?, ?, ?, 'not-modified', 304, NULL, 0, 0, 0, ?, ?)"
)
_NOT_MODIFIED = (  # sources.record_not_modified's update
    "UPDATE source SET last_polled_at = ?, last_success_at = ?, consecutive_failures = 0, disabled_reason = NULL, "
    "next_poll_at = ?, health = 'ok', last_status_code = 304, last_error = NULL, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE id = ?"
)


def release_leases(database_url: str, owner: str) -> None:
    """Free the feeds `owner` holds: a head start whose poll never ran (stopped while loading). Where the file
    cannot be written now, the next run frees them, as a dead holder's."""
    database = sqlite_file(database_url)
    if database is None:
        return
    try:
        with _immediate(database, _BUSY_SECONDS) as connection:
            free = "UPDATE source SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?"
            connection.execute(free, (owner,))
            connection.execute("COMMIT")
    except sqlite3.Error:
        pass


@contextmanager
def _immediate(database: Path, timeout: float) -> Iterator[sqlite3.Connection]:
    """A read-write connection to `database` in a `BEGIN IMMEDIATE` transaction, so that a run at work or starting
    is seen or waited for; what the block does not commit is rolled back as the connection closes."""
    connection = sqlite3.connect(f"{database.absolute().as_uri()}?mode=rw", uri=True, timeout=timeout)
    try:
        connection.isolation_level = None  # transactions as written
        connection.execute("BEGIN IMMEDIATE")
        yield connection
    finally:
        connection.close()


def _settled(connection: sqlite3.Connection, digest: str) -> bool:
    """At this code's schema revision, the last run ended and synced a feeds.yaml of this digest, no feed leased."""
    head = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    last = connection.execute("SELECT finished_at, config_digest FROM poll_run ORDER BY id DESC LIMIT 1").fetchone()
    return (
        head == [(head_revision(),)]
        and last is not None
        and last[0] is not None
        and last[1] == digest
        and not connection.execute("SELECT 1 FROM source WHERE lease_owner IS NOT NULL LIMIT 1").fetchone()
    )


def _settings(text: str) -> dict[str, Any] | None:
    """feeds.yaml's settings ({} where it has none); None where the file cannot say."""
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    settings = data.get("settings", {}) if isinstance(data, dict) else None
    return settings if isinstance(settings, dict) else None


def _database_url(settings: Mapping[str, Any]) -> str:
    """settings.database_url ('' where it is not text)."""
    url = settings.get("database_url", DEFAULT_DATABASE_URL)
    return url if isinstance(url, str) else ""


def _digest_zone(settings: Mapping[str, Any]) -> tzinfo | None:
    """The digests' time zone, settings.digest.timezone; None where the settings of digests and admin chats
    are anything but plain (admin chats get feed alerts every run: the full run decides)."""
    digest, telegram = settings.get("digest", {}), settings.get("telegram", {})
    if not isinstance(digest, dict) or not isinstance(telegram, dict) or telegram.get("admin_chats"):
        return None
    try:
        return ZoneInfo(str(digest.get("timezone", "UTC")))
    except (KeyError, ValueError, OSError):  # not a zone name (the full run says what is wrong)
        return None


def _time(stamp: str | None) -> datetime | None:
    """A stored time; None (never: the digest counts as due) where it is missing or not as SQLAlchemy writes it."""
    try:
        return datetime.strptime(stamp, _TIME_FORMAT).replace(tzinfo=UTC) if stamp else None
    except (TypeError, ValueError):
        return None
