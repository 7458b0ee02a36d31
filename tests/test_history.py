"""Status history through the real pipeline: matches and decisions stored in the poll's transaction,
corroboration across feeds, no silent downgrade, append-only history, deterministic re-matching and replay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from monitor.cli import cli
from monitor.config import Config, SourceConfig
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.rematch import run_rematch
from monitor.store import history, models
from monitor.store.schema import open_database

from .conftest import EVAL, PLANNED_DK, REPLAY, SEED_LIKE, SIGNED_DK, SIGNED_DK_AGAIN, FakeClock, make_config, rss


def _config(base: Config, database_url: str, server: FeedServer, tiers: dict[str, str]) -> Config:
    config = make_config(base, database_url, {name: server.url(f"/{name}.xml") for name in tiers})
    sources = tuple(replace_tier(source, tiers[source.id]) for source in config.sources)
    return replace(config, sources=sources)


def replace_tier(source: SourceConfig, tier: str) -> SourceConfig:
    return source.model_copy(update={"tier": tier})


def _history(engine: Engine, proposal: str) -> list[tuple[str, str, str, str]]:
    with Session(engine) as session:
        return [(c.kind, c.from_status, c.to_status, c.state) for c in history.changes(proposal, session=session)]


def _status(engine: Engine, proposal: str) -> str:
    with Session(engine) as session:
        row = session.get(models.Proposal, proposal)
        assert row is not None
        return row.status


def test_history_seed_report_statuses(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    lines = (EVAL / "seed-report.txt").read_text(encoding="utf-8").strip().splitlines()
    server.serve("/gaze.xml", Response(rss(("seed", lines[0], "\n".join(lines[1:])))))
    config = _config(base_config, database_url, server, {"gaze": "media"})
    run_poll(config, engine, clock)
    with Session(engine) as session:
        matches = {m.proposal_id: m.status for m in session.exec(select(models.ItemMatch))}
    assert matches == {"it-article5-guarantee": "proposal", "reassurance-force": "discussion", "it-ua-2024": "signed"}
    assert _history(engine, "it-article5-guarantee") == [("upgrade", "discussion", "proposal", "confirmed")]
    assert _history(engine, "reassurance-force") == []
    # One media report of a signing is recorded, but not confirmed: the default policy wants two sources.
    assert _history(engine, "it-ua-2024") == [("upgrade", "discussion", "signed", "unconfirmed")]
    assert _status(engine, "it-ua-2024") == "discussion"


def test_history_signing_confirmed_by_a_second_source_then_never_downgraded(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _config(base_config, database_url, server, {"one": "media", "two": "wire"})
    server.serve("/one.xml", Response(rss(SIGNED_DK)))
    server.serve("/two.xml", Response(rss()))
    run_poll(config, engine, clock)
    assert _history(engine, "dk-ua-2024") == [("upgrade", "discussion", "signed", "unconfirmed")]
    assert _status(engine, "dk-ua-2024") == "discussion"
    with Session(engine) as session:
        first = session.exec(select(models.StatusChange)).one()
        frozen = (first.id, first.kind, first.from_status, first.to_status, first.observed_at)

    clock.advance(days=1)
    server.serve("/two.xml", Response(rss(SIGNED_DK_AGAIN)))
    summary = run_poll(config, engine, clock)
    assert [feed.changes for feed in summary.feeds if feed.source_id == "two"] == [(frozen[0],)]
    assert _history(engine, "dk-ua-2024") == [("upgrade", "discussion", "signed", "confirmed")]
    assert _status(engine, "dk-ua-2024") == "signed"
    with Session(engine) as session:
        change = session.exec(select(models.StatusChange)).one()
        assert (change.id, change.kind, change.from_status, change.to_status, change.observed_at) == frozen
        assert change.confirmed_at == clock.now
        sources = {
            e.source_id for e in session.exec(select(models.Evidence).where(models.Evidence.change_id == change.id))
        }
        assert sources == {"one", "two"}

    clock.advance(days=1)
    server.serve("/one.xml", Response(rss(SIGNED_DK, PLANNED_DK)))
    run_poll(config, engine, clock)
    assert _status(engine, "dk-ua-2024") == "signed"
    assert _history(engine, "dk-ua-2024") == [("upgrade", "discussion", "signed", "confirmed")]
    with Session(engine) as session:
        planned = session.exec(select(models.ItemMatch).where(models.ItemMatch.status == "proposal")).all()
        assert [m.proposal_id for m in planned] == ["dk-ua-2024"]


def test_history_official_source_confirms_alone(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _config(base_config, database_url, server, {"gov": "official"})
    server.serve("/gov.xml", Response(rss(SIGNED_DK)))
    run_poll(config, engine, clock)
    assert _history(engine, "dk-ua-2024") == [("upgrade", "discussion", "signed", "confirmed")]
    assert _status(engine, "dk-ua-2024") == "signed"


def test_history_withdrawal_is_flagged_for_review_not_applied(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _config(base_config, database_url, server, {"gov": "official"})
    server.serve("/gov.xml", Response(rss(SIGNED_DK)))
    run_poll(config, engine, clock)
    clock.advance(days=30)
    collapse = (
        "dk9",
        "Denmark withdraws from its security agreement with Ukraine",
        "Copenhagen withdrew from the bilateral security agreement with Ukraine on Monday.",
    )
    server.serve("/gov.xml", Response(rss(SIGNED_DK, collapse)))
    run_poll(config, engine, clock)
    assert _history(engine, "dk-ua-2024")[-1] == ("withdrawal", "signed", "signed", "review")
    assert _status(engine, "dk-ua-2024") == "signed"


def _dump(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        changes = connection.exec_driver_sql(
            "SELECT proposal_id, kind, from_status, to_status, state, observed_at, confirmed_at, confidence "
            "FROM status_change ORDER BY id"
        ).all()
        evidence = connection.exec_driver_sql(
            "SELECT c.proposal_id, e.item_id, e.source_id, e.status, e.score, e.sentence FROM evidence e "
            "JOIN status_change c ON c.id = e.change_id ORDER BY e.id"
        ).all()
        proposals = connection.exec_driver_sql("SELECT id, status, status_since FROM proposal ORDER BY id").all()
        items = connection.exec_driver_sql(
            "SELECT source_id, key, title, summary, version, published_at, first_seen_at, story_id "
            "FROM item ORDER BY id"
        ).all()
    return [*changes, *evidence, *proposals, *items]


def test_rematch_rebuilds_the_same_history_deterministically(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _config(base_config, database_url, server, {"one": "media", "two": "wire"})
    server.serve("/one.xml", Response(rss(SIGNED_DK)))
    server.serve("/two.xml", Response(rss()))
    run_poll(config, engine, clock)
    clock.advance(days=2)
    server.serve("/two.xml", Response(rss(SIGNED_DK_AGAIN, PLANNED_DK)))
    run_poll(config, engine, clock)
    incremental = _dump(engine)
    assert len(incremental) > 5

    first = run_rematch(config, engine)
    rebuilt = _dump(engine)
    second = run_rematch(config, engine)
    assert rebuilt == _dump(engine) == incremental
    assert first == second
    assert (first.items, first.matches) == (3, 3)
    assert run_rematch(config, engine, batch=1) == first  # a change that spans pages is counted once


def test_rematch_applies_changed_aliases(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _config(base_config, database_url, server, {"gov": "official"})
    server.serve(
        "/gov.xml",
        Response(
            rss(
                (
                    "x1",
                    "Ukraine and Freedonia sign the Sylvania Accord",
                    "President Zelensky signed the Sylvania Accord on security.",
                )
            )
        ),
    )
    run_poll(config, engine, clock)
    assert _history(engine, "other-eu-ua-bilateral-2024") == []
    proposals = tuple(
        p.model_copy(update={"aliases": [*p.aliases, "Sylvania Accord"], "actors": [*p.actors, "Freedonia"]})
        if p.id == "other-eu-ua-bilateral-2024"
        else p
        for p in config.proposals
    )
    run_rematch(replace(config, proposals=proposals), engine)
    assert _history(engine, "other-eu-ua-bilateral-2024") == [("upgrade", "discussion", "signed", "confirmed")]


@pytest.mark.parametrize("runs", [2])
def test_replay_twice_gives_the_same_history(tmp_path: Path, runs: int) -> None:
    dumps = []
    for run in range(runs):
        url = f"sqlite:///{tmp_path / f'replay{run}.db'}"
        result = CliRunner().invoke(cli, ["replay", str(REPLAY), "--db", url, "--json"])
        assert result.exit_code == 0, result.output
        engine = open_database(url)
        dumps.append(_dump(engine))
        with Session(engine) as session:
            assert session.exec(select(models.Item)).first() is not None
            matched = session.exec(select(models.ItemMatch.proposal_id)).all()
        engine.dispose()
        assert "us-security-backstop" in matched or "reassurance-force" in matched
    assert dumps[0] == dumps[1]


def test_poll_match_and_history_share_the_feed_transaction(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    """A feed whose history write fails stores none of its items either; the fault is recorded on the feed
    and the run goes on."""
    config = _config(base_config, database_url, server, {"gov": "official"})
    server.serve("/gov.xml", Response(rss(SIGNED_DK)))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'disk says no'; END $$"
            )
            connection.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON evidence EXECUTE FUNCTION refuse()")
        else:
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON evidence BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
    summary = run_poll(config, engine, clock)
    assert [feed.outcome for feed in summary.feeds] == ["failed"]
    assert "database, while storing feed 'gov': disk says no" in (summary.feeds[0].error or "")
    with Session(engine) as session:
        assert session.exec(select(models.Item)).all() == []
        assert session.exec(select(models.ItemMatch)).all() == []
        source = session.get(models.Source, "gov")
        assert source is not None and "disk says no" in (source.last_error or "")
        assert source.next_poll_at is None  # not the feed's fault: the next run takes it again
        poll = session.exec(select(models.FeedPoll)).one()
        assert (poll.outcome, "disk says no" in (poll.error or "")) == ("failed", True)


def test_rematch_keeps_analysts_decisions(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    from monitor.store import review

    ladder = base_config.settings.status.ladder
    config = _config(base_config, database_url, server, {"one": "media"})
    server.serve("/one.xml", Response(rss(SIGNED_DK, SEED_LIKE)))
    run_poll(config, engine, clock)
    with Session(engine) as session:
        pending = session.exec(select(models.StatusChange).where(models.StatusChange.state == "unconfirmed")).one()
        assert pending.id is not None
        review.confirm_change(pending.id, "Confirmed with the Danish MFA", "ana", ladder, clock(), session=session)
        review.set_status(
            "it-article5-guarantee",
            "discussion",
            "Meloni's idea was only floated",
            "ben",
            ladder,
            clock(),
            session=session,
        )
        session.commit()
    assert (_status(engine, "dk-ua-2024"), _status(engine, "it-article5-guarantee")) == ("signed", "discussion")

    result = run_rematch(config, engine)
    assert (result.reviews_kept, result.reviews_dropped) == (1, 0)
    assert (_status(engine, "dk-ua-2024"), _status(engine, "it-article5-guarantee")) == ("signed", "discussion")
    with Session(engine) as session:
        kept = session.exec(select(models.StatusChange).where(models.StatusChange.proposal_id == "dk-ua-2024")).one()
        assert (kept.state, kept.decided_by, kept.note) == ("confirmed", "ana", "Confirmed with the Danish MFA")
