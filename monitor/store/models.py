"""SQLModel tables: the database schema, documented for analysts in docs/schema.md.

Only table definitions live here, with the CHECK constraints they build from the values in
`monitor/vocabulary.py`; the reads and writes are the other modules of `monitor.store`.
Times are stored as UTC and returned timezone-aware on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from monitor import vocabulary as v
from monitor.vocabulary import ID_LENGTH, STATUS_LENGTH, values

# Stable constraint names, so that migrations can alter them on SQLite (batch mode) and PostgreSQL alike.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite has no time zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The enum-like columns and the values each may hold (monitor/vocabulary.py): a CHECK constraint apiece, named
# ck_<table>_<column>. Migration 0007 creates them from this table; a status on the ladder is configured, not
# fixed, so it has none (its length is checked when the configuration is read).
CHECKED: dict[str, dict[str, Any]] = {
    "source": {"health": v.Health, "tier": v.Tier},
    "feed_poll": {"outcome": v.PollOutcome},
    "item": {"published_fallback": v.PublishedFallback},
    "status_change": {"kind": v.ChangeKind, "state": v.ChangeState},
    "event": {"kind": v.EventKind},
    "subscriber": {"chat_type": v.ChatType, "frequency": v.Frequency},
    "digest": {"kind": v.DigestKind, "state": v.DigestState},
}


def check_sql(column: str, kind: Any) -> str:
    """`column IN ('a', 'b')`: true, or null for a null column, which a CHECK lets through."""
    quoted = []
    for value in values(kind):
        assert "'" not in value, value
        quoted.append(f"'{value}'")
    return f"{column} IN ({', '.join(quoted)})"


def _checks(table: str) -> tuple[sa.CheckConstraint, ...]:
    return tuple(sa.CheckConstraint(check_sql(column, kind), name=column) for column, kind in CHECKED[table].items())


def _utc(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


class Source(SQLModel, table=True):
    """A feed from feeds.yaml, with its fetch state and health. Rows are kept when a feed leaves the file."""

    __tablename__ = "source"
    __table_args__ = _checks("source")

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    name: str
    url: str = Field(description="the URL polled now: the configured one, or where it permanently moved")
    config_url: str = Field(description="the URL feeds.yaml gives; a change there resets `url`")
    tier: str = Field(max_length=16)
    language: str = Field(max_length=16)
    interval_seconds: float
    enabled: bool = Field(default=True, description="as configured in feeds.yaml")
    in_config: bool = Field(default=True, description="false once the feed is removed from feeds.yaml")
    health: str = Field(default="new", max_length=16, description="new, ok, failing or disabled")
    disabled_reason: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_polled_at: datetime | None = _utc()
    last_success_at: datetime | None = _utc()
    next_poll_at: datetime | None = _utc(index=True)
    consecutive_failures: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    feed_title: str | None = None
    feed_link: str | None = None
    lease_owner: str | None = Field(default=None, max_length=128, description="the worker polling it now")
    lease_expires_at: datetime | None = _utc()
    body_hash: str | None = Field(
        default=None, max_length=64, description="SHA-256 of the last body parsed and stored: not parsed again"
    )


class SourceURL(SQLModel, table=True):
    """A URL a feed used to have, kept when it moved permanently (301, 308) or was changed in feeds.yaml."""

    __tablename__ = "source_url"

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="source.id", index=True, max_length=ID_LENGTH)
    url: str
    replaced_by: str
    reason: str
    replaced_at: datetime = _utc(nullable=False)


class Story(SQLModel, table=True):
    """One story, however many feeds carried it: items with the same canonical URL share a story."""

    __tablename__ = "story"

    id: int | None = Field(default=None, primary_key=True)
    canonical_url: str = Field(unique=True)
    first_seen_at: datetime = _utc(nullable=False)


class Item(SQLModel, table=True):
    """A report as its feed published it, latest version. Unique per (source, key)."""

    __tablename__ = "item"
    __table_args__ = (sa.UniqueConstraint("source_id", "key"), *_checks("item"))

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="source.id", max_length=ID_LENGTH)  # indexed by the unique constraint
    key: str = Field(description="identity within the source: guid:..., link:... or hash:...")
    guid: str | None = None
    link: str | None = None
    canonical_url: str | None = None  # not indexed: read only with its row (migration 0011)
    story_id: int | None = Field(default=None, foreign_key="story.id", index=True)
    title: str
    summary: str = Field(description="plain text")
    author: str | None = None
    published_at: datetime = _utc(nullable=False, index=True)
    published_fallback: str | None = Field(
        default=None,
        description="why published_at is the first-seen time: missing, unparseable, too-old, future",
    )
    first_seen_at: datetime = _utc(nullable=False)
    updated_at: datetime = _utc(nullable=False)
    version: int = Field(default=1, description="1 for the first version; +1 for each edit")
    content_hash: str = Field(max_length=64)


class ItemVersion(SQLModel, table=True):
    """An earlier version of an edited item, kept when the feed changed its title, summary or link."""

    __tablename__ = "item_version"
    __table_args__ = (sa.UniqueConstraint("item_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")  # indexed by the unique constraint
    version: int
    title: str
    summary: str
    link: str | None = None
    published_at: datetime = _utc(nullable=False)
    content_hash: str = Field(max_length=64)
    seen_from: datetime = _utc(nullable=False)
    replaced_at: datetime = _utc(nullable=False)


class PollRun(SQLModel, table=True):
    """One `monitor poll`: when, what it polled and how it went."""

    __tablename__ = "poll_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = _utc(nullable=False, index=True)
    finished_at: datetime | None = _utc()
    forced: bool = False
    feeds_due: int = 0
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    items_new: int = 0
    items_updated: int = 0
    config_digest: str | None = Field(default=None, max_length=64)  # the feeds.yaml it synced (migration 0010)


class FeedPoll(SQLModel, table=True):
    """What one run did with one feed."""

    __tablename__ = "feed_poll"
    __table_args__ = _checks("feed_poll")

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="poll_run.id", index=True)
    source_id: str = Field(foreign_key="source.id", index=True, max_length=ID_LENGTH)
    polled_at: datetime = _utc(nullable=False)
    outcome: str = Field(max_length=16, description="ok, not-modified or failed")
    status_code: int | None = None
    error: str | None = None
    items_seen: int = 0
    items_new: int = 0
    items_updated: int = 0
    duration_ms: int = 0
    next_poll_at: datetime | None = _utc()


class Proposal(SQLModel, table=True):
    """A tracked proposal from feeds.yaml and where it stands: its current (confirmed) status."""

    __tablename__ = "proposal"

    id: str = Field(primary_key=True, max_length=ID_LENGTH)
    title: str
    status: str = Field(max_length=STATUS_LENGTH, description="current confirmed status")
    status_since: datetime | None = _utc()
    # proposal -> status_change -> proposal is a cycle: the key is added after both tables (use_alter) and checked
    # at commit (deferred), so rows can be copied table by table and a rebuild can drop a change before it clears
    # the pointer to it, in one transaction.
    status_change_id: int | None = Field(
        default=None,
        description="the confirmed change that set `status`",
        sa_column=sa.Column(
            sa.Integer(),
            sa.ForeignKey("status_change.id", use_alter=True, deferrable=True, initially="DEFERRED"),
            nullable=True,
        ),
    )
    in_config: bool = True


class ItemMatch(SQLModel, table=True):
    """One item matched to one proposal: the score, what matched, the sentences and the status they report."""

    __tablename__ = "item_match"
    __table_args__ = (sa.UniqueConstraint("item_id", "item_version", "proposal_id", "matcher_version"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")  # indexed by the unique constraint
    item_version: int
    proposal_id: str = Field(foreign_key="proposal.id", index=True, max_length=ID_LENGTH)
    score: float = Field(description="0..1")
    alias: str
    actors: str = Field(description="JSON list of the actors found")
    sentences: str = Field(description="JSON list of the sentences the match rests on")
    status: str = Field(max_length=STATUS_LENGTH, description="what the item reports: a status on the ladder")
    status_sentence: str
    withdrawn: bool = False
    matcher_version: str = Field(max_length=32)
    matched_at: datetime = _utc(nullable=False)


class StatusChange(SQLModel, table=True):
    """Append-only history of a proposal's status. Rows are never deleted or re-pointed; an unconfirmed change
    may only move on to confirmed (or be rejected by an analyst)."""

    __tablename__ = "status_change"
    __table_args__ = _checks("status_change")

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: str = Field(foreign_key="proposal.id", index=True, max_length=ID_LENGTH)
    kind: str = Field(max_length=16, description="upgrade, withdrawal or analyst")
    from_status: str = Field(max_length=STATUS_LENGTH)
    to_status: str = Field(max_length=STATUS_LENGTH)
    state: str = Field(max_length=16, description="confirmed, unconfirmed, review or rejected")
    happened_at: datetime | None = _utc(index=True)  # when the world changed: the report's publication time
    observed_at: datetime = _utc(nullable=False, index=True)
    confirmed_at: datetime | None = _utc()
    confidence: float = 0.0
    note: str | None = None
    decided_by: str | None = Field(default=None, description="who, for an analyst's decision")


class Evidence(SQLModel, table=True):
    """A report behind a status change (or behind the current status)."""

    __tablename__ = "evidence"
    __table_args__ = (sa.UniqueConstraint("change_id", "match_id"),)

    id: int | None = Field(default=None, primary_key=True)
    change_id: int = Field(foreign_key="status_change.id")  # indexed by the unique constraint
    match_id: int = Field(foreign_key="item_match.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    source_id: str = Field(foreign_key="source.id", max_length=ID_LENGTH)
    status: str = Field(max_length=STATUS_LENGTH)
    score: float
    sentence: str
    reported_at: datetime = _utc(nullable=False)
    added_at: datetime = _utc(nullable=False)


class Event(SQLModel, table=True):
    """Something worth telling subscribers, in the order it happened: the outbox digests are cut from.

    kind: `change` (a confirmed status change), `unconfirmed` (a reported, unconfirmed change), `confirmed` (an
    earlier unconfirmed change now corroborated), `withdrawal`, `report` (a new matched report), and for admin
    chats only `feed-failing` and `feed-disabled`.
    """

    __tablename__ = "event"
    __table_args__ = _checks("event")

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, index=True)
    created_at: datetime = _utc(nullable=False)
    proposal_id: str | None = Field(default=None, foreign_key="proposal.id", index=True, max_length=ID_LENGTH)
    # Indexed: deleting a match or a change (`monitor rematch`) looks up the events that point at it.
    change_id: int | None = Field(default=None, foreign_key="status_change.id", index=True)
    match_id: int | None = Field(default=None, foreign_key="item_match.id", index=True)
    source_id: str | None = Field(default=None, foreign_key="source.id", max_length=ID_LENGTH)
    detail: str | None = None


class Subscriber(SQLModel, table=True):
    """A Telegram chat that receives digests, with its settings."""

    __tablename__ = "subscriber"
    __table_args__ = _checks("subscriber")

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False, unique=True))
    chat_type: str = Field(max_length=16, description="private, group, supergroup or channel")
    title: str | None = None
    active: bool = True
    deactivated_reason: str | None = None
    frequency: str = Field(default="daily", max_length=16, description="instant, hourly, daily or weekly")
    hour: int = Field(default=8, description="local hour for daily and weekly digests")
    min_status: str = Field(default="all", max_length=STATUS_LENGTH, description="all, or the lowest status to report")
    follows: str | None = Field(default=None, description="JSON list of followed proposal ids; null = all")
    last_event_id: int = Field(default=0, description="events up to this id came before the subscription: never told")
    last_admin_event_id: int = Field(default=0, description="feed alerts up to this id came before it (admins)")
    last_digest_at: datetime | None = _utc()
    subscribed_at: datetime = _utc(nullable=False)
    updated_at: datetime = _utc(nullable=False)


class Digest(SQLModel, table=True):
    """One digest for one subscriber and one window of events, composed once, sent part by part."""

    __tablename__ = "digest"
    __table_args__ = (sa.UniqueConstraint("subscriber_id", "kind", "last_event_id"), *_checks("digest"))

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id")  # indexed by the unique constraint
    kind: str = Field(default="digest", max_length=16, description="digest, or admin for feed alerts")
    first_event_id: int
    last_event_id: int
    composed_at: datetime = _utc(nullable=False)
    parts: int
    state: str = Field(default="pending", max_length=16, index=True, description="pending, sent or abandoned")
    finished_at: datetime | None = _utc()
    claimed_by: str | None = Field(default=None, max_length=128, description="the sender sending it now")
    claimed_until: datetime | None = _utc()


class DigestEvent(SQLModel, table=True):
    """Which events each subscriber's digests took in: an event is composed for a subscriber once, whenever
    it commits (PostgreSQL can commit a lower id after a higher one, so no id cursor would do)."""

    __tablename__ = "digest_event"

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True)
    event_id: int = Field(foreign_key="event.id", primary_key=True, index=True)
    digest_id: int | None = Field(default=None, foreign_key="digest.id", index=True,
                                  description="null when the subscriber's filters left nothing to send")  # fmt: skip


class DigestPart(SQLModel, table=True):
    """One message of a digest. `sent_at` is set only once Telegram confirmed it: such a part is never resent."""

    __tablename__ = "digest_part"
    __table_args__ = (sa.UniqueConstraint("digest_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digest.id")  # indexed by the unique constraint
    seq: int
    text: str
    sent_at: datetime | None = _utc()
    message_id: int | None = None
    attempts: int = 0
    last_error: str | None = None
