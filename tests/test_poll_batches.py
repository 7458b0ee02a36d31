"""A poll leases its feeds a batch at a time, yet keeps every fetch slot busy: the next batch is leased while the
last feeds of this one are fetched, and the feeds stay shared out between workers. A host's feeds share its
connections, whether they answer with a body or with 304. One fetch at a time hands the feeds over in the order
they were leased."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.config import Config, PollSettings
from monitor.feedserver import FeedServer, Response
from monitor.fetch import FetchRequest, fetch_all, make_session
from monitor.pipeline import run_poll

from .conftest import FakeClock, make_config, rss

FEEDS = 8


class SlowFeeds:
    """Routes that answer after `delay` seconds and count how many requests are in flight at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        body = rss(("a1", f"News of {handler.path}", "Nothing about proposals."))
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def test_the_next_batch_is_fetched_while_this_one_ends(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    slow = SlowFeeds(delay=0.4)
    feeds = {f"f{number}": server.serve(f"/f{number}.xml", slow) for number in range(FEEDS)}
    config = make_config(base_config, database_url, feeds, batch=2, concurrency=4, per_host=4)
    summary = run_poll(config, engine, clock)
    assert summary.feeds_due == FEEDS
    assert sorted(feed.source_id for feed in summary.feeds if feed.outcome == "ok") == sorted(feeds)
    assert summary.items_new == FEEDS
    assert slow.most == 4  # batches of two, four fetches at once: a batch does not wait for the one before it
    with engine.connect() as connection:
        held = connection.execute(sa.text("SELECT count(*) FROM source WHERE lease_owner IS NOT NULL")).scalar_one()
        polls = connection.execute(sa.text("SELECT count(*) FROM feed_poll")).scalar_one()
    assert (held, polls) == (0, FEEDS)


def test_a_batch_whose_fetches_all_end_at_once_is_followed_by_the_next(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    # One feed a batch, one fetch at a time: each batch's only fetch ends before the next batch was asked for
    feeds = {
        f"f{number}": server.serve(f"/f{number}.xml", Response(rss((f"a{number}", "t", "s")))) for number in range(3)
    }
    config = make_config(base_config, database_url, feeds, batch=1, concurrency=1)
    summary = run_poll(config, engine, clock)
    assert (summary.feeds_due, summary.count("ok"), summary.items_new) == (3, 3, 3)


def test_a_hosts_feeds_share_one_kept_alive_connection(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    feeds = {f"f{n}": server.serve(f"/f{n}.xml", Response(rss((f"a{n}", f"News {n}", "Plain.")))) for n in range(6)}
    config = make_config(base_config, database_url, feeds, concurrency=4, per_host=1, batch=2)
    assert run_poll(config, engine, clock).items_new == 6
    assert len({request.client_port for request in server.requests}) == 1
    server.requests.clear()
    summary = run_poll(config, engine, clock, force=True)
    assert [feed.outcome for feed in summary.feeds] == ["not-modified"] * 6
    assert len(server.requests) == 6 and len({request.client_port for request in server.requests}) == 1


def test_fetches_that_end_while_the_caller_is_busy_come_in_the_order_they_were_started() -> None:
    """One fetch at a time keeps the leased order even when the caller takes a while over each result (the
    poll parses and stores it): the fetches that ended meanwhile are handed over oldest first."""
    settings = PollSettings(concurrency=1, per_host=1)
    with FeedServer() as server:
        urls = [server.serve(f"/f{n}.xml", Response(rss((f"f{n}", "News", "Plain.")))) for n in range(FEEDS)]

        async def fetch_slowly() -> list[str]:
            requests = [FetchRequest(f"f{n}", url) for n, url in enumerate(urls)]
            async with make_session(settings) as session:
                order = []
                async for result in fetch_all(session, requests, settings):
                    order.append(result.request.source_id)
                    if len(order) == 1:
                        await asyncio.sleep(0.5)  # the others end meanwhile
                return order

        assert asyncio.run(fetch_slowly()) == [f"f{n}" for n in range(FEEDS)]
