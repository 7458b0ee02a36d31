"""The analyst views and full-text search: made by migration 0004, invisible to autogenerate, right on the real
replay corpus plus a local feed of status changes, and the FTS index kept in sync through the real pipeline.

The corpus (conftest's `corpus` fixture) is shared by the analyst test modules: the replay is run once per
session and each module works on its own copy of the database.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from alembic import command
from monitor.config import Config
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store import fulltext, queries
from monitor.store.db import copy_database
from monitor.store.schema import alembic_config, include_object, open_database

from .conftest import (
    ANIMAL,
    DK_PLANNED,
    DK_SIGNED,
    DK_SIGNED_WIRE,
    QUOKKA,
    T2,
    FakeClock,
    local_config,
    make_config,
    rss,
)


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


def test_migration_0011_drops_the_unread_canonical_url_index_and_its_downgrade_restores_it(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    server.serve("/blog.xml", Response(rss(ANIMAL, DK_PLANNED)))
    run_poll(local_config(base_config, database_url, server), engine, clock, only=["blog"])

    def item_indexes() -> set[str]:
        return {index["name"] for index in sa.inspect(engine).get_indexes("item") if index["name"]}

    assert "ix_item_canonical_url" not in item_indexes() and "ix_item_story_id" in item_indexes()
    command.downgrade(alembic_config(database_url), "0010")
    assert "ix_item_canonical_url" in item_indexes()
    command.upgrade(alembic_config(database_url), "head")
    assert "ix_item_canonical_url" not in item_indexes()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM item WHERE canonical_url IS NOT NULL")).scalar() == 2


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
    # with "ahead of Ukraine coalition summit" and "France showcases 500 pro-Ukraine troops" (Reuters, July 2026)
    assert rows["reassurance-force"]["reports"] == 5


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
    fulltext.catch_up(corpus)
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
    fulltext.catch_up(engine)
    with Session(engine) as session:
        assert fulltext.search(QUOKKA, session=session).rows == []
        (hit,) = fulltext.search("wombat", session=session).records()
        assert fulltext.search("Perth", session=session).records()[0]["item_id"] == hit["item_id"]
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM item_version")
        connection.execute(sa.text("DELETE FROM item WHERE id = :id"), {"id": hit["item_id"]})
    with Session(engine) as session:
        assert fulltext.search("wombat OR Perth", session=session).rows == []


def _fts_agrees_with_item(engine: Engine) -> None:
    """FTS5's own check, comparing the index with the `item` rows it reads its text from (rank 1)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO item_fts(item_fts, rank) VALUES ('integrity-check', 1)")
        assert connection.exec_driver_sql("SELECT count(*) FROM item_fts_pending").scalar_one() == 0


def test_a_poll_notes_what_it_stored_and_the_next_search_indexes_it_all_at_once(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    feeds = {name: server.url(f"/{name}.xml") for name in ("one", "two", "three")}
    config = make_config(base_config, database_url, feeds, batch=1)  # three batches
    for number, name in enumerate(feeds):
        server.serve(f"/{name}.xml", Response(rss((f"a{number}", f"Zoo news {name}", f"A {QUOKKA} number {name}."))))
    assert run_poll(config, engine, clock).items_new == 3
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        with Session(engine) as session:
            assert fulltext.search(QUOKKA, session=session).rows == []  # the poll tokenised nothing
    assert fulltext.catch_up(engine) == fulltext.CatchUp(3 if sqlite else 0)
    assert fulltext.catch_up(engine) == fulltext.CatchUp(0)
    with Session(engine) as session:
        hits = fulltext.search(QUOKKA, session=session, limit=None).records()
    assert sorted(hit["title"] for hit in hits) == ["Zoo news one", "Zoo news three", "Zoo news two"]
    if sqlite:
        _fts_agrees_with_item(engine)


def _add_item(engine: Engine, key: str, title: str) -> None:
    columns = "source_id, key, title, summary, published_at, first_seen_at, updated_at, version, content_hash"
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"INSERT INTO item ({columns}) VALUES ('blog', :key, :title, 'in the park', "
                    "'2026-07-20 11:30:00', '2026-07-20 11:30:00', '2026-07-20 11:30:00', 1, :key)"),
            {"key": key, "title": title},
        )  # fmt: skip


def test_migration_0009_downgrade_indexes_what_waits_and_restores_row_by_row_indexing(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's FTS5 index")
    server.serve("/blog.xml", Response(rss(ANIMAL)))
    run_poll(local_config(base_config, database_url, server), engine, clock, only=["blog"])
    _add_item(engine, "k1", "Wallaby spotted")  # waits to be indexed
    command.downgrade(alembic_config(database_url), "0008")
    _add_item(engine, "k2", "Numbat spotted")  # indexed by 0004's trigger
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO item_fts(item_fts, rank) VALUES ('integrity-check', 1)")
    command.upgrade(alembic_config(database_url), "head")
    _fts_agrees_with_item(engine)
    with Session(engine) as session:
        assert len(fulltext.search("spotted", session=session).rows) == 2


def test_search_index_stays_sound_when_items_not_yet_indexed_are_edited_or_deleted(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    """Items a killed poll (or a copy) stored but did not index yet: an edit or a delete must not tell FTS5 to
    drop a row it never held (that corrupts an external-content index), and the next search indexes the rest."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's FTS5 index")
    config = local_config(base_config, database_url, server)
    server.serve("/blog.xml", Response(rss(ANIMAL)))
    run_poll(config, engine, clock, only=["blog"])
    fulltext.catch_up(engine)
    for key, title in (("k1", "Wallaby spotted"), ("k2", "Numbat spotted"), ("k3", "Dingo spotted")):
        _add_item(engine, key, title)
    with engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM item_fts_pending").scalar_one() == 3
        connection.exec_driver_sql("UPDATE item SET title = 'Echidna spotted' WHERE key = 'k1'")  # not indexed yet
        connection.exec_driver_sql("DELETE FROM item WHERE key = 'k2'")  # not indexed yet
        connection.exec_driver_sql("UPDATE item SET title = 'Zoo news from Darwin' WHERE key = 'guid:zoo1'")  # indexed
    with Session(engine) as session:
        assert fulltext.search("Dingo OR Echidna", session=session).rows == []  # not indexed yet
    assert fulltext.catch_up(engine) == fulltext.CatchUp(2)
    _fts_agrees_with_item(engine)
    with Session(engine) as session:
        found = {row["title"] for row in fulltext.search("spotted OR Darwin OR Perth", session=session).records()}
    assert found == {"Dingo spotted", "Echidna spotted", "Zoo news from Darwin"}


def test_a_copy_into_sqlite_indexes_the_copied_items(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    server.serve("/blog.xml", Response(rss(ANIMAL)))
    run_poll(local_config(base_config, database_url, server), engine, clock, only=["blog"])
    target = open_database(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        copy_database(engine, target)
        _fts_agrees_with_item(target)
        with Session(target) as session:
            assert [row["title"] for row in fulltext.search(QUOKKA, session=session).records()] == [ANIMAL[1]]
    finally:
        target.dispose()
