"""Proposals, matches and the status history: their reads and writes (events go through `monitor.store.events`).

Functions take a keyword-only `session`; callers own the transaction. Portable SQL only. The decisions
themselves come from `monitor.status` (pure); this module only records them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import Session, col, delete, select, update

from monitor import config
from monitor.status import Decision, Ladder, Observation, Pending, ProposalState, raises_status
from monitor.store import events, items, models

if TYPE_CHECKING:  # for annotations only: a cron run with nothing due loads neither
    from monitor.match import Match


def sync_proposals(proposals: Sequence[config.ProposalConfig], *, session: Session) -> None:
    """Make the proposal table agree with feeds.yaml; a proposal's status and history are kept."""
    fresh = [
        {"id": proposal.id, "title": proposal.title, "status": proposal.initial_status, "in_config": True}
        for proposal in proposals
    ]
    items.insert_new(models.Proposal, fresh, ["id"], session=session)
    existing = {row.id: row for row in session.exec(select(models.Proposal).order_by(col(models.Proposal.id)))}
    for proposal in proposals:
        row = existing.pop(proposal.id)
        row.title, row.in_config = proposal.title, True
        session.add(row)
    for row in existing.values():
        row.in_config = False
        session.add(row)
    session.flush()


def lock_proposals(proposal_ids: Iterable[str], *, session: Session) -> None:
    """Take the proposals' row locks (`SELECT ... FOR UPDATE`, in id order so two workers never deadlock) and
    reload them: a status decision reads, decides and writes with no other decision in between. SQLite has
    no row locks; there, the transaction's `BEGIN IMMEDIATE` already keeps every other writer out."""
    ordered = sorted(set(proposal_ids))
    if ordered:
        query = select(models.Proposal).where(col(models.Proposal.id).in_(ordered)).order_by(col(models.Proposal.id))
        session.exec(query.with_for_update().execution_options(populate_existing=True)).all()


def proposal_state(proposal_id: str, ladder: Sequence[str], *, session: Session) -> ProposalState:
    """The current status and the open unconfirmed upgrades above it, with their evidence."""
    proposal = session.get(models.Proposal, proposal_id)
    assert proposal is not None
    ranks = Ladder.of(ladder)
    open_changes = session.exec(
        select(models.StatusChange)
        .where(
            models.StatusChange.proposal_id == proposal_id,
            models.StatusChange.kind == "upgrade",
            models.StatusChange.state == "unconfirmed",
        )
        .execution_options(populate_existing=True)  # as committed now, not as this session first read them
    ).all()
    pending: dict[str, Pending] = {}
    for change in open_changes:
        if not ranks.above(change.to_status, proposal.status) or change.id is None:
            continue
        rows = session.exec(
            select(models.Evidence, models.Source.tier)
            .join(models.Source, col(models.Source.id) == models.Evidence.source_id)
            .where(models.Evidence.change_id == change.id)
        ).all()
        evidence = tuple(
            Observation(proposal_id, row.status, row.source_id, tier, row.reported_at, row.score, False, row.match_id)
            for row, tier in rows
        )
        pending[change.to_status] = Pending(change.id, change.to_status, evidence)
    return ProposalState(proposal_id, proposal.status, proposal.status_change_id, pending)


def match_values(item_id: int, version: int, match: Match, now: datetime) -> dict[str, Any]:
    """One `item_match` row's columns for a match of this version of the item."""
    return {
        "item_id": item_id,
        "item_version": version,
        "proposal_id": match.proposal,
        "score": match.score,
        "alias": match.alias,
        "actors": json.dumps(list(match.actors), ensure_ascii=False),
        "sentences": json.dumps(list(match.sentences), ensure_ascii=False),
        "status": match.status,
        "status_sentence": match.status_sentence,
        "withdrawn": match.withdrawn,
        "matcher_version": match.matcher_version,
        "matched_at": now,
    }


def add_match(item: models.Item, match: Match, now: datetime, *, session: Session) -> models.ItemMatch | None:
    """Record a match of this version of the item; None when this matcher already matched it."""
    assert item.id is not None
    values = match_values(item.id, item.version, match, now)
    keys = ["item_id", "item_version", "proposal_id", "matcher_version"]
    new_id = items.insert_one(models.ItemMatch, values, keys, session=session)
    return None if new_id is None else session.get(models.ItemMatch, new_id)


def apply_decisions(
    decisions: Sequence[Decision],
    observation: Observation,
    match: models.ItemMatch,
    item: models.Item,
    ladder: Sequence[str],
    now: datetime,
    *,
    session: Session,
    notify: bool = True,
) -> list[models.StatusChange]:
    """Record what `monitor.status.decide` decided. Returns the changes created or confirmed.

    With `notify`, each new or confirmed change is also appended to the event outbox."""
    touched: list[models.StatusChange] = []
    proposal = session.get(models.Proposal, observation.proposal)
    assert proposal is not None
    for decision in decisions:
        change: models.StatusChange | None = None
        if decision.kind in ("upgrade", "withdrawal"):
            change = models.StatusChange(
                proposal_id=decision.proposal,
                kind=decision.kind,
                from_status=decision.from_status,
                to_status=decision.to_status,
                state=("confirmed" if decision.confirmed else "unconfirmed")
                if decision.kind == "upgrade"
                else "review",
                observed_at=now,
                confirmed_at=now if decision.kind == "upgrade" and decision.confirmed else None,
                confidence=decision.confidence,
            )
            session.add(change)
            session.flush()
            touched.append(change)
            kind = (
                "withdrawal" if decision.kind == "withdrawal" else ("change" if decision.confirmed else "unconfirmed")
            )
            if notify:
                events.change_event(kind, change, match, item, now, session=session)
        elif decision.change_id is not None:
            change = session.get(models.StatusChange, decision.change_id)
            if change is not None and decision.kind == "corroborate":
                change.confidence = max(change.confidence, decision.confidence)
                if decision.confirmed and change.state == "unconfirmed":
                    change.state, change.confirmed_at = "confirmed", now
                    touched.append(change)
                    if notify:
                        events.change_event("confirmed", change, match, item, now, session=session)
                session.add(change)
        if change is None or change.id is None:
            continue
        _add_evidence(change.id, match, item, observation, now, session=session)
        reported = min(observation.reported_at, now)
        if change.happened_at is None or reported < change.happened_at:
            # The world changed when the earliest report of it was published, whatever order they came in.
            change.happened_at = reported
            session.add(change)
            if proposal.status_change_id == change.id:
                proposal.status_since = reported
        raise_status(proposal, change, ladder, now, session=session)
    session.flush()
    return touched


def raise_status(
    proposal: models.Proposal, change: models.StatusChange, ladder: Sequence[str], now: datetime, *, session: Session
) -> None:
    """Move the proposal up to the change when `monitor.status.raises_status` says it does."""
    if raises_status(change, proposal.status, ladder):
        since = change.happened_at or now
        proposal.status, proposal.status_since, proposal.status_change_id = change.to_status, since, change.id
        session.add(proposal)


def _add_evidence(
    change_id: int,
    match: models.ItemMatch,
    item: models.Item,
    observation: Observation,
    now: datetime,
    *,
    session: Session,
) -> None:
    assert match.id is not None and item.id is not None
    session.add(
        models.Evidence(
            change_id=change_id,
            match_id=match.id,
            item_id=item.id,
            source_id=item.source_id,
            status=match.status,
            score=match.score,
            sentence=match.status_sentence,
            reported_at=observation.reported_at,
            added_at=now,
        )
    )


def clear_derived(*, session: Session) -> None:
    """Drop what matching derived (matches, machine-made history) before a deterministic rebuild.

    An analyst's own decisions (kind `analyst`) are kept.
    """
    machine = select(models.StatusChange.id).where(models.StatusChange.kind != "analyst")
    # Events already told stay told: keep them (their detail is self-contained) but drop their pointers.
    session.exec(update(models.Event).where(col(models.Event.match_id).is_not(None)).values(match_id=None))
    session.exec(update(models.Event).where(col(models.Event.change_id).in_(machine)).values(change_id=None))
    session.exec(delete(models.Evidence).where(col(models.Evidence.change_id).in_(machine)))
    session.exec(delete(models.StatusChange).where(col(models.StatusChange.kind) != "analyst"))
    session.exec(delete(models.ItemMatch))
    for proposal in session.exec(select(models.Proposal)):
        proposal.status_since, proposal.status_change_id = None, None
        session.add(proposal)
    session.flush()


def reset_statuses(proposals: Sequence[config.ProposalConfig], *, session: Session) -> None:
    initial = {proposal.id: proposal.initial_status for proposal in proposals}
    for row in session.exec(select(models.Proposal)):
        row.status = initial.get(row.id, row.status)
        session.add(row)


def items_in_order(after_id: int, limit: int, *, session: Session) -> list[models.Item]:
    """Items in the order they were stored, a page at a time."""
    return list(
        session.exec(
            select(models.Item).where(col(models.Item.id) > after_id).order_by(col(models.Item.id)).limit(limit)
        )
    )


def proposal(proposal_id: str, *, session: Session) -> models.Proposal | None:
    return session.get(models.Proposal, proposal_id)


def statuses(*, session: Session) -> list[models.Proposal]:
    return list(
        session.exec(select(models.Proposal).where(col(models.Proposal.in_config)).order_by(col(models.Proposal.id)))
    )


def changes(proposal_id: str | None = None, *, session: Session) -> list[models.StatusChange]:
    query = select(models.StatusChange).order_by(col(models.StatusChange.observed_at), col(models.StatusChange.id))
    if proposal_id:
        query = query.where(models.StatusChange.proposal_id == proposal_id)
    return list(session.exec(query))


def evidence_for(change_id: int, *, session: Session) -> list[tuple[models.Evidence, models.Item]]:
    rows = session.exec(
        select(models.Evidence, models.Item)
        .join(models.Item, col(models.Item.id) == models.Evidence.item_id)
        .where(models.Evidence.change_id == change_id)
        .order_by(col(models.Evidence.reported_at), col(models.Evidence.id))
    ).all()
    return [(evidence, item) for evidence, item in rows]


def count_matches(*, session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(models.ItemMatch)).one())


def match_counts(*, session: Session) -> dict[str, tuple[int, datetime | None]]:
    """Per proposal: how many items matched it, and when the latest of them was published."""
    rows = session.exec(
        select(
            models.ItemMatch.proposal_id,
            func.count(func.distinct(models.ItemMatch.item_id)),
            func.max(models.Item.published_at),
        )
        .join(models.Item, col(models.Item.id) == models.ItemMatch.item_id)
        .group_by(models.ItemMatch.proposal_id)
    ).all()
    return {proposal_id: (int(count), latest) for proposal_id, count, latest in rows}


@dataclass(frozen=True)
class Review:
    """An analyst's decision on a machine-made change, kept across `monitor rematch`."""

    proposal_id: str
    kind: str
    to_status: str
    state: str
    decided_by: str
    note: str | None
    confirmed_at: datetime | None


def reviews(*, session: Session) -> list[Review]:
    rows = session.exec(
        select(models.StatusChange)
        .where(col(models.StatusChange.kind) != "analyst", col(models.StatusChange.decided_by).is_not(None))
        .order_by(col(models.StatusChange.id))
    ).all()
    return [
        Review(row.proposal_id, row.kind, row.to_status, row.state, row.decided_by or "", row.note, row.confirmed_at)
        for row in rows
    ]


def reapply_reviews(decisions: Sequence[Review], *, session: Session) -> int:
    """Put analysts' decisions back on the rebuilt changes they were about; returns how many still applied."""
    applied = 0
    for decision in decisions:
        change = session.exec(
            select(models.StatusChange)
            .where(
                models.StatusChange.proposal_id == decision.proposal_id,
                models.StatusChange.kind == decision.kind,
                models.StatusChange.to_status == decision.to_status,
                col(models.StatusChange.decided_by).is_(None),
            )
            .order_by(col(models.StatusChange.observed_at), col(models.StatusChange.id))
        ).first()
        if change is None:
            continue
        change.state, change.decided_by, change.note = decision.state, decision.decided_by, decision.note
        if decision.state == "confirmed":
            change.confirmed_at = change.confirmed_at or decision.confirmed_at
        session.add(change)
        applied += 1
    session.flush()
    return applied


def recompute_statuses(proposals: Sequence[config.ProposalConfig], ladder: Sequence[str], *, session: Session) -> None:
    """Each proposal's status from its history: confirmed upgrades move it up, an analyst's decision sets it."""
    ranks = Ladder.of(ladder)
    for proposal in proposals:
        row = session.get(models.Proposal, proposal.id)
        if row is None:
            continue
        status, since, change_id = proposal.initial_status, None, None
        # An analyst's decision overrides what the machine had seen by then, whatever order the rows were made in.
        ordered = sorted(changes(proposal.id, session=session), key=lambda c: (c.observed_at, c.kind == "analyst"))
        for change in ordered:
            if change.kind == "analyst" or raises_status(change, status, ranks):
                status, since, change_id = change.to_status, change.happened_at or change.observed_at, change.id
        row.status, row.status_since, row.status_change_id = status, since, change_id
        session.add(row)
    session.flush()
