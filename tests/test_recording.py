"""The poll's write stage: feeds that came in together are stored in one transaction (a few thousand items at
most), whether they bring items or not, and a fault in one of them is still that feed's alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.config import Config
from monitor.errors import FetchHTTPError, MonitorError
from monitor.feedserver import FeedServer, Response
from monitor.fetch import FetchRequest, FetchResult
from monitor.match import Matcher
from monitor.outcomes import FeedOutcome
from monitor.parse import ParsedFeed, parse_feed
from monitor.pipeline import run_poll
from monitor.recording import Recorder, Shared, groups
from monitor.store import sources
from monitor.store.bulk import Batch
from monitor.store.schema import open_database

from .conftest import (
    DK_PLANNED,
    DK_SIGNED,
    DK_SIGNED_WIRE,
    SIGNED_DK,
    FakeClock,
    FeedItem,
    local_config,
    make_config,
    rss,
)

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


def _news(config: Config, source_id: str, *guids: str) -> tuple[FetchResult, ParsedFeed]:
    """A 200 from feed `source_id` that brings an item for each of `guids`, parsed."""
    url = next(source.url for source in config.sources if source.id == source_id)
    body = rss(*((guid, f"News {guid}", "Plain.") for guid in guids))
    parsed = parse_feed(body, {}, url, datetime(2026, 3, 1))
    return FetchResult(FetchRequest(source_id, url), url, 200, {"etag": '"v3"'}, body), parsed


def _items(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text("SELECT source_id, guid FROM item ORDER BY id"))]


def _commits(engine: Engine) -> list[object]:
    """A list that grows by one at each commit on `engine` from now on."""
    commits: list[object] = []
    sa.event.listen(engine, "commit", commits.append)
    return commits


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
    commits = _commits(engine)
    answers = [_answer(config, "a", 304), _answer(config, "b", 503), _answer(config, "c", 304)]

    outcomes = recorder.many(answers)

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
    """A recorder with a bug that only feed b's success reaches (`before` its rows are written; or `after`)."""

    before: ClassVar[str | None] = "b"
    after: ClassVar[str | None] = None

    def _store_feed(
        self,
        result: FetchResult,
        parsed: ParsedFeed | None,
        error: MonitorError | None,
        now: datetime,
        shared: Shared,
        *,
        session: Session,
    ) -> FeedOutcome:
        if result.request.source_id == self.before and error is None:
            raise RuntimeError("recorder bug")
        outcome = super()._store_feed(result, parsed, error, now, shared, session=session)
        if result.request.source_id == self.after and error is None:
            raise RuntimeError("recorder bug")
        return outcome

    def _not_modified(self, results: Sequence[FetchResult], now: datetime, *, session: Session) -> list[FeedOutcome]:
        if any(result.request.source_id == "b" for result in results):
            raise RuntimeError("recorder bug")
        return super()._not_modified(results, now, session=session)


def test_a_fault_in_a_group_stays_its_own_feeds(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _polled_once(server, base_config, database_url, engine, clock)
    recorder = _recorder(config, engine, clock, BuggyRecorder)

    outcomes = recorder.many([_answer(config, source_id, 304) for source_id in FEEDS])

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
    failing.many([_answer(config, "a", 503), _answer(config, "c", 503)])  # each with a failure to forget
    clock.advance(hours=1)
    recorder = _recorder(config, engine, clock)
    result, _ = _answer(config, "a", 304)

    with Session(engine) as session:  # the ORM's way, as for a feed that brings items
        shared = Shared(Batch(session))
        one = recorder._store_feed(result, None, None, clock(), shared, session=session)
        sources.record_feed_polls(shared.polls, session=session)
        session.commit()
    bulk = recorder.many([_answer(config, "c", 304)])[0]

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


def test_feeds_that_bring_items_are_stored_together(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _polled_once(server, base_config, database_url, engine, clock)
    recorder = _recorder(config, engine, clock)
    commits = _commits(engine)
    signed = (_news(config, "d", "d2")[0], parse_feed(rss(SIGNED_DK), {}, "https://d.example/", clock()))

    outcomes = recorder.many([_news(config, "a", "a1", "a2"), _answer(config, "b", 304), signed])

    assert [(o.source_id, o.outcome, o.items_new) for o in outcomes] == [
        ("a", "ok", 1),
        ("b", "not-modified", 0),
        ("d", "ok", 1),
    ]
    assert len(commits) == 1
    assert _items(engine)[len(FEEDS) :] == [("a", "a2"), ("d", SIGNED_DK[0])]
    assert outcomes[2].changes  # the signed agreement's report changed a status, in the same transaction
    with engine.connect() as connection:
        query = sa.text("SELECT count(*) FROM status_change WHERE id IN :ids")
        query = query.bindparams(sa.bindparam("ids", expanding=True))
        assert connection.execute(query, {"ids": list(outcomes[2].changes)}).scalar() == len(outcomes[2].changes)


def test_a_fault_among_feeds_with_items_stays_its_own_feeds(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _polled_once(server, base_config, database_url, engine, clock)
    recorder = _recorder(config, engine, clock, BuggyRecorder)

    outcomes = recorder.many([_news(config, name, f"{name}2") for name in "abc"])

    assert [(o.source_id, o.outcome, o.items_new) for o in outcomes] == [
        ("a", "ok", 1),
        ("b", "failed", 0),
        ("c", "ok", 1),
    ]
    assert _items(engine)[len(FEEDS) :] == [("a", "a2"), ("c", "c2")]  # each once: the group's rows were undone
    assert [poll[:2] for poll in _polls(engine, recorder.run_id)] == [("a", "ok"), ("b", "failed"), ("c", "ok")]


def test_groups_hold_at_most_so_many_items_in_their_order(base_config: Config, database_url: str) -> None:
    config = make_config(base_config, database_url, {name: f"https://{name}.example/" for name in "abcd"})
    feeds = [_news(config, "a", "1", "2"), _answer(config, "b", 304), _news(config, "c", "3", "4", "5")]
    feeds.append(_news(config, "d", *map(str, range(6, 14))))

    cut = groups(feeds, most=4)

    assert [[pair[0].request.source_id for pair in group] for group in cut] == [["a", "b"], ["c"], ["d"]]
    assert groups(feeds, most=100) == [feeds]
    assert groups([], most=4) == []


def _report(config: Config, source_id: str, *items: FeedItem) -> tuple[FetchResult, ParsedFeed]:
    """A 200 from feed `source_id` carrying `items`, parsed."""
    url = next(source.url for source in config.sources if source.id == source_id)
    body = rss(*items)
    parsed = parse_feed(body, {}, url, datetime(2026, 8, 1, tzinfo=UTC))
    return FetchResult(FetchRequest(source_id, url), url, 200, {}, body), parsed


def _decided(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "status_change": "SELECT id, proposal_id, kind, from_status, to_status, state, confidence, happened_at "
        "FROM status_change ORDER BY id",
        "evidence": "SELECT change_id, match_id, item_id, source_id, status, score FROM evidence ORDER BY id",
        "event": "SELECT kind, proposal_id, change_id, match_id, source_id, detail FROM event ORDER BY id",
        "proposal": "SELECT id, status, status_since, status_change_id FROM proposal ORDER BY id",
    }
    with engine.connect() as connection:
        return {table: [tuple(row) for row in connection.execute(sa.text(query))] for table, query in queries.items()}


def _local(
    server: FeedServer, base_config: Config, path: Path, clock: FakeClock, **poll: object
) -> tuple[Engine, Config, Recorder]:
    """A database at `path` whose feeds gov, wire and blog (served empty) were polled once, and a recorder."""
    for name in ("gov", "wire", "blog"):
        server.serve(f"/{name}.xml", Response(rss()))
    url = f"sqlite:///{path}"
    engine = open_database(url)
    config = local_config(base_config, url, server)
    settings = config.settings.poll.model_copy(update=poll)
    config = replace(config, settings=config.settings.model_copy(update={"poll": settings}))
    run_poll(config, engine, clock)
    return engine, config, _recorder(config, engine, clock)


def test_feeds_stored_in_one_transaction_decide_as_feeds_stored_one_at_a_time(
    server: FeedServer, base_config: Config, tmp_path: Path, clock: FakeClock
) -> None:
    """The proposals' states, locks and the feeds' names are read once per transaction: a later feed of the group
    must see what an earlier one decided (here a media report of a signing, then the wire report that confirms
    it and the official one that adds evidence), as it would after that feed's own commit."""
    decided = []
    for together in (True, False):
        engine, config, recorder = _local(server, base_config, tmp_path / f"{together}.db", clock)
        reports = [
            _report(config, "blog", DK_SIGNED, DK_PLANNED),
            _report(config, "wire", DK_SIGNED_WIRE),
            _report(config, "gov", ("dk-gov", SIGNED_DK[1], SIGNED_DK[2], datetime(2026, 7, 25, 10, tzinfo=UTC))),
        ]
        commits = _commits(engine)
        outcomes = recorder.many(reports) if together else [recorder.many([report])[0] for report in reports]
        assert [outcome.outcome for outcome in outcomes] == ["ok", "ok", "ok"]
        assert len(commits) == (1 if together else 3)
        decided.append(_decided(engine))
        engine.dispose()
    group, alone = decided
    assert group == alone
    changes = [(kind, to_status, state) for _id, _p, kind, _f, to_status, state, *_ in group["status_change"]]
    assert ("upgrade", "signed", "confirmed") in changes, changes
    assert len(group["evidence"]) >= 3


def _statements(engine: Engine, start: str) -> list[str]:
    """A list that grows by one at each statement that starts with `start` on `engine` from now on (a statement
    run for many rows at once counts once)."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if " ".join(statement.split()).upper().startswith(start):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    return seen


def test_a_groups_poll_rows_wait_for_its_commit_and_its_events_keep_their_order(
    server: FeedServer, base_config: Config, tmp_path: Path, clock: FakeClock
) -> None:
    """The feeds' poll rows (and source updates) are written once, when the group commits, not before each later
    feed's queries; an event is not held back: a feed that turns failing ahead of feeds that bring reports has
    its event first, and the group writes what feed-by-feed storing writes."""
    written = []
    for together in (True, False):
        engine, config, recorder = _local(server, base_config, tmp_path / f"{together}.db", clock, failing_after=1)
        answers = [
            _answer(config, "gov", 500),
            _report(config, "blog", DK_SIGNED, DK_PLANNED),
            _report(config, "wire", DK_SIGNED_WIRE),
        ]
        inserts = _statements(engine, "INSERT INTO FEED_POLL")
        outcomes = recorder.many(answers) if together else [recorder.many([answer])[0] for answer in answers]
        assert [outcome.outcome for outcome in outcomes] == ["failed", "ok", "ok"]
        assert len(inserts) == (1 if together else 3)
        written.append({**_decided(engine), "feed_poll": _polls(engine, recorder.run_id)})
        engine.dispose()
    group, alone = written
    assert group == alone
    kinds = [kind for kind, *_ in group["event"]]
    assert kinds[0] == "feed-failing" and "report" in kinds[1:], kinds


# reports that leave their proposal's status as it is (plain report events)
_WEIGHED = ("w1", "Allies weigh NATO-like security guarantee for Ukraine without membership", "")
_WEIGHED_AGAIN = ("w2", "Allies again weigh a NATO-like security guarantee for Ukraine without membership", "")


def test_a_groups_report_events_are_written_together_and_before_a_later_feeds_health_event(
    server: FeedServer, base_config: Config, tmp_path: Path, clock: FakeClock
) -> None:
    """The report events and plain evidence of a group's feeds wait for one statement each, not one per feed
    with matches; a later feed that turns failing writes its event after them, as feed-by-feed storing does."""
    written, event_inserts = [], []
    for together in (True, False):
        engine, config, recorder = _local(server, base_config, tmp_path / f"{together}.db", clock, failing_after=1)
        answers = [
            _report(config, "blog", _WEIGHED),
            _report(config, "wire", _WEIGHED_AGAIN),
            _answer(config, "gov", 500),
        ]
        inserts = _statements(engine, "INSERT INTO EVENT")
        outcomes = recorder.many(answers) if together else [recorder.many([answer])[0] for answer in answers]
        assert [outcome.outcome for outcome in outcomes] == ["ok", "ok", "failed"]
        event_inserts.append(len(inserts))
        written.append({**_decided(engine), "feed_poll": _polls(engine, recorder.run_id)})
        engine.dispose()
    group, alone = written
    assert group == alone
    kinds = [kind for kind, *_ in group["event"]]
    assert "report" in kinds[:-1] and kinds[-1] == "feed-failing", kinds
    assert event_inserts == [2, 3]  # together: both reports in one insert, then the failing feed's event


def test_a_feed_stored_for_the_first_time_looks_up_none_of_its_items(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    """Until a feed's first success none of its items can be stored (they come with it, in its transaction):
    its first items are inserted without asking which of them exist, a later poll's are looked up."""
    url = server.serve("/a.xml", Response(b"broken", status=500))
    config = make_config(base_config, database_url, {"a": url})
    lookups = _statements(engine, "SELECT ITEM.ID")
    assert run_poll(config, engine, clock).feeds[0].outcome == "failed"
    server.serve("/a.xml", Response(rss(("a1", "News a", "Plain."), ("a2", "News b", "Plain."))))
    clock.advance(hours=2)
    assert run_poll(config, engine, clock, force=True).items_new == 2
    assert lookups == []
    server.serve("/a.xml", Response(rss(("a1", "News a", "Edited."), ("a2", "News b", "Plain."), ("a3", "New", "."))))
    clock.advance(hours=2)
    summary = run_poll(config, engine, clock, force=True)
    assert (summary.items_new, summary.items_updated, len(lookups)) == (1, 1, 1)
    assert [guid for _source, guid in _items(engine)] == ["a1", "a2", "a3"]


def _story_lookups(engine: Engine) -> list[str]:
    """A list that grows by one at each look-up of stories by URL on `engine` from now on."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM story" in statement:
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    return seen


def _story_ids_of_items(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        query = "SELECT i.story_id, s.id FROM item i LEFT JOIN story s ON s.id = i.story_id WHERE i.key LIKE '%shared'"
        return [tuple(row) for row in connection.execute(sa.text(query))]


def test_a_story_is_looked_up_once_per_poll_and_only_once_committed(
    server: FeedServer, base_config: Config, database_url: str, engine: Engine, clock: FakeClock
) -> None:
    """The same report in several feeds: its story is looked up by the first group that carries it, and later
    groups take its id from the recorder; a group that fails leaves nothing of its stories behind."""
    config = _polled_once(server, base_config, database_url, engine, clock)
    recorder = _recorder(config, engine, clock)
    lookups = _story_lookups(engine)
    for source_id in ("a", "b", "c"):  # the same report, with the same link, in three feeds
        assert recorder.many([_news(config, source_id, "shared")])[0].outcome == "ok"
    assert len(lookups) == 1
    (story_id, found), *rest = _story_ids_of_items(engine)
    assert found == story_id and rest == [(story_id, story_id)] * 2

    failing = _recorder(config, engine, clock, FailsAfterStoring)
    outcomes = failing.many([_news(config, "d", "d-shared"), _news(config, "c", "c-shared")])  # one transaction
    assert [outcome.outcome for outcome in outcomes] == ["ok", "failed"]  # then d alone, c alone
    assert all(found == story for story, found in _story_ids_of_items(engine)), "a rolled-back story was used"
    with engine.connect() as connection:
        stored: dict[str, int] = dict(connection.execute(sa.text("SELECT canonical_url, id FROM story")).all())
    assert failing.stories == {url: stored[url] for url in failing.stories} and len(failing.stories) == 1


class FailsAfterStoring(BuggyRecorder):
    """Feed c fails once its items are stored: its transaction is rolled back."""

    before, after = None, "c"
