"""The review actions' writes: an analyst confirms or rejects a reported change, or sets a proposal's status.

Takes a session (the caller commits), the status ladder, who, why and `now`; returns the change acted on.
History is never rewritten silently: confirming or rejecting records the new state on the change with who
decided and why (and when, through its event); setting a status appends a new `analyst` change. Each action
appends an event to the outbox, and subscribers are told: `confirmed`, `change`, and `rejected` (a reported
change they may have heard of was rejected). Reads nothing but the rows it acts on; queries live in
`monitor.store.queries`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from monitor.errors import MonitorError
from monitor.store import events, history, models

OPEN_STATES = ("unconfirmed", "review")


class ReviewError(MonitorError):
    """A review action that cannot apply: an unknown change or proposal, or one already decided."""


def confirm_change(
    change_id: int, note: str, by: str, ladder: Sequence[str], now: datetime, *, session: Session
) -> models.StatusChange:
    """Confirm a change that was reported but not corroborated (or a withdrawal flagged for review).

    A confirmed upgrade above the proposal's status moves the status up; a withdrawal changes no status (use
    `set_status` to move it down)."""
    change = _open_change(change_id, note, session=session)
    change.state, change.confirmed_at, change.note, change.decided_by = "confirmed", now, note, by
    session.add(change)
    proposal = session.get(models.Proposal, change.proposal_id)
    assert proposal is not None
    history.raise_status(proposal, change, ladder, now, session=session)
    _event("confirmed", change, proposal, now, session=session)
    session.flush()
    return change


def reject_change(change_id: int, note: str, by: str, now: datetime, *, session: Session) -> models.StatusChange:
    """Mark a reported change rejected: it stays in the history, with who rejected it and why."""
    change = _open_change(change_id, note, session=session)
    change.state, change.note, change.decided_by = "rejected", note, by
    session.add(change)
    proposal = session.get(models.Proposal, change.proposal_id)
    assert proposal is not None
    _event("rejected", change, proposal, now, session=session)
    session.flush()
    return change


def set_status(
    proposal_id: str, status: str, note: str, by: str, ladder: Sequence[str], now: datetime, *, session: Session
) -> models.StatusChange:
    """Record an analyst's decision: a new confirmed `analyst` change, up or down the ladder, which sets the
    proposal's status."""
    _require_note(note)
    if status not in ladder:
        raise ReviewError(f"status {status!r} is not on the ladder ({', '.join(ladder)})")
    proposal = session.get(models.Proposal, proposal_id, with_for_update=True, populate_existing=True)
    if proposal is None:
        raise ReviewError(f"no proposal {proposal_id!r} in the database")
    if proposal.status == status:
        raise ReviewError(f"{proposal_id} is already at {status}: nothing to record")
    change = models.StatusChange(
        proposal_id=proposal_id,
        kind="analyst",
        from_status=proposal.status,
        to_status=status,
        state="confirmed",
        happened_at=now,
        observed_at=now,
        confirmed_at=now,
        confidence=1.0,
        note=note,
        decided_by=by,
    )
    session.add(change)
    session.flush()
    proposal.status, proposal.status_since, proposal.status_change_id = status, now, change.id
    session.add(proposal)
    _event("change", change, proposal, now, session=session)
    session.flush()
    return change


def _require_note(note: str) -> None:
    if not note.strip():
        raise ReviewError("a note is required: say why (--note)")


def _open_change(change_id: int, note: str, *, session: Session) -> models.StatusChange:
    _require_note(note)
    change = session.get(models.StatusChange, change_id)
    if change is None:
        raise ReviewError(f"no status change {change_id} in the database")
    # Lock the proposal, then read the change again: a decision on it may have committed meanwhile.
    session.get(models.Proposal, change.proposal_id, with_for_update=True, populate_existing=True)
    session.refresh(change)
    if change.state not in OPEN_STATES:
        by = f" by {change.decided_by}" if change.decided_by else ""
        raise ReviewError(f"change {change_id} is already {change.state}{by}: only open changes can be reviewed")
    return change


def _event(
    kind: str, change: models.StatusChange, proposal: models.Proposal, now: datetime, *, session: Session
) -> None:
    """An outbox event whose detail stands alone, shaped like the pipeline's change events."""
    evidence = session.exec(
        select(models.Evidence, models.Item, models.Source.name)
        .join(models.Item, col(models.Item.id) == models.Evidence.item_id)
        .join(models.Source, col(models.Source.id) == models.Evidence.source_id)
        .where(models.Evidence.change_id == change.id)
        .order_by(col(models.Evidence.reported_at), col(models.Evidence.id))
    ).all()
    analyst = f"analyst {change.decided_by}"
    latest = evidence[-1] if evidence else None
    detail: dict[str, object] = {
        "title": latest[1].title if latest else proposal.title,
        "link": latest[1].link if latest else None,
        "source": latest[2] if latest else analyst,
        "published_at": (latest[1].published_at if latest else now).isoformat(),
        "status": change.to_status,
        "story": f"story:{latest[1].story_id}" if latest and latest[1].story_id else f"change:{change.id}",
        "from_status": change.from_status,
        "to_status": change.to_status,
        "change_kind": change.kind,
        "confirmed": change.state == "confirmed",
        "sources": sorted({name for _, _, name in evidence} | {analyst}),
        "decided_by": change.decided_by,
        "note": change.note,
        "decided_at": now.isoformat(),
    }
    events.add_event(kind, now, detail, session=session, proposal_id=change.proposal_id, change_id=change.id)
