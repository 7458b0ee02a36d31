"""Digests, from the events in the database to the subscribers: compose what is due, then send the outbox.

    run_digest: outbox.subscribers_to_compose | outbox.pending_events | digest.select_content
                | digest.render_digest | outbox.record_digest                        (one transaction)
                | notify.deliver (one transaction per part), or print_outbox without a token

What a digest says is decided in `monitor.digest` (pure); what is stored goes through `monitor.store.outbox`.
The clock and the engine are passed in.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import unescape
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.clock import Clock
from monitor.config import TOKEN_ENV, Config, DigestSettings
from monitor.digest import admin_content, is_due, render_digest, select_content
from monitor.redact import redact
from monitor.store import models, outbox

if TYPE_CHECKING:  # python-telegram-bot loads only when digests are sent
    from monitor.notify import DeliveryReport, RateLimiter


@dataclass(frozen=True)
class DigestSummary:
    composed: int
    printed: int = 0
    delivery: DeliveryReport | None = None


def compose_due(
    now: datetime,
    settings: DigestSettings,
    titles: dict[str, str],
    ladder: Sequence[str],
    admin_chats: Sequence[int],
    *,
    session: Session,
    force_chat: int | None = None,
) -> list[models.Digest]:
    """Compose the digests that are due (or the one for `force_chat`, due or not). Each moves its
    subscriber's watermark in the same transaction, so a window is never composed twice."""
    zone = ZoneInfo(settings.timezone)
    composed: list[models.Digest] = []
    for row in outbox.subscribers_to_compose(session=session, force_chat=force_chat):
        if row.chat_id in admin_chats:
            events = outbox.pending_events(row, outbox.ADMIN_KINDS, row.last_admin_event_id, session=session)
            parts = render_digest(admin_content(events, titles))
            composed += outbox.record_digest(row, "admin", events, parts, now, session=session)
        if force_chat is not None or is_due(row.frequency, row.hour, row.last_digest_at, now, zone):
            events = outbox.pending_events(row, outbox.USER_KINDS, row.last_event_id, session=session)
            content = select_content(
                events,
                titles,
                ladder,
                follows=outbox.follows(row),
                min_status=row.min_status,
                max_reports=settings.max_reports,
            )
            composed += outbox.record_digest(row, "digest", events, render_digest(content), now, session=session)
            outbox.mark_composed(row, now, session=session)
    session.flush()
    return composed


def compose_digests(
    config: Config,
    engine: Engine,
    clock: Clock,
    *,
    out: TextIO | None = None,
    force_chat: int | None = None,
) -> int:
    """Compose the digests that are due (or `force_chat`'s, due or not) into the outbox; returns how many.

    With `out`, a dry run: what would be composed is written there, and nothing is changed."""
    titles = {proposal.id: proposal.title for proposal in config.proposals}
    settings = config.settings
    with Session(engine) as session:
        if not config.telegram_token:
            outbox.ensure_stdout_subscriber(clock(), settings.digest, session=session)
        composed = compose_due(
            clock(),
            settings.digest,
            titles,
            settings.status.ladder,
            settings.telegram.admin_chats,
            session=session,
            force_chat=force_chat,
        )
        if out is None:
            session.commit()
            return len(composed)
        for part in outbox.outgoing(session=session, digest_ids=[digest.id or 0 for digest in composed]):
            out.write(f"--- digest for subscriber {part.subscriber_id}, part {part.seq}/{part.parts}\n")
            out.write(plain_text(part.text) + "\n")
        session.rollback()
        return len(composed)


def run_digest(
    config: Config,
    engine: Engine,
    clock: Clock,
    *,
    out: TextIO = sys.stdout,
    dry_run: bool = False,
    limiter: RateLimiter | None = None,
) -> DigestSummary:
    """Compose the digests that are due and send everything pending in the outbox: through Telegram when a
    token is set, else to `out`. `dry_run` writes what would be composed to `out` and changes nothing."""
    if dry_run:
        return DigestSummary(compose_digests(config, engine, clock, out=out))
    composed = compose_digests(config, engine, clock)
    if not config.telegram_token:
        return DigestSummary(composed, printed=print_outbox(engine, clock, out))
    from monitor.notify import RateLimiter  # python-telegram-bot: only when there is a token to send with

    report = asyncio.run(_deliver(config, engine, clock, limiter or RateLimiter()))
    return DigestSummary(composed, delivery=report)


async def _deliver(config: Config, engine: Engine, clock: Clock, limiter: RateLimiter) -> DeliveryReport:
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError

    from monitor.notify import DeliveryReport, TelegramConfigError, deliver

    assert config.telegram_token
    try:
        async with Bot(config.telegram_token, base_url=config.settings.telegram.api_url) as bot:
            return await deliver(bot, engine, clock, limiter)
    except InvalidToken:
        raise TelegramConfigError(f"Telegram refused the bot token ({TOKEN_ENV})") from None
    except NetworkError as exc:  # `deliver` keeps its own; this is the Bot API unreachable before the first part
        with Session(engine) as session:
            pending = sum(1 for part in outbox.outgoing(session=session) if part.chat_id != outbox.STDOUT_CHAT)
        reason = redact(exc.message, (config.telegram_token,))
        message = f"cannot reach the Telegram Bot API: {reason}; {pending} parts wait for the next run"
        return DeliveryReport(deferred=pending, errors=[message])


def print_outbox(engine: Engine, clock: Clock, out: TextIO) -> int:
    """Without a token: write the standard-output subscriber's pending parts as plain text, marking them sent."""
    with Session(engine) as session:
        parts = outbox.outgoing(session=session, chat_id=outbox.STDOUT_CHAT, lock=True)
        for part in parts:
            if part.seq == 1:
                out.write("\n")
            out.write(plain_text(part.text) + "\n")
            outbox.mark_sent(part.part_id, None, clock(), session=session)
        session.commit()
    return len(parts)


def plain_text(html: str) -> str:
    """Telegram HTML as a terminal shows it: links as `text (url)`, other tags dropped."""
    text = re.sub(r'<a href="([^"]*)">(.*?)</a>', lambda m: f"{m.group(2)} ({m.group(1)})", html)
    return unescape(re.sub(r"<[^<>]+>", "", text))
