"""Send the outbox's digest parts through python-telegram-bot, within Telegram's limits.

Network I/O at the edge: takes a `telegram.Bot` (pointed at any Bot API server), the engine and a clock.
Parts go out in order; a part is marked sent only after Telegram confirmed it, in its own transaction, so a
crash or an outage resumes at the first unsent part and never repeats a confirmed one.

- About 30 messages a second overall, 1 a second per chat, 20 a minute per group (`RateLimiter`).
- 429 waits `retry_after` (up to a bound, else the rest waits for the next run).
- 403 (blocked, kicked) and 400 "chat not found" deactivate the subscriber.
- `migrate_to_chat_id` moves the subscriber to the new chat id and sends there.
- Network errors leave the digest pending for the next run.

Every database step runs on a worker thread (`monitor.store.db.in_session`): the bot sends digests from its event loop.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from monitor.clock import Clock
from monitor.errors import MonitorError
from monitor.store import outbox
from monitor.store.db import in_session
from monitor.store.locks import dead_owners, worker_name

GROUP_TYPES = frozenset({"group", "supergroup"})
CLAIM_SECONDS = 900.0  # a sender's hold on the digests it sends; longer than any one delivery should take


class TelegramConfigError(MonitorError):
    """The bot token was refused."""


class RateLimiter:
    """Sliding-window limits: overall per second, per chat per second, per group per minute."""

    def __init__(
        self,
        overall_per_second: int = 30,
        chat_interval: float = 1.0,
        group_per_minute: int = 20,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.overall_per_second = overall_per_second
        self.chat_interval = chat_interval
        self.group_per_minute = group_per_minute
        self._monotonic, self._sleep = monotonic, sleep
        self._overall: deque[float] = deque()
        self._chat_last: dict[int, float] = {}
        self._group: dict[int, deque[float]] = {}

    def delay(self, chat_id: int, is_group: bool) -> float:
        """Seconds to wait before a message to `chat_id` may go."""
        now = self._monotonic()
        while self._overall and now - self._overall[0] >= 1.0:
            self._overall.popleft()
        waits = [0.0]
        if len(self._overall) >= self.overall_per_second:
            waits.append(self._overall[0] + 1.0 - now)
        if chat_id in self._chat_last:
            waits.append(self._chat_last[chat_id] + self.chat_interval - now)
        if is_group:
            window = self._group.setdefault(chat_id, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= self.group_per_minute:
                waits.append(window[0] + 60.0 - now)
        return max(waits)

    async def wait(self, chat_id: int, is_group: bool) -> None:
        while (pause := self.delay(chat_id, is_group)) > 0:
            await self._sleep(pause)
        now = self._monotonic()
        self._overall.append(now)
        self._chat_last[chat_id] = now
        if is_group:
            self._group.setdefault(chat_id, deque()).append(now)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    deactivated: list[int] = field(default_factory=list)
    migrated: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def deliver(
    bot: Bot,
    engine: Engine,
    clock: Clock,
    limiter: RateLimiter,
    *,
    max_retry_after: float = 60.0,
    chat_id: int | None = None,
) -> DeliveryReport:
    """Send every unsent part of every pending digest (or only `chat_id`'s), in order."""
    report = DeliveryReport()
    owner = worker_name()

    def claim(session: Session) -> list[outbox.Outgoing]:
        # Digests are claimed, so that two senders never send the same part; a dead sender's are free again.
        outbox.release_claims(dead_owners(outbox.claim_holders(session=session)), session=session)
        parts = outbox.claim(owner, clock(), CLAIM_SECONDS, session=session, chat_id=chat_id)
        session.commit()
        return parts

    parts = await in_session(engine, claim)
    skipped: set[int] = set()
    moved: dict[int, int] = {}
    try:
        for part in parts:
            if part.digest_id in skipped:
                report.deferred += 1
                continue
            chat = moved.get(part.chat_id, part.chat_id)
            outcome = await _send_part(bot, engine, clock, limiter, part, chat, max_retry_after, report, moved)
            if outcome == "stop":
                report.deferred += sum(1 for later in parts if later.part_id > part.part_id)
                break
            if outcome == "skip":
                skipped.add(part.digest_id)
    finally:
        await _write(engine, outbox.release_claims, [owner])
    return report


async def _write(engine: Engine, write: Callable[..., object], *args: object, **options: object) -> None:
    """`write(*args, session=..., **options)`, committed, on a worker thread."""

    def run(session: Session) -> None:
        write(*args, session=session, **options)
        session.commit()

    await in_session(engine, run)


async def _send_part(
    bot: Bot,
    engine: Engine,
    clock: Clock,
    limiter: RateLimiter,
    part: outbox.Outgoing,
    chat: int,
    max_retry_after: float,
    report: DeliveryReport,
    moved: dict[int, int],
) -> str:
    """Send one part; returns `sent`, `skip` (leave the rest of this digest) or `stop` (leave everything)."""
    for _attempt in range(5):
        await limiter.wait(chat, part.chat_type in GROUP_TYPES)
        try:
            with warnings.catch_warnings():
                # PTB 22 warns, while raising RetryAfter, that retry_after will become a timedelta; handled below.
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                message = await bot.send_message(
                    chat,
                    part.text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
        except RetryAfter as exc:
            pause = _retry_after(exc)
            if pause > max_retry_after:
                await _record(engine, part, f"rate limited for {pause:g}s", report)
                return "stop"
            await asyncio.sleep(pause)
            continue
        except ChatMigrated as exc:
            await _write(engine, outbox.migrate_chat, chat, exc.new_chat_id, clock())
            report.migrated.append((chat, exc.new_chat_id))
            moved[part.chat_id] = chat = exc.new_chat_id
            continue
        except Forbidden as exc:
            return await _drop_subscriber(engine, clock, chat, f"forbidden: {exc.message}", report)
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                return await _drop_subscriber(engine, clock, chat, f"chat not found: {exc.message}", report)
            await _record(engine, part, f"refused by Telegram: {exc.message}", report, abandon=True, now=clock())
            return "skip"
        except InvalidToken:
            raise TelegramConfigError("Telegram refused the bot token (MONITOR_TELEGRAM_TOKEN)") from None
        except NetworkError as exc:
            await _record(engine, part, f"network error: {exc.message}", report)
            return "skip"
        except TelegramError as exc:
            await _record(engine, part, f"Telegram error: {exc.message}", report)
            return "skip"
        await _write(engine, outbox.mark_sent, part.part_id, message.message_id, clock())
        report.sent += 1
        return "sent"
    await _record(engine, part, "gave up after repeated retries", report)
    return "skip"


async def _drop_subscriber(engine: Engine, clock: Clock, chat: int, reason: str, report: DeliveryReport) -> str:
    await _write(engine, outbox.deactivate, chat, reason, clock())
    report.deactivated.append(chat)
    return "skip"


async def _record(
    engine: Engine,
    part: outbox.Outgoing,
    error: str,
    report: DeliveryReport,
    *,
    abandon: bool = False,
    now: datetime | None = None,
) -> None:
    await _write(engine, outbox.mark_failed, part.part_id, error, abandon=abandon, now=now)
    report.failed += 1
    report.errors.append(f"chat {part.chat_id}, digest {part.digest_id} part {part.seq}: {error}")


def _retry_after(exc: RetryAfter) -> float:
    # PTB 22 warns that `retry_after` will become a timedelta; either form is read the same here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
