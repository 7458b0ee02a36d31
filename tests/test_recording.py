"""The poll's write stage: feeds that bring no items are stored together, in one transaction, and a fault in
one of them is still that feed's alone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.config import Config
from monitor.errors import FetchHTTPError, MonitorError
from monitor.feedserver import FeedServer, Response
from monitor.fetch import FetchRequest, FetchResult
from monitor.match import Matcher
from monitor.parse import ParsedFeed
from monitor.pipeline import run_poll
from monitor.recording import FeedOutcome, Recorder
from monitor.store import sources

from .conftest import FakeClock, make_config, rss

FEEDS = ("a", "b", "c", "d")


def _polled_once(
    server: FeedServer, base_config: Config, database_url: str, engine: Engine, clock: FakeClock
) -> Config:
    feeds = {
        name: server.serve(f"/{name}.xml", Response(rss((f"{name}1", f"News {name}", "Plain.")))) for name in FEEDS
    }
    config = make_config(base_config, database_url, feeds)
    assert run_poll(config, engine, clock).items_new == len(FEEDS)
    return config


def _recorder(config: Config, engine: Engine, clock: FakeClock, kind: type[Recorder] = Recorder) -> Recorder:
    with Session(engine) as session:
        run = sources.start_run(clock(), True, len(FEEDS), session=session)
        session.commit()
        assert run.id is not None
        return kind(config, engine, clock, run.id, Matcher(config.proposals))


def _answer(config: Config, source_id: str, status: int) -> tuple[FetchResult, None]:
    url = next(source.url for source in config.sources if source.id == source_id)
    error = FetchHTTPError(f"HTTP {status}", status=status) if status >= 400 else None
    return FetchResult(FetchRequest(source_id, url), url, status, {"etag": '"v2"'}, error=error), None


def _polls(engine: Engine, run_id: int) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        query = "SELECT source_id, outcome, status_code FROM feed_poll WHERE run_id = :run ORDER BY source_id"
        return [tuple(row) for row in connection.execute(sa.text(query), {"run": run_id})]


def _failures(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, consecutive_failures FROM source WHERE lease_owner IS NULL"))
        return {row[0]: row[1] for row in rows}


def test_feeds_without_items_are_stored_in_one_transaction(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _polled_once(server, base_config, database_url, engine, clock)
    recorder = _recorder(config, engine, clock)
    commits: list[object] = []
    sa.event.listen(engine, "commit", commits.append)
    answers = [_answer(config, "a", 304), _answer(config, "b", 503), _answer(config, "c", 304)]

    outcomes = recorder.light(answers)

    assert [(outcome.source_id, outcome.outcome) for outcome in outcomes] == [
        ("a", "not-modified"),
        ("b", "failed"),
        ("c", "not-modified"),
    ]
    assert len(commits) == 1
    assert _polls(engine, recorder.run_id) == [
        ("a", "not-modified", 304),
        ("b", "failed", 503),
        ("c", "not-modified", 304),
    ]
    assert _failures(engine) == {"a": 0, "b": 1, "c": 0, "d": 0}


class BuggyRecorder(Recorder):
    """A recorder with a bug that only feed b's success reaches."""

    def _store_feed(
        self,
        result: FetchResult,
        parsed: ParsedFeed | None,
        error: MonitorError | None,
        now: datetime,
        *,
        session: Session,
    ) -> FeedOutcome:
        if result.request.source_id == "b" and error is None:
            raise RuntimeError("recorder bug")
        return super()._store_feed(result, parsed, error, now, session=session)

    def _not_modified(self, results: Sequence[FetchResult], now: datetime, *, session: Session) -> list[FeedOutcome]:
        if any(result.request.source_id == "b" for result in results):
            raise RuntimeError("recorder bug")
        return super()._not_modified(results, now, session=session)


def test_a_fault_in_a_group_stays_its_own_feeds(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _polled_once(server, base_config, database_url, engine, clock)
    recorder = _recorder(config, engine, clock, BuggyRecorder)

    outcomes = recorder.light([_answer(config, source_id, 304) for source_id in FEEDS])

    assert {outcome.source_id: outcome.outcome for outcome in outcomes} == {
        "a": "not-modified",
        "b": "failed",
        "c": "not-modified",
        "d": "not-modified",
    }
    assert "unexpected RuntimeError while storing the feed: recorder bug" in (outcomes[1].error or "")
    assert [poll[:2] for poll in _polls(engine, recorder.run_id)] == [
        ("a", "not-modified"),
        ("b", "failed"),
        ("c", "not-modified"),
        ("d", "not-modified"),
    ]
    assert _failures(engine) == {"a": 0, "b": 1, "c": 0, "d": 0}


def _row(engine: Engine, query: str, **params: object) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(sa.text(query), params).one()._mapping)


def test_a_304_stored_in_bulk_writes_what_the_feed_by_feed_path_writes(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _polled_once(server, base_config, database_url, engine, clock)
    failing = _recorder(config, engine, clock)
    failing.light([_answer(config, "a", 503), _answer(config, "c", 503)])  # each with a failure to forget
    clock.advance(hours=1)
    recorder = _recorder(config, engine, clock)
    result, _ = _answer(config, "a", 304)

    with Session(engine) as session:  # the ORM's way, as for a feed that brings items
        one = recorder._store_feed(result, None, None, clock(), session=session)
        session.commit()
    bulk = recorder.light([_answer(config, "c", 304)])[0]

    assert (one.outcome, bulk.outcome, one.next_poll_at) == ("not-modified", "not-modified", bulk.next_poll_at)
    source = "SELECT * FROM source WHERE id = :id"
    own = {"id", "name", "url", "config_url", "etag", "body_hash"}  # each feed's own, from its first poll
    source_a, source_c = ({k: v for k, v in _row(engine, source, id=i).items() if k not in own} for i in "ac")
    assert source_a == source_c
    assert (source_c["consecutive_failures"], source_c["last_error"], source_c["health"]) == (0, None, "ok")
    poll = "SELECT * FROM feed_poll WHERE run_id = :run AND source_id = :id"
    poll_a, poll_c = (_row(engine, poll, run=recorder.run_id, id=i) for i in "ac")
    for row in (poll_a, poll_c):
        del row["id"], row["source_id"], row["duration_ms"]
    assert poll_a == poll_c
    assert (poll_c["outcome"], poll_c["status_code"], poll_c["next_poll_at"] is not None) == ("not-modified", 304, True)
