"""Shared fixtures: a real HTTP server on 127.0.0.1, a real database migrated by Alembic, a fake clock, a fake
Telegram Bot API, feeds written from items, and the analysts' corpus database.

Every test that takes `database_url` (or `engine`) runs on a SQLite file and, when MONITOR_TEST_POSTGRES_URL
names a PostgreSQL server (a URL to its maintenance database, e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), again on a fresh PostgreSQL database of its own: a copy
of one migrated by Alembic for the session, dropped after the test. Mark a test `sqlite_only` when it is about
SQLite itself.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine, make_url

from monitor.config import Config, SourceConfig, load_config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.replay import run_replay
from monitor.store.schema import open_database

from .botapi import FakeBotAPI, RateLimits

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
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
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


def write_config(
    path: Path,
    database_url: str,
    sources: list[dict[str, Any]],
    *,
    poll: dict[str, Any] | None = None,
    telegram: dict[str, Any] | None = None,
    digest: dict[str, Any] | None = None,
) -> Path:
    """A feeds.yaml: the project's proposals and settings, with these sources and setting overrides."""
    data = yaml.safe_load((ROOT / "feeds.yaml").read_text(encoding="utf-8"))
    data["settings"]["database_url"] = database_url
    data["settings"]["poll"].update(poll or {})
    data["settings"]["telegram"].update(telegram or {})
    data["settings"]["digest"].update(digest or {})
    data["sources"] = sources
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# --- Bot API ---------------------------------------------------------------------------------------------------
TOKEN = "123456:TEST-token-never-logged"


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    """A fake Telegram Bot API server (tests/botapi.py) that knows TOKEN, with its rate limits off."""
    with FakeBotAPI(token=TOKEN, limits=RateLimits.off()) as running:
        yield running


# --- Feeds -----------------------------------------------------------------------------------------------------
FeedItem = tuple[str, str, str] | tuple[str, str, str, datetime]


def rss(*items: FeedItem) -> bytes:
    """A feed of (guid, title, summary) items, each with a pubDate when a fourth element gives one."""
    entries = "".join(
        f"<item><guid>{item[0]}</guid><title>{escape(item[1])}</title><description>{escape(item[2])}</description>"
        f"<link>https://news.example/{item[0]}</link>"
        + (f"<pubDate>{format_datetime(item[3])}</pubDate>" if len(item) == 4 else "")
        + "</item>"
        for item in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'.encode()


SIGNED_DK = (
    "dk1",
    "Ukraine and Denmark sign 10-year security agreement",
    "Danish Prime Minister Mette Frederiksen and President Zelensky signed a bilateral security agreement.",
)
SEED_LIKE = (
    "it1",
    "Meloni proposes NATO-light guarantee for Ukraine",
    "Italian Prime Minister Giorgia Meloni proposed an Article 5-style security guarantee for Ukraine.",
)
SIGNED_DK_AGAIN = (
    "dk2",
    "Denmark signs security agreement with Ukraine",
    "Denmark on Friday signed a security agreement with Ukraine in Lviv.",
)
PLANNED_DK = (
    "dk3",
    "Denmark plans to sign a new security pact with Ukraine",
    "Denmark will sign a further security agreement with Ukraine next year, officials said.",
)


def many_reports(count: int) -> bytes:
    """A feed of `count` long reports of the Danish signing (a digest of several parts)."""
    return rss(
        *(
            (
                f"dk{n}",
                f"Denmark and Ukraine sign security agreement, report {n}: " + "details " * 30,
                "Danish Prime Minister Mette Frederiksen and President Zelensky signed a bilateral security agreement.",
            )
            for n in range(count)
        )
    )


# --- The analysts' corpus: the Reuters replay plus local status changes ----------------------------------------
T1 = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)
T2 = datetime(2026, 7, 25, 12, 0, tzinfo=UTC)
QUOKKA = "quokka"  # a word only in one summary
# the Danish reports above, dated
DK_PLANNED = (*PLANNED_DK, datetime(2026, 7, 20, 9, 0, tzinfo=UTC))
DK_SIGNED = (*SIGNED_DK, datetime(2026, 7, 25, 9, 0, tzinfo=UTC))
DK_SIGNED_WIRE = (*SIGNED_DK_AGAIN, datetime(2026, 7, 25, 7, 0, tzinfo=UTC))
IT_SIGNED = (
    "it1",
    "Italy and Ukraine sign security agreement",
    "Prime Minister Giorgia Meloni and President Zelensky signed a bilateral security agreement in Kyiv.",
    datetime(2026, 7, 20, 8, 0, tzinfo=UTC),
)
FR_SIGNED = (
    "fr1",
    "France and Ukraine sign security agreement",
    "President Macron and President Zelensky signed a bilateral security agreement in Paris.",
    datetime(2026, 7, 20, 10, 0, tzinfo=UTC),
)
FUZZY = (
    "rf1",
    "Leaders discuss a reassurence forse for Ukraine",
    "European leaders discussed a multinational reasurance forse for Ukraine after a ceasefire.",
    datetime(2026, 7, 20, 11, 0, tzinfo=UTC),
)
ANIMAL = (
    "zoo1",
    "Zoo news from Perth",
    f"A {QUOKKA} was seen near the harbour.",
    datetime(2026, 7, 20, 11, 30, tzinfo=UTC),
)


def local_config(base: Config, url: str, server: FeedServer) -> Config:
    tiers = {"gov": "official", "wire": "wire", "blog": "media"}
    config = make_config(base, url, {name: server.url(f"/{name}.xml") for name in tiers})
    return replace(config, sources=tuple(s.model_copy(update={"tier": tiers[s.id]}) for s in config.sources))


def add_local_changes(base: Config, url: str, engine: Engine) -> None:
    """Two polls of a local feed after the corpus: dk-ua-2024 goes to proposal at T1 and to signed at T2
    (a wire report first, then an official one); Italy's and France's signings stay unconfirmed; one
    low-score match; and an item with a word only in its summary."""
    clock = FakeClock(T1)
    with FeedServer() as server:
        config = local_config(base, url, server)
        server.serve("/gov.xml", Response(rss(DK_PLANNED)))
        server.serve("/wire.xml", Response(rss()))
        server.serve("/blog.xml", Response(rss(IT_SIGNED, FR_SIGNED, FUZZY, ANIMAL)))
        run_poll(config, engine, clock)
        clock.now = T2
        server.serve("/gov.xml", Response(rss(DK_PLANNED, DK_SIGNED)))
        server.serve("/wire.xml", Response(rss(DK_SIGNED_WIRE)))
        run_poll(config, engine, clock)


_BUILT: dict[str, Path] = {}


def corpus_url(tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    """A fresh copy (for one test module) of the replay corpus database plus the local changes."""
    if "db" not in _BUILT:
        path = tmp_path_factory.mktemp("corpus") / "corpus.db"
        base = load_config(ROOT / "feeds.yaml", env={})
        url = f"sqlite:///{path}"
        base = replace(base, settings=base.settings.model_copy(update={"database_url": url}))
        engine = open_database(url)
        run_replay(base, engine, REPLAY)
        add_local_changes(base, url, engine)
        engine.dispose()
        _BUILT["db"] = path
    copy = tmp_path_factory.mktemp(name) / "monitor.db"
    with sqlite3.connect(_BUILT["db"]) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    target.close()
    return f"sqlite:///{copy}"


@pytest.fixture(scope="module")
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The corpus database, one copy per test module."""
    engine = open_database(corpus_url(tmp_path_factory, request.module.__name__.rpartition(".")[2]))
    yield engine
    engine.dispose()
