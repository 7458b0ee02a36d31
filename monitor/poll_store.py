"""The poll's store step: one feed's fetch result and parse outcome into the store in one transaction (its items,
their matches, the status changes they cause, the feed's record and its next poll), or many feeds that changed
nothing together in one.

The engine, the clock and the matcher are passed in by `monitor.pipeline`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from monitor import schedule
from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import DatabaseError, FetchHTTPError, MonitorError
from monitor.fetch import FetchResult
from monitor.match import Matcher
from monitor.parse import ParsedFeed
from monitor.parse_pool import ParseOutcome, body_digest
from monitor.redact import redact, secrets_of
from monitor.store import bulk, events, history, models, sources
from monitor.store.db import first_line, retrying


@dataclass(frozen=True)
class FeedOutcome:
    source_id: str
    outcome: str  # ok, not-modified or failed
    status: int | None = None
    error: str | None = None
    warning: str | None = None
    items_new: int = 0
    items_updated: int = 0
    changes: tuple[int, ...] = ()  # status changes this feed's reports created or confirmed
    moved_to: str | None = None
    health: str = "ok"
    next_poll_at: datetime | None = None


def store_result(
    config: Config,
    engine: Engine,
    clock: Clock,
    result: FetchResult,
    outcome: ParseOutcome,
    run_id: int,
    write_lock: threading.Lock,
    matcher: Matcher,
    fault: MonitorError | None = None,
) -> FeedOutcome:
    """Store one fetch result and its parse outcome, match its new and edited items and record what they
    change, all in one transaction. With `fault`, record only that failure on the feed."""
    now = clock()
    parsed = outcome if isinstance(outcome, ParsedFeed) and fault is None else None
    error: MonitorError | None = fault or result.error or (outcome if isinstance(outcome, MonitorError) else None)
    with write_lock:
        try:
            return retrying(lambda: _store_feed(config, engine, result, parsed, error, now, run_id, matcher))
        except (SQLAlchemyError, DatabaseError) as exc:
            message = redact(
                f"database, while storing feed {result.request.source_id!r}: {first_line(exc)}",
                secrets_of(config.telegram_token, config.database_url),
            )
            _record_database_fault(engine, result, run_id, now, message)
            return FeedOutcome(result.request.source_id, "failed", result.status, message)


def store_unchanged(
    config: Config,
    engine: Engine,
    clock: Clock,
    results: list[FetchResult],
    run_id: int,
    write_lock: threading.Lock,
) -> list[FeedOutcome]:
    """Record feeds that changed nothing (a 304, or the body stored last time) and schedule their next polls:
    one transaction for all of them, since each writes only its own feed's record and poll row."""
    now = clock()

    def write() -> list[FeedOutcome]:
        with Session(engine) as session:
            outcomes = [_store_in(config, session, result, None, None, now, run_id, None) for result in results]
            session.commit()
            return outcomes

    with write_lock:
        return retrying(write)


def _record_database_fault(engine: Engine, result: FetchResult, run_id: int, now: datetime, message: str) -> None:
    """Leave a database fault on the feed's record (its next poll is unchanged, so the next run retries it);
    when even that cannot be written, the run's summary still reports it."""
    try:
        with Session(engine) as session:
            sources.record_store_fault(result.request.source_id, run_id, now, message, session=session)
            session.commit()
    except (SQLAlchemyError, DatabaseError):
        pass


def _store_feed(
    config: Config,
    engine: Engine,
    result: FetchResult,
    parsed: ParsedFeed | None,
    error: MonitorError | None,
    now: datetime,
    run_id: int,
    matcher: Matcher,
) -> FeedOutcome:
    """Store one feed's result, match its new and edited items and record what they change: one transaction."""
    with Session(engine) as session:
        outcome = _store_in(config, session, result, parsed, error, now, run_id, matcher)
        session.commit()
        return outcome


def _store_in(
    config: Config,
    session: Session,
    result: FetchResult,
    parsed: ParsedFeed | None,
    error: MonitorError | None,
    now: datetime,
    run_id: int,
    matcher: Matcher | None,
) -> FeedOutcome:
    """Store one feed's result in the session (`matcher` is needed only when it has items)."""
    source = sources.get_source(result.request.source_id, session=session)
    assert source is not None
    if result.moved_to and error is None:  # a move to a URL that fails is not a move yet
        sources.record_move(source, result.moved_to, "permanent redirect (HTTP 301/308)", now, session=session)
    poll = models.FeedPoll(
        run_id=run_id,
        source_id=source.id,
        polled_at=now,
        status_code=result.status,
        duration_ms=int(result.elapsed * 1000),
        outcome="failed",
    )
    if error is not None:
        outcome = _store_failure(config, source, result, error, poll, now, session=session)
    else:
        outcome = _store_success(config, source, result, parsed, matcher, poll, now, session=session)
    poll.next_poll_at = outcome.next_poll_at
    sources.record_feed_poll(poll, session=session)
    return outcome


def _store_failure(
    config: Config,
    source: models.Source,
    result: FetchResult,
    error: MonitorError,
    poll: models.FeedPoll,
    now: datetime,
    *,
    session: Session,
) -> FeedOutcome:
    """Record a failed poll on the feed and schedule its retry; tell the admins when its health gets worse."""
    settings = config.settings.poll
    interval = schedule.base_interval(source.interval_seconds, settings)
    status = error.status if isinstance(error, FetchHTTPError) else result.status
    plan = schedule.after_failure(now, interval, source.consecutive_failures, settings, result.headers, status)
    message = redact(f"{type(error).__name__}: {error}", secrets_of(config.telegram_token, config.database_url))
    was = source.health
    sources.record_failure(source, session=session, now=now, schedule=plan, status=status, error=message)
    if plan.health in ("failing", "disabled") and was != plan.health:
        detail = {"source": source.name, "error": message, "failures": plan.consecutive_failures}
        events.add_event(f"feed-{plan.health}", now, detail, session=session, source_id=source.id)
    poll.error = message
    return FeedOutcome(
        source.id,
        "failed",
        status,
        message,
        health=plan.health,
        next_poll_at=plan.next_poll_at,
        moved_to=result.moved_to,
    )


def _store_success(
    config: Config,
    source: models.Source,
    result: FetchResult,
    parsed: ParsedFeed | None,
    matcher: Matcher | None,
    poll: models.FeedPoll,
    now: datetime,
    *,
    session: Session,
) -> FeedOutcome:
    """Store the feed's new and edited items (none when it was not modified), match them, record the status
    changes their reports cause, and schedule the next poll."""
    settings = config.settings.poll
    interval = schedule.base_interval(source.interval_seconds, settings)
    plan = schedule.after_success(now, interval, settings, result.headers, parsed.ttl_seconds if parsed else None)
    saved = bulk.save_items_bulk(source.id, parsed.items, now, session=session) if parsed else None
    matched = []
    if saved is not None:
        assert matcher is not None, "a feed with items is stored with a matcher"
        matched = [(row, matcher.match(row.title, row.summary)) for row, _item in saved.changed]
    # Another worker may be deciding on the same proposals: lock their rows, always in the same order.
    history.lock_proposals({m.proposal for _row, matches in matched for m in matches}, session=session)
    changes = bulk.record_matches_bulk(matched, config, now, session=session)
    warning = parsed.warning if parsed else None
    sources.record_success(
        source,
        session=session,
        now=now,
        schedule=plan,
        status=result.status,
        etag=result.headers.get("etag"),
        last_modified=result.headers.get("last-modified"),
        warning=warning,
        feed_title=parsed.title if parsed else None,
        feed_link=parsed.link if parsed else None,
    )
    source.body_hash = body_digest(result) if parsed else source.body_hash
    poll.outcome = "ok" if parsed else "not-modified"
    poll.error = warning
    poll.items_seen = len(parsed.items) if parsed else 0
    poll.items_new, poll.items_updated = (saved.new, saved.updated) if saved else (0, 0)
    return FeedOutcome(
        source.id,
        poll.outcome,
        result.status,
        warning=warning,
        items_new=poll.items_new,
        items_updated=poll.items_updated,
        changes=tuple(change.id for change in changes if change.id is not None),
        moved_to=result.moved_to,
        next_poll_at=plan.next_poll_at,
    )
