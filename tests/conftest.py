"""Shared fixtures: a real HTTP server on 127.0.0.1, a real database migrated by Alembic, a fake clock.

Every test that takes `database_url` (or `engine`) runs on a SQLite file and, when MONITOR_TEST_POSTGRES_URL
names a PostgreSQL server (a URL to its maintenance database, e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), again on a fresh PostgreSQL database of its own: a copy
of one migrated by Alembic for the session, dropped after the test. Mark a test `sqlite_only` when it is about
SQLite itself.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from monitor.config import Config, SourceConfig, load_config
from monitor.feedserver import FeedServer
from monitor.store.schema import open_database

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


POSTGRES = os.environ.get("MONITOR_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES else ["sqlite"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A `sqlite_only` test does not run on PostgreSQL."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        (dropped if on_postgres and item.get_closest_marker("sqlite_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


class PostgresDatabases:
    """Fresh PostgreSQL databases on the test server: each a copy of a template migrated once by Alembic."""

    def __init__(self, admin_url: str) -> None:
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.base = make_url(admin_url)
        self.prefix = f"monitor_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.counter = itertools.count()
        self.template = self._execute_create(f"{self.prefix}_template")
        from monitor.store.schema import open_database

        open_database(self.url(self.template)).dispose()

    def url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    def _execute_create(self, name: str, template: str | None = None) -> str:
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def create(self) -> str:
        """A new database at the schema's head; returns its URL."""
        return self.url(self._execute_create(f"{self.prefix}_{next(self.counter)}", self.template))

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self.url(self.template))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(POSTGRES)
    yield databases
    databases.close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.store.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    yield url
    databases.drop(url)


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
    feeds = tuple(SourceConfig(id=source_id, name=source_id, url=url) for source_id, url in sources.items())
    return replace(base, settings=settings, sources=feeds)
