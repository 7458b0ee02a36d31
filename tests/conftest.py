"""Shared fixtures: a real HTTP server on 127.0.0.1, a real SQLite file migrated by Alembic, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from monitor.config import Config, Source, load_config
from monitor.db import open_database
from monitor.feedserver import FeedServer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REPLAY = SHARED / "corpus" / "real" / "replay_reuters_wl"
FEEDPARSER_CORPUS = SHARED / "corpus" / "feedparser" / "tests"
EVAL = SHARED / "eval"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def base_config() -> Config:
    return load_config(ROOT / "feeds.yaml", env={})


def make_config(base: Config, database_url: str, sources: dict[str, str], **poll: object) -> Config:
    """The default configuration with `sources` (id -> URL) and some poll settings replaced."""
    defaults: dict[str, object] = {"connect_timeout": 2, "read_timeout": 2, "total_timeout": 5}
    poll_settings = base.settings.poll.model_copy(update={**defaults, **poll})
    settings = base.settings.model_copy(update={"database_url": database_url, "poll": poll_settings})
    feeds = tuple(Source(id=source_id, name=source_id, url=url) for source_id, url in sources.items())
    return replace(base, settings=settings, sources=feeds)
