"""Skipping what cannot change anything: a body byte-identical to the last one stored is not parsed again, and
items whose content is unchanged are not matched again (no new match, event or history row)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.config import Config
from monitor.feedserver import FeedServer
from monitor.pipeline import run_poll
from tests.conftest import SIGNED_DK, FakeClock, make_config, rss

OTHER = ("other", "Weather in Kyiv", "Sunny.")


class NoValidators:
    """Answers 200 with `body` every time, with neither ETag nor Last-Modified: no conditional GET possible."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.write(self.body)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("item", "item_match", "event", "status_change")
        }


def _last_poll(engine: Engine) -> tuple[str, int, int, int]:
    with engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT outcome, status_code, items_seen, items_new FROM feed_poll ORDER BY id DESC LIMIT 1")
        ).one()
    return (row.outcome, row.status_code, row.items_seen, row.items_new)


def test_poll_identical_body_is_not_parsed_again(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str
) -> None:
    route = NoValidators(rss(SIGNED_DK))
    config = make_config(base_config, database_url, {"dk": server.serve("/dk.xml", route)})
    clock = FakeClock()

    first = run_poll(config, engine, clock, force=True)
    after_first = _counts(engine)
    clock.advance(hours=1)
    second = run_poll(config, engine, clock, force=True)

    assert [(feed.outcome, feed.items_new) for feed in first.feeds] == [("ok", 1)]
    assert after_first["item_match"] > 0  # the story matches a proposal
    assert [(feed.outcome, feed.status) for feed in second.feeds] == [("not-modified", 200)]
    assert _last_poll(engine) == ("not-modified", 200, 0, 0)
    assert _counts(engine) == after_first
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT body_hash FROM source WHERE id = 'dk'")).scalar_one()
    assert stored is not None and len(stored) == 64

    route.body = rss(SIGNED_DK, OTHER)  # one item more; the matching one unchanged
    clock.advance(hours=1)
    third = run_poll(config, engine, clock, force=True)

    assert [(feed.outcome, feed.items_new, feed.items_updated) for feed in third.feeds] == [("ok", 1, 0)]
    assert _last_poll(engine) == ("ok", 200, 2, 1)
    # The unchanged item was not matched again: no new match, event or status change.
    assert _counts(engine) == {**after_first, "item": after_first["item"] + 1}


def test_poll_same_body_from_another_url_is_parsed(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str
) -> None:
    body = rss(OTHER)
    config = make_config(base_config, database_url, {"a": server.serve("/a.xml", NoValidators(body))})
    clock = FakeClock()
    run_poll(config, engine, clock, force=True)

    moved = make_config(base_config, database_url, {"a": server.serve("/b.xml", NoValidators(body))})
    clock.advance(hours=1)
    summary = run_poll(moved, engine, clock, force=True)

    # Relative links resolve against the URL, so the same bytes elsewhere are parsed again.
    assert [(feed.outcome, feed.items_new) for feed in summary.feeds] == [("ok", 0)]
