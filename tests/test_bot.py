"""The subscriber bot and the digest sender end to end, through python-telegram-bot's real HTTP stack against
a Bot API server on 127.0.0.1: commands, a poll that finds a status change, exactly one digest, and a sender
killed in the middle of a digest that completes it on the next run without repeating a confirmed part."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.bot import SubscriberBot
from monitor.bot_commands import FloodGuard
from monitor.config import Config
from monitor.delivery import run_digest
from monitor.feedserver import FeedServer, Response
from monitor.pipeline import run_poll
from monitor.store import models

from .botapi import FakeBotAPI
from .conftest import SEED_LIKE, SIGNED_DK, TOKEN, FakeClock, many_reports, rss, write_config

CHAT = 777
ADMIN_CHAT = 555


class RunningBot:
    """The bot's Application, long polling in a thread of its own."""

    def __init__(self, bot: SubscriberBot) -> None:
        self.app = bot.application(TOKEN)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)
        self._ready = threading.Event()

    async def _main(self) -> None:
        await self.app.initialize()
        if self.app.post_init:
            await self.app.post_init(self.app)
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(poll_interval=0.02, timeout=1)
        self._ready.set()
        await self._stop.wait()
        await self.app.updater.stop()
        await self.app.stop()
        await self.app.shutdown()

    def __enter__(self) -> RunningBot:
        self._thread.start()
        assert self._ready.wait(10), "the bot did not start"
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        self._loop.close()


def wait_for(condition: Callable[[], object], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def say(fake: FakeBotAPI, chat: int, text: str, **kwargs: object) -> str:
    """A user writes; returns the bot's answer."""
    before = len(fake.sent(chat))
    fake.send_user_message(chat, text, **kwargs)  # type: ignore[arg-type]
    wait_for(lambda: len(fake.sent(chat)) > before)
    return "\n".join(message.plain_text for message in fake.sent(chat)[before:])


@pytest.fixture
def bot_config(fake: FakeBotAPI, base_config: Config, database_url: str, server: FeedServer) -> Config:
    server.serve("/gov.xml", Response(rss()))
    telegram = base_config.settings.telegram.model_copy(update={"api_url": fake.base_url, "admin_chats": [ADMIN_CHAT]})
    settings = base_config.settings.model_copy(update={"database_url": database_url, "telegram": telegram})
    source = base_config.sources[0].model_copy(update={"id": "gov", "url": server.url("/gov.xml"), "tier": "official"})
    return replace(base_config, settings=settings, sources=(source,), telegram_token=TOKEN)


def digests(fake: FakeBotAPI, chat: int) -> list[str]:
    return [m.plain_text for m in fake.sent(chat) if m.plain_text.startswith("Guarantee Watch digest")]


def test_bot_end_to_end_one_digest(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, server: FeedServer, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        assert "Welcome to Guarantee Watch" in say(fake, CHAT, "/start")
        assert "Now following: dk-ua-2024." in say(fake, CHAT, "/follow dk-ua-2024")
        assert "Digests now instant." in say(fake, CHAT, "/frequency instant")
        settings = say(fake, CHAT, "/settings")
        assert "Frequency: instant" in settings and "Following: dk-ua-2024" in settings
        assert [c["command"] for c in fake.commands()][:2] == ["start", "stop"]

        server.serve("/gov.xml", Response(rss(SIGNED_DK, SEED_LIKE)))
        clock.advance(hours=1)
        run_poll(bot_config, engine, clock)
        first = run_digest(bot_config, engine, clock)
        assert first.delivery is not None and first.delivery.sent == 1
        received = digests(fake, CHAT)
        assert len(received) == 1
        assert "discussion → signed" in received[0] and "Denmark" in received[0]
        assert "NATO-light" not in received[0], "an unfollowed proposal stays out"
        again = run_digest(bot_config, engine, clock)
        assert again.composed == 0 and again.delivery is not None and again.delivery.sent == 0
        assert len(digests(fake, CHAT)) == 1

        assert "signed" in say(fake, CHAT, "/status dk-ua-2024")
        history = say(fake, CHAT, "/history dk-ua-2024")
        assert "discussion → signed" in history and "Ukraine and Denmark sign" in history
        wait_for(lambda: fake.photos)
        assert fake.photos[-1]["chat_id"] == CHAT and fake.photos[-1]["data"][:8] == b"\x89PNG\r\n\x1a\n"
        assert "Nothing new since your last digest." in say(fake, CHAT, "/digest")
        assert "Unsubscribed" in say(fake, CHAT, "/stop")


@pytest.mark.sqlite_only  # the bot's answers; its store writes run on PostgreSQL in the end-to-end tests
def test_bot_answers_unknown_commands_and_bad_arguments(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        assert "I don't know /frobnicate" in say(fake, CHAT, "/frobnicate")
        assert "You are not subscribed" in say(fake, CHAT, "/frequency daily 8")
        say(fake, CHAT, "/start")
        assert "Usage: /frequency" in say(fake, CHAT, "/frequency sometimes")
        assert "Usage: /frequency" in say(fake, CHAT, "/frequency daily 25")
        assert "Digests now daily at 7:00 UTC." in say(fake, CHAT, "/frequency daily 7")
        assert "I don't track nato-2099" in say(fake, CHAT, "/follow nato-2099")
        assert "Usage: /only" in say(fake, CHAT, "/only rumours")
        assert "Minimum status now: signed." in say(fake, CHAT, "/only signed")
        assert "Usage: /status ID" in say(fake, CHAT, "/status")
        assert "it-article5-guarantee" in say(fake, CHAT, "/proposals")


def test_bot_in_a_group_only_admins_change_settings(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    group = -4001
    fake.add_chat(group, "supergroup", title="Analysts")
    fake.set_admins(group, [10], owner_id=10)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        refused = say(fake, group, "/start", user_id=20, chat_type="supergroup")
        assert "only administrators" in refused
        assert "Welcome" in say(fake, group, "/start", user_id=10, chat_type="supergroup")
        assert "only administrators" in say(fake, group, "/frequency hourly", user_id=20, chat_type="supergroup")
        assert "Tracked proposals" in say(fake, group, "/proposals", user_id=20, chat_type="supergroup")


@pytest.mark.sqlite_only  # the bot's answers; its store writes run on PostgreSQL in the end-to-end tests
def test_bot_admin_commands_ignore_non_admins(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        assert "feeds: 1" in say(fake, ADMIN_CHAT, "/stats")
        assert "gov" in say(fake, ADMIN_CHAT, "/feeds")
        fake.send_user_message(CHAT, "/stats")
        fake.send_user_message(CHAT, "/feeds")
        assert "Tracked proposals" in say(fake, CHAT, "/proposals")
        assert not any("feeds:" in m.plain_text or "Feeds" == m.plain_text[:5] for m in fake.sent(CHAT))


@pytest.mark.sqlite_only  # the bot's answers; its store writes run on PostgreSQL in the end-to-end tests
def test_bot_flood_from_one_chat_is_limited(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock, flood=FloodGuard(limit=5, window=60))):
        for _ in range(12):
            fake.send_user_message(CHAT, "/help")
        wait_for(lambda: any("Too many commands" in m.plain_text for m in fake.sent(CHAT)))
        time.sleep(0.5)
        answers = [m.plain_text for m in fake.sent(CHAT)]
        assert len(answers) == 6, "five answers, then one warning, then silence"
        assert say(fake, 999, "/help").startswith("Commands"), "other chats are unaffected"


def test_admin_chat_is_told_when_a_feed_starts_failing(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, server: FeedServer, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        say(fake, ADMIN_CHAT, "/start")
    server.serve("/gov.xml", Response(b"down", status=503))
    for _ in range(bot_config.settings.poll.failing_after):
        clock.advance(days=2)
        run_poll(bot_config, engine, clock)
    run_digest(bot_config, engine, clock)
    alerts = [m.plain_text for m in fake.sent(ADMIN_CHAT) if "feed alerts" in m.plain_text]
    assert len(alerts) == 1 and "is failing" in alerts[0] and "HTTP 503" in alerts[0]


def _config_file(tmp_path: Path, config: Config) -> Path:
    gov = {"id": "gov", "name": "gov", "url": config.sources[0].url, "tier": "official"}
    telegram = {"api_url": config.settings.telegram.api_url}
    return write_config(tmp_path / "feeds.yaml", config.database_url, [gov], telegram=telegram)


def test_digest_sender_killed_mid_digest_resumes_without_repeating(
    tmp_path: Path, fake: FakeBotAPI, bot_config: Config, engine: Engine, server: FeedServer, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        say(fake, CHAT, "/start")
        say(fake, CHAT, "/frequency instant")
    server.serve("/gov.xml", Response(many_reports(60)))
    clock.advance(hours=1)
    run_poll(bot_config, engine, clock)

    env = {**os.environ, "MONITOR_CONFIG": str(_config_file(tmp_path, bot_config)), "MONITOR_TELEGRAM_TOKEN": TOKEN}
    fake.delay_next(0.4, 100, method="sendMessage")
    sender = subprocess.Popen(
        [sys.executable, "-m", "monitor", "digest"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def confirmed() -> list[str]:
        with Session(engine) as session:
            rows = session.exec(select(models.DigestPart).where(col(models.DigestPart.sent_at).is_not(None))).all()
            return [row.text for row in rows]

    try:
        wait_for(lambda: len(confirmed()) >= 2, limit=30)
        sender.send_signal(signal.SIGKILL)
        sender.wait(10)
    finally:
        sender.kill()
        sender.wait()
        assert sender.stderr is not None
        sender.stderr.close()
    before_kill = confirmed()
    with Session(engine) as session:
        parts = session.exec(select(models.DigestPart).order_by(col(models.DigestPart.seq))).all()
        total = len(parts)
    assert 2 <= len(before_kill) < total, "killed in the middle of the digest"
    delivered_before = len(fake.sent(CHAT))

    finish = subprocess.run(
        [sys.executable, "-m", "monitor", "digest"], env=env, capture_output=True, text=True, timeout=120
    )
    assert finish.returncode == 0, finish.stderr
    after = [m.text for m in fake.sent(CHAT)[delivered_before:]]
    assert not set(before_kill) & set(after), "no confirmed part was sent again"
    assert len(confirmed()) == total
    every = [m.text for m in fake.sent(CHAT)]
    assert all(part.text in every for part in parts), "the digest is complete"
    with Session(engine) as session:
        assert session.exec(select(models.Digest)).one().state == "sent"


@pytest.mark.sqlite_only  # about the webhook transport, not the database
def test_bot_by_webhook_answers_an_update_posted_to_it(
    tmp_path: Path, fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    import socket

    import httpx

    run_poll(bot_config, engine, clock)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MONITOR_CONFIG": str(_config_file(tmp_path, bot_config)), "MONITOR_TELEGRAM_TOKEN": TOKEN}
    hook = f"http://127.0.0.1:{port}/telegram"
    command = [
        sys.executable,
        "-m",
        "monitor",
        "bot",
        "--webhook-url",
        hook,
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    bot = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: fake.calls("setWebhook"), limit=30)
        assert fake.calls("setWebhook")[-1].params["url"] == hook
        update = fake.send_user_message(CHAT, "/start")

        def posted() -> bool:
            try:
                return httpx.post(hook, json=update, timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(posted, limit=30)
        wait_for(lambda: any("Welcome to Guarantee Watch" in m.plain_text for m in fake.sent(CHAT)), limit=30)
    finally:
        bot.send_signal(signal.SIGINT)
        try:
            bot.wait(20)
        finally:
            bot.kill()
            bot.wait()
            assert bot.stderr is not None
            errors = bot.stderr.read().decode(errors="replace")
            bot.stderr.close()
    assert TOKEN not in errors


def test_bot_unknown_ids_and_a_removed_proposal_can_be_unfollowed(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        assert say(fake, CHAT, "/status nope").startswith("Unknown id nope.")
        assert say(fake, CHAT, "/history nope").startswith("Unknown id nope.")
        say(fake, CHAT, "/start")
        say(fake, CHAT, "/follow reassurance-force dk-ua-2024")
    trimmed = replace(bot_config, proposals=tuple(p for p in bot_config.proposals if p.id != "reassurance-force"))
    run_poll(trimmed, engine, clock)
    with RunningBot(SubscriberBot(trimmed, engine, clock)):
        assert "reassurance-force" in say(fake, CHAT, "/settings")
        assert say(fake, CHAT, "/unfollow reassurance-force") == "Now following: dk-ua-2024."
        assert "I don't track reassurance-force" in say(fake, CHAT, "/follow reassurance-force")


@pytest.mark.sqlite_only  # the bot's answers; its store writes run on PostgreSQL in the end-to-end tests
def test_bot_wording_of_frequencies_and_feeds(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        say(fake, CHAT, "/start")
        assert say(fake, CHAT, "/frequency instant 7") == (
            "Digests now instant (an hour applies to daily and weekly digests only)."
        )
        assert "You will get an instant digest of" in say(fake, CHAT, "/start")
        assert say(fake, CHAT, "/frequency weekly 9") == "Digests now weekly on Mondays at 9:00 UTC."
        assert "Frequency: weekly on Mondays at 9:00 UTC" in say(fake, CHAT, "/settings")
        assert say(fake, CHAT, "/frequency hourly") == "Digests now hourly."
        assert "You will get an hourly digest of" in say(fake, CHAT, "/start")
        assert say(fake, ADMIN_CHAT, "/feeds") == "Feeds\n• gov new: not polled yet"
    run_poll(bot_config, engine, clock)
    added = bot_config.sources[0].model_copy(update={"id": "wire1", "url": "http://127.0.0.1:9/wire"})
    with RunningBot(SubscriberBot(replace(bot_config, sources=(*bot_config.sources, added)), engine, clock)):
        assert say(fake, ADMIN_CHAT, "/feeds") == "Feeds\n• gov ok\n• wire1 new: not polled yet"


@pytest.mark.sqlite_only  # the bot's answers; its store writes run on PostgreSQL in the end-to-end tests
def test_bot_ignores_commands_for_other_bots_in_a_group(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock
) -> None:
    group = -4002
    fake.add_chat(group, "supergroup", title="Shared")
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        fake.send_user_message(group, "/start@other_bot", user_id=10, chat_type="supergroup")
        fake.send_user_message(group, "/frobnicate@other_bot", user_id=10, chat_type="supergroup")
        answer = say(fake, group, "/proposals@guarantee_watch_bot", user_id=10, chat_type="supergroup")
        assert answer.startswith("Tracked proposals")
        assert [m.plain_text.split("\n")[0] for m in fake.sent(group)] == ["Tracked proposals"]


def test_bot_stats_count_real_chats_only(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock, server: FeedServer
) -> None:
    server.serve("/gov.xml", Response(rss(SIGNED_DK)))
    run_poll(bot_config, engine, clock)
    printed = run_digest(replace(bot_config, telegram_token=None), engine, clock, out=io.StringIO())
    assert printed.printed > 0, "the standard-output pseudo-subscriber got its digest"
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        say(fake, CHAT, "/start")
        stats = say(fake, ADMIN_CHAT, "/stats")
    assert "subscribers: 1" in stats and "digests sent: 0" in stats


@pytest.mark.sqlite_only
def test_bot_keeps_fetching_updates_while_a_command_waits_for_the_database(
    fake: FakeBotAPI, bot_config: Config, engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    """A command held up by another writer waits on a worker thread, not on the event loop."""
    run_poll(bot_config, engine, clock)
    with RunningBot(SubscriberBot(bot_config, engine, clock)):
        say(fake, CHAT, "/start")
        writer = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            fake.send_user_message(CHAT, "/stop")  # waits for the other writer
            time.sleep(0.3)
            fake.send_user_message(CHAT, "/help")
            wait_for(lambda: not fake.pending_updates(), limit=5)  # fetched and confirmed meanwhile
            assert not any("Unsubscribed" in message.plain_text for message in fake.sent(CHAT))
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        wait_for(lambda: any("Unsubscribed" in message.plain_text for message in fake.sent(CHAT)))
