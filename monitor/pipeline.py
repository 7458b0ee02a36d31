"""The one module that wires the stages together.

    store.sync_sources | store.due_sources | fetch.fetch_all (bounded, concurrent) | parse.parse_feed
        | store.save_items + schedule.after_success/after_failure   (one transaction per feed)

The clock, the HTTP client and the database engine are passed in, so tests hand in a fake clock, a local
server and a temporary database.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from monitor import models, schedule, store
from monitor.config import Config
from monitor.errors import ConfigError, DatabaseError, FetchHTTPError, MonitorError
from monitor.fetch import FetchRequest, FetchResult, fetch_all, make_client
from monitor.parse import parse_feed

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class FeedOutcome:
    source_id: str
    outcome: str  # ok, not-modified or failed
    status: int | None = None
    error: str | None = None
    warning: str | None = None
    items_new: int = 0
    items_updated: int = 0
    moved_to: str | None = None
    health: str = "ok"
    next_poll_at: datetime | None = None


@dataclass
class PollSummary:
    run_id: int | None
    feeds_due: int
    feeds: list[FeedOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for feed in self.feeds if feed.outcome == outcome)

    @property
    def items_new(self) -> int:
        return sum(feed.items_new for feed in self.feeds)

    @property
    def items_updated(self) -> int:
        return sum(feed.items_updated for feed in self.feeds)

    @property
    def nothing_polled(self) -> bool:
        """True when feeds were due and not one of them could be polled."""
        return self.feeds_due > 0 and self.count("failed") == self.feeds_due


def run_poll(
    config: Config,
    engine: Engine,
    clock: Clock,
    *,
    client: httpx.AsyncClient | None = None,
    only: Iterable[str] = (),
    force: bool = False,
    on_feed: Callable[[FeedOutcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> PollSummary:
    """Poll the due feeds (or `only` those) and store what they carry. Raises only for configuration or
    database faults; a feed's own failure is recorded on the feed and in the summary."""
    only = list(only)
    known = {source.id for source in config.sources}
    unknown = [source_id for source_id in only if source_id not in known]
    if unknown:
        raise ConfigError([f"{config.path}: sources: no source with id {source_id!r}" for source_id in unknown])
    try:
        with Session(engine) as session:
            store.sync_sources(config.sources, config.settings.poll.interval, clock(), session=session)
            due = store.due_sources(clock(), session=session, only=only, force=force)
            run = store.start_run(clock(), force, len(due), session=session)
            requests = [FetchRequest(row.id, row.url, row.etag, row.last_modified) for row in due]
            session.commit()
            run_id = run.id
            assert run_id is not None
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database: {str(exc).splitlines()[0]}") from None
    if on_start:
        on_start(len(requests))
    summary = PollSummary(run_id=run_id, feeds_due=len(requests))
    if requests:
        asyncio.run(_poll(config, engine, clock, client, requests, run_id, summary, on_feed))
    with Session(engine) as session:
        store.finish_run(run_id, clock(), session=session)
        session.commit()
    return summary


async def _poll(
    config: Config,
    engine: Engine,
    clock: Clock,
    client: httpx.AsyncClient | None,
    requests: list[FetchRequest],
    run_id: int,
    summary: PollSummary,
    on_feed: Callable[[FeedOutcome], None] | None,
) -> None:
    settings = config.settings.poll
    owned = client is None
    http = client if client is not None else make_client(settings)
    write_lock = threading.Lock()
    try:
        async for result in fetch_all(http, requests, settings):
            # Parsing and the database write run off the event loop so other fetches keep their deadlines.
            outcome = await asyncio.to_thread(_store_result, config, engine, clock, result, run_id, write_lock)
            summary.feeds.append(outcome)
            if on_feed:
                on_feed(outcome)
    finally:
        if owned:
            await http.aclose()


def _store_result(
    config: Config, engine: Engine, clock: Clock, result: FetchResult, run_id: int, write_lock: threading.Lock
) -> FeedOutcome:
    """Parse one fetch result and store it, all in one transaction."""
    now = clock()
    settings = config.settings.poll
    parsed = None
    error: MonitorError | None = result.error
    if result.ok and not result.not_modified:
        try:
            parsed = parse_feed(result.content, result.headers, result.url, now)
        except MonitorError as exc:
            error = exc
    with write_lock, Session(engine) as session:
        try:
            source = store.get_source(result.request.source_id, session=session)
            assert source is not None
            interval = schedule.base_interval(source.interval_seconds, settings)
            if result.moved_to:
                store.record_move(source, result.moved_to, "permanent redirect (HTTP 301/308)", now, session=session)
            poll = models.FeedPoll(
                run_id=run_id,
                source_id=source.id,
                polled_at=now,
                status_code=result.status,
                duration_ms=int(result.elapsed * 1000),
                outcome="failed",
            )
            if error is not None:
                status = error.status if isinstance(error, FetchHTTPError) else result.status
                plan = schedule.after_failure(
                    now, interval, source.consecutive_failures, settings, result.headers, status
                )
                message = f"{type(error).__name__}: {error}"
                store.record_failure(source, session=session, now=now, schedule=plan, status=status, error=message)
                poll.error = message
                outcome = FeedOutcome(
                    source.id,
                    "failed",
                    status,
                    message,
                    health=plan.health,
                    next_poll_at=plan.next_poll_at,
                    moved_to=result.moved_to,
                )
            else:
                plan = schedule.after_success(
                    now, interval, settings, result.headers, parsed.ttl_seconds if parsed else None
                )
                saved = store.save_items(source.id, parsed.items, now, session=session) if parsed else None
                warning = f"recovered from a malformed feed: {parsed.warning}" if parsed and parsed.warning else None
                store.record_success(
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
                poll.outcome = "ok" if parsed else "not-modified"
                poll.error = warning
                poll.items_seen = len(parsed.items) if parsed else 0
                poll.items_new, poll.items_updated = (saved.new, saved.updated) if saved else (0, 0)
                outcome = FeedOutcome(
                    source.id,
                    poll.outcome,
                    result.status,
                    warning=warning,
                    items_new=poll.items_new,
                    items_updated=poll.items_updated,
                    moved_to=result.moved_to,
                    next_poll_at=plan.next_poll_at,
                )
            poll.next_poll_at = plan.next_poll_at
            store.record_feed_poll(poll, session=session)
            session.commit()
            return outcome
        except SQLAlchemyError as exc:
            session.rollback()
            raise DatabaseError(
                f"database, while storing feed {result.request.source_id!r}: {str(exc).splitlines()[0]}"
            ) from None
