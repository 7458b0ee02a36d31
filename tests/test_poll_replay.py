"""Replaying the real Reuters snapshots through a real HTTP server: every unique item stored exactly once,
edits updated in place with their earlier versions kept, and a second poll answered 304 with nothing new."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import Config, load_config
from monitor.feedserver import FeedServer, Response
from monitor.match import Matcher
from monitor.parse import clean_text
from monitor.pipeline import run_poll
from monitor.store import models
from monitor.store.schema import open_database

from .conftest import REPLAY, ROOT, FakeClock, make_config

STAMP = re.compile(r"__(\d{4}-\d{2}-\d{2}T\d{6}Z)__")


def _snapshots(prefix: str, every: int = 1) -> list[tuple[datetime, Path]]:
    """The replay's snapshots of one feed in time order (every `every`-th of them)."""
    found = []
    for path in REPLAY.glob(f"{prefix}__*.xml"):
        stamp = STAMP.search(path.name)
        assert stamp is not None
        found.append((datetime.strptime(stamp.group(1), "%Y-%m-%dT%H%M%SZ").replace(tzinfo=UTC), path))
    return sorted(found)[::every]


def _expected(snapshots: list[tuple[datetime, Path]]) -> tuple[set[str], dict[str, int]]:
    """Unique identities and the number of edits each one went through, straight from feedparser."""
    versions: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for _when, path in snapshots:
        seen_here: set[str] = set()
        for entry in feedparser.parse(path.read_bytes()).entries:
            identity = entry.get("id") or entry.get("link")
            if identity in seen_here:
                continue
            seen_here.add(identity)
            content = (clean_text(entry.get("title")), clean_text(entry.get("summary")), entry.get("link", ""))
            if not versions[identity] or versions[identity][-1] != content:
                versions[identity].append(content)
    return set(versions), {key: len(contents) - 1 for key, contents in versions.items()}


def _replay(server: FeedServer, config: Config, engine: Engine, clock: FakeClock, every: int = 1) -> None:
    timeline = sorted(
        [(when, "reuters", path) for when, path in _snapshots("reuters", every)]
        + [(when, "reuters-direct", path) for when, path in _snapshots("reuters_direct", every)]
    )
    for when, source_id, path in timeline:
        clock.now = when
        server.serve(f"/{source_id}.xml", Response(path.read_bytes(), last_modified=when.timestamp()))
        summary = run_poll(config, engine, clock, only=[source_id])
        assert [feed.outcome for feed in summary.feeds] == ["ok"], summary.feeds


@pytest.fixture(scope="module")
def replay_server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


@pytest.fixture(scope="module")
def replay_db(tmp_path_factory: pytest.TempPathFactory, replay_server: FeedServer) -> Iterator[tuple[Config, Engine]]:
    """The whole replay, once per module: tests below only read it, except the last poll test."""
    url = f"sqlite:///{tmp_path_factory.mktemp('replay') / 'monitor.db'}"
    engine = open_database(url)
    config = make_config(
        load_config(ROOT / "feeds.yaml", env={}),
        url,
        {
            "reuters": replay_server.url("/reuters.xml"),
            "reuters-direct": replay_server.url("/reuters-direct.xml"),
        },
    )
    _replay(replay_server, config, engine, FakeClock())
    yield config, engine
    engine.dispose()


@pytest.fixture
def replayed(replay_db: tuple[Config, Engine]) -> Config:
    return replay_db[0]


@pytest.fixture
def replay_engine(replay_db: tuple[Config, Engine]) -> Engine:
    return replay_db[1]


@pytest.mark.parametrize(("source_id", "prefix"), [("reuters", "reuters"), ("reuters-direct", "reuters_direct")])
def test_replay_stores_each_unique_item_once_and_updates_edits(
    replay_engine: Engine, source_id: str, prefix: str
) -> None:
    engine = replay_engine
    identities, edits = _expected(_snapshots(prefix))
    with Session(engine) as session:
        items = session.exec(select(models.Item).where(models.Item.source_id == source_id)).all()
        stored = {item.guid or item.link for item in items}
        assert len(items) == len(stored) == len(identities)
        assert stored == identities
        by_identity = {item.guid or item.link: item for item in items}
        assert {key: by_identity[key].version - 1 for key in identities} == edits
        kept = session.exec(
            select(models.ItemVersion.item_id, sa.func.count()).group_by(col(models.ItemVersion.item_id))
        ).all()
        versions: dict[int, int] = {int(item_id): int(count) for item_id, count in kept}
        for item in items:
            assert item.id is not None and versions.get(item.id, 0) == item.version - 1


def test_replay_second_poll_is_not_modified(replayed: Config, replay_server: FeedServer, replay_engine: Engine) -> None:
    server, engine = replay_server, replay_engine
    clock = FakeClock(max(when for when, _path in _snapshots("reuters_direct")))
    with Session(engine) as session:
        before = session.exec(select(sa.func.count()).select_from(models.Item)).one()
    clock.advance(hours=2)
    matcher = Matcher(replayed.proposals, replayed.settings.status.ladder)
    summary = run_poll(replayed, engine, clock, matcher=matcher)
    assert sorted(feed.outcome for feed in summary.feeds) == ["not-modified", "not-modified"]
    assert not matcher.compiled  # a poll of unchanged feeds never compiles the matching rules
    assert summary.items_new == summary.items_updated == 0
    for path in ("/reuters.xml", "/reuters-direct.xml"):
        last = server.requests_for(path)[-1]
        assert last.headers.get("If-None-Match", "").startswith('"')
        assert "If-Modified-Since" in last.headers
    with Session(engine) as session:
        assert session.exec(select(sa.func.count()).select_from(models.Item)).one() == before
        runs = session.exec(select(models.PollRun).order_by(col(models.PollRun.id))).all()
        assert (runs[-1].feeds_not_modified, runs[-1].items_new) == (2, 0)


def test_replay_every_canonical_url_is_one_story(replay_engine: Engine) -> None:
    with Session(replay_engine) as session:
        urls = session.exec(select(sa.func.count(sa.distinct(col(models.Item.canonical_url))))).one()
        stories = session.exec(select(sa.func.count()).select_from(models.Story)).one()
        unlinked = session.exec(
            select(sa.func.count())
            .select_from(models.Item)
            .where(col(models.Item.canonical_url).is_not(None), col(models.Item.story_id).is_(None))
        ).one()
    assert stories == urls > 1000
    assert unlinked == 0


def test_poll_same_story_from_two_sources_is_one_story(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    _when, path = _snapshots("reuters_direct")[0]
    body = path.read_bytes()
    # The same articles as another outlet would link them: with tracking parameters and a fragment.
    tracked = re.sub(
        rb"(<link>https://www\.reuters\.com/[^<]*?/)(</link>)",
        rb"\1?utm_source=rss&amp;utm_medium=feed#comments\2",
        body,
    )
    assert tracked != body
    server.serve("/a.xml", Response(body))
    server.serve("/b.xml", Response(tracked))
    config = make_config(base_config, database_url, {"a": server.url("/a.xml"), "b": server.url("/b.xml")})
    run_poll(config, engine, clock)
    with Session(engine) as session:
        rows = session.exec(select(models.Item.source_id, models.Item.story_id, models.Item.link)).all()
    by_source: dict[str, dict[int | None, str | None]] = defaultdict(dict)
    for source_id, story_id, link in rows:
        by_source[source_id][story_id] = link
    assert len(by_source["a"]) == 500
    shared = set(by_source["a"]) & set(by_source["b"])
    assert len(shared) == 500
    assert any("utm_source" in (link or "") for link in by_source["b"].values()), "links are stored as published"


def test_poll_edited_item_is_updated_in_place_and_its_earlier_version_kept(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    original = REPLAY.parent / "single_snapshots" / "kyivindependent__plakhovgroup_2024-07-26__df6a163.xml"
    body = original.read_bytes()
    entry = feedparser.parse(body).entries[3]
    config = make_config(base_config, database_url, {"kyiv": server.url("/kyiv.xml")})
    server.serve("/kyiv.xml", Response(body))
    first_seen = clock.now
    first = run_poll(config, engine, clock)
    assert (first.items_new, first.items_updated) == (20, 0)

    corrected = body.replace(entry.title.encode(), b"CORRECTED: " + entry.title.encode(), 1)
    assert corrected != body
    server.serve("/kyiv.xml", Response(corrected))
    clock.advance(hours=1)
    second = run_poll(config, engine, clock)
    assert (second.items_new, second.items_updated) == (0, 1)

    with Session(engine) as session:
        items = session.exec(select(models.Item).where(models.Item.source_id == "kyiv")).all()
        assert len(items) == 20
        edited = next(item for item in items if item.title.startswith("CORRECTED: "))
        assert (edited.version, edited.updated_at, edited.first_seen_at) == (2, clock.now, first_seen)
        earlier = session.exec(select(models.ItemVersion).where(models.ItemVersion.item_id == edited.id)).all()
        assert [(version.version, version.title) for version in earlier] == [(1, clean_text(entry.title))]
