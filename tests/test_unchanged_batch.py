"""Feeds that changed nothing (a 304) are recorded many to a transaction, still in the order they were fetched,
and a fault while storing them stays with its feed."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.config import Config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import UNCHANGED_BATCH, run_poll
from tests.conftest import SIGNED_DK, FakeClock, make_config, rss

FEEDS = UNCHANGED_BATCH + 20


def _commits(engine: Engine) -> list[int]:
    counted = [0]

    def count(*_args: object) -> None:
        counted[0] += 1

    sa.event.listen(engine, "commit", count)
    return counted


def _poll_rows(engine: Engine, run_id: int) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT source_id, outcome FROM feed_poll WHERE run_id = :run ORDER BY id"), {"run": run_id}
        )
        return [(row.source_id, row.outcome) for row in rows]


def test_a_warm_poll_records_unchanged_feeds_in_few_transactions_and_in_fetch_order(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str
) -> None:
    routes = {
        f"f{index:03d}": Response(rss(("x", f"Report {index}", "Nothing about guarantees."))) for index in range(FEEDS)
    }
    urls = {source_id: server.serve(f"/{source_id}.xml", route) for source_id, route in routes.items()}
    config = make_config(base_config, database_url, urls, concurrency=1, per_host=1)
    clock = FakeClock()
    commits = _commits(engine)

    cold = run_poll(config, engine, clock, force=True)
    cold_commits = commits[0]
    assert [feed.outcome for feed in cold.feeds] == ["ok"] * FEEDS and cold_commits >= FEEDS

    # Warm: every feed answers 304 but one in the middle, which has a new report.
    changed = f"f{FEEDS // 2:03d}"
    routes[changed].body = rss(SIGNED_DK)
    clock.advance(hours=1)
    warm = run_poll(config, engine, clock, force=True)

    outcomes = {feed.source_id: feed.outcome for feed in warm.feeds}
    assert outcomes.pop(changed) == "ok" and set(outcomes.values()) == {"not-modified"}
    assert commits[0] - cold_commits < 15  # a handful of transactions, not one per feed
    assert warm.run_id is not None
    rows = _poll_rows(engine, warm.run_id)
    assert [source_id for source_id, _ in rows] == sorted(urls)  # stored in the order they were fetched
    assert dict(rows)[changed] == "ok"
