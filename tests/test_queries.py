"""The analyst views and full-text search: made by migration 0004, invisible to autogenerate, right on the real
replay corpus plus a local feed of status changes, and the FTS index kept in sync through the real pipeline.

The corpus (conftest's `corpus` fixture) is shared by the analyst test modules: the replay is run once per
session and each module works on its own copy of the database.
"""

from __future__ import annotations

from datetime import datetime

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
from monitor.store.schema import alembic_config, include_object

from .conftest import (
    ANIMAL,
    DK_PLANNED,
    DK_SIGNED,
    DK_SIGNED_WIRE,
    QUOKKA,
    T2,
    FakeClock,
    local_config,
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
