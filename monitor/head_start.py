"""A poll's first batch of feeds on the network while the rest of the run loads.

Before a poll can fetch, it loads SQLAlchemy and the models, makes the database agree with feeds.yaml and leases
its feeds: over half a second in which no request is out, most of a run whose feeds all answer 304. Where the
SQLite file allows it (`monitor.store.idle.lease_first_batch`: the last run ended, having synced this very
feeds.yaml), `start` leases the first batch with the standard library's sqlite3 and fetches it on an event loop
of its own thread at once; the poll (`pipeline.run_poll`) then runs on that loop, reads what was fetched in the
meantime from `results` as it would read `fetch.fetch_all`, and hands in how to lease the next batches
(`attach`), and `stop`s it when it ends. Nothing is stored before the poll is ready: the fetched feeds wait
in memory (the head start's batch at most). A first run, with no file yet, takes its first batch from feeds.yaml
without a lease: every enabled feed is due and no other run can hold one.

When the batch is every feed due, `monitor poll` waits for its answers before loading the database layer at all:
where each is a plain 304, `quiet_poll` records the run with sqlite3 alone, as the full poll would (a warm run of
a settled file loads no SQLAlchemy); at the first other answer the full poll loads, and reads every answer as if
it had just come.

A poll that will read many feeds for the first time (a first run, feeds just added) parses them in worker
processes, which take about half a second of CPU to load: `early_parser` starts them at once, on the other
core, rather than when the poll begins. On a first run it does so before the head start loads the network code.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from monitor import schedule
from monitor.clock import Clock
from monitor.config import Config
from monitor.env import sqlite_file
from monitor.outcomes import FeedOutcome, PollSummary
from monitor.store.idle import DigestsQuiet, NotModified, lease_first_batch, record_quiet_run, release_leases
from monitor.store.locks import worker_name

if TYPE_CHECKING:  # the network loads with the first head start: a first run's parser processes start before it
    from monitor.fetch import FetchRequest, FetchResult
    from monitor.parse_pool import Parser

T = TypeVar("T")
HEAD_ROUNDS = 8  # fetches per slot in the head start's batch
# While the main thread loads the rest, the loop's thread waits for the GIL each time a response comes in or a
# request can go out, up to the switch interval (5 ms by default) a time: a few times per request, which made each
# request 20-30 ms longer. For the head start's life the interval is 1 ms.
SWITCH = 0.001
More = Callable[[], Awaitable[Sequence["FetchRequest"]]]


class HeadStart:
    """`requests` on the network, on `loop` (its own thread), from the moment it is made; `close` ends both."""

    def __init__(self, requests: Sequence[FetchRequest], config: Config, owner: str, complete: bool = False) -> None:
        self.requests = list(requests)
        self.complete = complete  # every feed due is in `requests`: no later batch to lease
        self._early: deque[FetchResult | BaseException | None] = deque()  # results `quiet` read, for `results`
        self._database_url, self.owner, self._polled = config.database_url, owner, False
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH)
        self.loop = asyncio.new_event_loop()
        self._settings = config.settings.poll
        # Room for the first batch, fetched while the poll loads; past it, a fetch waits for the poll to take an
        # answer, as `fetch.fetch_all` waits for its reader: the bodies in memory stay a batch's at most.
        self._results: asyncio.Queue[FetchResult | BaseException | None] = asyncio.Queue(max(1, len(requests)))
        self._more: asyncio.Future[More] = self.loop.create_future()  # before the loop runs: no race
        self._thread = threading.Thread(target=self.loop.run_forever, name="monitor-head-start", daemon=True)
        self._thread.start()
        self._fetching = self._task(self._fetch())

    async def _fetch(self) -> None:
        from monitor.fetch import fetch_all, make_session

        session = make_session(self._settings)
        try:
            more = None if self.complete else self._leased
            async for result in fetch_all(session, self.requests, self._settings, more):
                await self._results.put(result)
            await self._results.put(None)
        except Exception as exc:  # the poll's lease failed: the poll raises it
            await self._results.put(exc)
        finally:
            await session.close()

    async def _leased(self) -> Sequence[FetchRequest]:
        more = await self._more  # the poll's lease, once the poll is ready
        return await more()

    def attach(self, more: More) -> None:
        """The next batches come from `more` (called on this loop)."""
        if not self._more.done():
            self._more.set_result(more)

    async def results(self) -> AsyncIterator[FetchResult]:
        """What the fetches gave, as `fetch.fetch_all` yields it (raising what the lease of a later batch raised)."""
        while (result := self._early.popleft() if self._early else await self._results.get()) is not None:
            if isinstance(result, BaseException):
                raise result
            yield result

    def quiet(self) -> list[FetchResult] | None:
        """Wait for the batch's answers: all of them when the batch is `complete` and every feed answered a plain
        304 (not modified, not moved), the poll's whole work but for recording it; None as soon as one did not (or
        at once, for a batch that is not complete or holds a feed that cannot answer 304). What was read stays for
        `results`."""
        if not self.complete or not all(request.etag or request.last_modified for request in self.requests):
            return None  # more to lease; or a feed with no validator to send (a first run's), whose answer is a 200

        from monitor.fetch import FetchResult

        async def answers() -> list[FetchResult] | None:
            while len(self._early) < len(self.requests):
                self._early.append(result := await self._results.get())
                if not isinstance(result, FetchResult) or not result.not_modified or result.moved_to is not None:
                    return None
            return [result for result in self._early if isinstance(result, FetchResult)]

        return self._wait(answers())

    async def stop(self) -> None:
        """On this loop: fetch and lease nothing more (the poll ended, or stopped on a fault)."""
        fetching, _ = self._fetching
        fetching.cancel()
        await asyncio.gather(fetching, return_exceptions=True)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on this loop and return what it returns; on Ctrl-C it is cancelled and waited for, as
        `asyncio.run` would."""
        self._polled = True  # the poll frees what it leased, this batch included, however it ends
        return self._wait(coroutine)

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        task, ended = self._task(coroutine)
        try:
            ended.wait()
        except BaseException:
            self.loop.call_soon_threadsafe(task.cancel)
            ended.wait()
            raise
        return task.result()

    def close(self) -> None:
        """Stop fetching (whatever is still on the network) and end the loop and its thread."""
        if self.loop.is_closed():
            return
        fetching, ended = self._fetching
        self.loop.call_soon_threadsafe(fetching.cancel)
        ended.wait()

        async def shut() -> None:
            await self.loop.shutdown_asyncgens()
            await self.loop.shutdown_default_executor()

        polled = self._polled
        self.run(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
        sys.setswitchinterval(self._switch)
        if not polled:  # stopped while loading (Ctrl-C, a fault): the batch is free again at once
            release_leases(self._database_url, self.owner)

    def recorded(self) -> None:
        """The batch's poll was recorded, its leases freed, without `run` (`quiet_poll`)."""
        self._polled = True

    def _task(self, coroutine: Coroutine[Any, Any, T]) -> tuple[asyncio.Task[T], threading.Event]:
        """`coroutine` as a task on this loop, and an event set once the task has ended (cancelled or not)."""
        ended = threading.Event()

        async def spawn() -> asyncio.Task[T]:
            task = asyncio.ensure_future(coroutine)
            task.add_done_callback(lambda _: ended.set())
            return task

        return asyncio.run_coroutine_threadsafe(spawn(), self.loop).result(), ended


def early_parser(config: Config, head: HeadStart | None) -> Parser | None:
    """A parser whose worker processes start now, beside the loading, when the poll will read many feeds for
    the first time (`parse_pool.POOL_FIRST_POLLS`): the head start's never polled, or every feed of a first run
    (its SQLite file not made yet). None otherwise: the poll makes its own, as it needs it."""
    if head is not None:
        first = sum(request.body_hash is None for request in head.requests)
    elif (database := sqlite_file(config.database_url)) is not None and not database.exists():
        first = sum(source.enabled for source in config.sources)
    else:
        return None
    if not first:
        return None
    from monitor.match import Matcher
    from monitor.parse_pool import POOL_FIRST_POLLS, Parser

    if first < POOL_FIRST_POLLS:
        return None
    parser = Parser(matcher=Matcher(config.proposals, config.settings.status.ladder))
    parser.expect_first_polls(first)
    return parser


def start(config: Config, now: datetime, *, force: bool) -> HeadStart | None:
    """A head start for a poll of every due feed (`force`: every feed), or None where the database file does
    not allow one (see the module's notes) or no feed is due: the poll then leases its first batch itself."""
    from monitor.fetch import FetchRequest

    settings, owner = config.settings.poll, worker_name()
    if (database := sqlite_file(config.database_url)) is not None and not database.exists():
        # A first run: every feed of feeds.yaml that is enabled is due, and no other run can hold one (the file is
        # made under the run lock); the poll leases past them as it would past a leased batch, in its order.
        polled = sorted((source for source in config.sources if source.enabled), key=lambda source: source.id)
        first = settings.batch
        requests = [FetchRequest(source.id, source.url, None, None, None) for source in polled[:first]]
        return HeadStart(requests, config, owner, len(polled) <= first) if requests else None
    # Enough to keep every fetch slot busy for a few rounds while the poll loads (on SQLite one run polls at a
    # time: no other worker waits for these feeds); their bodies wait in memory until then.
    most = max(settings.batch, HEAD_ROUNDS * settings.concurrency)
    batch = lease_first_batch(config.database_url, config.digest or "", now, owner, settings.lease, most, force=force)
    if not batch or not batch.rows:
        return None
    return HeadStart([FetchRequest(*row) for row in batch.rows], config, owner, batch.complete)


def quiet_poll(
    head: HeadStart, config: Config, started: datetime, clock: Clock, *, force: bool, digests: bool = False
) -> PollSummary | None:
    """The poll, when the head start's batch is every feed due and each answered a plain 304: recorded with sqlite3
    alone (`idle.record_quiet_run`), as the full poll would record it, without loading SQLAlchemy. None (nothing
    written) otherwise: the full poll then reads the answers from `head` as if they had just come. With
    `digests` (`monitor run`), only where the digests would then compose and send nothing, as `idle.idle_run`
    decides it."""
    quiet_digests = None
    if digests:
        telegram = config.settings.telegram
        zone, token = config.settings.digest.timezone, bool(config.telegram_token)
        if (quiet_digests := DigestsQuiet.of(zone, bool(telegram.admin_chats), token)) is None:
            return None
    results = head.quiet()
    if results is None:
        return None
    now, settings = clock(), config.settings.poll
    answered = {result.request.source_id: result for result in results}

    def plan(source_id: str, interval: float) -> NotModified:
        result = answered[source_id]
        when = schedule.next_poll(settings, interval, now, result.headers).next_poll_at
        return NotModified(source_id, int(result.elapsed * 1000), when)

    digest = config.digest or ""
    recorded = record_quiet_run(
        config.database_url, head.owner, started, now, forced=force, digest=digest, feeds=list(answered), plan=plan,
        digests=quiet_digests,
    )  # fmt: skip
    if recorded is None:
        return None
    head.recorded()
    run_id, plans = recorded
    feeds = [FeedOutcome(a.source_id, "not-modified", 304, next_poll_at=a.next_poll_at) for a in plans]
    return PollSummary(run_id, len(feeds), feeds)
