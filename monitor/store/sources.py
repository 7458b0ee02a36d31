"""Feeds (the `source` table), their leases and health, and the record of each poll run: reads and writes.

Functions take a keyword-only `session`; callers own the transaction. Portable SQL only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor import config
from monitor.schedule import Schedule
from monitor.store import models
from monitor.store.items import insert_new

NOT_MODIFIED = 304


def sync_sources(
    sources: Sequence[config.SourceConfig], default_interval: float, now: datetime, *, session: Session
) -> None:
    """Make the source table agree with feeds.yaml, keeping each feed's fetch state and URL history."""
    existing = {row.id: row for row in session.exec(select(models.Source).order_by(col(models.Source.id)))}
    fresh = [
        {"id": source.id, "name": source.name, "url": source.url, "config_url": source.url, "tier": source.tier,
         "language": source.language, "interval_seconds": 0.0, "enabled": True, "in_config": True, "health": "new",
         "consecutive_failures": 0}
        for source in sources
        if source.id not in existing
    ]  # fmt: skip
    if fresh:
        insert_new(models.Source, fresh, ["id"], session=session)
        query = select(models.Source).where(col(models.Source.id).in_([row["id"] for row in fresh]))
        existing.update((row.id, row) for row in session.exec(query))
    configured = set()
    for source in sources:
        configured.add(source.id)
        row = existing[source.id]
        if row.config_url != source.url:
            session.add(
                models.SourceURL(
                    source_id=row.id,
                    url=row.url,
                    replaced_by=source.url,
                    reason="changed in feeds.yaml",
                    replaced_at=now,
                )
            )
            row.url = row.config_url = source.url
            row.etag = row.last_modified = None
            row.health, row.disabled_reason, row.consecutive_failures, row.next_poll_at = "new", None, 0, None
        row.name, row.tier, row.language = source.name, source.tier, source.language
        row.interval_seconds = source.interval or default_interval
        row.enabled, row.in_config = source.enabled, True
        session.add(row)
    for source_id, row in existing.items():
        if source_id not in configured and row.in_config:
            row.in_config = False
            session.add(row)


def due_sources(
    now: datetime, *, session: Session, only: Iterable[str] | None = None, force: bool = False
) -> list[models.Source]:
    """Feeds to poll now: enabled, configured and due; `force` ignores the schedule, `only` narrows the set.

    A feed disabled by a 410 is polled again only when named in `only`.
    """
    query = select(models.Source).where(col(models.Source.in_config)).order_by(col(models.Source.id))
    named = set(only or ())
    if named:
        query = query.where(col(models.Source.id).in_(named))
    else:
        query = query.where(col(models.Source.enabled), models.Source.health != "disabled")
    rows = list(session.exec(query))
    if force:
        return rows
    return [row for row in rows if row.next_poll_at is None or row.next_poll_at <= now]


def lease_due_sources(
    now: datetime,
    owner: str,
    lease_seconds: float,
    limit: int,
    *,
    session: Session,
    only: Iterable[str] | None = None,
    force: bool = False,
    skip: Iterable[str] = (),
) -> list[models.Source]:
    """Lease up to `limit` feeds to poll now (as `due_sources` chooses them) to `owner` until `now` plus
    `lease_seconds`: on PostgreSQL `FOR UPDATE SKIP LOCKED`, so that workers choosing at once take different
    feeds; a feed leased by a worker that died is free again once its lease expired. `skip`: feeds this
    worker already polled in this run (a forced poll would otherwise take them again)."""
    source = models.Source
    query = select(source).where(col(source.in_config)).order_by(col(source.id)).limit(limit)
    named = set(only or ())
    if named:
        query = query.where(col(source.id).in_(named))
    else:
        query = query.where(col(source.enabled), source.health != "disabled")
    if not force:
        query = query.where(sa.or_(col(source.next_poll_at).is_(None), col(source.next_poll_at) <= now))
    if skip:
        query = query.where(col(source.id).not_in(list(skip)))
    query = query.where(sa.or_(col(source.lease_expires_at).is_(None), col(source.lease_expires_at) <= now))
    rows = list(session.exec(query.with_for_update(skip_locked=True)))
    until = now + timedelta(seconds=lease_seconds)
    for row in rows:
        row.lease_owner, row.lease_expires_at = owner, until
        session.add(row)
    return rows


def release_lease(source: models.Source) -> None:
    source.lease_owner = source.lease_expires_at = None


def holders(holder: Any, *, session: Session) -> list[str]:
    """Who holds rows now, by a holder column: `Source.lease_owner` (feeds) or `Digest.claimed_by` (digests)."""
    return [owner for owner in session.exec(select(holder).where(col(holder).is_not(None)).distinct()) if owner]


def release(holder: Any, until: Any, owners: Sequence[str], *, session: Session) -> None:
    """Free every row these holders hold (a run that ends, or holders known to be dead)."""
    if owners:
        table = holder.class_
        session.exec(sa.update(table).where(col(holder).in_(list(owners))).values({holder: None, until: None}))


def lease_owners(*, session: Session) -> list[str]:
    return holders(models.Source.lease_owner, session=session)


def release_leases(owners: Sequence[str], *, session: Session) -> None:
    release(models.Source.lease_owner, models.Source.lease_expires_at, owners, session=session)


def all_sources(*, session: Session) -> list[models.Source]:
    return list(session.exec(select(models.Source).order_by(col(models.Source.id))))


def get_source(source_id: str, *, session: Session) -> models.Source | None:
    return session.get(models.Source, source_id)


def load_sources(source_ids: Sequence[str], *, session: Session) -> list[models.Source]:
    """Read these feeds' rows in one query: while the caller holds the list, `get_source` finds each in the
    session (which holds its rows only weakly) without a query of its own."""
    return list(session.exec(select(models.Source).where(col(models.Source.id).in_(source_ids))).all())


def record_success(
    source: models.Source,
    *,
    session: Session,
    now: datetime,
    schedule: Schedule,
    status: int | None,
    etag: str | None,
    last_modified: str | None,
    warning: str | None = None,
    feed_title: str | None = None,
    feed_link: str | None = None,
) -> None:
    source.last_polled_at = source.last_success_at = now
    source.next_poll_at, source.consecutive_failures, source.health = (
        schedule.next_poll_at,
        0,
        schedule.health,
    )
    source.disabled_reason = None
    source.last_status_code, source.last_error = status, warning
    if status == 200:
        source.etag, source.last_modified = etag, last_modified
    source.feed_title = feed_title or source.feed_title
    source.feed_link = feed_link or source.feed_link
    release_lease(source)
    session.add(source)


@dataclass(frozen=True)
class NotModified:
    """A feed that answered 304: when it is polled next, and how long the request took."""

    source_id: str
    plan: Schedule
    duration_ms: int


def intervals(source_ids: Sequence[str], *, session: Session) -> dict[str, int | None]:
    """Each feed's own poll interval (None: the configuration's), in one query."""
    source = models.Source.__table__  # type: ignore[attr-defined]
    query = sa.select(source.c.id, source.c.interval_seconds).where(source.c.id.in_(source_ids))
    return {row.id: row.interval_seconds for row in session.execute(query)}


def record_not_modified(run_id: int, answers: Sequence[NotModified], now: datetime, *, session: Session) -> None:
    """What `record_success` and `record_feed_poll` write for a 304, for many feeds in two statements and no
    ORM object per feed: a warm poll spent a third of its storing CPU building and flushing those."""
    source, poll = models.Source.__table__, models.FeedPoll.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(source)
        .where(source.c.id == sa.bindparam("feed"))
        .values(
            last_polled_at=now,
            last_success_at=now,
            consecutive_failures=0,
            disabled_reason=None,
            next_poll_at=sa.bindparam("next"),
            health=sa.bindparam("new_health"),
            last_status_code=NOT_MODIFIED,
            last_error=None,
            lease_owner=None,
            lease_expires_at=None,
        ),
        [{"feed": a.source_id, "next": a.plan.next_poll_at, "new_health": a.plan.health} for a in answers],
    )
    session.execute(
        sa.insert(poll),
        [
            {
                "run_id": run_id,
                "source_id": a.source_id,
                "polled_at": now,
                "outcome": "not-modified",
                "status_code": NOT_MODIFIED,
                "error": None,
                "items_seen": 0,
                "items_new": 0,
                "items_updated": 0,
                "duration_ms": a.duration_ms,
                "next_poll_at": a.plan.next_poll_at,
            }
            for a in answers
        ],
    )


def record_failure(
    source: models.Source,
    *,
    session: Session,
    now: datetime,
    schedule: Schedule,
    status: int | None,
    error: str,
) -> None:
    source.last_polled_at = now
    source.next_poll_at, source.consecutive_failures, source.health = (
        schedule.next_poll_at,
        schedule.consecutive_failures,
        schedule.health,
    )
    source.last_status_code, source.last_error = status, error
    if schedule.health == "disabled":
        source.disabled_reason = schedule.reason
    release_lease(source)
    session.add(source)


def record_move(source: models.Source, new_url: str, reason: str, now: datetime, *, session: Session) -> None:
    """A permanent redirect: poll the new URL from now on and keep the old one on record."""
    if new_url == source.url:
        return
    session.add(
        models.SourceURL(source_id=source.id, url=source.url, replaced_by=new_url, reason=reason, replaced_at=now)
    )
    source.url = new_url
    session.add(source)


def reset_source(source_id: str, *, session: Session) -> bool:
    """Clear a feed's failures and disabled state so that the next poll takes it."""
    source = session.get(models.Source, source_id)
    if source is None:
        return False
    source.health, source.disabled_reason, source.consecutive_failures = "new", None, 0
    source.next_poll_at = None
    session.add(source)
    return True


def record_store_fault(source_id: str, run_id: int, now: datetime, error: str, *, session: Session) -> None:
    """A database fault while storing a feed: on the feed and its poll, leaving its schedule alone (the
    feed is not at fault, so its next poll retries at once and its failure count is not raised)."""
    source = session.get(models.Source, source_id)
    if source is not None:
        source.last_error = error
        release_lease(source)
        session.add(source)
    session.add(models.FeedPoll(run_id=run_id, source_id=source_id, polled_at=now, outcome="failed", error=error))


def start_run(
    now: datetime, forced: bool, due: int, *, session: Session, config_digest: str | None = None
) -> models.PollRun:
    """Open a run; `config_digest`: that of the feeds.yaml just synced (`monitor.store.idle` compares it)."""
    run = models.PollRun(started_at=now, forced=forced, feeds_due=due, config_digest=config_digest)
    session.add(run)
    session.flush()
    return run


_POLL_COLUMNS = ("run_id", "source_id", "polled_at", "outcome", "status_code", "error", "items_seen", "items_new",
                 "items_updated", "duration_ms", "next_poll_at")  # fmt: skip


def record_feed_polls(polls: Sequence[models.FeedPoll], *, session: Session) -> None:
    """Write these poll rows (never added to the session) in one statement: the ORM inserts its objects one at a
    time, to read back each one's id, which nothing here needs."""
    if polls:
        rows = [{name: getattr(poll, name) for name in _POLL_COLUMNS} for poll in polls]
        session.execute(sa.insert(models.FeedPoll.__table__), rows)  # type: ignore[attr-defined]


def finish_run(run_id: int, now: datetime, *, session: Session) -> models.PollRun:
    """Close a run, its counts taken from its feed polls (so a crash mid-run leaves them consistent)."""
    run = session.get(models.PollRun, run_id)
    assert run is not None
    counts = session.exec(
        select(
            models.FeedPoll.outcome,
            sa.func.count(),
            sa.func.sum(models.FeedPoll.items_new),
            sa.func.sum(models.FeedPoll.items_updated),
        )
        .where(models.FeedPoll.run_id == run_id)
        .group_by(models.FeedPoll.outcome)
    ).all()
    by_outcome = {outcome: (n, new or 0, updated or 0) for outcome, n, new, updated in counts}
    run.feeds_ok = by_outcome.get("ok", (0, 0, 0))[0]
    run.feeds_not_modified = by_outcome.get("not-modified", (0, 0, 0))[0]
    run.feeds_failed = by_outcome.get("failed", (0, 0, 0))[0]
    run.items_new = sum(value[1] for value in by_outcome.values())
    run.items_updated = sum(value[2] for value in by_outcome.values())
    run.finished_at = now
    session.add(run)
    return run
