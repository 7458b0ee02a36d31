"""Fetch results -> parse outcomes, in worker processes once a poll has enough to parse.

    parse_all(parser, fetch results, clock, max_items) -> (FetchResult, ParseOutcome) as each parse ends

A `ParseOutcome` is the `ParsedFeed`, or the `MonitorError` that is this feed's alone, or None when there was
nothing to parse: a 304, a failed fetch, or a body identical to the one parsed and stored last for the feed
(`body_digest` equals the request's `body_hash`). Parsing is CPU work in Python (feedparser, normalisation): threads
share one core through the GIL, so once one poll has spent `POOL_AFTER` seconds of CPU parsing, the rest is
parsed by one worker process per core while the poller fetches and stores. A poll with less to parse (a cron
run with a few changed feeds, a replay of one snapshot, most feeds that feedparser-rs reads) parses in a
thread and starts no process: the workers cost about half a second of CPU to start (the first loads, the
others are forked from it), and pickling each body and its items costs a little more, which pays only when
parsing is dear (feeds that only feedparser reads).
A poll whose batch holds `POOL_FIRST_POLLS` feeds or more never polled before (a new installation, a
list of feeds just added) starts the workers at once, before the first answer: each first poll brings a
whole feed to parse and match, and the workers load while the requests are on the network.

A feed's first poll (no body stored for it yet) brings only new items, all of which the store would match:
given a `Matcher`, the parser matches them too (`MatchedFeed`), so that this CPU work is done by the worker
processes beside the parse rather than in the store's one writer. A later poll's items are mostly stored
already and are matched by the store, only those that are new or edited.

The workers are `monitor.parse_worker`'s: one process that loads and then forks the others, each taking one
feed at a time, so a worker that dies (a crash in the Rust parser, the kernel's OOM killer) fails only the feed
it was reading; that feed is read again here by feedparser alone, and a fresh worker takes the next one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.errors import MonitorError, ParseError
from monitor.parse import ParsedFeed, load_readers, parse_feed

if TYPE_CHECKING:
    from monitor.fetch import FetchRequest, FetchResult
    from monitor.match import Match, Matcher
    from monitor.parse_worker import _Worker

ParseOutcome = ParsedFeed | MonitorError | None  # None: nothing to parse, or the body stored last again
# parse_outcome's arguments, and whether to match the items too (a feed's first poll)
_Request = tuple[bytes, dict[str, str], str, datetime, int | None, bool]
POOL_AFTER = 0.5  # seconds of CPU spent parsing in one poll before worker processes start
POOL_FIRST_POLLS = 16  # feeds polled for the first time in one batch: worker processes start at once


def body_digest(result: FetchResult) -> str:
    """SHA-256 of a 200's body with what else steers its parsing: the URL and the content headers."""
    return _digest(result.content, result.headers, result.url)


def _digest(content: bytes, headers: Mapping[str, str], url: str) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    context = "\x00".join((url, lowered.get("content-type", ""), lowered.get("content-location", "")))
    digest = hashlib.sha256(context.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(content)
    return digest.hexdigest()


def parse_outcome(
    content: bytes, headers: Mapping[str, str], url: str, now: datetime, max_items: int | None, fast: bool = True
) -> ParsedFeed | MonitorError:
    """`parse_feed`, with any failure returned as this feed's error rather than raised."""
    try:
        return parse_feed(content, headers, url, now, max_items, fast=fast)
    except MonitorError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - a feed that trips the parser is that feed's failure
        return ParseError(f"unexpected {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class MatchedFeed(ParsedFeed):
    """A parsed feed with `matcher.match(item.title, item.summary)` of each item, in the items' order."""

    matches: tuple[tuple[Match, ...], ...] = field(default=(), compare=False)

    def matches_by_text(self) -> dict[tuple[str, str], list[Match]]:
        """The matches by (title, summary): what `Matcher.match` was given."""
        return {(item.title, item.summary): list(found) for item, found in zip(self.items, self.matches, strict=True)}


def match_items(parsed: ParsedFeed, matcher: Matcher) -> ParsedFeed:
    """`parsed` with its items matched; as it was when matching fails (the store then matches, and records the
    fault on the feed as for any fault in storing it)."""
    try:
        found = tuple(tuple(matcher.match(item.title, item.summary)) for item in parsed.items)
    except Exception:  # noqa: BLE001 - the store meets the same fault and records it
        return parsed
    return MatchedFeed(**{f.name: getattr(parsed, f.name) for f in fields(ParsedFeed)}, matches=found)


def _outcome(request: _Request, matcher: Matcher | None, fast: bool = True) -> ParseOutcome:
    content, headers, url, now, max_items, first_poll = request
    outcome = parse_outcome(content, headers, url, now, max_items, fast=fast)
    if not isinstance(outcome, ParsedFeed):
        return outcome
    outcome = replace(outcome, body_hash=_digest(content, headers, url))  # here, not in the one writer
    return match_items(outcome, matcher) if matcher is not None and first_poll else outcome


class Parser:
    """Parses a poll's bodies: in a thread until `threshold` seconds of CPU went into parsing, then in `workers`
    processes. With a `matcher`, the items of a feed's first poll are matched too."""

    def __init__(
        self, workers: int | None = None, threshold: float = POOL_AFTER, matcher: Matcher | None = None
    ) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.threshold = threshold
        self.matcher = matcher
        self.parse_seconds = 0.0  # CPU time of the parses done in a thread
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()  # None: one could not start
        self._all: list[_Worker] = []
        self._threads: ThreadPoolExecutor | None = None
        self._loaded = False
        self._loading = threading.Lock()

    @property
    def processes(self) -> int:
        """How many worker processes were started."""
        return len(self._all)

    async def parse(self, result: FetchResult, now: datetime, max_items: int | None) -> ParseOutcome:
        import asyncio  # loaded by the poll's event loop; a parser process imports this module and never needs it

        if result.error is not None or result.not_modified:
            return None
        if result.request.body_hash is not None and body_digest(result) == result.request.body_hash:
            return None  # byte for byte what was parsed and stored last time: nothing can have changed
        first_poll = result.request.body_hash is None
        request: _Request = (result.content, dict(result.headers), result.url, now, max_items, first_poll)
        if self.workers < 2 or (self._threads is None and self.parse_seconds < self.threshold):
            return await asyncio.to_thread(self._in_thread, request)
        return await asyncio.get_running_loop().run_in_executor(self._pool(), self._call, request)

    def expect(self, requests: Sequence[FetchRequest]) -> None:
        """Start the worker processes now if `requests` (a batch about to be fetched) hold `POOL_FIRST_POLLS`
        first polls or more. Returns at once: the processes start in the pool's threads."""
        self.expect_first_polls(sum(request.body_hash is None for request in requests))

    def expect_first_polls(self, count: int) -> None:
        """`expect`, told how many feeds about to be fetched are polled for the first time."""
        if self.workers >= 2 and count >= POOL_FIRST_POLLS:
            self._pool()

    def _pool(self) -> ThreadPoolExecutor:
        """The threads that hand requests to the worker processes, started with the processes on first use."""
        if self._threads is None:
            threads = ThreadPoolExecutor(self.workers, thread_name_prefix="parse")
            threads.submit(self._start_all)  # ahead of every request, which waits for an idle worker
            self._threads = threads
        return self._threads

    def _start_all(self) -> None:
        """Start the workers, one process that forks the others once it has loaded (`_Worker.family`); where
        that cannot start, one process each, and a slot none can fill parses in its own thread."""
        from monitor.parse_worker import _Worker

        try:
            family: list[_Worker | None] = list(_Worker.family(self.workers, self.matcher))
        except Exception:  # noqa: BLE001 - whatever stops a process from starting, or fork being missing
            family = [self._try_start() for _ in range(self.workers)]
        for worker in family:
            if worker is not None:
                self._all.append(worker)
            self._idle.put(worker)

    def close(self) -> None:
        """Stop the workers (each ends when its stdin closes) and wait for them."""
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        for worker in self._all:
            worker.stop()

    def _load(self) -> None:
        """What parsing and matching import lazily, imported by the first thread to parse while the others wait
        (`parse.load_readers`); and the matcher's rules compiled once."""
        if self._loaded:
            return
        with self._loading:
            if not self._loaded:
                load_readers()
                from rapidfuzz import fuzz, process  # noqa: F401 - the matcher's fuzzy reading, loaded lazily too

                if self.matcher is not None:
                    self.matcher.compile()
                self._loaded = True

    def _in_thread(self, request: _Request) -> ParseOutcome:
        self._load()
        started = time.thread_time()
        try:
            return _outcome(request, self.matcher)
        finally:
            self.parse_seconds += time.thread_time() - started

    def _try_start(self) -> _Worker | None:
        """A new worker process, or None when none can start (no memory, no file handles): its slot then
        parses in its own thread."""
        from monitor.parse_worker import _Worker

        try:
            return _Worker(self.matcher)
        except Exception:  # noqa: BLE001 - whatever stops a process from starting
            return None

    def _call(self, request: _Request) -> ParseOutcome:
        worker: _Worker | None = self._idle.get()
        if worker is None:
            self._idle.put(None)
            self._load()
            return _outcome(request, self.matcher)
        try:
            return worker.call(request)
        except (OSError, EOFError, pickle.UnpicklingError):
            code = worker.stop()
            worker = self._try_start()
            if worker is not None:
                self._all.append(worker)
            self._load()
            # Read again here, by feedparser alone (no Rust code that might have crashed the worker).
            outcome = _outcome(request, self.matcher, fast=False)
            if isinstance(outcome, ParsedFeed):
                return outcome
            how = f": exit code {code}" if code is not None else ""
            return ParseError(f"{outcome} (and the parser process died reading it{how})")
        finally:
            self._idle.put(worker)


async def parse_all(
    parser: Parser,
    results: AsyncIterator[FetchResult],
    clock: Callable[[], datetime],
    max_items: int | None,
) -> AsyncIterator[tuple[FetchResult, ParseOutcome]]:
    """Parse each result as it arrives, a few at once, and yield them with their outcomes in the order the
    results arrived: the feeds are stored in the order they were fetched, as without the overlap."""
    import asyncio

    pending: asyncio.Queue[asyncio.Task[tuple[FetchResult, ParseOutcome]] | BaseException | None] = asyncio.Queue()
    slots = asyncio.Semaphore(2 * max(parser.workers, 1))  # parsed or parsing, not yet taken by the consumer
    tasks: set[asyncio.Task[tuple[FetchResult, ParseOutcome]]] = set()  # not yet taken: the rest are let go

    async def one(result: FetchResult) -> tuple[FetchResult, ParseOutcome]:
        return result, await parser.parse(result, clock(), max_items)

    async def produce() -> None:
        try:
            async for result in results:
                await slots.acquire()
                task = asyncio.create_task(one(result))
                tasks.add(task)
                pending.put_nowait(task)
            pending.put_nowait(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            pending.put_nowait(exc)
            raise

    producer = asyncio.create_task(produce())
    try:
        while (item := await pending.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            try:
                yield await item
            finally:
                tasks.discard(item)
                slots.release()
    finally:
        for task in (producer, *tasks):
            task.cancel()
        await asyncio.gather(producer, *tasks, return_exceptions=True)
