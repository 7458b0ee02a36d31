"""What lets several workers share one database, each on SQLite and PostgreSQL: feed leases that two workers
never share and that expire; a digest that tells an event committed late; digest claims two senders never
share; inserts that deduplicate; the advisory run lock; `monitor db copy`; PostgreSQL's full-text search."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import Config
from monitor.delivery import compose_digests, compose_due
from monitor.errors import LockedError
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store import history, items, models, outbox, sources
from monitor.store.fulltext import search
from monitor.store.locks import run_lock
from monitor.store.schema import open_database
from monitor.store.search_pg import to_tsquery

from .conftest import POSTGRES, ROOT, SIGNED_DK, FakeClock, PostgresDatabases, make_config, rss


def _sources(base_config: Config, database_url: str, engine: Engine, clock: FakeClock, n: int = 6) -> Config:
    config = make_config(base_config, database_url, {f"feed{i}": f"http://127.0.0.1:9/{i}.xml" for i in range(n)})
    with Session(engine) as session:
        sources.sync_sources(config.sources, 1800, clock(), session=session)
        session.commit()
    return config


def _lease(engine: Engine, clock: FakeClock, owner: str, limit: int = 4) -> list[str]:
    with Session(engine) as session:
        rows = sources.lease_due_sources(clock(), owner, 600, limit, session=session)
        session.commit()
        return [row.id for row in rows]


def test_lease_two_workers_take_different_feeds_and_a_dead_ones_expire(
    base_config: Config, database_url: str, engine: Engine, clock: FakeClock
) -> None:
    _sources(base_config, database_url, engine, clock)
    first, second = _lease(engine, clock, "host-a:1"), _lease(engine, clock, "host-b:2")
    assert (len(first), len(second)) == (4, 2)
    assert not set(first) & set(second)
    assert _lease(engine, clock, "host-c:3") == []  # all held
    clock.advance(seconds=601)  # host-a and host-b died: their leases run out
    assert sorted(_lease(engine, clock, "host-c:3", limit=10)) == sorted(first + second)


def test_lease_is_skip_locked_while_another_worker_is_choosing(
    base_config: Config, database_url: str, engine: Engine, clock: FakeClock
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite's BEGIN IMMEDIATE makes the second worker wait instead")
    _sources(base_config, database_url, engine, clock)
    with Session(engine) as choosing:
        held = sources.lease_due_sources(clock(), "host-a:1", 600, 3, session=choosing)  # not committed yet
        assert len(_lease(engine, clock, "host-b:2", limit=10)) == 3  # the other three, without waiting
        choosing.commit()
    assert len(held) == 3


def test_digest_tells_an_event_that_commits_after_a_later_one(
    base_config: Config, database_url: str, engine: Engine, clock: FakeClock
) -> None:
    titles = {proposal.id: proposal.title for proposal in base_config.proposals}
    with Session(engine) as session:
        history.sync_proposals(base_config.proposals, session=session)
        row, _ = outbox.subscribe(7, "private", "seven", clock(), base_config.settings.digest, session=session)
        outbox.update_settings(row, clock(), session=session, frequency="instant")
        session.commit()

    def event(event_id: int, title: str) -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(models.Event.__table__).values(  # type: ignore[attr-defined]
                    id=event_id, kind="report", created_at=clock(), proposal_id="dk-ua-2024",
                    detail=f'{{"title": "{title}", "link": null, "source": "s", "published_at": "2026-03-01", '
                    f'"status": "signed", "story": "item:{event_id}"}}',
                )
            )  # fmt: skip

    def compose() -> list[set[int]]:
        with Session(engine) as session:
            digests = compose_due(clock(), base_config.settings.digest, titles, base_config.settings.status
                                         .ladder, [], session=session)  # fmt: skip
            session.commit()
            told = session.exec(
                select(models.DigestEvent.event_id, models.DigestEvent.digest_id).where(
                    col(models.DigestEvent.digest_id).in_([digest.id for digest in digests])
                )
            ).all()
        return [{event_id for event_id, digest_id in told if digest_id == digest.id} for digest in digests]

    event(5, "Five")  # a worker's transaction took id 5 and committed ...
    assert compose() == [{5}]
    event(3, "Three")  # ... before another's that had taken id 3: a max(id) cursor would skip it for good
    clock.advance(minutes=1)
    assert compose() == [{3}]
    assert compose() == []


def test_claimed_digest_is_not_sent_by_a_second_sender(
    server: FeedServer, base_config: Config, database_url: str, engine: Engine, clock: FakeClock
) -> None:
    config = make_config(base_config, database_url, {"gov": server.url("/gov.xml")})
    server.serve("/gov.xml", Response(rss(SIGNED_DK)))
    run_poll(config, engine, clock)
    with Session(engine) as session:
        for chat in (1, 2):
            row, _ = outbox.subscribe(chat, "private", None, clock() - timedelta(days=1), config.settings.digest,
                                      session=session)  # fmt: skip
            outbox.update_settings(row, clock(), session=session, frequency="instant", last_event_id=0)
        session.commit()
    assert compose_digests(config, engine, clock) == 3  # and standard output's (no token), which no sender claims
    with Session(engine) as first, Session(engine) as second:
        mine = outbox.claim("host-a:1", clock(), 600, session=first)
        first.commit()
        theirs = outbox.claim("host-b:2", clock(), 600, session=second)
        second.commit()
        assert {part.chat_id for part in mine} == {1, 2} and theirs == []
        clock.advance(seconds=601)  # the first sender died: its claims expire
        assert {part.part_id for part in outbox.claim("host-b:2", clock(), 600, session=second)} == {
            part.part_id for part in mine
        }


def test_insert_new_skips_taken_keys(database_url: str, engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        rows = [{"canonical_url": url, "first_seen_at": clock()} for url in ("https://a/", "https://b/", "https://a/")]
        items.insert_new(models.Story, rows, ["canonical_url"], session=session)
        items.insert_new(models.Story, rows[:1], ["canonical_url"], session=session)
        session.commit()
        assert sorted(session.exec(select(models.Story.canonical_url)).all()) == ["https://a/", "https://b/"]


def test_run_lock_on_postgres_is_shared_by_runs_and_exclusive_for_a_rebuild(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's run lock is the file lock (tests/test_db.py)")
    with run_lock(database_url), run_lock(database_url):  # two workers
        with pytest.raises(LockedError, match="monitor runs are working"), run_lock(database_url, exclusive=True):
            pass
    with run_lock(database_url, exclusive=True):
        with pytest.raises(LockedError, match="rematch is rebuilding"), run_lock(database_url):
            pass
    with run_lock(database_url):
        pass


def test_db_copy_moves_everything_and_keeps_search_working(
    server: FeedServer, base_config: Config, tmp_path: Path, clock: FakeClock
) -> None:
    if not POSTGRES:
        pytest.skip("needs MONITOR_TEST_POSTGRES_URL")
    source_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = open_database(source_url)
    config = make_config(base_config, source_url, {"gov": server.url("/gov.xml")})
    server.serve("/gov.xml", Response(rss(SIGNED_DK)))
    run_poll(config, engine, clock)
    databases = PostgresDatabases(POSTGRES)
    target = databases.create()
    try:
        env = {name: value for name, value in os.environ.items() if not name.startswith("MONITOR_")}
        env.update(MONITOR_DATABASE_URL=source_url, MONITOR_CONFIG=str(ROOT / "feeds.yaml"))
        copied = subprocess.run([sys.executable, "-m", "monitor", "db", "copy", "--to", target], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert copied.returncode == 0, copied.stderr
        again = subprocess.run([sys.executable, "-m", "monitor", "db", "copy", "--to", target], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert again.returncode == 2 and "is not empty" in again.stderr and "Traceback" not in again.stderr
        moved = open_database(target)
        for table in ("item", "item_match", "status_change", "evidence", "event", "proposal", "source"):
            with engine.connect() as old, moved.connect() as new:
                query = sa.text(f"SELECT count(*) FROM {table}")
                assert old.execute(query).scalar_one() == new.execute(query).scalar_one() > 0, table
        clock.advance(hours=1)
        server.serve("/gov.xml", Response(rss(SIGNED_DK, ("new1", "Denmark and Ukraine sign a drone deal", "x"))))
        run_poll(make_config(base_config, target, {"gov": server.url("/gov.xml")}), moved, clock, force=True)
        with Session(moved) as session:
            assert [row["title"] for row in search('"drone deal"', session=session).records()] == [
                "Denmark and Ukraine sign a drone deal"
            ]  # the copied ids did not collide with new ones, and the new item is searchable
        moved.dispose()
    finally:
        databases.drop(target)
        databases.close()
        engine.dispose()


@pytest.mark.parametrize(
    ("query", "tsquery"),
    [
        ("security guarantees", "security & guarantees"),
        ('"security guarantees" AND Italy', "(security <-> guarantees) & italy"),
        ("reassur* NOT Gaza", "reassur:* & ! gaza"),
        ("(Italy OR France) NATO", "( italy | france ) & nato"),
        ("NEAR(drone deal)", "( drone & deal )"),
        ("Article-5", "(article <-> 5)"),
    ],
)
def test_search_query_reads_as_a_tsquery(query: str, tsquery: str) -> None:
    assert to_tsquery(query) == tsquery
