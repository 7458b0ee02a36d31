"""The fixed values the schema's enum-like columns hold, and its length limits.

One place for them: the models build their CHECK constraints from these types (and migration 0007 from the
models), the configuration validates ids and ladder names against the limits, and the code that writes a
column can name its type. Pure: it imports nothing but `typing`.

A value added here changes a CHECK constraint, so it needs a migration that re-creates that constraint, as
0007 does (tests/test_schema_checks.py compares the migrated database's constraints with the models').
"""

from __future__ import annotations

from typing import Any, Literal, get_args

Health = Literal["new", "ok", "failing", "disabled"]  # source.health
Tier = Literal["official", "wire", "media", "blog"]  # source.tier, from feeds.yaml
PollOutcome = Literal["ok", "not-modified", "failed"]  # feed_poll.outcome
PublishedFallback = Literal["missing", "unparseable", "too-old", "future"]  # item.published_fallback
ChangeKind = Literal["upgrade", "withdrawal", "analyst"]  # status_change.kind
ChangeState = Literal["confirmed", "unconfirmed", "review", "rejected"]  # status_change.state
EventKind = Literal[  # event.kind
    "change", "unconfirmed", "confirmed", "rejected", "withdrawal", "report", "feed-failing", "feed-disabled"
]
ChatType = Literal["private", "group", "supergroup", "channel", "stdout"]  # Telegram's, and standard output
Frequency = Literal["instant", "hourly", "daily", "weekly"]  # subscriber.frequency
DigestKind = Literal["digest", "admin"]  # digest.kind
DigestState = Literal["pending", "sent", "abandoned"]  # digest.state

ID_LENGTH = 64  # source and proposal ids, wherever they are stored
STATUS_LENGTH = 32  # a status on the ladder, wherever it is stored (and subscriber.min_status)


def values(kind: Any) -> tuple[str, ...]:
    """The values of one of the types above, in the order written."""
    return tuple(get_args(kind))
