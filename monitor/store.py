"""Every database read and write. Functions take a keyword-only `session`; callers own the transaction.

Portable SQL only (SQLAlchemy Core/ORM): nothing here is specific to SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor import config, models
from monitor.parse import Item as ParsedItem
from monitor.schedule import Schedule

_CHUNK = 500


@dataclass(frozen=True)
class SavedItems:
    new: int
    updated: int
    unchanged: int
    changed: tuple[models.Item, ...] = ()  # the new and updated rows, flushed (they have ids)


def sync_sources(sources: Sequence[config.Source], default_interval: float, now: datetime, *, session: Session) -> None:
    """Make the source table agree with feeds.yaml, keeping each feed's fetch state and URL history."""
    existing = {row.id: row for row in session.exec(select(models.Source))}
    configured = set()
    for source in sources:
        configured.add(source.id)
        row = existing.get(source.id)
        if row is None:
            row = models.Source(
                id=source.id,
                name=source.name,
                url=source.url,
                config_url=source.url,
                tier=source.tier,
                language=source.language,
                interval_seconds=0.0,
            )
        elif row.config_url != source.url:
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


def all_sources(*, session: Session) -> list[models.Source]:
    return list(session.exec(select(models.Source).order_by(col(models.Source.id))))


def get_source(source_id: str, *, session: Session) -> models.Source | None:
    return session.get(models.Source, source_id)


def save_items(source_id: str, items: Sequence[ParsedItem], now: datetime, *, session: Session) -> SavedItems:
    """Insert new items, update edited ones in place (keeping the earlier version), skip unchanged ones."""
    existing: dict[str, models.Item] = {}
    keys = [item.key for item in items]
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(models.Item).where(models.Item.source_id == source_id, col(models.Item.key).in_(chunk))
        existing.update((row.key, row) for row in session.exec(query))
    stories = _stories({item.canonical_url for item in items if item.canonical_url}, now, session=session)
    new = updated = 0
    changed: list[models.Item] = []
    for item in items:
        row = existing.get(item.key)
        story_id = stories.get(item.canonical_url) if item.canonical_url else None
        if row is None:
            row = models.Item(
                source_id=source_id,
                key=item.key,
                guid=item.guid,
                link=item.link,
                canonical_url=item.canonical_url,
                story_id=story_id,
                title=item.title,
                summary=item.summary,
                author=item.author,
                published_at=item.published or now,
                published_fallback=item.published_flag,
                first_seen_at=now,
                updated_at=now,
                version=1,
                content_hash=item.content_hash,
            )
            session.add(row)
            changed.append(row)
            new += 1
        elif row.content_hash != item.content_hash:
            assert row.id is not None
            session.add(
                models.ItemVersion(
                    item_id=row.id,
                    version=row.version,
                    title=row.title,
                    summary=row.summary,
                    link=row.link,
                    published_at=row.published_at,
                    content_hash=row.content_hash,
                    seen_from=row.updated_at,
                    replaced_at=now,
                )
            )
            row.title, row.summary, row.link, row.author = item.title, item.summary, item.link, item.author
            row.canonical_url, row.story_id = item.canonical_url, story_id
            if item.published is not None:
                row.published_at, row.published_fallback = item.published, None
            row.version += 1
            row.content_hash, row.updated_at = item.content_hash, now
            session.add(row)
            changed.append(row)
            updated += 1
    session.flush()
    return SavedItems(new=new, updated=updated, unchanged=len(items) - new - updated, changed=tuple(changed))


def _stories(urls: set[str], now: datetime, *, session: Session) -> dict[str, int]:
    """Story ids for canonical URLs, creating the stories not seen before."""
    found: dict[str, int] = {}
    ordered = sorted(urls)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        query = select(models.Story).where(col(models.Story.canonical_url).in_(chunk))
        found.update((story.canonical_url, story.id) for story in session.exec(query) if story.id is not None)
    missing = [url for url in ordered if url not in found]
    for url in missing:
        story = models.Story(canonical_url=url, first_seen_at=now)
        session.add(story)
    if missing:
        session.flush()
        query = select(models.Story).where(col(models.Story.canonical_url).in_(missing))
        found.update((story.canonical_url, story.id) for story in session.exec(query) if story.id is not None)
    return found


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
    session.add(source)


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
        session.add(source)
    session.add(models.FeedPoll(run_id=run_id, source_id=source_id, polled_at=now, outcome="failed", error=error))


def start_run(now: datetime, forced: bool, due: int, *, session: Session) -> models.PollRun:
    run = models.PollRun(started_at=now, forced=forced, feeds_due=due)
    session.add(run)
    session.flush()
    return run


def record_feed_poll(poll: models.FeedPoll, *, session: Session) -> None:
    session.add(poll)


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


def count_items(*, session: Session, source_id: str | None = None) -> int:
    query = select(sa.func.count()).select_from(models.Item)
    if source_id:
        query = query.where(models.Item.source_id == source_id)
    return int(session.exec(query).one())


def item_counts_by_source(*, session: Session) -> dict[str, int]:
    rows = session.exec(select(models.Item.source_id, sa.func.count()).group_by(models.Item.source_id)).all()
    return {source_id: int(n) for source_id, n in rows}


def recent_items(limit: int, *, session: Session) -> list[models.Item]:
    query = select(models.Item).order_by(col(models.Item.published_at).desc(), col(models.Item.id)).limit(limit)
    return list(session.exec(query))


def stats(*, session: Session) -> dict[str, int]:
    """Headline numbers for admins."""

    def count(model: Any, *where: Any) -> int:
        return int(session.exec(select(sa.func.count()).select_from(model).where(*where)).one())

    return {
        "feeds": count(models.Source, col(models.Source.in_config)),
        "feeds failing": count(models.Source, col(models.Source.in_config), models.Source.health == "failing"),
        "feeds disabled": count(models.Source, col(models.Source.in_config), models.Source.health == "disabled"),
        "items": count(models.Item),
        "matches": count(models.ItemMatch),
        "status changes": count(models.StatusChange),
        "subscribers": count(models.Subscriber, col(models.Subscriber.active)),
        "digests sent": count(models.Digest, models.Digest.state == "sent"),
    }
