"""The poll, wired: where the fetch, parse, match and status stages meet the store.

    run_poll:   sources.sync_sources | sources.lease_due_sources | fetch.fetch_all (bounded, concurrent)
                | parse_pool.parse_all (parse.parse_feed, in worker processes for a big poll)
                | bulk.save_items_bulk | match.Matcher.match
                | bulk.record_matches_bulk (status.decide, history and events)
                + schedule.after_success/after_failure                    (one transaction per feed)
                + fulltext.index_new_items                  (before each batch is leased, and at the end)

The rebuild of `monitor rematch` is `monitor.rematch`'s, digests are `monitor.delivery`'s.

The clock, the HTTP client and the database engine are passed in, so tests hand in a fake clock, a local
server and a temporary database.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from monitor import schedule
from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import ConfigError, DatabaseError, FetchHTTPError, MonitorError
from monitor.redact import redact, secrets_of
from monitor.store import bulk, events, fulltext, history, models, sources
from monitor.store.db import dead_owners, first_line, retrying, worker_name

if TYPE_CHECKING:  # the network, parsing and matching load only when a feed is due: a cron run with none
    import httpx  # due starts faster without them

    from monitor.fetch import FetchRequest, FetchResult
    from monitor.match import Match, Matcher
    from monitor.parse import ParsedFeed
    from monitor.parse_pool import ParseOutcome, Parser


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
    matcher: Matcher | None = None,
    parser: Parser | None = None,
) -> PollSummary:
    """Poll the due feeds (or `only` those) and store what they carry. Raises only for configuration or
    database faults; a feed's own failure is recorded on the feed and in the summary. A caller that polls
    many times with one configuration (a replay) may pass the `matcher` it built once, and a `parser` it
    closes itself."""
    only = list(only)
    known = {source.id for source in config.sources}
    unknown = [source_id for source_id in only if source_id not in known]
    if unknown:
        raise ConfigError([f"{config.path}: sources: no source with id {source_id!r}" for source_id in unknown])
    settings = config.settings.poll
    owner = worker_name()
    try:
        with Session(engine) as session:
            sources.sync_sources(config.sources, settings.interval, clock(), session=session)
            history.sync_proposals(config.proposals, session=session)
            sources.release_leases(dead_owners(sources.lease_owners(session=session)), session=session)
            due = sources.due_sources(clock(), session=session, only=only, force=force)
            run = sources.start_run(clock(), force, len(due), session=session)
            session.commit()
            run_id = run.id
            assert run_id is not None
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database: {first_line(exc)}") from None
    if on_start:
        on_start(len(due))
    summary = PollSummary(run_id=run_id, feeds_due=0)
    taken: set[str] = set()
    own_parser = parser is None
    try:
        # A batch at a time, so that workers polling one database at once share the due feeds out.
        while due and (requests := _lease(engine, clock, owner, settings.lease, settings.batch, only, force, taken)):
            taken.update(request.source_id for request in requests)
            summary.feeds_due += len(requests)
            if matcher is None or parser is None:
                from monitor.match import Matcher
                from monitor.parse_pool import Parser

                matcher = matcher or Matcher(config.proposals, config.settings.status.ladder)
                parser = parser or Parser(matcher=matcher)
            asyncio.run(_poll(config, engine, clock, client, requests, run_id, summary, on_feed, matcher, parser))
    finally:
        if own_parser and parser is not None:
            parser.close()
        # Even a run that stops (the database failed, Ctrl-C) says when it ended and what it did.
        try:
            with Session(engine) as session:
                fulltext.index_new_items(session=session)  # the last batch's items
                sources.release_leases([owner], session=session)  # what an interrupted batch still holds
                sources.finish_run(run_id, clock(), session=session)
                session.commit()
        except SQLAlchemyError as exc:
            if sys.exc_info()[0] is None:  # an error already on its way out says more
                raise DatabaseError(f"database, while closing run {run_id}: {first_line(exc)}") from None
    return summary


def _lease(
    engine: Engine,
    clock: Clock,
    owner: str,
    lease: float,
    batch: int,
    only: list[str],
    force: bool,
    taken: set[str],
) -> list[FetchRequest]:
    from monitor.fetch import FetchRequest

    def lease_batch() -> list[FetchRequest]:
        with Session(engine) as session:
            fulltext.index_new_items(session=session)  # the previous batch's items (or a killed run's), in bulk
            rows = sources.lease_due_sources(
                clock(), owner, lease, batch, session=session, only=only, force=force, skip=taken
            )
            requests = [FetchRequest(row.id, row.url, row.etag, row.last_modified, row.body_hash) for row in rows]
            session.commit()
            return requests

    try:
        return retrying(lease_batch)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database, while leasing feeds: {first_line(exc)}") from None


async def _poll(
    config: Config,
    engine: Engine,
    clock: Clock,
    client: httpx.AsyncClient | None,
    requests: list[FetchRequest],
    run_id: int,
    summary: PollSummary,
    on_feed: Callable[[FeedOutcome], None] | None,
    matcher: Matcher,
    parser: Parser,
) -> None:
    from monitor.fetch import fetch_all, make_client
    from monitor.parse_pool import parse_all

    settings = config.settings.poll
    owned = client is None
    http = client if client is not None else make_client(settings)
    write_lock = threading.Lock()
    try:
        # Parsing (in worker processes for a big poll) and the database write run off the event loop, so other
        # fetches keep their deadlines and the next feeds parse while one is stored.
        async for result, parsed in parse_all(parser, fetch_all(http, requests, settings), clock, settings.max_items):
            store_args = (config, engine, clock, result, parsed, run_id, write_lock, matcher)
            try:
                outcome = await asyncio.to_thread(_store_result, *store_args)
            except DatabaseError:
                raise
            except Exception as exc:  # one feed's fault, whatever it is, never stops the others
                fault = MonitorError(f"unexpected {type(exc).__name__} while storing the feed: {exc}")
                outcome = await asyncio.to_thread(_store_result, *store_args, fault=fault)
            summary.feeds.append(outcome)
            if on_feed:
                on_feed(outcome)
    finally:
        if owned:
            await http.aclose()


def _store_result(
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
    from monitor.parse import ParsedFeed

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
        session.commit()
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
    matcher: Matcher,
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
    matched = _match_changed(saved, parsed, matcher)
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
    from monitor.parse_pool import body_digest

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


def _match_changed(
    saved: bulk.SavedBatch | None, parsed: ParsedFeed | None, matcher: Matcher
) -> list[tuple[bulk.StoredItem, list[Match]]]:
    """The new and edited items with their matches: those the parser already found (a feed's first poll), the
    rest matched here."""
    from monitor.parse_pool import MatchedFeed

    known = parsed.matches_by_text() if isinstance(parsed, MatchedFeed) else {}
    matched = []
    for row, _item in saved.changed if saved else ():
        found = known.get((row.title, row.summary))  # matched without a date: the stored one decides
        if found is None:
            found = matcher.match(row.title, row.summary, row.published_at)
        matched.append((row, matcher.arisen(found, row.published_at)))
    return matched
