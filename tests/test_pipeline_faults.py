"""One feed's fault, whatever the exception, is recorded on that feed; the other feeds are polled (issue 12)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from html import escape
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from monitor.cli import cli
from monitor.config import Config, SourceConfig
from monitor.feedserver import FeedServer, Response
from monitor.match import Match, Matcher
from monitor.pipeline import run_poll

from .conftest import FakeClock, make_config


def rss(*titles: str) -> bytes:
    entries = "".join(
        f"<item><guid>{index}</guid><title>{escape(title)}</title><link>https://news.example/{index}</link></item>"
        for index, title in enumerate(titles)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'.encode()


def _db_row(engine: Engine, sql: str) -> tuple[object, ...]:
    with engine.connect() as connection:
        return tuple(connection.execute(sa.text(sql)).one())


def test_poll_a_port_out_of_range_fails_that_feed_alone(
    base_config: Config, database_url: str, engine: Engine, server: FeedServer, clock: FakeClock
) -> None:
    server.serve("/good.xml", Response(rss("Plain news")))
    config = make_config(base_config, database_url, {"good": server.url("/good.xml")})
    # A URL that `monitor check` refuses, as a database row written before it did might hold: refused before any
    # request is made (the network stack would raise OverflowError deep in asyncio).
    bad = SourceConfig.model_construct(
        **{**config.sources[0].model_dump(), "id": "bad", "url": "http://127.0.0.1:99999/x"}
    )
    config = replace(config, sources=(bad, *config.sources))

    summary = run_poll(config, engine, clock)

    outcomes = {feed.source_id: feed for feed in summary.feeds}
    assert outcomes["good"].outcome == "ok" and outcomes["good"].items_new == 1
    error = "UnsupportedURL: invalid URL http://127.0.0.1:99999/x: Port out of range 0-65535"
    assert (outcomes["bad"].outcome, outcomes["bad"].error) == ("failed", error)
    assert _db_row(engine, "SELECT last_error FROM source WHERE id = 'bad'")[0] == outcomes["bad"].error
    assert _db_row(engine, "SELECT finished_at IS NOT NULL, feeds_failed, feeds_ok FROM poll_run") == (1, 1, 1)


class ExplodingMatcher(Matcher):
    """A matcher with a bug that only one feed's text reaches."""

    def match(self, title: str, summary: str, published: date | None = None) -> list[Match]:
        if "boom" in title:
            raise RuntimeError("matcher bug")
        return super().match(title, summary, published)


def test_poll_an_unexpected_error_while_storing_one_feed_spares_the_others(
    base_config: Config, database_url: str, engine: Engine, server: FeedServer, clock: FakeClock
) -> None:
    server.serve("/a.xml", Response(rss("boom")))
    server.serve("/b.xml", Response(rss("Plain news")))
    config = make_config(base_config, database_url, {"a": server.url("/a.xml"), "b": server.url("/b.xml")})

    summary = run_poll(config, engine, clock, matcher=ExplodingMatcher(config.proposals))

    outcomes = {feed.source_id: feed for feed in summary.feeds}
    assert outcomes["b"].outcome == "ok" and outcomes["b"].items_new == 1
    assert outcomes["a"].outcome == "failed" and "RuntimeError" in (outcomes["a"].error or "")
    assert _db_row(engine, "SELECT count(*) FROM item WHERE source_id = 'a'") == (0,), "a's unit rolled back"
    assert _db_row(engine, "SELECT consecutive_failures FROM source WHERE id = 'a'") == (1,)
    assert _db_row(engine, "SELECT finished_at IS NOT NULL FROM poll_run") == (1,)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "http://127.0.0.1:port/x", "http://:80/x"])
def test_check_rejects_a_url_the_network_cannot_use(tmp_path: Path, url: str) -> None:
    path = tmp_path / "feeds.yaml"
    good = "  - {id: ok, name: ok, url: 'http://127.0.0.1:8080/x'}"
    path.write_text(f"sources:\n{good}\n  - {{id: bad, name: b, url: '{url}'}}\n")
    result = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:3: sources[1].url:" in result.stderr and "Traceback" not in result.output
