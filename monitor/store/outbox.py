"""Database reads and writes for subscribers and the digest outbox.

A digest is composed once per subscriber and window of events (unique), in the same transaction that moves
the subscriber's watermark; its parts are then sent in order, each part's delivery recorded on its own. Callers
own the transactions; portable SQL only. What a digest says is `monitor.digest`'s (pure); this module stores it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.config import DigestSettings
from monitor.digest import ADMIN_KINDS as ADMIN_KINDS  # the digest's event kinds and stdout chat, named here too
from monitor.digest import STDOUT_CHAT as STDOUT_CHAT
from monitor.digest import USER_KINDS as USER_KINDS
from monitor.digest import EventView
from monitor.store import items, models, sources


@dataclass(frozen=True)
class Outgoing:
    """A part waiting to be sent, with what is needed to send it."""

    part_id: int
    digest_id: int
    seq: int
    parts: int
    subscriber_id: int
    chat_id: int
    chat_type: str
    text: str


def subscriber(chat_id: int, *, session: Session) -> models.Subscriber | None:
    return session.exec(select(models.Subscriber).where(models.Subscriber.chat_id == chat_id)).first()


def subscribe(
    chat_id: int, chat_type: str, title: str | None, now: datetime, defaults: DigestSettings, *, session: Session
) -> tuple[models.Subscriber, bool]:
    """Subscribe a chat (again). Returns the subscriber and whether it is newly active. A new subscriber starts
    at the current end of the outbox: it is told what happens from now on, not the past."""
    row = subscriber(chat_id, session=session)
    if row is not None and row.active:
        return row, False
    head = head_event_id(session=session)
    if row is None:
        values = {
            "chat_id": chat_id, "chat_type": chat_type, "title": title, "active": False,
            "frequency": defaults.frequency, "hour": defaults.hour, "min_status": "all", "subscribed_at": now,
            "updated_at": now, "last_event_id": head, "last_admin_event_id": head,
        }  # fmt: skip
        items.insert_new(models.Subscriber, [values], ["chat_id"], session=session)
        row = session.exec(
            select(models.Subscriber)
            .where(models.Subscriber.chat_id == chat_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if row.active:  # another process subscribed it meanwhile
            return row, False
    row.active, row.deactivated_reason, row.updated_at, row.title = True, None, now, title or row.title
    row.last_event_id = max(row.last_event_id, head)
    session.add(row)
    session.flush()
    return row, True


def deactivate(chat_id: int, reason: str, now: datetime, *, session: Session) -> None:
    row = subscriber(chat_id, session=session)
    if row is None or not row.active:
        return
    row.active, row.deactivated_reason, row.updated_at = False, reason, now
    session.add(row)
    pending = session.exec(
        select(models.Digest).where(models.Digest.subscriber_id == row.id, models.Digest.state == "pending")
    ).all()
    for digest in pending:
        digest.state, digest.finished_at = "abandoned", now
        session.add(digest)


def migrate_chat(old_chat_id: int, new_chat_id: int, now: datetime, *, session: Session) -> None:
    """A group became a supergroup: the subscriber keeps its settings and outbox under the new chat id."""
    row = subscriber(old_chat_id, session=session)
    if row is None or subscriber(new_chat_id, session=session) is not None:
        return
    row.chat_id, row.chat_type, row.updated_at = new_chat_id, "supergroup", now
    session.add(row)


def update_settings(row: models.Subscriber, now: datetime, *, session: Session, **changes: object) -> None:
    for name, value in changes.items():
        if name == "follows":
            value = None if value is None else json.dumps(sorted(set(value)))  # type: ignore[call-overload]
        setattr(row, name, value)
    row.updated_at = now
    session.add(row)


def follows(row: models.Subscriber) -> list[str] | None:
    return None if row.follows is None else list(json.loads(row.follows))


def head_event_id(*, session: Session) -> int:
    head = session.exec(select(sa.func.max(models.Event.id))).one()
    return int(head or 0)


def subscribers_to_compose(*, session: Session, force_chat: int | None = None) -> list[models.Subscriber]:
    """The active subscribers (or `force_chat`'s), locked for composing. One another process is composing for
    right now is skipped (SKIP LOCKED); it gets its turn next."""
    query = (
        select(models.Subscriber)
        .where(col(models.Subscriber.active))
        .order_by(col(models.Subscriber.id))
        .with_for_update(skip_locked=True)
    )
    if force_chat is not None:
        query = query.where(models.Subscriber.chat_id == force_chat)
    return list(session.exec(query).all())


def mark_composed(row: models.Subscriber, now: datetime, *, session: Session) -> None:
    """The subscriber's digest was composed at `now`: the next one is due from here."""
    row.last_digest_at = now
    session.add(row)


def pending_events(row: models.Subscriber, kinds: Sequence[str], floor: int, *, session: Session) -> list[EventView]:
    """The events of `kinds` after the subscriber's `floor` that no digest of theirs took in yet, whatever order
    their ids committed in."""
    told = select(models.DigestEvent.event_id).where(models.DigestEvent.subscriber_id == row.id)
    rows = session.exec(
        select(models.Event)
        .where(col(models.Event.id) > floor, col(models.Event.kind).in_(kinds), col(models.Event.id).not_in(told))
        .order_by(col(models.Event.id))
    ).all()
    return [
        EventView(event.id or 0, event.kind, event.proposal_id, json.loads(event.detail or "{}"), event.created_at)
        for event in rows
    ]


def record_digest(
    row: models.Subscriber,
    kind: str,
    events: Sequence[EventView],
    parts: list[str],
    now: datetime,
    *,
    session: Session,
) -> list[models.Digest]:
    """Record that the subscriber has had `events` (even those its filters left out), and the digest of them."""
    if not events:
        return []
    assert row.id is not None
    digest: models.Digest | None = None
    if parts:
        ids = [event.id for event in events]
        digest = models.Digest(
            subscriber_id=row.id, kind=kind, first_event_id=min(ids), last_event_id=max(ids), composed_at=now,
            parts=len(parts),
        )  # fmt: skip
        session.add(digest)
        session.flush()
        assert digest.id is not None
        for seq, text in enumerate(parts, start=1):
            session.add(models.DigestPart(digest_id=digest.id, seq=seq, text=text))
    told = [
        {"subscriber_id": row.id, "event_id": event.id, "digest_id": digest.id if digest else None} for event in events
    ]
    items.insert_new(models.DigestEvent, told, ["subscriber_id", "event_id"], session=session)
    return [digest] if digest else []


def outgoing(
    *, session: Session, chat_id: int | None = None, digest_ids: Sequence[int] | None = None, lock: bool = False
) -> list[Outgoing]:
    """Unsent parts of pending digests (or of `digest_ids`), digest by digest, each digest's parts in order.
    With `lock`, the parts' rows are locked, skipping those another sender holds."""
    query = (
        select(models.DigestPart, models.Digest, models.Subscriber)
        .join(models.Digest, col(models.Digest.id) == models.DigestPart.digest_id)
        .join(models.Subscriber, col(models.Subscriber.id) == models.Digest.subscriber_id)
        .where(models.Digest.state == "pending", col(models.DigestPart.sent_at).is_(None))
        .order_by(col(models.Digest.id), col(models.DigestPart.seq))
    )
    if chat_id is not None:
        query = query.where(models.Subscriber.chat_id == chat_id)
    if digest_ids is not None:
        query = query.where(col(models.Digest.id).in_(list(digest_ids)))
    if lock:
        query = query.with_for_update(skip_locked=True, of=models.DigestPart)
    return [
        Outgoing(
            part.id or 0, digest.id or 0, part.seq, digest.parts, sub.id or 0, sub.chat_id, sub.chat_type, part.text
        )
        for part, digest, sub in session.exec(query).all()
    ]


def claim(owner: str, now: datetime, seconds: float, *, session: Session, chat_id: int | None = None) -> list[Outgoing]:
    """Claim the pending digests no other sender holds (`FOR UPDATE SKIP LOCKED`, then a claim that lasts
    `seconds`: a sender that dies mid-digest leaves it to the next one) and return their unsent parts."""
    digest, sub = models.Digest, models.Subscriber
    query = (
        select(digest.id)
        .join(sub, col(sub.id) == digest.subscriber_id)
        .where(digest.state == "pending", sub.chat_id != STDOUT_CHAT)
        .where(sa.or_(col(digest.claimed_until).is_(None), col(digest.claimed_until) <= now))
        .order_by(col(digest.id))
        .with_for_update(skip_locked=True, of=digest)
    )
    if chat_id is not None:
        query = query.where(sub.chat_id == chat_id)
    ids = [int(digest_id) for digest_id in session.exec(query) if digest_id is not None]
    if not ids:
        return []
    session.exec(
        sa.update(digest)
        .where(col(digest.id).in_(ids))
        .values(claimed_by=owner, claimed_until=now + timedelta(seconds=seconds))
    )
    return outgoing(session=session, digest_ids=ids)


def claim_holders(*, session: Session) -> list[str]:
    return sources.holders(models.Digest.claimed_by, session=session)


def release_claims(owners: Sequence[str], *, session: Session) -> None:
    """Give back the digests these senders hold (what they did not finish goes to the next sender)."""
    sources.release(models.Digest.claimed_by, models.Digest.claimed_until, owners, session=session)


def mark_sent(part_id: int, message_id: int | None, now: datetime, *, session: Session) -> None:
    """Record a part Telegram confirmed, and finish its digest when it was the last one."""
    part = session.get(models.DigestPart, part_id)
    assert part is not None
    part.sent_at, part.message_id, part.attempts = now, message_id, part.attempts + 1
    session.add(part)
    session.flush()
    remaining = session.exec(
        select(sa.func.count())
        .select_from(models.DigestPart)
        .where(models.DigestPart.digest_id == part.digest_id, col(models.DigestPart.sent_at).is_(None))
    ).one()
    if remaining == 0:
        digest = session.get(models.Digest, part.digest_id)
        assert digest is not None
        digest.state, digest.finished_at = "sent", now
        session.add(digest)


def mark_failed(
    part_id: int, error: str, *, session: Session, abandon: bool = False, now: datetime | None = None
) -> None:
    part = session.get(models.DigestPart, part_id)
    assert part is not None
    part.attempts, part.last_error = part.attempts + 1, error
    session.add(part)
    if abandon:
        digest = session.get(models.Digest, part.digest_id)
        assert digest is not None
        digest.state, digest.finished_at = "abandoned", now
        session.add(digest)


def ensure_stdout_subscriber(now: datetime, defaults: DigestSettings, *, session: Session) -> models.Subscriber:
    """Without a Telegram token, digests go to standard output: one subscriber stands for it, following all,
    with instant frequency, and starting from the beginning of the outbox."""
    values = {
        "chat_id": STDOUT_CHAT, "chat_type": "stdout", "title": "standard output", "active": True,
        "frequency": "instant", "hour": defaults.hour, "min_status": "all", "subscribed_at": now, "updated_at": now,
        "last_event_id": 0, "last_admin_event_id": 0,
    }  # fmt: skip
    items.insert_new(models.Subscriber, [values], ["chat_id"], session=session)
    row = subscriber(STDOUT_CHAT, session=session)
    assert row is not None
    return row
