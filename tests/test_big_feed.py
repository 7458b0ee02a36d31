"""A feed of 100,000 items: polled without a crash or a hang, the first `max_items` stored, the rest named in
a warning; the next poll stores nothing twice."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from monitor.config import Config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store import models

from .conftest import FakeClock, make_config

ITEMS = 100_000


@pytest.mark.sqlite_only  # the parse is the cost here, the same on any database; kept off the PostgreSQL pass
def test_poll_feed_of_100000_items_keeps_the_first_max_items(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    entries = "".join(f"<item><guid>g{n}</guid><title>Market report {n}</title></item>" for n in range(ITEMS))
    body = f'<rss version="2.0"><channel><title>huge</title>{entries}</channel></rss>'.encode()
    server.serve("/huge.xml", Response(body))
    config = make_config(
        base_config, database_url, {"huge": server.url("/huge.xml")}, max_items=2_000, total_timeout=60, read_timeout=30
    )
    started = time.monotonic()
    summary = run_poll(config, engine, clock)
    assert time.monotonic() - started < 120
    feed = summary.feeds[0]
    assert (feed.outcome, feed.items_new) == ("ok", 2_000)
    assert feed.warning == "more than max_items (2,000): kept the first 2,000 of 100,000 entries"
    with Session(engine) as session:
        keys = session.exec(select(models.Item.key).order_by(col(models.Item.id))).all()
    assert keys[0].endswith("/g0") and keys[-1].endswith("/g1999") and len(set(keys)) == 2_000

    clock.advance(hours=1)
    again = run_poll(config, engine, clock)
    assert (again.feeds[0].outcome, again.items_new, again.items_updated) == ("not-modified", 0, 0)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(models.Item)).one() == 2_000
