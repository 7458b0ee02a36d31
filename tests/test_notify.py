"""Digest delivery through python-telegram-bot's real HTTP stack against a Bot API server on 127.0.0.1:
parts in order, never a confirmed part twice, Telegram's errors and limits honoured."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from html import escape

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from telegram import Bot

from monitor.cli.options import setup_logging
from monitor.config import Config
from monitor.delivery import compose_digests, run_digest
from monitor.feedserver import FeedServer, Response
from monitor.notify import DeliveryReport, RateLimiter, deliver
from monitor.pipeline import run_poll
from monitor.store import models, outbox

from .botapi import FakeBotAPI, RateLimits
from .conftest import TOKEN, FakeClock, make_config, many_reports, rss

CHAT = 4242


@pytest.fixture
def telegram_config(fake: FakeBotAPI, base_config: Config, database_url: str, server: FeedServer) -> Config:
    config = make_config(base_config, database_url, {"gov": server.url("/gov.xml")})
    telegram = config.settings.telegram.model_copy(update={"api_url": fake.base_url})
    settings = config.settings.model_copy(update={"telegram": telegram})
    sources = tuple(source.model_copy(update={"tier": "official"}) for source in config.sources)
    return replace(config, settings=settings, sources=sources, telegram_token=TOKEN)


def _subscribe(
    engine: Engine, config: Config, clock: FakeClock, chat_id: int = CHAT, chat_type: str = "private"
) -> None:
    with Session(engine) as session:
        row, _ = outbox.subscribe(chat_id, chat_type, "reader", clock(), config.settings.digest, session=session)
        outbox.update_settings(row, clock(), session=session, frequency="instant")
        session.commit()


def _prepare(
    fake: FakeBotAPI, server: FeedServer, config: Config, engine: Engine, clock: FakeClock, reports: int = 1
) -> int:
    """A subscriber, a poll with `reports` matching items, and the digest composed; returns its parts."""
    fake.add_chat(CHAT)
    run_poll(config, engine, clock)  # proposals exist from here
    _subscribe(engine, config, clock)
    server.serve("/gov.xml", Response(many_reports(reports)))
    clock.advance(hours=1)
    run_poll(config, engine, clock)
    assert compose_digests(config, engine, clock) == 1
    with Session(engine) as session:
        return len(session.exec(select(models.DigestPart)).all())


def _deliver(config: Config, engine: Engine, clock: FakeClock, **kwargs: object) -> DeliveryReport:
    async def main() -> DeliveryReport:
        async with Bot(TOKEN, base_url=config.settings.telegram.api_url) as bot:
            return await deliver(bot, engine, clock, RateLimiter(chat_interval=0.0), **kwargs)  # type: ignore[arg-type]

    return asyncio.run(main())


def _unsent(engine: Engine) -> list[int]:
    with Session(engine) as session:
        part = models.DigestPart
        query = select(part).where(col(part.sent_at).is_(None)).order_by(col(part.id))
        parts = session.exec(query).all()
        return [part.seq for part in parts]


def test_deliver_sends_parts_in_order_once(
    fake: FakeBotAPI, server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    server.serve("/gov.xml", Response(rss()))
    parts = _prepare(fake, server, telegram_config, engine, clock, reports=40)
    assert parts >= 3
    report = _deliver(telegram_config, engine, clock)
    assert (report.sent, report.failed) == (parts, 0)
    sent = fake.sent(CHAT)
    assert len(sent) == parts
    assert "Guarantee Watch digest" in sent[0].plain_text
    assert [message.parse_mode for message in sent] == ["HTML"] * parts
    with Session(engine) as session:
        stored = session.exec(select(models.DigestPart).order_by(col(models.DigestPart.seq))).all()
        assert [part.message_id for part in stored] == [message.message_id for message in sent]
        assert session.exec(select(models.Digest)).one().state == "sent"
    again = _deliver(telegram_config, engine, clock)
    assert again.sent == 0 and len(fake.sent(CHAT)) == parts


def test_deliver_network_error_resumes_at_first_unsent_part(
    fake: FakeBotAPI, server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    server.serve("/gov.xml", Response(rss()))
    parts = _prepare(fake, server, telegram_config, engine, clock, reports=40)
    fake.delay_next(0, 2, method="sendMessage")  # the first two parts go through
    fake.drop_connection_next(1, method="sendMessage")  # the third is cut off
    report = _deliver(telegram_config, engine, clock)
    assert (report.sent, report.failed) == (2, 1)
    assert "network error" in report.errors[0]
    assert _unsent(engine) == list(range(3, parts + 1))
    resumed = _deliver(telegram_config, engine, clock)
    assert resumed.sent == parts - 2
    texts = [message.text for message in fake.sent(CHAT)]
    assert len(texts) == len(set(texts)) == parts


@pytest.mark.sqlite_only  # about waiting on Telegram's 429; resuming from the database is the next test
def test_deliver_429_waits_retry_after_then_sends(
    fake: FakeBotAPI, server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    server.serve("/gov.xml", Response(rss()))
    parts = _prepare(fake, server, telegram_config, engine, clock)
    fake.rate_limit_next(1)
    started = time.monotonic()
    report = _deliver(telegram_config, engine, clock)
    assert report.sent == parts and report.failed == 0
    assert time.monotonic() - started >= 0.95, "it waited retry_after before sending again"


def test_deliver_long_429_leaves_the_rest_for_the_next_run(
    fake: FakeBotAPI, server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    server.serve("/gov.xml", Response(rss()))
    parts = _prepare(fake, server, telegram_config, engine, clock)
    fake.rate_limit_next(3600)
    report = _deliver(telegram_config, engine, clock)
    assert report.sent == 0 and "rate limited for 3600s" in report.errors[0]
    assert _unsent(engine) == list(range(1, parts + 1))
    assert _deliver(telegram_config, engine, clock).sent == parts


@pytest.mark.parametrize("fault", ["block", "unknown"])
def test_deliver_blocked_or_missing_chat_deactivates_the_subscriber(
    fault: str, fake: FakeBotAPI, server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    server.serve("/gov.xml", Response(rss()))
    _prepare(fake, server, telegram_config, engine, clock)
    if fault == "block":
        fake.block(CHAT)
    else:
        telegram_config = replace(telegram_config)
        with Session(engine) as session:
            row = outbox.subscriber(CHAT, session=session)
            assert row is not None
            row.chat_id = 999_999
            session.add(row)
            session.commit()
    report = _deliver(telegram_config, engine, clock)
    assert report.sent == 0 and len(report.deactivated) == 1
    with Session(engine) as session:
        row = session.exec(select(models.Subscriber)).one()
        assert not row.active
        assert ("blocked" if fault == "block" else "chat not found") in (row.deactivated_reason or "")
        assert session.exec(select(models.Digest)).one().state == "abandoned"


def test_deliver_follows_a_migrated_group(
    fake: FakeBotAPI, server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    server.serve("/gov.xml", Response(rss()))
    fake.add_chat(-100, "group", title="readers")
    run_poll(telegram_config, engine, clock)
    _subscribe(engine, telegram_config, clock, chat_id=-100, chat_type="group")
    server.serve("/gov.xml", Response(many_reports(1)))
    clock.advance(hours=1)
    run_poll(telegram_config, engine, clock)
    compose_digests(telegram_config, engine, clock)
    fake.migrate(-100, -1000000000100)
    report = _deliver(telegram_config, engine, clock)
    assert report.migrated == [(-100, -1000000000100)] and report.sent == 1
    assert len(fake.sent(-1000000000100)) == 1
    with Session(engine) as session:
        assert session.exec(select(models.Subscriber)).one().chat_id == -1000000000100


@pytest.mark.sqlite_only  # the limiter is in memory
def test_rate_limiter_keeps_within_telegrams_limits(
    server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    with FakeBotAPI(token=TOKEN, limits=RateLimits.strict()) as strict:
        config = replace(
            telegram_config,
            settings=telegram_config.settings.model_copy(
                update={"telegram": telegram_config.settings.telegram.model_copy(update={"api_url": strict.base_url})}
            ),
        )
        server.serve("/gov.xml", Response(rss()))
        parts = _prepare(strict, server, config, engine, clock, reports=25)

        async def main() -> DeliveryReport:
            async with Bot(TOKEN, base_url=strict.base_url) as bot:
                return await deliver(bot, engine, clock, RateLimiter(chat_interval=1.05))

        report = asyncio.run(main())
        assert report.sent == parts >= 2
        assert len(strict.calls("sendMessage")) == parts, "no request was refused with 429"


def test_rate_limiter_windows() -> None:
    now = [0.0]
    limiter = RateLimiter(overall_per_second=3, chat_interval=1.0, group_per_minute=2, monotonic=lambda: now[0])

    async def take(chat: int, group: bool = False) -> None:
        await limiter.wait(chat, group)

    async def no_sleep(seconds: float) -> None:
        now[0] += seconds

    limiter._sleep = no_sleep  # the limiter's own clock, advanced instead of sleeping
    asyncio.run(take(1))
    assert limiter.delay(1, False) == pytest.approx(1.0)
    assert limiter.delay(2, False) == 0
    for chat in (2, 3):
        asyncio.run(take(chat))
    assert limiter.delay(4, False) == pytest.approx(1.0), "three a second overall"
    now[0] += 1.0
    asyncio.run(take(-5, True))
    now[0] += 1.0
    asyncio.run(take(-5, True))
    assert limiter.delay(-5, True) == pytest.approx(59.0), "two a minute per group"


@pytest.mark.sqlite_only  # about what is printed, not stored
def test_digest_command_path_never_logs_the_token(
    fake: FakeBotAPI,
    server: FeedServer,
    telegram_config: Config,
    engine: Engine,
    clock: FakeClock,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server.serve("/gov.xml", Response(rss()))
    _prepare(fake, server, telegram_config, engine, clock)
    setup_logging((TOKEN,), level=logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    try:
        fake.fail_next(1, status=500, description="Internal Server Error", method="sendMessage")
        summary = run_digest(telegram_config, engine, clock)
        assert summary.delivery is not None and summary.delivery.failed == 1
        summary = run_digest(telegram_config, engine, clock)
        assert summary.delivery is not None and summary.delivery.sent == 1
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
    captured = capfd.readouterr()
    logged = captured.out + captured.err
    assert "sendMessage" in logged, "the requests were logged"
    assert TOKEN not in logged and "TEST-token" not in logged


@pytest.mark.sqlite_only  # about rendering and Telegram's parser
def test_deliver_feed_text_cannot_break_or_alter_the_message(
    fake: FakeBotAPI, server: FeedServer, telegram_config: Config, engine: Engine, clock: FakeClock
) -> None:
    evil_title = 'Denmark signs security agreement with Ukraine </b><a href="https://evil.example/">click</a> & <i'
    evil_link = 'https://news.example/x?a=1&b="2"><b>bold</b>'
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><guid>h1</guid>'
        f"<title>{escape(evil_title)}</title>"
        "<description>Danish Prime Minister Mette Frederiksen and President Zelensky signed a bilateral "
        "security agreement. &lt;script&gt;alert(1)&lt;/script&gt;</description>"
        f"<link>{escape(evil_link)}</link></item>"
        "<item><guid>h2</guid><title>Ukraine and Denmark sign a security pact</title>"
        "<link>javascript:alert(1)</link></item></channel></rss>"
    ).encode()
    fake.add_chat(CHAT)
    server.serve("/gov.xml", Response(rss()))
    run_poll(telegram_config, engine, clock)
    _subscribe(engine, telegram_config, clock)
    server.serve("/gov.xml", Response(feed))
    clock.advance(hours=1)
    run_poll(telegram_config, engine, clock)
    compose_digests(telegram_config, engine, clock)
    report = _deliver(telegram_config, engine, clock)
    assert (report.sent, report.failed) == (1, 0), report.errors
    message = fake.sent(CHAT)[0]
    with Session(engine) as session:
        stored = session.exec(select(models.Item.title).where(col(models.Item.key).endswith("h1"))).one()
    assert "&" in stored and "<i" in stored
    assert stored in message.plain_text, "the stored text shows as it is, nothing in it became markup"
    links = [str(entity["url"]) for entity in message.entities if entity.get("type") == "text_link"]
    assert links and all(link.startswith("https://news.example/") for link in links)
    assert not any("evil.example" in link or "javascript" in link for link in links)
    bold = [
        message.plain_text[e["offset"] : e["offset"] + e["length"]] for e in message.entities if e["type"] == "bold"
    ]
    assert "bold" not in bold and "click" not in bold
