"""What a poll reports: each feed's outcome and the run's summary. Plain data that loads nothing else, so that a
poll answered from the SQLite file alone (`monitor.head_start.quiet_poll`) reports as the full one does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FeedOutcome:
    source_id: str
    outcome: str  # ok, not-modified or failed
    status: int | None = None
    error: str | None = None
    warning: str | None = None
    items_new: int = 0
    items_updated: int = 0
    changes: tuple[int, ...] = ()  # status changes this feed's reports created or confirmed
    moved_to: str | None = None
    health: str = "ok"
    next_poll_at: datetime | None = None


@dataclass
class PollSummary:
    run_id: int | None
    feeds_due: int
    feeds: list[FeedOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for feed in self.feeds if feed.outcome == outcome)

    @property
    def items_new(self) -> int:
        return sum(feed.items_new for feed in self.feeds)

    @property
    def items_updated(self) -> int:
        return sum(feed.items_updated for feed in self.feeds)

    @property
    def nothing_polled(self) -> bool:
        """True when feeds were due and not one of them could be polled."""
        return self.feeds_due > 0 and self.count("failed") == self.feeds_due
