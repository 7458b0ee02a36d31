"""The event outbox that digests are cut from: appending events whose detail stands alone.

Functions take a keyword-only `session`; callers own the transaction. An event's `detail` carries everything a
digest shows, so it stays readable even after `monitor rematch` rebuilt the rows it points to.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session, col, select

from monitor.store import models


def add_event(
    kind: str,
    now: datetime,
    detail: dict[str, object],
    *,
    session: Session,
    proposal_id: str | None = None,
    change_id: int | None = None,
    match_id: int | None = None,
    source_id: str | None = None,
) -> None:
    """Append to the event outbox that digests are cut from. `detail` carries everything a digest shows, so
    an event stays readable even after `monitor rematch` rebuilt the rows it points to."""
    session.add(
        models.Event(
            kind=kind,
            created_at=now,
            proposal_id=proposal_id,
            change_id=change_id,
            match_id=match_id,
            source_id=source_id,
            detail=json.dumps(detail, ensure_ascii=False, default=str),
        )
    )


def report_event(match: models.ItemMatch, item: models.Item, now: datetime, *, session: Session) -> None:
    """A new matched report, for digests."""
    add_event(
        "report",
        now,
        _item_detail(match, item, session=session),
        session=session,
        proposal_id=match.proposal_id,
        match_id=match.id,
        source_id=item.source_id,
    )


def change_event(
    kind: str,
    change: models.StatusChange,
    match: models.ItemMatch,
    item: models.Item,
    now: datetime,
    *,
    session: Session,
) -> None:
    sources = session.exec(
        select(models.Source.name)
        .join(models.Evidence, col(models.Evidence.source_id) == models.Source.id)
        .where(models.Evidence.change_id == change.id)
        .distinct()
    ).all()
    detail = {
        **_item_detail(match, item, session=session),
        "from_status": change.from_status,
        "to_status": change.to_status,
        "change_kind": change.kind,
        "confirmed": change.state == "confirmed",
        "sources": sorted(set(sources) | {_source_name(item.source_id, session=session)}),
        "happened_at": min(filter(None, (change.happened_at, item.published_at, now))).isoformat(),
    }
    add_event(
        kind,
        now,
        detail,
        session=session,
        proposal_id=change.proposal_id,
        change_id=change.id,
        match_id=match.id,
        source_id=item.source_id,
    )


def _item_detail(match: models.ItemMatch, item: models.Item, *, session: Session) -> dict[str, object]:
    return {
        "title": item.title,
        "link": item.link,
        "source": _source_name(item.source_id, session=session),
        "published_at": item.published_at.isoformat(),
        "status": match.status,
        "story": f"story:{item.story_id}" if item.story_id else f"item:{item.id}",
    }


def _source_name(source_id: str, *, session: Session) -> str:
    source = session.get(models.Source, source_id)
    return source.name if source else source_id
