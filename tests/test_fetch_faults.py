"""Faults a feed server can throw at the poller, through the real pipeline.

A real `FeedServer` on 127.0.0.1 serves each fault (tests/faults.py) next to a healthy feed (a real Kyiv
Independent snapshot); `run_poll` stores into a real SQLite file migrated by Alembic; a fake clock moves time
between runs. Every fault must end as a recorded feed error (FeedPoll row, source health and schedule) without
touching the other feeds of the run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any

import feedparser
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import Config, SourceConfig
from monitor.feedserver import FeedServer, RecordedRequest, Response
from monitor.outcomes import PollSummary
from monitor.pipeline import run_poll
from monitor.store import models
from tests.conftest import SHARED, FakeClock, make_config
from tests.faults import Drip, Stall, Unsized, closed_port_url, gzipped, hang_up, redirect, status

# HTTP faults: what they store is a feed's error, health and schedule, the same writes on either database
# (test_pipeline_faults and test_bot's failing-feed test make them on PostgreSQL too).
pytestmark = pytest.mark.sqlite_only

HEALTHY = SHARED / "corpus" / "real" / "single_snapshots" / "kyivindependent__plakhovgroup_2024-07-26__df6a163.xml"
HEALTHY_ITEMS = 20
INTERVAL = 600.0
# Small timeouts keep the suite fast; max_bytes leaves room for the healthy feed (about 180 KB). per_host
# stays under FeedServer's listen backlog (socketserver's default of 5): more simultaneous connects than
# that get their SYN dropped and retried a second later, past connect_timeout.
FAST: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 0.5,
    "total_timeout": 3,
    "concurrency": 8,
    "per_host": 4,
    "max_bytes": 256 * 1024,
    "interval": INTERVAL,
    "min_interval": 300,
}

GARBAGE_XML = b'<?xml version="1.0"?>\n<data><<<<not a feed</data>'
TRUNCATED_FEED = b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Truncated</title><description>cut'
RECOVERABLE_FEED = (
    b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Recoverable</title><item>'
    b"<title>A &bogus; entity</title><link>https://example.com/a</link></item></channel></rss>"
)
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>News</title></head><body><h1>Latest news</h1></body></html>"
FEED_TEMPLATE = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Padded</title>'
    b"<link>https://example.org/</link><item><title>Only item</title>"
    b"<link>https://example.org/only</link><guid>only</guid></item>%s</channel></rss>"
)


def padded_feed(size: int) -> bytes:
    """A valid one-item feed of about `size` bytes (the padding is whitespace between elements)."""
    return FEED_TEMPLATE % (b" " * max(size - len(FEED_TEMPLATE % b""), 0))


def fast_config(base: Config, database_url: str, sources: dict[str, str], **poll: Any) -> Config:
    return make_config(base, database_url, sources, **{**FAST, **poll})


def source_row(engine: Engine, source_id: str) -> models.Source:
    with Session(engine) as session:
        row = session.get(models.Source, source_id)
        assert row is not None
        return row


def feed_polls(engine: Engine, source_id: str) -> list[models.FeedPoll]:
    with Session(engine) as session:
        query = select(models.FeedPoll).where(models.FeedPoll.source_id == source_id)
        return list(session.exec(query.order_by(col(models.FeedPoll.id))))


def poll_run(engine: Engine, run_id: int | None) -> models.PollRun:
    with Session(engine) as session:
        run = session.get(models.PollRun, run_id)
        assert run is not None
        return run


def old_urls(engine: Engine, source_id: str) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(models.SourceURL).where(models.SourceURL.source_id == source_id))
        return [(row.url, row.replaced_by) for row in rows]


def item_count(engine: Engine, source_id: str) -> int:
    with Session(engine) as session:
        return len(session.exec(select(models.Item.id).where(models.Item.source_id == source_id)).all())


def only_poll(engine: Engine, source_id: str) -> models.FeedPoll:
    polls = feed_polls(engine, source_id)
    assert len(polls) == 1
    return polls[0]


class Site:
    """One test's corner of a FeedServer shared by the module: its paths live under a prefix of their own."""

    def __init__(self, server: FeedServer, prefix: str) -> None:
        self._server = server
        self.prefix = prefix

    def url(self, path: str) -> str:
        return self._server.url(self.prefix + path)

    def serve(self, path: str, route: Response | Callable[[BaseHTTPRequestHandler], None]) -> str:
        return self._server.serve(self.prefix + path, route)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return self._server.requests_for(self.prefix + path)


_SITES = itertools.count()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


@pytest.fixture
def server(shared_server: FeedServer) -> Site:
    """Overrides conftest's `server`: one server for the module, as stopping one takes half a second."""
    return Site(shared_server, f"/t{next(_SITES)}")


@pytest.fixture
def stall() -> Iterator[Stall]:
    handler = Stall(limit=10)
    yield handler
    handler.release()


@pytest.fixture
def drip() -> Iterator[Drip]:
    handler = Drip(every=0.1, limit=10)
    yield handler
    handler.release()


# --- every fault in one run ------------------------------------------------------------------------------
Route = Callable[[Site, FakeClock, Stall], str]  # serves a fault and returns the URL to poll


def _serve(path: str, response: Any) -> Route:
    return lambda server, clock, stall: server.serve(path, response)


def _redirecting(path: str, location: str, code: int = 301) -> Route:
    def route(server: Site, clock: FakeClock, stall: Stall) -> str:
        return server.serve(path, redirect(location if "://" in location else server.url(location), code))

    return route


def serve_loop(server: Site) -> str:
    server.serve("/loop-b", redirect(server.url("/loop-a"), 302))
    return server.serve("/loop-a", redirect(server.url("/loop-b"), 302))


def serve_retry_at(server: Site, when: datetime) -> str:
    return server.serve("/unavailable", status(503, {"Retry-After": formatdate(when.timestamp(), usegmt=True)}))


# source id -> (what the server does, how the FeedPoll error starts, what else it says)
FAULTS: dict[str, tuple[Route, str, str]] = {
    "read-timeout": (lambda server, clock, stall: server.serve("/stall", stall), "FetchTimeout", "read timed out"),
    "http-500": (_serve("/error", status(500)), "FetchHTTPError", "HTTP 500 Internal Server Error"),
    "http-429": (_serve("/busy", status(429, {"Retry-After": "7200"})), "FetchHTTPError", "HTTP 429"),
    "http-503": (
        lambda server, clock, stall: serve_retry_at(server, clock.now + timedelta(hours=3)),
        "FetchHTTPError",
        "HTTP 503 Service Unavailable",
    ),
    "http-410": (_serve("/gone", status(410)), "FetchHTTPError", "HTTP 410 Gone"),
    # byte 0xB2 ('²') passes str.isdigit() but not float(): it once crashed the whole run
    "odd-retry-after": (_serve("/odd", status(503, {"Retry-After": "\xb2"})), "FetchHTTPError", "HTTP 503"),
    "redirect-loop": (lambda server, clock, stall: serve_loop(server), "RedirectError", "redirect loop"),
    "redirect-file": (_redirecting("/to-file", "file:///etc/passwd"), "RedirectError", "file URL refused"),
    "oversized": (_serve("/big", Response(padded_feed(300_000))), "BodyTooLarge", "exceeds the limit"),
    "gzip-bomb": (_serve("/bomb", gzipped(padded_feed(5_000_000))), "BodyTooLarge", "after decompression"),
    "invalid-xml": (_serve("/garbage", Response(GARBAGE_XML)), "ParseError", "not well-formed"),
    "truncated": (_serve("/truncated", Response(TRUNCATED_FEED)), "ParseError", "no element found"),
    "html-page": (_serve("/page", Response(HTML_PAGE, "text/html; charset=utf-8")), "NotAFeed", "HTML page"),
    "empty-body": (_serve("/empty", Response(b"")), "ParseError", "empty body"),
    "refused": (lambda server, clock, stall: closed_port_url(), "FetchError", "cannot connect"),
    "hang-up": (_serve("/hang-up", hang_up), "FetchError", "broken HTTP answer"),
}


def test_run_poll_faults_leave_healthy_feeds_unaffected(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config, stall: Stall
) -> None:
    sources = {source_id: route(server, clock, stall) for source_id, (route, _, _) in FAULTS.items()}
    sources["healthy"] = server.serve("/healthy", Response.from_file(HEALTHY))
    server.serve("/moved-here", Response.from_file(HEALTHY))
    sources["moved"] = _redirecting("/moved", "/moved-here")(server, clock, stall)
    config = fast_config(base_config, database_url, sources)

    summary = run_poll(config, engine, clock)

    outcomes = {feed.source_id: feed for feed in summary.feeds}
    assert set(outcomes) == set(sources)
    assert (summary.feeds_due, summary.count("ok"), summary.count("failed")) == (len(sources), 2, len(FAULTS))
    assert not summary.nothing_polled
    for source_id in ("healthy", "moved"):
        poll = only_poll(engine, source_id)
        assert (poll.outcome, poll.status_code, poll.error) == ("ok", 200, None)
        assert poll.items_seen == poll.items_new == item_count(engine, source_id) == HEALTHY_ITEMS
        source = source_row(engine, source_id)
        assert (source.health, source.last_error) == ("ok", None)
        assert source.next_poll_at == clock.now + timedelta(seconds=INTERVAL)
    assert old_urls(engine, "moved") == [(server.url("/moved"), server.url("/moved-here"))]
    for source_id, (_, kind, detail) in FAULTS.items():
        poll = only_poll(engine, source_id)
        assert poll.outcome == "failed", source_id
        assert poll.error is not None and poll.error.startswith(f"{kind}: "), (source_id, poll.error)
        assert detail in poll.error, (source_id, poll.error)
        assert "\n" not in poll.error
        assert poll.run_id == summary.run_id and poll.items_new == 0
        assert source_row(engine, source_id).last_error == poll.error
        assert item_count(engine, source_id) == 0
    assert source_row(engine, "http-410").health == "disabled"
    run = poll_run(engine, summary.run_id)
    assert (run.feeds_due, run.feeds_ok, run.feeds_not_modified, run.feeds_failed) == (len(sources), 2, 0, len(FAULTS))
    assert run.items_new == summary.items_new == 2 * HEALTHY_ITEMS
    assert run.finished_at == clock.now


# --- one fault at a time ---------------------------------------------------------------------------------
def test_fetch_read_timeout_is_a_feed_error(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config, stall: Stall
) -> None:
    config = fast_config(base_config, database_url, {"slow": server.serve("/stall", stall)})

    summary = run_poll(config, engine, clock)

    poll = only_poll(engine, "slow")
    assert (poll.outcome, poll.status_code) == ("failed", None)
    assert poll.error is not None and poll.error.startswith("FetchTimeout: read timed out")
    assert 500 <= poll.duration_ms < 3000  # waited for read_timeout, not for the total deadline
    source = source_row(engine, "slow")
    assert (source.health, source.consecutive_failures) == ("ok", 1)
    assert source.next_poll_at == clock.now + timedelta(seconds=INTERVAL)
    assert summary.nothing_polled


def test_fetch_slow_drip_hits_the_total_deadline(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config, drip: Drip
) -> None:
    """A byte every 0.1 s never trips the 0.5 s read timeout; the 1 s total deadline ends it."""
    config = fast_config(base_config, database_url, {"drip": server.serve("/drip", drip)}, total_timeout=1)

    run_poll(config, engine, clock)

    poll = only_poll(engine, "drip")
    assert poll.error == "FetchTimeout: no complete answer within 1s"
    assert 1000 <= poll.duration_ms < 2500


def test_fetch_http_500_is_a_feed_error(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    config = fast_config(base_config, database_url, {"broken": server.serve("/error", status(500, body=b"oops"))})

    run_poll(config, engine, clock)

    poll = only_poll(engine, "broken")
    assert (poll.outcome, poll.status_code, poll.error) == (
        "failed",
        500,
        "FetchHTTPError: HTTP 500 Internal Server Error",
    )
    assert poll.next_poll_at == clock.now + timedelta(seconds=INTERVAL)
    assert source_row(engine, "broken").last_status_code == 500


def test_schedule_429_retry_after_is_a_lower_bound(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    url = server.serve("/busy", status(429, {"Retry-After": "7200"}))
    config = fast_config(base_config, database_url, {"busy": url})
    started = clock.now

    run_poll(config, engine, clock)

    poll = only_poll(engine, "busy")
    assert (poll.status_code, poll.error) == (429, "FetchHTTPError: HTTP 429 Too Many Requests")
    assert source_row(engine, "busy").next_poll_at == started + timedelta(seconds=7200)
    clock.advance(seconds=7199)  # far past the 600 s backoff, still inside Retry-After
    assert run_poll(config, engine, clock).feeds_due == 0
    assert len(server.requests_for("/busy")) == 1
    clock.advance(seconds=1)
    assert run_poll(config, engine, clock).feeds_due == 1
    assert len(server.requests_for("/busy")) == 2


def test_schedule_503_retry_after_http_date(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    url = serve_retry_at(server, clock.now + timedelta(hours=3))
    config = fast_config(base_config, database_url, {"unavailable": url})

    run_poll(config, engine, clock)

    poll = only_poll(engine, "unavailable")
    assert (poll.status_code, poll.error) == (503, "FetchHTTPError: HTTP 503 Service Unavailable")
    assert poll.next_poll_at == source_row(engine, "unavailable").next_poll_at == clock.now + timedelta(hours=3)


@pytest.mark.parametrize("code", [301, 308])
def test_fetch_permanent_redirect_moves_the_source(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config, code: int
) -> None:
    old = server.serve("/old.xml", redirect(server.url("/new.xml"), code))
    new = server.serve("/new.xml", Response.from_file(HEALTHY))
    config = fast_config(base_config, database_url, {"moving": old})

    summary = run_poll(config, engine, clock)

    assert summary.feeds[0].moved_to == new
    poll = only_poll(engine, "moving")
    assert (poll.outcome, poll.items_new) == ("ok", HEALTHY_ITEMS)
    source = source_row(engine, "moving")
    assert (source.url, source.config_url) == (new, old)
    assert old_urls(engine, "moving") == [(old, new)]
    # The next run asks the new URL directly, conditionally, and the old one no more.
    clock.advance(seconds=INTERVAL)
    assert run_poll(config, engine, clock).count("not-modified") == 1
    assert len(server.requests_for("/old.xml")) == 1
    assert len(server.requests_for("/new.xml")) == 2
    assert server.requests_for("/new.xml")[-1].headers.get("If-None-Match") == Response.from_file(HEALTHY).etag


def test_fetch_permanent_redirect_to_a_failing_url_does_not_move_the_source(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    old = server.serve("/moved-away.xml", redirect(server.url("/nowhere.xml"), 301))
    config = fast_config(base_config, database_url, {"moving": old})

    run_poll(config, engine, clock)

    assert only_poll(engine, "moving").status_code == 404
    assert source_row(engine, "moving").url == old
    assert old_urls(engine, "moving") == []


def test_fetch_temporary_redirect_keeps_the_source_url(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    url = server.serve("/feed.xml", redirect(server.url("/today.xml"), 302))
    server.serve("/today.xml", Response.from_file(HEALTHY))
    config = fast_config(base_config, database_url, {"temporary": url})

    run_poll(config, engine, clock)
    clock.advance(seconds=INTERVAL)
    run_poll(config, engine, clock)

    assert [poll.outcome for poll in feed_polls(engine, "temporary")] == ["ok", "not-modified"]
    assert source_row(engine, "temporary").url == url
    assert old_urls(engine, "temporary") == []
    assert len(server.requests_for("/feed.xml")) == 2


def test_fetch_permanent_then_temporary_redirect_moves_to_the_first_hop(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    first = server.serve("/a.xml", redirect(server.url("/b.xml"), 301))
    second = server.serve("/b.xml", redirect(server.url("/c.xml"), 302))
    server.serve("/c.xml", Response.from_file(HEALTHY))
    config = fast_config(base_config, database_url, {"hops": first})

    run_poll(config, engine, clock)

    assert source_row(engine, "hops").url == second
    assert old_urls(engine, "hops") == [(first, second)]


def test_fetch_redirect_loop_is_refused(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    config = fast_config(base_config, database_url, {"loop": serve_loop(server)})

    run_poll(config, engine, clock)

    assert only_poll(engine, "loop").error == f"RedirectError: redirect loop at {server.url('/loop-a')}"
    assert (len(server.requests_for("/loop-a")), len(server.requests_for("/loop-b"))) == (1, 1)
    assert source_row(engine, "loop").url == server.url("/loop-a")


def test_fetch_too_many_redirects_are_refused(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    for hop in range(10):
        server.serve(f"/hop{hop}", redirect(server.url(f"/hop{hop + 1}"), 302))
    config = fast_config(base_config, database_url, {"chain": server.url("/hop0")}, max_redirects=3)

    run_poll(config, engine, clock)

    assert only_poll(engine, "chain").error == "RedirectError: more than 3 redirects"
    assert sum(len(server.requests_for(f"/hop{hop}")) for hop in range(10)) == 4


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", "redirect to a file URL refused: only http and https"),
        ("ftp://127.0.0.1/feed.xml", "redirect to a ftp URL refused: only http and https"),
        # not even a URL with a host: refused by its scheme too, and the run goes on
        ("javascript:alert(1)", "redirect to a javascript URL refused: only http and https"),
        ("mailto:editor@example.com", "redirect to a mailto URL refused: only http and https"),
    ],
)
def test_fetch_redirect_to_other_scheme_is_refused(
    server: Site,
    engine: Engine,
    database_url: str,
    clock: FakeClock,
    base_config: Config,
    location: str,
    message: str,
) -> None:
    url = server.serve("/escape", redirect(location, 301))
    sources = {"escape": url, "healthy": server.serve("/healthy", Response.from_file(HEALTHY))}
    config = fast_config(base_config, database_url, sources)

    summary = run_poll(config, engine, clock)

    poll = only_poll(engine, "escape")
    assert poll.error is not None and poll.error.startswith(f"RedirectError: {message}")
    assert source_row(engine, "escape").url == url  # a permanent redirect that is refused moves nothing
    assert old_urls(engine, "escape") == []
    assert summary.count("ok") == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:abc/feed.xml", "Port could not be cast to integer value as 'abc'"),
        ("http://[::1/feed.xml", "Invalid IPv6 URL"),
    ],
)
def test_fetch_invalid_url_is_a_feed_error(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config, url: str, reason: str
) -> None:
    """`monitor check` refuses these; a row that holds one anyway (written before it did) fails alone."""
    sources = {"typo": "http://127.0.0.1/typo", "healthy": server.serve("/healthy", Response.from_file(HEALTHY))}
    config = fast_config(base_config, database_url, sources)
    typo = SourceConfig.model_construct(**{**config.sources[0].model_dump(), "url": url})
    config = replace(config, sources=(typo, config.sources[1]))

    summary = run_poll(config, engine, clock)

    assert summary.count("ok") == 1
    assert only_poll(engine, "typo").error == f"UnsupportedURL: invalid URL {url}: {reason}"


def test_fetch_410_disables_the_feed(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    sources = {"gone": server.serve("/gone", status(410)), "healthy": server.serve("/ok", Response.from_file(HEALTHY))}
    config = fast_config(base_config, database_url, sources)

    first = run_poll(config, engine, clock)

    assert {feed.source_id: feed.health for feed in first.feeds} == {"gone": "disabled", "healthy": "ok"}
    gone = source_row(engine, "gone")
    assert (gone.health, gone.last_status_code) == ("disabled", 410)
    assert gone.disabled_reason is not None and "410" in gone.disabled_reason
    clock.advance(days=30)
    later = run_poll(config, engine, clock)
    assert [feed.source_id for feed in later.feeds] == ["healthy"]
    assert len(server.requests_for("/gone")) == 1
    # Named explicitly, a disabled feed is polled again (how an operator checks whether it came back).
    assert run_poll(config, engine, clock, only=["gone"]).feeds_due == 1
    assert len(server.requests_for("/gone")) == 2


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Response(padded_feed(50_000)), "BodyTooLarge: body of 50,000 bytes exceeds the limit of 10,000"),
        (Unsized(padded_feed(50_000)), "BodyTooLarge: body exceeds the limit of 10,000 bytes (after decompression)"),
    ],
    ids=["content-length", "no-content-length"],
)
def test_fetch_oversized_body_is_refused(
    server: Site,
    engine: Engine,
    database_url: str,
    clock: FakeClock,
    base_config: Config,
    route: Any,
    message: str,
) -> None:
    config = fast_config(base_config, database_url, {"big": server.serve("/big", route)}, max_bytes=10_000)

    run_poll(config, engine, clock)

    assert only_poll(engine, "big").error == message


def test_fetch_gzip_body_is_limited_after_decompression(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    small, bomb = gzipped(padded_feed(20_000)), gzipped(padded_feed(5_000_000))
    assert len(bomb.body) < 100_000  # it is the decompressed size that breaks the limit
    sources = {"small": server.serve("/small.xml.gz", small), "bomb": server.serve("/bomb.xml.gz", bomb)}
    config = fast_config(base_config, database_url, sources, max_bytes=100_000)

    run_poll(config, engine, clock)

    assert (only_poll(engine, "small").outcome, item_count(engine, "small")) == ("ok", 1)
    assert only_poll(engine, "bomb").error == (
        "BodyTooLarge: body exceeds the limit of 100,000 bytes (after decompression)"
    )


@pytest.mark.parametrize("body", [GARBAGE_XML, TRUNCATED_FEED], ids=["garbage", "truncated"])
def test_parse_invalid_xml_is_a_feed_error_with_feedparsers_message(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config, body: bytes
) -> None:
    config = fast_config(base_config, database_url, {"invalid": server.serve("/invalid", Response(body))})

    run_poll(config, engine, clock)

    poll = only_poll(engine, "invalid")
    expected = feedparser.parse(body).bozo_exception.getMessage()
    assert poll.outcome == "failed" and poll.status_code == 200
    assert poll.error is not None and poll.error.startswith("ParseError: ") and expected in poll.error
    assert source_row(engine, "invalid").etag is None  # a broken body's validators are not kept


def test_parse_recoverable_malformed_feed_is_stored_with_a_warning(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    config = fast_config(base_config, database_url, {"sloppy": server.serve("/sloppy", Response(RECOVERABLE_FEED))})

    run_poll(config, engine, clock)

    poll = only_poll(engine, "sloppy")
    assert (poll.outcome, poll.items_new) == ("ok", 1)
    assert poll.error is not None and "undefined entity" in poll.error
    assert source_row(engine, "sloppy").last_error == poll.error


def test_parse_html_page_is_not_a_feed(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    url = server.serve("/home", Response(HTML_PAGE, "text/html; charset=utf-8"))
    config = fast_config(base_config, database_url, {"homepage": url})

    run_poll(config, engine, clock)

    assert only_poll(engine, "homepage").error == "NotAFeed: not a feed: an HTML page (text/html; charset=utf-8)"


def test_parse_empty_body_is_a_feed_error(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    config = fast_config(base_config, database_url, {"empty": server.serve("/empty", Response(b"\n  \n"))})

    run_poll(config, engine, clock)

    assert only_poll(engine, "empty").error == "ParseError: empty body"


def test_fetch_connection_refused_is_a_feed_error(
    engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    config = fast_config(base_config, database_url, {"closed": closed_port_url()})

    summary = run_poll(config, engine, clock)

    poll = only_poll(engine, "closed")
    assert poll.error is not None and poll.error.startswith("FetchError: cannot connect")
    assert poll.duration_ms < 1000 and poll.status_code is None
    assert summary.nothing_polled


def test_fetch_hang_up_is_a_feed_error(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    config = fast_config(base_config, database_url, {"rude": server.serve("/rude", hang_up)})

    run_poll(config, engine, clock)

    error = only_poll(engine, "rude").error
    assert error is not None and error.startswith("FetchError: broken HTTP answer")


# --- repeated failures -----------------------------------------------------------------------------------
def test_schedule_failures_back_off_exponentially_until_failing(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    url = server.serve("/flaky", status(500))
    config = fast_config(base_config, database_url, {"flaky": url}, max_backoff=3600, failing_after=3)
    seen: list[tuple[float, str, int]] = []

    for _ in range(5):
        summary = run_poll(config, engine, clock)
        assert summary.feeds_due == 1 and summary.nothing_polled
        source = source_row(engine, "flaky")
        assert source.next_poll_at is not None
        seen.append(((source.next_poll_at - clock.now).total_seconds(), source.health, source.consecutive_failures))
        clock.now = source.next_poll_at - timedelta(seconds=1)
        assert run_poll(config, engine, clock).feeds_due == 0  # not due a second early
        clock.advance(seconds=1)

    assert seen == [(600, "ok", 1), (1200, "ok", 2), (2400, "failing", 3), (3600, "failing", 4), (3600, "failing", 5)]
    failing = source_row(engine, "flaky")
    assert failing.last_error == "FetchHTTPError: HTTP 500 Internal Server Error"
    polls = feed_polls(engine, "flaky")
    assert [poll.outcome for poll in polls] == ["failed"] * 5
    assert [(poll.next_poll_at - poll.polled_at).total_seconds() for poll in polls if poll.next_poll_at] == [
        600,
        1200,
        2400,
        3600,
        3600,
    ]

    server.serve("/flaky", Response.from_file(HEALTHY))  # the feed recovers
    run_poll(config, engine, clock)
    recovered = source_row(engine, "flaky")
    assert (recovered.health, recovered.consecutive_failures, recovered.last_error) == ("ok", 0, None)
    assert recovered.next_poll_at == clock.now + timedelta(seconds=INTERVAL)


# --- exit semantics --------------------------------------------------------------------------------------
def _summary_flags(summary: PollSummary) -> tuple[int, int, int, bool]:
    return (
        summary.feeds_due,
        summary.count("ok") + summary.count("not-modified"),
        summary.count("failed"),
        summary.nothing_polled,
    )


def test_pipeline_nothing_polled_only_when_every_due_feed_failed(
    server: Site, engine: Engine, database_url: str, clock: FakeClock, base_config: Config
) -> None:
    failing = {"broken": server.serve("/broken", status(500)), "closed": closed_port_url()}
    healthy = {"healthy": server.serve("/healthy", Response.from_file(HEALTHY))}
    everything = fast_config(base_config, database_url, {**failing, **healthy})

    assert _summary_flags(run_poll(everything, engine, clock, only=list(failing))) == (2, 0, 2, True)
    assert _summary_flags(run_poll(everything, engine, clock, force=True)) == (3, 1, 2, False)
    # Nothing due is not a failure either.
    assert _summary_flags(run_poll(everything, engine, clock)) == (0, 0, 0, False)
    # A 304 counts as polled.
    clock.advance(days=1)
    not_modified = run_poll(everything, engine, clock)
    assert _summary_flags(not_modified) == (3, 1, 2, False)
    assert not_modified.count("not-modified") == 1
