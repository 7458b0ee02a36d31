"""The subscriber bot's commands and who may run them: the command list and help text, a flood limit per chat,
and in a group, administrators only for the settings. Reads no database."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from html import escape

from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import ContextTypes

COMMANDS = (
    ("start", "subscribe to digests"),
    ("stop", "unsubscribe"),
    ("proposals", "tracked proposals and their status"),
    ("status", "one proposal: /status ID"),
    ("history", "recent changes with evidence: /history ID"),
    ("follow", "follow a proposal: /follow ID (default: all)"),
    ("unfollow", "stop following: /unfollow ID"),
    ("frequency", "instant, hourly, daily or weekly, with an hour: /frequency daily 8"),
    ("only", "minimum status: /only signed, proposal or all"),
    ("digest", "my digest now"),
    ("settings", "my settings"),
    ("help", "what I can do"),
)
ADMIN_COMMANDS = (("stats", "numbers (admins)"), ("feeds", "feed health (admins)"))
SETTING_COMMANDS = frozenset({"start", "stop", "follow", "unfollow", "frequency", "only"})
GROUPS = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})


class FloodGuard:
    """At most `limit` commands per chat per `window` seconds; the first refusal says so, later ones are silent."""

    def __init__(self, limit: int = 20, window: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self._monotonic = limit, window, monotonic
        self._seen: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def allow(self, chat_id: int) -> bool | None:
        """True: go on; False: refuse and warn once; None: refuse silently."""
        now = self._monotonic()
        seen = self._seen.setdefault(chat_id, deque())
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        if len(seen) < self.limit:
            seen.append(now)
            self._warned.discard(chat_id)
            return True
        if chat_id in self._warned:
            return None
        self._warned.add(chat_id)
        return False


async def is_group_admin(context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_id: int) -> bool:
    member = await context.bot.get_chat_member(chat_id, user_id)
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


def help_text() -> str:
    return "<b>Commands</b>\n" + "\n".join(f"/{name} — {escape(text)}" for name, text in COMMANDS)
