"""The digest outbox through the real pipeline: composed once per subscriber and window, filtered by what the
subscriber follows, due by frequency, printed to stdout when no Telegram token is set."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from monitor.config import Config
from monitor.delivery import compose_due, run_digest
from monitor.digest import is_due
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store import models, outbox

from .conftest import PLANNED_DK, SEED_LIKE, SIGNED_DK, FakeClock, make_config, rss


def _setup(server: FeedServer, base: Config, url: str, *items: tuple[str, str, str]) -> Config:
    server.serve("/gov.xml", Response(rss(*items)))
    config = make_config(base, url, {"gov": server.url("/gov.xml")})
    return replace(config, sources=tuple(s.model_copy(update={"tier": "official"}) for s in config.sources))


def test_digest_without_token_prints_once(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _setup(server, base_config, database_url, SIGNED_DK, SEED_LIKE)
    run_poll(config, engine, clock)
    out = io.StringIO()
    first = run_digest(config, engine, clock, out=out)
    text = out.getvalue()
    assert (first.composed, first.printed) == (1, 1)
    assert "Status changes" in text and "discussion → signed" in text and "discussion → proposal" in text
    assert "Ukraine and Denmark sign 10-year security agreement (https://news.example/dk1)" in text
    again = io.StringIO()
    assert run_digest(config, engine, clock, out=again).composed == 0
    assert again.getvalue() == ""

    clock.advance(hours=1)
    server.serve("/gov.xml", Response(rss(SIGNED_DK, SEED_LIKE, PLANNED_DK)))
    run_poll(config, engine, clock)
    later = io.StringIO()
    run_digest(config, engine, clock, out=later)
    assert "Denmark plans to sign" in later.getvalue()
    assert "Ukraine and Denmark sign 10-year" not in later.getvalue()


def test_digest_dry_run_changes_nothing(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _setup(server, base_config, database_url, SIGNED_DK)
    run_poll(config, engine, clock)
    dry = io.StringIO()
    assert run_digest(config, engine, clock, out=dry, dry_run=True).composed == 1
    assert "part 1/1" in dry.getvalue()
    real = io.StringIO()
    assert run_digest(config, engine, clock, out=real).printed == 1
    assert "Ukraine and Denmark sign" in real.getvalue()


def test_compose_respects_follows_min_status_and_frequency(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _setup(server, base_config, database_url)
    settings = config.settings.digest
    with Session(engine) as session:
        run_poll(config, engine, clock)  # creates the proposals
        follower, _ = outbox.subscribe(1, "private", "a", clock(), settings, session=session)
        outbox.update_settings(
            follower, clock(), session=session, follows=["it-article5-guarantee"], frequency="instant"
        )
        strict, _ = outbox.subscribe(2, "private", "b", clock(), settings, session=session)
        outbox.update_settings(strict, clock(), session=session, min_status="signed", frequency="instant")
        daily, _ = outbox.subscribe(3, "private", "c", clock(), settings, session=session)
        outbox.update_settings(
            daily, clock(), session=session, frequency="daily", hour=8, last_digest_at=clock() - timedelta(minutes=5)
        )
        session.commit()
    server.serve("/gov.xml", Response(rss(SIGNED_DK, SEED_LIKE)))
    clock.advance(minutes=10)
    run_poll(config, engine, clock, force=True)
    titles = {p.id: p.title for p in config.proposals}
    with Session(engine) as session:
        digests = compose_due(clock(), settings, titles, config.settings.status.ladder, [], session=session)
        session.commit()
        by_chat = {}
        for digest in digests:
            chat = session.get(models.Subscriber, digest.subscriber_id)
            parts = session.exec(select(models.DigestPart).where(models.DigestPart.digest_id == digest.id)).all()
            assert chat is not None
            by_chat[chat.chat_id] = "\n".join(part.text for part in parts)
    assert set(by_chat) == {1, 2}, "the daily subscriber is not due at noon"
    assert "NATO-light" in by_chat[1] and "Denmark" not in by_chat[1]
    assert "Denmark" in by_chat[2] and "NATO-light" not in by_chat[2]
    with Session(engine) as session:
        again = compose_due(clock(), settings, titles, config.settings.status.ladder, [], session=session)
        assert again == [], "a window is composed once"


def test_new_subscriber_is_not_sent_the_past(
    server: FeedServer, base_config: Config, engine: Engine, database_url: str, clock: FakeClock
) -> None:
    config = _setup(server, base_config, database_url, SIGNED_DK)
    run_poll(config, engine, clock)
    with Session(engine) as session:
        outbox.subscribe(5, "private", "late", clock(), config.settings.digest, session=session)
        session.commit()
        titles = {p.id: p.title for p in config.proposals}
        assert (
            compose_due(
                clock(),
                config.settings.digest,
                titles,
                ("discussion", "proposal", "signed"),
                [],
                session=session,
                force_chat=5,
            )
            == []
        )


def test_is_due_by_frequency() -> None:
    noon = datetime(2026, 3, 4, 12, tzinfo=UTC)  # a Wednesday
    assert is_due("instant", 8, noon, noon, UTC)
    assert is_due("daily", 8, None, noon, UTC)
    assert is_due("hourly", 8, noon - timedelta(minutes=61), noon, UTC)
    assert not is_due("hourly", 8, noon - timedelta(minutes=59), noon, UTC)
    assert is_due("daily", 8, noon - timedelta(hours=5), noon, UTC)
    assert not is_due("daily", 8, noon - timedelta(hours=3), noon, UTC)
    assert not is_due("daily", 13, noon - timedelta(hours=3), noon, UTC)
    assert not is_due("weekly", 8, noon - timedelta(days=1), noon, UTC)
    assert is_due("weekly", 8, noon - timedelta(days=3), noon, UTC)
