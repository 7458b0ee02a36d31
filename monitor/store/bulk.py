"""The poll's hot path in the database: a feed's items, their matches and the history they cause, written in
multi-row statements (SQLAlchemy Core) rather than one ORM object per item.

Functions take a keyword-only `session`; callers own the transaction. The rows written are the ones
the one-by-one path would write (`items.save_items`, then each match recorded alone: tests/test_bulk.py), in the
same order: a status decision other than plain evidence still goes through `history.apply_decisions`, after the
rows batched before it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session

from monitor.config import Config
from monitor.status import Decision, Ladder, Observation, Pending, ProposalState, decide
from monitor.store import history, models
from monitor.store.db import insert_returning
from monitor.store.items import story_ids

if TYPE_CHECKING:  # for annotations only: a cron run with nothing due loads neither
    from monitor.match import Match
    from monitor.parse import Entry

_CHUNK = 500
ITEM = models.Item.__table__  # type: ignore[attr-defined]
# Built once: SQLAlchemy then finds each compiled in its cache at once, where a statement built per feed is
# compiled or looked up by the values it carries.
_EXISTING = sa.select(ITEM).where(
    ITEM.c.source_id == sa.bindparam("source_id"), ITEM.c.key.in_(sa.bindparam("keys", expanding=True))
)


@dataclass(frozen=True)
class StoredItem:
    """A new or edited item as stored: what matching and the history need of it."""

    id: int
    version: int
    source_id: str
    title: str
    summary: str
    link: str | None
    story_id: int | None
    published_at: datetime

    @classmethod
    def of(cls, item: models.Item) -> StoredItem:
        """What matching and the history need of a stored row."""
        assert item.id is not None
        return cls(
            item.id, item.version, item.source_id, item.title, item.summary, item.link, item.story_id, item.published_at
        )

    def model(self) -> models.Item:
        """A detached row for `history` functions that take one (it is never added to the session)."""
        return models.Item(
            id=self.id,
            version=self.version,
            source_id=self.source_id,
            title=self.title,
            summary=self.summary,
            link=self.link,
            story_id=self.story_id,
            published_at=self.published_at,
            key="",
            content_hash="",
        )


@dataclass(frozen=True)
class SavedBatch:
    new: int
    updated: int
    unchanged: int
    changed: tuple[tuple[StoredItem, Entry], ...] = ()


def save_items_bulk(
    source_id: str,
    items: Sequence[Entry],
    now: datetime,
    *,
    session: Session,
    stories: dict[str, int] | None = None,
    first: bool = False,
) -> SavedBatch:
    """`store.save_items` in bulk: insert new items, update edited ones (keeping the earlier version), skip
    unchanged ones; one statement per table and chunk. `stories`: `story_ids`'s `known`. `first`: the feed
    was never stored before, so none of its items is looked up."""
    connection = session.connection()  # nothing the session holds is an item or a story
    existing: dict[str, Any] = {}
    keys = [] if first else [item.key for item in items]
    for start in range(0, len(keys), _CHUNK):
        found = connection.execute(_EXISTING, {"source_id": source_id, "keys": keys[start : start + _CHUNK]})
        existing.update((row.key, row) for row in found)
    urls = {item.canonical_url for item in items if item.canonical_url}
    stories = story_ids(urls, now, session=session, known=stories)
    fresh: list[Entry] = []
    edited: list[tuple[Any, Entry]] = []
    for item in items:
        row = existing.get(item.key)
        if row is None:
            fresh.append(item)
        elif row.content_hash != item.content_hash:
            edited.append((row, item))
    changed: list[tuple[StoredItem, Entry]] = []
    if fresh:
        values = [_new_row(source_id, item, stories, now) for item in fresh]
        # ids by key (unique per feed): asking for them in order would cost SQLite one statement per row
        inserted = dict(insert_returning(session.connection(), ITEM, values, ("key", "id")))
        changed += [(_stored(inserted[item.key], value), item) for value, item in zip(values, fresh, strict=True)]
    if edited:
        session.execute(sa.insert(models.ItemVersion.__table__), [_old_version(row, now) for row, _ in edited])  # type: ignore[attr-defined]
        updates = [_edit(row, item, stories, now) for row, item in edited]
        session.execute(
            sa.update(ITEM).where(ITEM.c.id == sa.bindparam("row_id")),
            [
                {key: value for key, value in update.items() if key != "id"} | {"row_id": update["id"]}
                for update in updates
            ],
        )
        changed += [(_stored(update["id"], update), item) for update, (_, item) in zip(updates, edited, strict=True)]
    order = {item.key: index for index, item in enumerate(items)}
    changed.sort(key=lambda pair: order[pair[1].key])  # matched in the feed's order, as one by one
    return SavedBatch(len(fresh), len(edited), len(items) - len(fresh) - len(edited), tuple(changed))


def _new_row(source_id: str, item: Entry, stories: Mapping[str, int], now: datetime) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "key": item.key,
        "guid": item.guid,
        "link": item.link,
        "canonical_url": item.canonical_url,
        "story_id": stories.get(item.canonical_url) if item.canonical_url else None,
        "title": item.title,
        "summary": item.summary,
        "author": item.author,
        "published_at": item.published or now,
        "published_fallback": item.published_flag,
        "first_seen_at": now,
        "updated_at": now,
        "version": 1,
        "content_hash": item.content_hash,
    }


def _old_version(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "item_id": row.id,
        "version": row.version,
        "title": row.title,
        "summary": row.summary,
        "link": row.link,
        "published_at": row.published_at,
        "content_hash": row.content_hash,
        "seen_from": row.updated_at,
        "replaced_at": now,
    }


def _edit(row: Any, item: Entry, stories: Mapping[str, int], now: datetime) -> dict[str, Any]:
    update = {
        "id": row.id,
        "source_id": row.source_id,
        "title": item.title,
        "summary": item.summary,
        "link": item.link,
        "author": item.author,
        "canonical_url": item.canonical_url,
        "story_id": stories.get(item.canonical_url) if item.canonical_url else None,
        "published_at": row.published_at,
        "published_fallback": row.published_fallback,
        "version": row.version + 1,
        "content_hash": item.content_hash,
        "updated_at": now,
    }
    if item.published is not None:
        update["published_at"], update["published_fallback"] = item.published, None
    return update


def _stored(id_: int, row: Mapping[str, Any]) -> StoredItem:
    return StoredItem(
        id_,
        row["version"],
        row["source_id"],
        row["title"],
        row["summary"],
        row["link"],
        row["story_id"],
        row["published_at"],
    )


def record_matches_bulk(
    changed: Sequence[tuple[StoredItem, Sequence[Match]]],
    config: Config,
    now: datetime | Sequence[datetime],
    *,
    session: Session,
    notify: bool = True,
    states: dict[str, ProposalState] | None = None,
    names: dict[str, str] | None = None,
    batch: Batch | None = None,
) -> list[models.StatusChange]:
    """Record the matches of items with no match yet (new in this transaction, or all in a rebuild): match rows
    in one insert, report events (with `notify`) and plain evidence batched, proposal states read once and again
    only after a decision changed them. `now`: one time, or one per item (a rebuild records each as of when first
    seen). Kept across calls: `states` read (for the only writer, or one holding the proposals locked), `names`,
    and the batched rows in a caller's `batch` (which flushes them before what must follow), else written here."""
    times = [now] * len(changed) if isinstance(now, datetime) else list(now)
    pairs = [(item, match, at) for (item, matches), at in zip(changed, times, strict=True) for match in matches]
    if not pairs:  # most feeds' items match nothing: nothing to read either
        return []
    ladder = Ladder(config.settings.status.ladder)
    policy = config.settings.status.corroboration
    tiers = {source.id: source.tier for source in config.sources}
    match_table = models.ItemMatch.__table__  # type: ignore[attr-defined]
    rows = [_match_row(item, match, at) for item, match, at in pairs]
    ids = list(
        session.execute(
            sa.insert(match_table).returning(match_table.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )
    names = {} if names is None else names
    if notify and (unread := {item.source_id for item, _, _ in pairs} - names.keys()):
        names.update(_source_names(unread, session=session))
    own, batch = batch is None, batch or Batch(session)
    states = {} if states is None else states
    touched: list[models.StatusChange] = []
    for (item, match, at), match_id, row in zip(pairs, ids, rows, strict=True):
        if notify:
            batch.events.append(_report_event(item, match, match_id, names, at))
        observation = observe(match, item.source_id, tiers, item.published_at, match_id)
        state = states.get(match.proposal) or history.proposal_state(match.proposal, ladder, session=session)
        states[match.proposal] = state
        decisions = decide(state, observation, ladder, policy)
        if all(_batchable(decision) for decision in decisions):
            for decision in decisions:
                if decision.kind == "report" or decision.change_id is None:
                    continue
                batch.evidence.append(_evidence(decision.change_id, match_id, item, match, observation, at))
                batch.happened.append({"change_id": decision.change_id, "reported": min(observation.reported_at, at)})
                if decision.kind == "corroborate":
                    batch.confidence.append({"change_id": decision.change_id, "confidence": decision.confidence})
                    states[match.proposal] = _with_evidence(state, decision.to_status, observation)
            continue
        batch.flush()  # rows stay in the order the one-by-one path gives them
        match_model = models.ItemMatch(id=match_id, **row)
        touched += history.apply_decisions(
            decisions, observation, match_model, item.model(), ladder, at, session=session, notify=notify
        )
        del states[match.proposal]
    if own:
        batch.flush()
    return touched


def observe(
    match: Match, source_id: str, tiers: Mapping[str, str], reported_at: datetime, match_id: int
) -> Observation:
    """What one stored match tells the status rules."""
    return Observation(
        proposal=match.proposal,
        status=match.status,
        source_id=source_id,
        tier=tiers.get(source_id, "media"),
        reported_at=reported_at,
        score=match.score,
        withdrawn=match.withdrawn,
        match_id=match_id,
    )


def _batchable(decision: Decision) -> bool:
    """Decisions that only add evidence (and raise an open change's confidence) without changing any status:
    recorded in bulk. The rest (new changes, confirmations, withdrawals) go through `history.apply_decisions`."""
    return decision.kind in ("evidence", "report") or (decision.kind == "corroborate" and not decision.confirmed)


def _with_evidence(state: ProposalState, status: str, observation: Observation) -> ProposalState:
    """The state `history.proposal_state` would read once this report's evidence is stored."""
    pending = state.pending[status]
    grown = Pending(pending.change_id, pending.to_status, (*pending.evidence, replace(observation, withdrawn=False)))
    return replace(state, pending={**state.pending, status: grown})


class Batch:
    """Report events, evidence and confidence raises waiting for one statement each (`flush`)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[dict[str, Any]] = []
        self.evidence: list[dict[str, Any]] = []
        self.confidence: list[dict[str, Any]] = []
        self.happened: list[dict[str, Any]] = []  # the world changed when the earliest report was published

    def flush(self) -> None:
        tables = (models.Event.__table__, models.Evidence.__table__)  # type: ignore[attr-defined]
        for table, rows in zip(tables, (self.events, self.evidence), strict=True):
            if rows:
                self.session.execute(sa.insert(table), rows)
                rows.clear()
        if self.happened:
            self._move_happened_at()
        if self.confidence:
            table = models.StatusChange.__table__  # type: ignore[attr-defined]
            offered = sa.bindparam("confidence", type_=sa.Float)
            raised = sa.case((table.c.confidence < offered, offered), else_=table.c.confidence)
            self.session.execute(
                sa.update(table).where(table.c.id == sa.bindparam("change_id")).values(confidence=raised),
                self.confidence,
            )
            self.confidence.clear()
            self._expire()

    def _move_happened_at(self) -> None:
        """`history.apply_decisions`' rule in two statements: a change happened when its earliest report was
        published, and a proposal's status dates from its change's."""
        change = models.StatusChange.__table__  # type: ignore[attr-defined]
        proposal = models.Proposal.__table__  # type: ignore[attr-defined]
        reported = sa.bindparam("reported", type_=change.c.happened_at.type)
        change_id: sa.BindParameter[int] = sa.bindparam("change_id", type_=sa.Integer)
        earlier = sa.or_(change.c.happened_at.is_(None), change.c.happened_at > reported)
        self.session.execute(
            sa.update(proposal)
            .where(proposal.c.status_change_id == change_id)
            .where(
                sa.exists().where(change.c.id == change_id).where(earlier)  # only where the change moves back
            )
            .values(status_since=reported),
            self.happened,
        )
        self.session.execute(
            sa.update(change).where(change.c.id == change_id).where(earlier).values(happened_at=reported),
            self.happened,
        )
        self.happened.clear()
        self._expire()

    def _expire(self) -> None:
        for row in list(self.session.identity_map.values()):  # loaded rows must not write back stale values
            if isinstance(row, models.StatusChange | models.Proposal):
                self.session.expire(row)


def _match_row(item: StoredItem, match: Match, now: datetime) -> dict[str, Any]:
    return history.match_values(item.id, item.version, match, now)


def _report_event(
    item: StoredItem, match: Match, match_id: int, names: Mapping[str, str], now: datetime
) -> dict[str, Any]:
    detail = {
        "title": item.title,
        "link": item.link,
        "source": names.get(item.source_id, item.source_id),
        "published_at": item.published_at.isoformat(),
        "status": match.status,
        "story": f"story:{item.story_id}" if item.story_id else f"item:{item.id}",
    }
    return {
        "kind": "report",
        "created_at": now,
        "proposal_id": match.proposal,
        "change_id": None,
        "match_id": match_id,
        "source_id": item.source_id,
        "detail": json.dumps(detail, ensure_ascii=False, default=str),
    }


def _evidence(
    change_id: int, match_id: int, item: StoredItem, match: Match, observation: Observation, now: datetime
) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "match_id": match_id,
        "item_id": item.id,
        "source_id": item.source_id,
        "status": match.status,
        "score": match.score,
        "sentence": match.status_sentence,
        "reported_at": observation.reported_at,
        "added_at": now,
    }


def _source_names(ids: set[str], *, session: Session) -> dict[str, str]:
    table = models.Source.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.id, table.c.name).where(table.c.id.in_(ids))
    return {str(id_): str(name) for id_, name in session.execute(query)}
