"""The interactive subscriber bot: a python-telegram-bot `Application` whose handlers read and change
subscribers, and answer questions about the proposals, through the store modules.

Database work never runs on the event loop: each handler hands it to a worker thread (`monitor.store.db.in_session`),
so a slow or locked database delays that one answer, not the loop.

I/O at the edge: the token, the Bot API base URL, the engine and the clock are passed in. Works in private
chats and groups; in a group only administrators change settings. Admin chats listed in feeds.yaml also get
/stats and /feeds; other chats get no answer to those.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Coroutine
from html import escape
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session
from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes, MessageHandler, filters

from monitor.bot_commands import (
    ADMIN_COMMANDS,
    COMMANDS,
    GROUPS,
    SETTING_COMMANDS,
    FloodGuard,
    help_text,
    is_group_admin,
)
from monitor.clock import Clock
from monitor.config import Config
from monitor.delivery import compose_digests
from monitor.digest import FREQUENCIES, split_html
from monitor.errors import DatabaseBusyError
from monitor.notify import RateLimiter, deliver
from monitor.store import history, items, models, outbox, sources
from monitor.store.db import in_session

T = TypeVar("T")
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]

TIMED = frozenset({"daily", "weekly"})  # frequencies that come at an hour


class SubscriberBot:
    """The handlers, bound to one configuration, database and clock."""

    def __init__(self, config: Config, engine: Engine, clock: Clock, flood: FloodGuard | None = None) -> None:
        self.config, self.engine, self.clock = config, engine, clock
        self.flood = flood or FloodGuard()
        self.limiter = RateLimiter()
        self.titles = {proposal.id: proposal.title for proposal in config.proposals}
        self.admins = set(config.settings.telegram.admin_chats)

    def application(self, token: str) -> Application:  # type: ignore[type-arg]
        app = ApplicationBuilder().token(token).base_url(self.config.settings.telegram.api_url).build()
        for name, _description in COMMANDS + ADMIN_COMMANDS:
            app.add_handler(CommandHandler(name, self._guarded(name, getattr(self, f"cmd_{name}"))))
        app.add_handler(MessageHandler(filters.COMMAND, self._guarded("unknown", self.cmd_unknown)))
        app.post_init = self._post_init
        return app

    async def _post_init(self, app: Application) -> None:  # type: ignore[type-arg]
        await app.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])

    def _guarded(self, name: str, handler: Handler) -> Handler:
        async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat, user = update.effective_chat, update.effective_user
            if chat is None or update.effective_message is None:
                return
            verdict = self.flood.allow(chat.id)
            if verdict is None:
                return
            if verdict is False:
                await self._reply(update, "Too many commands at once: please wait a minute.")
                return
            if name in ("stats", "feeds") and chat.id not in self.admins:
                return
            if name in SETTING_COMMANDS and chat.type in GROUPS:
                if user is None or not await is_group_admin(context, chat.id, user.id):
                    await self._reply(update, "In a group, only administrators can change the digest settings.")
                    return
            try:
                await handler(update, context)
            except DatabaseBusyError:
                await self._reply(update, f"I could not save that just now (busy): please send /{name} again.")

        return run

    async def _reply(self, update: Update, html: str) -> None:
        message = update.effective_message
        assert message is not None
        for part in split_html(html):
            await message.reply_text(
                part, parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)
            )

    async def _db(self, work: Callable[[Session], T]) -> T:
        return await in_session(self.engine, work)

    def _args(self, context: ContextTypes.DEFAULT_TYPE) -> list[str]:
        return [arg.strip() for arg in (context.args or []) if arg.strip()]

    # ------------------------------------------------------------------------------------- subscribers
    async def cmd_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None

        def subscribe(session: Session) -> tuple[str, int | None, bool]:
            digest = self.config.settings.digest
            row, new = outbox.subscribe(
                chat.id, chat.type, chat.title or chat.username, self.clock(), digest, session=session
            )
            session.commit()
            return row.frequency, row.hour, new

        frequency, hour, new = await self._db(subscribe)
        intro = "Welcome to Guarantee Watch." if new else "You are already subscribed."
        await self._reply(
            update,
            f"<b>{intro}</b> You will get {self._schedule(frequency, hour, article=True)} of the security"
            " guarantees for Ukraine that I track: status changes with their evidence, and new"
            " reports.\n\n" + help_text(),
        )

    async def cmd_stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None

        def unsubscribe(session: Session) -> None:
            outbox.deactivate(chat.id, "unsubscribed with /stop", self.clock(), session=session)
            session.commit()

        await self._db(unsubscribe)
        await self._reply(update, "Unsubscribed. Send /start to subscribe again.")

    async def cmd_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, help_text())

    async def cmd_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        command = (message.text or "").split()[0] if message and message.text else "that"
        _name, _at, addressee = command.partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot in the same group
        await self._reply(update, f"I don't know {escape(command)}.\n\n" + help_text())

    async def cmd_settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        row = await self._find_subscriber(update)
        if row is None:
            await self._reply(update, "You are not subscribed. Send /start.")
            return
        followed = outbox.follows(row)
        await self._reply(
            update,
            (
                f"Frequency: <b>{escape(row.frequency)}</b>{self._when(row.frequency, row.hour)}\n"
                f"Minimum status: <b>{escape(row.min_status)}</b>\n"
                f"Following: {escape(', '.join(followed)) if followed is not None else 'all proposals'}"
            ),
        )

    async def cmd_follow(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._follow(update, context, follow=True)

    async def cmd_unfollow(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._follow(update, context, follow=False)

    async def _follow(self, update: Update, context: ContextTypes.DEFAULT_TYPE, *, follow: bool) -> None:
        args = self._args(context)
        verb = "follow" if follow else "unfollow"
        row = await self._find_subscriber(update)
        # A proposal removed from the configuration can still be unfollowed while the settings name it.
        known = set(self.titles) | (set(outbox.follows(row) or ()) if row is not None and not follow else set())
        unknown = [arg for arg in args if arg not in known and arg != "all"]
        if not args or unknown:
            shown = f"I don't track {escape(', '.join(unknown))}. " if unknown else ""
            await self._reply(update, f"{shown}Usage: /{verb} ID (or all). The ids:\n{self._ids()}")
            return
        chat_id = self._chat_id(update)

        def change(session: Session) -> tuple[bool, list[str] | None]:
            row = self._subscriber(chat_id, session=session)
            if row is None:
                return False, None
            current = outbox.follows(row)
            chosen = set(self.titles) if "all" in args else set(args)
            if follow:
                # Following everything is the default: naming proposals narrows it to them.
                followed = chosen if current is None else set(current) | chosen
            else:
                followed = (set(self.titles) if current is None else set(current)) - chosen
            value = None if followed >= set(self.titles) else sorted(followed)
            outbox.update_settings(row, self.clock(), session=session, follows=value)
            session.commit()
            return True, value

        subscribed, value = await self._db(change)
        if not subscribed:
            await self._reply(update, "You are not subscribed. Send /start first.")
            return
        summary = "all proposals" if value is None else (", ".join(value) or "nothing")
        await self._reply(update, f"Now following: {escape(summary)}.")

    async def cmd_frequency(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = self._args(context)
        usage = "Usage: /frequency instant|hourly|daily|weekly [hour 0-23], e.g. /frequency daily 8"
        if not args or args[0] not in FREQUENCIES or len(args) > 2 or (len(args) == 2 and not _hour(args[1])):
            await self._reply(update, usage)
            return
        changes: dict[str, object] = {"frequency": args[0]}
        if len(args) == 2:
            changes["hour"] = int(args[1])
        row = await self._find_subscriber(update)
        hour = int(args[1]) if len(args) == 2 else (row.hour if row is not None else None)
        note = ""
        if len(args) == 2 and args[0] not in TIMED:
            note = " (an hour applies to daily and weekly digests only)"
        await self._update(update, changes, f"Digests now {self._schedule(args[0], hour)}{note}.")

    async def cmd_only(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = self._args(context)
        ladder = self.config.settings.status.ladder
        if len(args) != 1 or args[0] not in (*ladder[1:], "all"):
            await self._reply(update, f"Usage: /only {'|'.join(ladder[1:])}|all")
            return
        await self._update(update, {"min_status": args[0]}, f"Minimum status now: {escape(args[0])}.")

    async def _update(self, update: Update, changes: dict[str, object], done: str) -> None:
        chat_id = self._chat_id(update)

        def change(session: Session) -> bool:
            row = self._subscriber(chat_id, session=session)
            if row is None:
                return False
            outbox.update_settings(row, self.clock(), session=session, **changes)
            session.commit()
            return True

        if not await self._db(change):
            await self._reply(update, "You are not subscribed. Send /start first.")
            return
        await self._reply(update, done)

    async def cmd_digest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        assert chat is not None
        if await self._find_subscriber(update) is None:
            await self._reply(update, "You are not subscribed. Send /start first.")
            return
        composed = await asyncio.to_thread(compose_digests, self.config, self.engine, self.clock, force_chat=chat.id)
        if not composed:
            await self._reply(update, "Nothing new since your last digest.")
            return
        await deliver(context.bot, self.engine, self.clock, self.limiter, chat_id=chat.id)

    # ------------------------------------------------------------------------------------- proposals
    async def cmd_proposals(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        rows = await self._db(lambda session: history.statuses(session=session))
        lines = ["<b>Tracked proposals</b>"]
        for row in rows:
            lines.append(f"• <code>{escape(row.id)}</code>: <b>{escape(row.status)}</b> — {escape(row.title)}")
        await self._reply(update, "\n".join(lines))

    async def cmd_status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        proposal = await self._proposal_arg(update, context, "status")
        if proposal is None:
            return

        def read(session: Session) -> tuple[models.Proposal | None, list[models.StatusChange], int]:
            row = history.proposal(proposal, session=session)
            changes = history.changes(proposal, session=session)
            return row, changes, history.match_counts(session=session).get(proposal, (0, None))[0]

        row, changes, reports = await self._db(read)
        assert row is not None
        since = f" since {row.status_since:%Y-%m-%d}" if row.status_since else ""
        pending = [c for c in changes if c.state == "unconfirmed"]
        text = f"<b>{escape(row.title)}</b>\nStatus: <b>{escape(row.status)}</b>{since}\nReports: {reports}"
        if pending:
            text += "\nReported, unconfirmed: " + ", ".join(escape(c.to_status) for c in pending)
        await self._reply(update, text + f"\n/history {escape(proposal)}")

    async def cmd_history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        proposal = await self._proposal_arg(update, context, "history")
        if proposal is None:
            return
        lines = [f"<b>{escape(self.titles[proposal])}</b>: history"]
        lines += await self._db(lambda session: _history_lines(proposal, session=session))
        if len(lines) == 1:
            lines.append("No status change recorded yet.")
        await self._reply(update, "\n".join(lines))
        await self._send_chart(update, proposal)

    async def _send_chart(self, update: Update, proposal: str) -> None:
        """The proposal's timeline (status over time, reports beneath) as a picture."""
        from monitor.chart import draw_timelines
        from monitor.store.queries import timelines

        lines = await self._db(lambda session: timelines(session=session, proposals=[proposal]))
        message = update.effective_message
        if not lines or message is None:
            return
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{proposal}.png"
            await asyncio.to_thread(draw_timelines, lines, self.config.settings.status.ladder, path, self.clock())
            await message.reply_photo(path.read_bytes(), caption=f"{self.titles[proposal][:200]}: timeline")

    async def _proposal_arg(self, update: Update, context: ContextTypes.DEFAULT_TYPE, command: str) -> str | None:
        args = self._args(context)
        if len(args) == 1 and args[0] in self.titles:
            return args[0]
        if len(args) == 1:
            await self._reply(update, f"Unknown id {escape(args[0])}. The ids:\n{self._ids()}")
            return None
        await self._reply(update, f"Usage: /{command} ID. The ids:\n{self._ids()}")
        return None

    def _when(self, frequency: str, hour: int | None) -> str:
        """When a digest comes: nothing to add for instant and hourly, the hour (and day) for the others."""
        if frequency not in TIMED or hour is None:
            return ""
        day = " on Mondays" if frequency == "weekly" else ""
        return f"{day} at {hour}:00 {escape(self.config.settings.digest.timezone)}"

    def _schedule(self, frequency: str, hour: int | None, *, article: bool = False) -> str:
        """`frequency` with its time, as a phrase: "daily at 8:00 UTC", "an instant digest"."""
        if not article:
            return f"{escape(frequency)}{self._when(frequency, hour)}"
        a = "an" if frequency[:1] in "aeiouh" else "a"
        return f"{a} {escape(frequency)} digest{self._when(frequency, hour)}"

    def _ids(self) -> str:
        return "\n".join(f"<code>{escape(proposal)}</code>" for proposal in self.titles)

    # ------------------------------------------------------------------------------------- admins
    async def cmd_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        numbers = await self._db(lambda session: items.stats(session=session))
        await self._reply(
            update,
            "<b>Guarantee Watch</b>\n" + "\n".join(f"{escape(name)}: {value}" for name, value in numbers.items()),
        )

    async def cmd_feeds(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        rows = {row.id: row for row in await self._db(lambda session: sources.all_sources(session=session))}
        lines = ["<b>Feeds</b>"]
        for source in self.config.sources:  # the configured feeds, polled yet or not
            row = rows.get(source.id)
            health = row.health if row is not None else "new"
            reason = (row.disabled_reason or row.last_error or "")[:120] if row is not None and health != "ok" else ""
            if health == "new" and not reason:
                reason = "not polled yet"
            detail = f": {escape(reason)}" if reason else ""
            lines.append(f"• <code>{escape(source.id)}</code> {escape(health)}{detail}")
        await self._reply(update, "\n".join(lines))

    def _chat_id(self, update: Update) -> int:
        chat = update.effective_chat
        assert chat is not None
        return chat.id

    async def _find_subscriber(self, update: Update) -> models.Subscriber | None:
        chat_id = self._chat_id(update)
        return await self._db(lambda session: self._subscriber(chat_id, session=session))

    def _subscriber(self, chat_id: int, *, session: Session) -> models.Subscriber | None:
        row = outbox.subscriber(chat_id, session=session)
        return row if row is not None and row.active else None


def _history_lines(proposal: str, *, session: Session) -> list[str]:
    """The proposal's last ten changes, newest first, each with up to three reports behind it."""
    lines = []
    for change in reversed(history.changes(proposal, session=session)[-10:]):
        state = "" if change.state == "confirmed" else f" ({escape(change.state)})"
        what = (
            "withdrawal reported"
            if change.kind == "withdrawal"
            else (f"{escape(change.from_status)} → <b>{escape(change.to_status)}</b>")
        )
        lines.append(f"\n{change.happened_at or change.observed_at:%Y-%m-%d}: {what}{state}")
        assert change.id is not None
        for proof, item in history.evidence_for(change.id, session=session)[:3]:
            title = escape(item.title[:200])
            if item.link and item.link.startswith(("http://", "https://")):
                title = f'<a href="{escape(item.link, quote=True)}">{title}</a>'
            lines.append(f"• {title} — {escape(proof.source_id)}")
    return lines


def _hour(text: str) -> bool:
    return text.isdigit() and 0 <= int(text) <= 23
