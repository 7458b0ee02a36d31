"""The poll, wired: where the fetch, parse, match and status stages meet the store.

    run_poll:   sources.sync_sources | sources.lease_due_sources (a batch at a time, the next one leased as
                fetch slots free up) | fetch.fetch_all (bounded, concurrent)
                | parse_pool.parse_all (parse.parse_feed, in worker processes for a big poll)
                | recording.Recorder (bulk.save_items_bulk, match.Matcher.match, bulk.record_matches_bulk,
                  schedule.after_success/after_failure: one transaction per group of feeds that came in
                  together, of a few thousand items at most)

On SQLite the items stored are only noted for the full-text index, which the next search brings up to date
(`fulltext.catch_up`): tokenising them here would hold the one writer for half a second per 15,000 items.

A cron run on a settled SQLite file gets its first batch from `monitor.head_start`, leased and on the network
while this module and the database layer load.

The rebuild of `monitor rematch` is `monitor.rematch`'s, digests are `monitor.delivery`'s.

The clock, the HTTP client and the database engine are passed in, so tests hand in a fake clock, a local
server and a temporary database.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import ConfigError, DatabaseError
from monitor.outcomes import FeedOutcome, PollSummary
from monitor.recording import Recorder, groups
from monitor.store import history, sources
from monitor.store.db import first_line, retrying
from monitor.store.locks import dead_owners, worker_name

if TYPE_CHECKING:  # the network, parsing and matching load only when a feed is due: a cron run with none
    import aiohttp  # due starts faster without them

    from monitor.fetch import FetchRequest
    from monitor.head_start import HeadStart
    from monitor.match import Matcher
    from monitor.parse_pool import Parser

T = TypeVar("T")


def run_poll(
    config: Config,
    engine: Engine,
    clock: Clock,
    *,
    http: aiohttp.ClientSession | None = None,
    only: Iterable[str] = (),
    force: bool = False,
    on_feed: Callable[[FeedOutcome], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    matcher: Matcher | None = None,
    parser: Parser | None = None,
    head: HeadStart | None = None,
) -> PollSummary:
    """Poll the due feeds (or `only` those) and store what they carry. Raises only for configuration or
    database faults; a feed's own failure is recorded on the feed and in the summary. A caller that polls
    many times with one configuration (a replay) may pass the `matcher` it built once, and a `parser` it
    closes itself. With `head`, its feeds (leased and on the network already) are the first batch, and the poll
    runs on its event loop."""
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
            stale = [
                holder for holder in dead_owners(sources.lease_owners(session=session)) if holder != owner or not head
            ]
            sources.release_leases(stale, session=session)  # this process's own: a head start's, or a stopped run's
            due = sources.due_sources(clock(), session=session, only=only, force=force)
            run = sources.start_run(clock(), force, len(due), session=session, config_digest=config.digest)
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
    write_lock = threading.Lock()  # one writer at a time: SQLite's busy wait would only add delay

    def lease() -> list[FetchRequest]:
        # A batch at a time, so that workers polling one database at once share the due feeds out; the next
        # batch is leased while this one's last feeds are fetched.
        with write_lock:
            requests = _lease(engine, clock, owner, settings.lease, settings.batch, only, force, taken)
        return took(requests)

    def took(requests: list[FetchRequest]) -> list[FetchRequest]:
        taken.update(request.source_id for request in requests)
        summary.feeds_due += len(requests)
        return requests

    try:
        if due and (requests := took(head.requests) if head else lease()):
            if matcher is None or parser is None:
                from monitor.match import Matcher
                from monitor.parse_pool import Parser

                matcher = matcher or Matcher(config.proposals, config.settings.status.ladder)
                parser = parser or Parser(matcher=matcher)
            recorder = Recorder(config, engine, clock, run_id, matcher, write_lock)
            more = lambda: asyncio.to_thread(lease)  # noqa: E731
            polling = _poll(recorder, parser, http, requests, more, summary, on_feed, head)
            head.run(polling) if head else asyncio.run(polling)
    finally:
        if own_parser and parser is not None:
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
    from monitor.fetch import FetchRequest

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
    recorder: Recorder,
    parser: Parser,
    http: aiohttp.ClientSession | None,
    requests: list[FetchRequest],
    more: Callable[[], Awaitable[Sequence[FetchRequest]]],
    summary: PollSummary,
    on_feed: Callable[[FeedOutcome], None] | None,
    head: HeadStart | None = None,
) -> None:
    from monitor.fetch import fetch_all, make_session
    from monitor.parse_pool import parse_all

    settings = recorder.config.settings.poll
    session = make_session(settings) if http is None and head is None else None  # one this poll makes, it closes
    try:
        # Parsing (in worker processes for a big poll) and the database write run off the event loop, so other
        # fetches keep their deadlines and the next feeds parse while one is stored. The feeds that came in
        # while one group was stored are taken together, and stored together (`recording.groups`).
        parser.expect(requests)  # many first polls: the worker processes load while these are on the network

        async def leased() -> Sequence[FetchRequest]:
            batch = await more()
            parser.expect(batch)
            return batch

        if head:  # its first batch is on the network already, over a session of its own
            head.attach(leased)
            fetching = head.results()
        else:
            client = http or session
            assert client is not None
            fetching = fetch_all(client, requests, settings, leased)
        fetched = parse_all(parser, fetching, recorder.clock, settings.max_items)

        def report(outcome: FeedOutcome) -> None:
            summary.feeds.append(outcome)
            if on_feed:
                on_feed(outcome)

        async for group in _in_groups(fetched, settings.concurrency):
            # In the order they came, a transaction per group of a few thousand items at most (each reported
            # as soon as it is stored, so a run that stops on a database fault still counts it).
            for feeds in groups(group):
                for outcome in await asyncio.to_thread(recorder.many, feeds):
                    report(outcome)
    finally:
        if head:
            await head.stop()
        if session is not None:
            await session.close()


async def _in_groups(pairs: AsyncIterator[T], most: int) -> AsyncIterator[list[T]]:
    """What `pairs` yields, in its order, a list at a time: each list holds what came while the caller handled
    the list before (at most `most`), so a slow consumer takes more at once and a fast one never waits."""
    ready: deque[T] = deque()
    end: list[BaseException | None] = []  # how `pairs` ended: None, or what it raised
    changed = asyncio.Event()
    room = asyncio.Semaphore(most)

    async def fill() -> None:
        try:
            async for pair in pairs:
                await room.acquire()
                ready.append(pair)
                changed.set()
            end.append(None)
        except Exception as exc:  # handed to the consumer, which raises it
            end.append(exc)
        finally:
            changed.set()

    filler = asyncio.create_task(fill())
    try:
        while True:
            while not ready and not end:
                changed.clear()
                await changed.wait()
            if not ready:
                if end[0] is not None:
                    raise end[0]
                return
            group = list(ready)
            ready.clear()
            for _ in group:
                room.release()
            yield group
    finally:
        filler.cancel()
        await asyncio.gather(filler, return_exceptions=True)
