"""`monitor rematch`, wired: every stored item matched again, the derived history rebuilt from scratch.

    history.clear_derived | history.items_in_order | match.Matcher.match
    | bulk.record_matches_bulk (status.decide, history; a page of items at once, each as of when first seen)
    | history.reapply_reviews | history.recompute_statuses                              (one transaction)

The engine is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.config import Config
from monitor.match import Matcher
from monitor.status import ProposalState
from monitor.store import bulk, history


@dataclass(frozen=True)
class RematchSummary:
    items: int
    matches: int
    changes: int
    reviews_kept: int = 0
    reviews_dropped: int = 0  # decisions about changes the rebuilt history no longer has


def run_rematch(config: Config, engine: Engine, *, batch: int = 1000) -> RematchSummary:
    """Re-run matching over every stored item and rebuild the derived statuses, in one transaction.

    Deterministic: items are taken in the order they were stored, each at the time it was first seen, so
    the same database and configuration always give the same history. Analysts' own decisions are kept:
    their `set-status` rows stay, and their confirmations and rejections are put back on the rebuilt changes.
    Subscribers are not told again: a rebuild adds nothing to the event outbox.
    """
    matcher = Matcher(config.proposals, config.settings.status.ladder)
    items = matches = 0
    changed: set[int | None] = set()  # a change a later page adds evidence to is still one change
    with Session(engine) as session:
        history.sync_proposals(config.proposals, session=session)
        history.lock_proposals({proposal.id for proposal in config.proposals}, session=session)
        reviewed = history.reviews(session=session)
        history.clear_derived(session=session)
        history.reset_statuses(config.proposals, session=session)
        last_id = 0
        states: dict[str, ProposalState] = {}  # the only writer: what it read stays true until it changes it
        while page := history.items_in_order(last_id, batch, session=session):
            # each item recorded as of when it was first seen, a page's worth in one pass
            found = [
                (bulk.StoredItem.of(item), matcher.match(item.title, item.summary, item.published_at)) for item in page
            ]
            seen = [item.first_seen_at for item in page]
            touched = bulk.record_matches_bulk(found, config, seen, session=session, notify=False, states=states)
            changed.update(change.id for change in touched)
            items += len(page)
            last_id = page[-1].id or last_id
            session.expunge_all()
        kept = history.reapply_reviews(reviewed, session=session)
        history.recompute_statuses(config.proposals, config.settings.status.ladder, session=session)
        matches = history.count_matches(session=session)
        session.commit()
    return RematchSummary(items, matches, len(changed), kept, len(reviewed) - kept)
