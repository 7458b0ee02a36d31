"""The analyst views and full-text search: made by migration 0004, invisible to autogenerate, right on the real
replay corpus plus a local feed of status changes, and the FTS index kept in sync through the real pipeline.

`corpus_url` is shared by the analyst test modules: the replay is run once per session and each module
works on its own copy of the database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from alembic import command
from monitor.config import Config, load_config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.replay import run_replay
from monitor.store import fulltext, queries
from monitor.store.schema import alembic_config, include_object, open_database

from .conftest import REPLAY, ROOT, FakeClock, make_config

T1 = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)
T2 = datetime(2026, 7, 25, 12, 0, tzinfo=UTC)
QUOKKA = "quokka"  # a word only in one summary


def rss(*items: tuple[str, str, str, datetime]) -> bytes:
    """A feed of (guid, title, summary, published) items."""
    entries = "".join(
        f"<item><guid>{guid}</guid><title>{escape(title)}</title><description>{escape(summary)}</description>"
        f"<link>https://news.example/{guid}</link><pubDate>{format_datetime(published)}</pubDate></item>"
        for guid, title, summary, published in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'.encode()


DK_PLANNED = (
    "dk3",
    "Denmark plans to sign a new security pact with Ukraine",
    "Denmark will sign a further security agreement with Ukraine next year, officials said.",
    datetime(2026, 7, 20, 9, 0, tzinfo=UTC),
)
DK_SIGNED = (
    "dk1",
    "Ukraine and Denmark sign 10-year security agreement",
    "Danish Prime Minister Mette Frederiksen and President Zelensky signed a bilateral security agreement.",
    datetime(2026, 7, 25, 9, 0, tzinfo=UTC),
)
DK_SIGNED_WIRE = (
    "dk2",
    "Denmark signs security agreement with Ukraine",
    "Denmark on Friday signed a security agreement with Ukraine in Lviv.",
    datetime(2026, 7, 25, 7, 0, tzinfo=UTC),
)
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
    copy = tmp_path_factory.mktemp(name) / "monitor.store.db"
    with sqlite3.connect(_BUILT["db"]) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    target.close()
    return f"sqlite:///{copy}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = open_database(corpus_url(tmp_path_factory, "queries"))
    yield engine
    engine.dispose()


# --- schema ------------------------------------------------------------------------------------------------
def test_views_exist_after_upgrade_head_and_autogenerate_finds_no_difference(engine: Engine) -> None:
    assert sorted(sa.inspect(engine).get_view_names()) == sorted(queries.VIEW_NAMES)
    with engine.connect() as connection:
        hooked = {"compare_type": True, "render_as_batch": True, "include_object": include_object}
        assert compare_metadata(MigrationContext.configure(connection, opts=hooked), SQLModel.metadata) == []
        # Without the hook, the FTS index (SQLite's virtual table and its shadow tables) would look stray.
        plain = MigrationContext.configure(connection, opts={"compare_type": True})
        stray = {diff[1].name for diff in compare_metadata(plain, SQLModel.metadata)}
        assert stray and all(name.startswith(fulltext.FTS_TABLE) for name in stray)


def test_views_in_the_database_are_the_ones_queries_defines(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":  # PostgreSQL keeps a view's parsed form, not its text
        assert set(sa.inspect(engine).get_view_names()) == set(queries.VIEW_NAMES)
        return
    with engine.connect() as connection:
        stored: dict[str, str] = dict(
            connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'view'").all()
        )
    assert stored == {name: f"CREATE VIEW {name} AS\n{queries.view_sql(name, 'sqlite')}" for name in queries.VIEW_NAMES}


def test_migration_0004_downgrades_cleanly_and_indexes_existing_items(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = local_config(base_config, database_url, server)
    server.serve("/blog.xml", Response(rss(ANIMAL)))
    run_poll(config, engine, clock, only=["blog"])
    alembic = alembic_config(database_url)
    command.downgrade(alembic, "0003")
    inspector = sa.inspect(engine)
    assert inspector.get_view_names() == []
    assert not [name for name in inspector.get_table_names() if name.startswith(fulltext.FTS_TABLE)]
    command.upgrade(alembic, "head")
    with Session(engine) as session:
        assert [row["title"] for row in fulltext.search(QUOKKA, session=session).records()] == [ANIMAL[1]]


# --- the views on the corpus --------------------------------------------------------------------------------
def test_current_status_where_each_proposal_stands(corpus: Engine) -> None:
    with Session(corpus) as session:
        rows = {row["proposal_id"]: row for row in queries.current_status(session=session).records()}
    assert len(rows) == 16
    dk = rows["dk-ua-2024"]
    # since: when the world changed (the earliest report's publication), not when the poll saw it (T2)
    signed_at = DK_SIGNED_WIRE[3]
    assert (dk["status"], dk["since"], dk["latest_to"], dk["latest_state"]) == (
        "signed",
        signed_at,
        "signed",
        "confirmed",
    )
    assert dk["evidence"] == 2 and dk["reports"] == 3 and dk["last_report_at"] == DK_SIGNED[3]
    italy = rows["it-ua-2024"]
    assert (italy["status"], italy["since"], italy["latest_to"], italy["latest_state"]) == (
        "discussion",
        None,
        "signed",
        "unconfirmed",
    )
    backstop = rows["us-security-backstop"]  # from the real corpus
    assert (backstop["status"], backstop["latest_state"], backstop["evidence"]) == ("proposal", "confirmed", 1)
    assert rows["reassurance-force"]["reports"] == 3


def test_stage_durations_how_long_at_each_stage(corpus: Engine) -> None:
    with Session(corpus) as session:
        stages = queries.stage_durations(session=session, proposal="dk-ua-2024").records()
    planned, signed = DK_PLANNED[3], DK_SIGNED_WIRE[3]  # the reports' publication times, not the polls'
    assert [(s["stage"], s["next_stage"], s["days"]) for s in stages] == [
        ("proposal", "signed", pytest.approx((signed - planned).total_seconds() / 86400)),
        ("signed", None, None),
    ]
    assert (stages[0]["entered_at"], stages[0]["left_at"]) == (planned, signed)


def test_first_source_by_reported_time_not_by_poll_order(corpus: Engine) -> None:
    with Session(corpus) as session:
        first = {(r["proposal_id"], r["to_status"]): r for r in queries.first_sources(session=session).records()}
    signed = first[("dk-ua-2024", "signed")]
    assert (signed["first_source_id"], signed["first_reported_at"], signed["sources"]) == ("wire", DK_SIGNED_WIRE[3], 2)
    assert first[("us-security-backstop", "proposal")]["first_source_id"] == "reuters"


def test_reports_per_day_add_up_to_the_reports(corpus: Engine) -> None:
    with Session(corpus) as session:
        days = session.connection().execute(sa.select(queries.PER_DAY)).all()
        status = {row["proposal_id"]: row["reports"] for row in queries.current_status(session=session).records()}
    per_proposal: dict[str, int] = {}
    for proposal_id, _day, reports, _sources in days:
        per_proposal[proposal_id] = per_proposal.get(proposal_id, 0) + reports
    assert per_proposal == {key: value for key, value in status.items() if value}
    assert ("dk-ua-2024", datetime(2026, 7, 25).date(), 2, 2) in days


def test_status_history_has_each_change_with_its_evidence(corpus: Engine) -> None:
    with Session(corpus) as session:
        rows = queries.status_history(session=session, proposal="dk-ua-2024", since=T2).records()
    assert {(r["to_status"], r["source_id"], r["link"]) for r in rows} == {
        ("signed", "wire", "https://news.example/dk2"),
        ("signed", "gov", "https://news.example/dk1"),
    }


# --- full-text search ---------------------------------------------------------------------------------------
def test_search_finds_summary_only_words_ranked_with_snippets(corpus: Engine) -> None:
    with Session(corpus) as session:
        hits = fulltext.search(QUOKKA, session=session).records()
        assert [(h["title"], h["snippet"]) for h in hits] == [(ANIMAL[1], f"A **{QUOKKA}** was seen near the harbour.")]
        ranked = fulltext.search("security agreement", session=session, limit=50).records()
        assert ranked[0]["score"] >= ranked[-1]["score"] > 0
        assert fulltext.like_search(QUOKKA, session=session).records()[0]["item_id"] == hits[0]["item_id"]
        with pytest.raises(fulltext.SearchError, match="syntax error"):
            fulltext.search("security AND AND", session=session)
        with pytest.raises(fulltext.SearchError, match="unterminated string"):
            fulltext.search('"unbalanced', session=session)


def test_search_index_follows_edits_through_the_pipeline_and_deletes(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = local_config(base_config, database_url, server)
    server.serve("/blog.xml", Response(rss(ANIMAL)))
    run_poll(config, engine, clock, only=["blog"])
    edited = (ANIMAL[0], ANIMAL[1], "A wombat was seen near the harbour.", ANIMAL[3])
    server.serve("/blog.xml", Response(rss(edited)))
    clock.advance(hours=1)
    summary = run_poll(config, engine, clock, only=["blog"], force=True)
    assert summary.items_updated == 1
    with Session(engine) as session:
        assert fulltext.search(QUOKKA, session=session).rows == []
        (hit,) = fulltext.search("wombat", session=session).records()
        assert fulltext.search("Perth", session=session).records()[0]["item_id"] == hit["item_id"]
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM item_version")
        connection.execute(sa.text("DELETE FROM item WHERE id = :id"), {"id": hit["item_id"]})
    with Session(engine) as session:
        assert fulltext.search("wombat OR Perth", session=session).rows == []
