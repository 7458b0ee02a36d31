"""Parsing in worker processes: the same outcomes as in-process, one feed's fault stays that feed's, a dead
worker costs no feed (a forked one neither), small polls start no process, the workers after the first are
forked from it, and a worker imports no database or Telegram code."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.config import Config
from monitor.errors import FetchError, MonitorError, NotAFeed, ParseError
from monitor.feedserver import FeedServer, Response
from monitor.fetch import FetchRequest, FetchResult
from monitor.match import Matcher
from monitor.parse import ParsedFeed, parse_feed
from monitor.parse_pool import (
    POOL_FIRST_POLLS,
    MatchedFeed,
    Parser,
    body_digest,
    match_items,
    parse_all,
    parse_outcome,
)
from monitor.parse_worker import _read, _write
from monitor.pipeline import run_poll
from tests.conftest import REPLAY, ROOT, SEED_LIKE, SIGNED_DK, FakeClock, make_config, rss

NOW = datetime(2026, 7, 20, tzinfo=UTC)
SNAPSHOTS = sorted(REPLAY.glob("*.xml"))
HTML = b"<!doctype html><html><body>Sign in</body></html>"


def _result(index: int, body: bytes, content_type: str = "application/rss+xml") -> FetchResult:
    url = f"http://127.0.0.1:9/feed/{index}"
    return FetchResult(FetchRequest(f"f{index}", url), url, 200, {"content-type": content_type}, body)


def _workers() -> list[int]:
    """The pids of this process's descendants that are parser workers (a forked one's parent is the first)."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                commands[int(entry.name)] = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    family, grew = {os.getpid()}, True
    while grew:
        kids = {pid for pid, parent in parents.items() if parent in family} - family
        family |= kids
        grew = bool(kids)
    return sorted(pid for pid in family if b"monitor.parse_worker" in commands.get(pid, b""))


def _parse_many(parser: Parser, results: list[FetchResult]) -> list[object]:
    async def run() -> list[object]:
        return list(await asyncio.gather(*(parser.parse(result, NOW, None) for result in results)))

    return asyncio.run(run())


def test_parser_in_processes_gives_the_in_process_outcomes() -> None:
    results = [_result(index, path.read_bytes()) for index, path in enumerate(SNAPSHOTS[:6])]
    results.insert(3, _result(99, HTML, "text/html"))
    parser = Parser(workers=2, threshold=0)
    try:
        outcomes = _parse_many(parser, results)
    finally:
        parser.close()

    assert parser.processes == 2
    for result, outcome in zip(results, outcomes, strict=True):
        expected = parse_outcome(result.content, result.headers, result.url, NOW, None)
        if isinstance(expected, MonitorError):
            assert type(outcome) is type(expected) and str(outcome) == str(expected)
        else:
            assert outcome == expected
    assert isinstance(outcomes[3], NotAFeed)
    assert sum(isinstance(outcome, ParsedFeed) for outcome in outcomes) == 6


@pytest.mark.parametrize("threshold", [0, 1e9], ids=["processes", "thread"])
def test_parser_matches_the_items_of_a_feeds_first_poll_only(base_config: Config, threshold: float) -> None:
    matcher = Matcher(base_config.proposals, base_config.settings.status.ladder)
    first = [_result(index, path.read_bytes()) for index, path in enumerate(SNAPSHOTS[:4])]
    again = FetchResult(
        FetchRequest("f9", first[0].url, body_hash="0" * 64), first[0].url, 200, first[0].headers, first[0].content
    )
    parser = Parser(workers=2, threshold=threshold, matcher=matcher)
    try:
        outcomes = _parse_many(parser, [*first, again])
    finally:
        parser.close()

    assert parser.processes == (2 if threshold == 0 else 0)
    for outcome in outcomes[:-1]:
        assert isinstance(outcome, MatchedFeed)
        assert [list(found) for found in outcome.matches] == [matcher.match(i.title, i.summary) for i in outcome.items]
    assert any(outcome.matches for outcome in outcomes[:-1] if isinstance(outcome, MatchedFeed))
    assert type(outcomes[-1]) is ParsedFeed  # a later poll: the store matches only what is new
    # and each carries the digest the store keeps of its response, taken beside the parse, not by the one writer
    assert [getattr(outcome, "body_hash", None) for outcome in outcomes] == [body_digest(r) for r in [*first, again]]


def test_parse_all_yields_in_the_order_the_results_arrived() -> None:
    # the biggest snapshot first, then bodies that parse (or fail) at once: they finish first, come out after
    biggest = max(SNAPSHOTS, key=lambda path: path.stat().st_size)
    results = [_result(0, biggest.read_bytes()), _result(1, HTML, "text/html"), _result(2, SNAPSHOTS[0].read_bytes())]

    async def arrive() -> AsyncIterator[FetchResult]:
        for result in results:
            yield result

    async def run() -> list[str]:
        return [result.request.source_id async for result, _ in parse_all(parser, arrive(), lambda: NOW, None)]

    parser = Parser(workers=2)
    try:
        assert asyncio.run(run()) == ["f0", "f1", "f2"]
    finally:
        parser.close()


def test_parser_survives_a_worker_that_dies() -> None:
    body = SNAPSHOTS[0].read_bytes()
    parser = Parser(workers=2, threshold=0)
    try:
        _parse_many(parser, [_result(0, body)])
        killed = _workers()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        outcomes = _parse_many(parser, [_result(1, body), _result(2, body), _result(3, body)])
    finally:
        parser.close()

    expected = parse_feed(body, {"content-type": "application/rss+xml"}, "http://127.0.0.1:9/feed/1", NOW)
    assert [outcome == expected for outcome in outcomes] == [True, True, True]
    assert len(killed) == 2 and parser.processes > 2  # the dead ones were replaced


def test_parser_starts_one_process_that_forks_the_other_workers(base_config: Config) -> None:
    body = rss(SIGNED_DK, SEED_LIKE, ("plain", "Weather", "Rain tomorrow."))
    matcher = Matcher(base_config.proposals, base_config.settings.status.ladder)
    parser = Parser(workers=3, threshold=0, matcher=matcher)
    try:
        first = [_result(index, body) for index in range(6)]
        outcomes = _parse_many(parser, first)
        pids = _workers()
        started = [worker.process.pid for worker in parser._all if worker.process is not None]
    finally:
        parser.close()

    expected = match_items(parse_feed(body, {"content-type": "application/rss+xml"}, first[0].url, NOW), matcher)
    assert isinstance(expected, MatchedFeed) and any(expected.matches)
    assert all(isinstance(outcome, MatchedFeed) for outcome in outcomes)
    assert [outcome.matches for outcome in outcomes] == [expected.matches] * 6  # type: ignore[attr-defined]
    assert len(pids) == 3 and len(started) == 1 and started[0] in pids  # three workers, one of them started
    assert parser.processes == 3


def test_parser_small_poll_starts_no_process() -> None:
    results = [_result(index, path.read_bytes()) for index, path in enumerate(SNAPSHOTS[8:11])]
    parser = Parser(workers=2, threshold=2.0)  # a slow machine may spend more than the default 0.5 s on these
    try:
        outcomes = _parse_many(parser, results)
    finally:
        parser.close()

    assert 0 < parser.parse_seconds < parser.threshold
    assert parser.processes == 0
    assert all(isinstance(outcome, ParsedFeed) and outcome.items for outcome in outcomes)


def test_parser_nothing_to_parse_for_a_304_or_a_failed_fetch() -> None:
    request = FetchRequest("f", "http://127.0.0.1:9/f")
    failure = FetchError("connection refused")
    parser = Parser(workers=2, threshold=0)
    try:
        outcomes = _parse_many(
            parser, [FetchResult(request, request.url, 304), FetchResult(request, request.url, error=failure)]
        )
    finally:
        parser.close()

    assert outcomes == [None, None]
    assert parser.processes == 0


def _worker_process(command: list[str], family: bool) -> tuple[subprocess.Popen[bytes], IO[bytes], IO[bytes]]:
    """A worker started as the poll starts one (`python COMMAND`): alone on its stdin and stdout, or as a family
    of one on the pipe ends named in its arguments; with our ends of its requests and answers."""
    requests_read, requests_write = os.pipe()
    answers_read, answers_write = os.pipe()
    ends = (requests_read, answers_write)
    worker = subprocess.Popen(
        [sys.executable, *command, *(map(str, ends) if family else ())],
        stdin=requests_read if not family else subprocess.DEVNULL,
        stdout=answers_write if not family else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=ends if family else (),
        cwd=ROOT,
    )
    os.close(requests_read)
    os.close(answers_write)
    return worker, os.fdopen(requests_write, "wb"), os.fdopen(answers_read, "rb")


@pytest.mark.parametrize("family", [False, True], ids=["plain", "family"])
def test_parse_worker_stops_quietly_on_ctrl_c(family: bool) -> None:
    """Ctrl-C reaches the poll's whole process group: its workers end without a traceback of their own."""
    worker, requests, answers = _worker_process(["-m", "monitor.parse_worker"], family)
    with requests, answers:
        _write(requests, None)  # no matcher
        _write(requests, (rss(("1", "Plain", "Text.")), {}, "http://127.0.0.1:9/a", NOW, None, True))
        assert isinstance(_read(answers), ParsedFeed)  # in its loop now, waiting for the next feed
        worker.send_signal(signal.SIGINT)
        _, err = worker.communicate(timeout=30)
    assert (worker.returncode, err.decode()) == (130, "")


_AT_SHUTDOWN = (
    "import atexit, runpy, sys; atexit.register(lambda: print('interpreter shutdown', file=sys.stderr)); "
    "runpy.run_module('monitor.parse_worker', run_name='__main__')"
)


@pytest.mark.parametrize("family", [False, True], ids=["plain", "family"])
def test_parse_worker_whose_input_closes_leaves_at_once(family: bool) -> None:
    """Once its input closes every answer is written: the worker exits with 0 without the interpreter's shutdown
    (freeing all it loaded), which the poll would otherwise wait for at its end."""
    worker, requests, answers = _worker_process(["-c", _AT_SHUTDOWN], family)
    with requests, answers:
        _write(requests, None)  # no matcher
        for n in range(3):
            _write(requests, (rss((f"{n}", "Plain", "Text.")), {}, "http://127.0.0.1:9/a", NOW, None, True))
        requests.close()
        parsed = [_read(answers) for _ in range(3)]
        _, err = worker.communicate(timeout=30)
    assert [feed.items[0].key for feed in parsed] == ["guid:0", "guid:1", "guid:2"]
    assert (worker.returncode, err.decode()) == (0, "")


def test_parse_worker_imports_no_database_http_or_telegram_code() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor.parse_worker"],
        input=b"",
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.decode().splitlines() if "|" in line}
    assert "monitor.parse" in modules
    forbidden = ("sqlalchemy", "sqlmodel", "alembic", "psycopg", "telegram", "httpx", "monitor.db", "monitor.store")
    assert sorted(name for name in modules if name.split(".")[0] in forbidden or name in forbidden) == []


def test_parse_worker_matches_without_loading_pydantic_the_configuration_or_asyncio(base_config: Config) -> None:
    """The matcher reaches a parser process as plain data: the process reads and matches a first poll's items as
    the poll's own process would, without the half of its start that pydantic, the configuration's models and
    asyncio took."""
    matcher = Matcher(base_config.proposals, base_config.settings.status.ladder)
    body = rss(SEED_LIKE, SIGNED_DK, ("x1", "Markets close higher", "Stocks rose on Friday."))
    expected = match_items(parse_feed(body, {}, "http://127.0.0.1:9/a", NOW), matcher)
    assert isinstance(expected, MatchedFeed) and sum(map(bool, expected.matches)) == 2
    worker, requests, answers = _worker_process(["-X", "importtime", "-m", "monitor.parse_worker"], True)
    with requests, answers:
        _write(requests, matcher)
        _write(requests, (body, {}, "http://127.0.0.1:9/a", NOW, None, True))
        outcome = _read(answers)
        requests.close()
        _, err = worker.communicate(timeout=60)
    assert outcome == expected and outcome.matches == expected.matches
    modules = {line.rsplit("|", 1)[-1].strip() for line in err.decode().splitlines() if "|" in line}
    assert {"monitor.match", "monitor.cues", "rapidfuzz"} <= modules
    assert sorted(name for name in modules if name.split(".")[0] in ("pydantic", "asyncio", "yaml")) == []
    assert "monitor.config" not in modules


_FIRST_PARSE = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path
from monitor.fetch import FetchRequest, FetchResult
from monitor.parse_pool import Parser
body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b'<item><guid>1</guid><title>Plain</title></item></channel></rss>')
result = FetchResult(FetchRequest("a", "http://x/a.xml"), "http://x/a.xml", 200, {}, body)
outcome = asyncio.run(Parser(workers=2).parse(result, datetime.now(UTC), None))
print(type(outcome).__name__, sorted({"feedparser", "bs4", "rapidfuzz"} & set(sys.modules)))
"""


def test_parser_first_parse_loads_every_library_a_parse_thread_would_load_lazily() -> None:
    # Two parse threads that first import such libraries at once can deadlock on Python's module locks
    # (feedparser.datetimes, under load): the first parse loads them all while the other threads wait.
    done = subprocess.run([sys.executable, "-c", _FIRST_PARSE], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split(maxsplit=1) == ["ParsedFeed", "['bs4', 'feedparser', 'rapidfuzz']\n"]


def test_parser_starts_processes_once_parsing_took_its_threshold() -> None:
    results = [_result(index, path.read_bytes()) for index, path in enumerate(SNAPSHOTS[:4])]
    parser = Parser(workers=2, threshold=1e-9)
    try:
        first = _parse_many(parser, results[:1])
        rest = _parse_many(parser, results[1:])
    finally:
        parser.close()

    assert parser.processes == 2
    assert all(isinstance(outcome, ParsedFeed) and outcome.items for outcome in first + rest)


def test_run_poll_many_feeds_a_bad_feed_fails_alone(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str
) -> None:
    sources = {
        f"r{index}": server.serve(f"/r{index}", Response.from_file(path)) for index, path in enumerate(SNAPSHOTS)
    }
    sources["bad"] = server.serve("/bad", Response(HTML, "text/html"))
    config = make_config(base_config, database_url, sources, read_timeout=20, total_timeout=60)

    summary = run_poll(config, engine, FakeClock(NOW))

    failed = {feed.source_id: feed.error for feed in summary.feeds if feed.outcome == "failed"}
    assert list(failed) == ["bad"]
    assert failed["bad"] is not None and "\n" not in failed["bad"] and failed["bad"].startswith("NotAFeed: not a feed")
    expected = {
        f"r{index}": len(parse_feed(path.read_bytes(), {}, sources[f"r{index}"], NOW).items)
        for index, path in enumerate(SNAPSHOTS)
    }
    with engine.connect() as connection:
        stored: dict[str, int] = dict(
            connection.execute(sa.text("SELECT source_id, count(*) FROM item GROUP BY source_id")).all()
        )
    assert stored == expected


@pytest.mark.parametrize("body", [b"", b"   "])
def test_parse_outcome_returns_the_feeds_error(body: bytes) -> None:
    outcome = parse_outcome(body, {}, "http://127.0.0.1:9/f", NOW, None)

    assert isinstance(outcome, ParseError) and str(outcome) == "empty body"


@pytest.mark.parametrize(
    ("first_polls", "later_polls", "started"),
    [(POOL_FIRST_POLLS, 0, 2), (POOL_FIRST_POLLS - 1, 40, 0)],
    ids=["enough-first-polls", "too-few"],
)
def test_parser_starts_processes_before_any_answer_for_a_batch_of_first_polls(
    first_polls: int, later_polls: int, started: int
) -> None:
    requests = [FetchRequest(f"f{n}", f"http://127.0.0.1:9/{n}") for n in range(first_polls)]
    requests += [FetchRequest(f"g{n}", f"http://127.0.0.1:9/g{n}", body_hash="0" * 64) for n in range(later_polls)]
    parser = Parser(workers=2, threshold=1e9)  # never by the CPU spent
    try:
        parser.expect(requests)
        outcomes = _parse_many(parser, [_result(0, SNAPSHOTS[0].read_bytes())])
    finally:
        parser.close()

    assert parser.processes == started
    assert isinstance(outcomes[0], ParsedFeed) and outcomes[0].items


def test_parser_parses_in_its_threads_when_no_process_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    results = [_result(index, path.read_bytes()) for index, path in enumerate(SNAPSHOTS[:3])]
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    parser = Parser(workers=2, threshold=0)
    try:
        outcomes = _parse_many(parser, results)
    finally:
        parser.close()

    assert parser.processes == 0
    assert outcomes == [parse_outcome(r.content, r.headers, r.url, NOW, None) for r in results]
