"""The stored items (with their versions and stories), their counts, and the insert helpers every store
module uses (`insert_new`, `insert_one`: insert unless the key exists, on SQLite and PostgreSQL alike).

Functions take a keyword-only `session`; callers own the transaction.

Portable SQL only (SQLAlchemy Core/ORM): nothing here is specific to SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from monitor.store import models

if TYPE_CHECKING:  # for annotations only: a cron run with nothing due loads neither
    from monitor.parse import Entry

_CHUNK = 500


@dataclass(frozen=True)
class SavedItems:
    new: int
    updated: int
    unchanged: int
    changed: tuple[models.Item, ...] = ()  # the new and updated rows, flushed (they have ids)


def insert_new(model: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str], *, session: Session) -> None:
    """`INSERT ... ON CONFLICT (keys) DO NOTHING`: rows whose key is already taken, by this transaction or by
    another process's, are skipped, never an error (on SQLite and PostgreSQL alike). Not check-then-insert:
    two workers inserting the same key at once both succeed, and the row is there once."""
    if not rows:
        return
    session.flush()
    statement = skipping_taken(model.__table__, keys, session=session)
    for start in range(0, len(rows), _CHUNK):
        session.execute(statement, list(rows[start : start + _CHUNK]))


def skipping_taken(table: Any, keys: Sequence[str], *, session: Session) -> Any:
    """`INSERT INTO table ... ON CONFLICT (keys) DO NOTHING` in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert  # not loaded for SQLite

        return postgresql_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(keys))


def insert_one(model: Any, row: dict[str, Any], keys: Sequence[str], *, session: Session) -> int | None:
    """`insert_new` for one row: its new id, or None when its key was already taken."""
    session.flush()
    table = model.__table__
    statement = skipping_taken(table, keys, session=session).values(**row).returning(table.c.id)
    new_id = session.execute(statement).scalar()
    return None if new_id is None else int(new_id)


def save_items(source_id: str, items: Sequence[Entry], now: datetime, *, session: Session) -> SavedItems:
    """Insert new items, update edited ones in place (keeping the earlier version), skip unchanged ones."""
    existing: dict[str, models.Item] = {}
    keys = [item.key for item in items]
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(models.Item).where(models.Item.source_id == source_id, col(models.Item.key).in_(chunk))
        existing.update((row.key, row) for row in session.exec(query))
    stories = story_ids({item.canonical_url for item in items if item.canonical_url}, now, session=session)
    fresh = [
        {"source_id": source_id, "key": item.key, "guid": item.guid, "link": item.link,
         "canonical_url": item.canonical_url, "story_id": stories.get(item.canonical_url or ""),
         "title": item.title, "summary": item.summary, "author": item.author,
         "published_at": item.published or now, "published_fallback": item.published_flag, "first_seen_at": now,
         "updated_at": now, "version": 1, "content_hash": item.content_hash}
        for item in items
        if item.key not in existing
    ]  # fmt: skip
    insert_new(models.Item, fresh, ["source_id", "key"], session=session)
    changed: list[models.Item] = []
    new_keys = [row["key"] for row in fresh]
    for start in range(0, len(new_keys), _CHUNK):
        query = select(models.Item).where(
            models.Item.source_id == source_id, col(models.Item.key).in_(new_keys[start : start + _CHUNK])
        )
        changed += [row for row in session.exec(query) if row.first_seen_at == now]
    new = len(changed)
    updated = 0
    for item in items:
        row = existing.get(item.key)
        story_id = stories.get(item.canonical_url) if item.canonical_url else None
        if row is not None and row.content_hash != item.content_hash:
            assert row.id is not None
            session.add(
                models.ItemVersion(
                    item_id=row.id,
                    version=row.version,
                    title=row.title,
                    summary=row.summary,
                    link=row.link,
                    published_at=row.published_at,
                    content_hash=row.content_hash,
                    seen_from=row.updated_at,
                    replaced_at=now,
                )
            )
            row.title, row.summary, row.link, row.author = item.title, item.summary, item.link, item.author
            row.canonical_url, row.story_id = item.canonical_url, story_id
            if item.published is not None:
                row.published_at, row.published_fallback = item.published, None
            row.version += 1
            row.content_hash, row.updated_at = item.content_hash, now
            session.add(row)
            changed.append(row)
            updated += 1
    session.flush()
    position = {item.key: index for index, item in enumerate(items)}
    changed.sort(key=lambda row: position[row.key])  # feed order, as the matcher has always seen them
    return SavedItems(new=new, updated=updated, unchanged=len(items) - new - updated, changed=tuple(changed))


def story_ids(
    urls: set[str], now: datetime, *, session: Session, known: dict[str, int] | None = None
) -> dict[str, int]:
    """Story ids for canonical URLs, creating the stories not seen before in one insert. Another worker may be
    creating the same story at once (the same link in two feeds): its row wins, and its id is read back.

    `known` (canonical URL -> story id) holds the stories the caller's transaction knows of already: only the
    other URLs are looked up, `known` learns them, and it is returned. A story is never deleted, so what a
    committed transaction knew stays true (the same report comes in many of a poll's feeds)."""
    if known is not None:
        if unknown := urls - known.keys():
            known.update(story_ids(unknown, now, session=session))
        return known
    ordered = sorted(urls)
    connection = session.connection()  # no flush: the session never holds a story of its own
    found = _story_ids(ordered, connection)
    missing = [url for url in ordered if url not in found]
    if missing:
        rows = [{"canonical_url": url, "first_seen_at": now} for url in missing]
        statement = skipping_taken(_STORY, ["canonical_url"], session=session)
        found.update(connection.execute(statement.returning(_STORY.c.canonical_url, _STORY.c.id), rows).all())
        found.update(_story_ids([url for url in missing if url not in found], connection))
    return found


_STORY = models.Story.__table__  # type: ignore[attr-defined]
_STORIES = sa.select(_STORY.c.canonical_url, _STORY.c.id).where(
    _STORY.c.canonical_url.in_(sa.bindparam("urls", expanding=True))
)  # built once, so that SQLAlchemy finds it compiled


def _story_ids(urls: Sequence[str], connection: sa.Connection) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(urls), _CHUNK):
        found.update((u, i) for u, i in connection.execute(_STORIES, {"urls": urls[start : start + _CHUNK]}))
    return found


def count_items(*, session: Session, source_id: str | None = None) -> int:
    query = select(sa.func.count()).select_from(models.Item)
    if source_id:
        query = query.where(models.Item.source_id == source_id)
    return int(session.exec(query).one())


def item_counts_by_source(*, session: Session) -> dict[str, int]:
    rows = session.exec(select(models.Item.source_id, sa.func.count()).group_by(models.Item.source_id)).all()
    return {source_id: int(n) for source_id, n in rows}


def recent_items(limit: int, *, session: Session) -> list[models.Item]:
    query = select(models.Item).order_by(col(models.Item.published_at).desc(), col(models.Item.id)).limit(limit)
    return list(session.exec(query))


def stats(*, session: Session) -> dict[str, int]:
    """Headline numbers for admins."""

    def count(model: Any, *where: Any) -> int:
        return int(session.exec(select(sa.func.count()).select_from(model).where(*where)).one())

    return {
        "feeds": count(models.Source, col(models.Source.in_config)),
        "feeds failing": count(models.Source, col(models.Source.in_config), models.Source.health == "failing"),
        "feeds disabled": count(models.Source, col(models.Source.in_config), models.Source.health == "disabled"),
        "items": count(models.Item),
        "matches": count(models.ItemMatch),
        "status changes": count(models.StatusChange),
        # Real chats only: chat 0 stands for standard output when no token is set.
        "subscribers": count(models.Subscriber, col(models.Subscriber.active), models.Subscriber.chat_id != 0),
        "digests sent": count(
            models.Digest,
            models.Digest.state == "sent",
            col(models.Digest.subscriber_id).in_(select(models.Subscriber.id).where(models.Subscriber.chat_id != 0)),
        ),
    }
