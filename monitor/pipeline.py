"""The poll, wired: where the fetch, parse, match and status stages meet the store.

    run_poll:   sources.sync_sources | sources.lease_due_sources | fetch.fetch_all (bounded, concurrent)
                | parse_pool.parse_all (parse.parse_feed, in worker processes for a big poll)
                | bulk.save_items_bulk | match.Matcher.match
                | bulk.record_matches_bulk (status.decide, history and events)
                + schedule.after_success/after_failure                    (one transaction per feed)

Storing one feed's result is `monitor.poll_store`'s; the rebuild of `monitor rematch` is `monitor.rematch`'s,
digests are `monitor.delivery`'s.

The clock, the HTTP client and the database engine are passed in, so tests hand in a fake clock, a local
server and a temporary database.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import ConfigError, DatabaseError, MonitorError
from monitor.fetch import FetchRequest, FetchResult, fetch_all, make_client
from monitor.match import Matcher
from monitor.parse_pool import ParseOutcome, Parser, parse_all
from monitor.poll_store import FeedOutcome, store_result, store_unchanged
from monitor.store import history, sources
from monitor.store.db import dead_owners, first_line, retrying, worker_name

# Feeds that changed nothing are recorded this many to a transaction: a warm poll of hundreds of feeds that all
# answer 304 pays for a few commits, not one per feed.
UNCHANGED_BATCH = 100


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
) -> PollSummary:
    """Poll the due feeds (or `only` those) and store what they carry. Raises only for configuration or
    database faults; a feed's own failure is recorded on the feed and in the summary. A caller that polls
    many times with one configuration (a replay) may pass the `matcher` it built once."""
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
    parser = Parser()
    try:
        # A batch at a time, so that workers polling one database at once share the due feeds out.
        while requests := _lease(engine, clock, owner, settings.lease, settings.batch, only, force, taken):
            taken.update(request.source_id for request in requests)
            summary.feeds_due += len(requests)
            matcher = matcher or Matcher(config.proposals, config.settings.status.ladder)
            asyncio.run(_poll(config, engine, clock, client, requests, run_id, summary, on_feed, matcher, parser))
    finally:
        parser.close()
        # Even a run that stops (the database failed, Ctrl-C) says when it ended and what it did.
        try:
            with Session(engine) as session:
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
    def lease_batch() -> list[FetchRequest]:
        with Session(engine) as session:
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
    settings = config.settings.poll
    owned = client is None
    http = client if client is not None else make_client(settings)
    write_lock = threading.Lock()
    unchanged: list[FetchResult] = []  # feeds that changed nothing, stored together in one transaction

    def report(outcomes: list[FeedOutcome]) -> None:
        for outcome in outcomes:
            summary.feeds.append(outcome)
            if on_feed:
                on_feed(outcome)

    async def store(result: FetchResult, parsed: ParseOutcome) -> None:
        store_args = (config, engine, clock, result, parsed, run_id, write_lock, matcher)
        try:
            outcome = await asyncio.to_thread(store_result, *store_args)
        except DatabaseError:
            raise
        except Exception as exc:  # one feed's fault, whatever it is, never stops the others
            fault = MonitorError(f"unexpected {type(exc).__name__} while storing the feed: {exc}")
            outcome = await asyncio.to_thread(store_result, *store_args, fault=fault)
        report([outcome])

    async def flush_unchanged() -> None:
        batch = unchanged[:]
        unchanged.clear()
        try:
            report(await asyncio.to_thread(store_unchanged, config, engine, clock, batch, run_id, write_lock))
        except DatabaseError:
            raise
        except Exception:  # stored one by one instead, so that a fault stays with its feed
            for result in batch:
                await store(result, None)

    try:
        # Parsing (in worker processes for a big poll) and the database write run off the event loop, so other
        # fetches keep their deadlines and the next feeds parse while one is stored. Feeds are stored in the
        # order they were fetched: the unchanged ones waiting are stored before the next feed that changed.
        async for result, parsed in parse_all(parser, fetch_all(http, requests, settings), clock, settings.max_items):
            if parsed is None and result.error is None and result.moved_to is None:
                unchanged.append(result)
                if len(unchanged) >= UNCHANGED_BATCH:
                    await flush_unchanged()
                continue
            if unchanged:
                await flush_unchanged()
            await store(result, parsed)
        if unchanged:
            await flush_unchanged()
    finally:
        if owned:
            await http.aclose()
