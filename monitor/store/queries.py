"""Read-only queries for analysts: the views' SQL, typed reads of the views, exports, timelines.

Takes a session and filters; returns `Listing`s (stable column names, typed values) or `Timeline`s for the
chart. Writes nothing: the review actions' writes are in `monitor.store.review`.

The views are created by migrations 0004 and 0005, which keep their own frozen copies of the SQL below; a test checks
that the database's views are these. The SQL is portable (SQLite and PostgreSQL) except for `_DAYS`, one
expression per dialect. Full-text search is `monitor.store.fulltext`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from monitor.store import models
from monitor.store.models import UTCDateTime

# --- the views' SQL -----------------------------------------------------------------------------------------
# Elapsed days between two times: the one expression that differs between the supported dialects.
_DAYS = {
    "sqlite": "julianday({end}) - julianday({start})",
    "postgresql": "EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0",
}

_VIEWS = {
    "v_current_status": """
SELECT p.id AS proposal_id, p.title, p.status, p.status_since AS since, p.in_config,
       latest.id AS latest_change_id, latest.kind AS latest_kind, latest.from_status AS latest_from,
       latest.to_status AS latest_to, latest.state AS latest_state,
       (SELECT count(*) FROM evidence e WHERE e.change_id = p.status_change_id) AS evidence,
       coalesce(r.reports, 0) AS reports, r.last_report_at
FROM proposal p
LEFT JOIN status_change latest ON latest.id = (
    SELECT c.id FROM status_change c WHERE c.proposal_id = p.id ORDER BY c.observed_at DESC, c.id DESC LIMIT 1)
LEFT JOIN (
    SELECT m.proposal_id, count(DISTINCT m.item_id) AS reports, max(i.published_at) AS last_report_at
    FROM item_match m JOIN item i ON i.id = m.item_id
    GROUP BY m.proposal_id) r ON r.proposal_id = p.id""",
    "v_status_history": """
SELECT c.id AS change_id, c.proposal_id, c.kind, c.from_status, c.to_status, c.state,
       coalesce(c.happened_at, c.observed_at) AS happened_at,
       c.observed_at, c.confirmed_at, c.confidence, c.decided_by, c.note,
       CASE WHEN c.kind = 'analyst' THEN c.observed_at
            WHEN c.decided_by IS NOT NULL THEN (
                SELECT max(ev.created_at) FROM event ev
                WHERE ev.change_id = c.id AND ev.kind IN ('confirmed', 'rejected')) END AS decided_at,
       e.id AS evidence_id, e.source_id, s.name AS source_name, e.status AS reported_status, e.score,
       e.sentence, e.reported_at, e.item_id, i.title AS item_title, i.link
FROM status_change c
LEFT JOIN evidence e ON e.change_id = c.id
LEFT JOIN item i ON i.id = e.item_id
LEFT JOIN source s ON s.id = e.source_id""",
    "v_reports_per_day": """
SELECT m.proposal_id, date(i.published_at) AS day, count(DISTINCT m.item_id) AS reports,
       count(DISTINCT i.source_id) AS sources
FROM item_match m JOIN item i ON i.id = m.item_id
GROUP BY m.proposal_id, date(i.published_at)""",
    "v_stage_durations": """
SELECT t.proposal_id, t.stage, t.change_id, t.entered_at, t.left_at, t.next_stage,
       {days} AS days
FROM (
    SELECT c.proposal_id, c.to_status AS stage, c.id AS change_id,
           coalesce(c.happened_at, c.observed_at) AS entered_at,
           LEAD(coalesce(c.happened_at, c.observed_at)) OVER (
               PARTITION BY c.proposal_id ORDER BY coalesce(c.happened_at, c.observed_at), c.id) AS left_at,
           LEAD(c.to_status) OVER (
               PARTITION BY c.proposal_id ORDER BY coalesce(c.happened_at, c.observed_at), c.id) AS next_stage
    FROM status_change c
    WHERE c.state = 'confirmed' AND c.kind IN ('upgrade', 'analyst') AND c.from_status <> c.to_status) t""",
    "v_first_source": """
SELECT c.id AS change_id, c.proposal_id, c.kind, c.from_status, c.to_status, c.state, c.observed_at,
       f.source_id AS first_source_id, s.name AS first_source_name, f.reported_at AS first_reported_at,
       f.item_id, i.title AS item_title, i.link,
       (SELECT count(DISTINCT e2.source_id) FROM evidence e2 WHERE e2.change_id = c.id) AS sources
FROM status_change c
JOIN (
    SELECT e.change_id, e.source_id, e.reported_at, e.item_id,
           ROW_NUMBER() OVER (PARTITION BY e.change_id ORDER BY e.reported_at, e.id) AS seq
    FROM evidence e) f ON f.change_id = c.id AND f.seq = 1
JOIN source s ON s.id = f.source_id
JOIN item i ON i.id = f.item_id""",
}
VIEW_NAMES = tuple(_VIEWS)


def view_sql(name: str, dialect: str) -> str:
    """The SELECT behind a view, for `dialect` (sqlite or postgresql)."""
    days = _DAYS.get(dialect, _DAYS["postgresql"]).format(end="t.left_at", start="t.entered_at")
    return _VIEWS[name].replace("{days}", days).strip()


# --- the views as typed tables (a private MetaData: Alembic never sees them) --------------------------------
_views = sa.MetaData()
_S, _I, _F, _B, _T = sa.String, sa.Integer, sa.Float, sa.Boolean, UTCDateTime


def _view(name: str, **columns: Any) -> sa.Table:
    return sa.Table(name, _views, *(sa.Column(column, kind()) for column, kind in columns.items()))


CURRENT = _view(
    "v_current_status", proposal_id=_S, title=_S, status=_S, since=_T, in_config=_B, latest_change_id=_I,
    latest_kind=_S, latest_from=_S, latest_to=_S, latest_state=_S, evidence=_I, reports=_I, last_report_at=_T,
)  # fmt: skip
HISTORY = _view(
    "v_status_history", change_id=_I, proposal_id=_S, kind=_S, from_status=_S, to_status=_S, state=_S,
    happened_at=_T, observed_at=_T, confirmed_at=_T, confidence=_F, decided_by=_S, note=_S, decided_at=_T,
    evidence_id=_I, source_id=_S, source_name=_S, reported_status=_S, score=_F, sentence=_S, reported_at=_T,
    item_id=_I, item_title=_S, link=_S,
)  # fmt: skip
PER_DAY = _view("v_reports_per_day", proposal_id=_S, day=sa.Date, reports=_I, sources=_I)
STAGES = _view(
    "v_stage_durations", proposal_id=_S, stage=_S, change_id=_I, entered_at=_T, left_at=_T, next_stage=_S,
    days=_F,
)  # fmt: skip
FIRST = _view(
    "v_first_source", change_id=_I, proposal_id=_S, kind=_S, from_status=_S, to_status=_S, state=_S,
    observed_at=_T, first_source_id=_S, first_source_name=_S, first_reported_at=_T, item_id=_I, item_title=_S,
    link=_S, sources=_I,
)  # fmt: skip


@dataclass(frozen=True)
class Listing:
    """Rows with stable column names: what every analyst command prints or exports."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _listing(session: Session, query: sa.Select[Any]) -> Listing:
    result = session.connection().execute(query)
    return Listing(tuple(result.keys()), [tuple(row) for row in result])


def current_status(*, session: Session, proposals: Sequence[str] = (), retired: bool = False) -> Listing:
    """Where each proposal stands and since when, with its latest change, evidence and last report."""
    query = sa.select(CURRENT).order_by(CURRENT.c.proposal_id)
    if proposals:
        query = query.where(CURRENT.c.proposal_id.in_(proposals))
    elif not retired:
        query = query.where(CURRENT.c.in_config)
    return _listing(session, query)


def status_history(
    *, session: Session, proposal: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> Listing:
    """Each change (observed in [since, until)) with each report behind it, oldest first."""
    query = sa.select(HISTORY).order_by(HISTORY.c.observed_at, HISTORY.c.change_id, HISTORY.c.reported_at)
    if proposal:
        query = query.where(HISTORY.c.proposal_id == proposal)
    if since:
        query = query.where(HISTORY.c.observed_at >= since)
    if until:
        query = query.where(HISTORY.c.observed_at < until)
    return _listing(session, query)


def items(
    *,
    session: Session,
    proposal: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> Listing:
    """Reports, newest first, each with the proposals it matched (one row per match; unmatched items once)."""
    item, match = models.Item.__table__, models.ItemMatch.__table__  # type: ignore[attr-defined]
    on = sa.and_(match.c.item_id == item.c.id, match.c.item_version == item.c.version)
    query = sa.select(
        item.c.id.label("item_id"), item.c.published_at, item.c.source_id, match.c.proposal_id,
        match.c.status, match.c.score, item.c.title, item.c.link, item.c.version,
    ).select_from(item.outerjoin(match, on))  # fmt: skip
    if proposal:
        query = query.where(match.c.proposal_id == proposal)
    if status:
        query = query.where(match.c.status == status)
    if source:
        query = query.where(item.c.source_id == source)
    if since:
        query = query.where(item.c.published_at >= since)
    query = query.order_by(item.c.published_at.desc(), item.c.id.desc(), match.c.proposal_id).limit(limit)
    return _listing(session, query.distinct())


EXPORTS = ("items", "matches", "history", "proposals")


def export(table: str, *, session: Session) -> Listing:
    """A whole table for export: `items` and `matches` as stored, `history` and `proposals` as their views."""
    sources: dict[str, tuple[sa.Table, str]] = {
        "items": (models.Item.__table__, "id"),  # type: ignore[attr-defined]
        "matches": (models.ItemMatch.__table__, "id"),  # type: ignore[attr-defined]
        "history": (HISTORY, "change_id"),
        "proposals": (CURRENT, "proposal_id"),
    }
    source, key = sources[table]
    order = [source.c[key], source.c.evidence_id] if table == "history" else [source.c[key]]
    return _listing(session, sa.select(source).order_by(*order))


def stage_durations(*, session: Session, proposal: str | None = None) -> Listing:
    query = sa.select(STAGES).order_by(STAGES.c.proposal_id, STAGES.c.entered_at, STAGES.c.change_id)
    return _listing(session, query.where(STAGES.c.proposal_id == proposal) if proposal else query)


def first_sources(*, session: Session) -> Listing:
    return _listing(session, sa.select(FIRST).order_by(FIRST.c.proposal_id, FIRST.c.change_id))


def review_queue(threshold: float, *, session: Session) -> Listing:
    """What needs an analyst: changes not yet confirmed (unconfirmed, or a withdrawal for review), then the
    current matches scoring under `threshold`. `id` is the change id, or the match id for a match."""
    change, evidence = models.StatusChange.__table__, models.Evidence.__table__  # type: ignore[attr-defined]
    item, match = models.Item.__table__, models.ItemMatch.__table__  # type: ignore[attr-defined]
    first = sa.select(sa.func.min(evidence.c.item_id)).where(evidence.c.change_id == change.c.id).scalar_subquery()
    sources = (
        sa.select(sa.func.count(sa.distinct(evidence.c.source_id)))
        .where(evidence.c.change_id == change.c.id)
        .scalar_subquery()
    )
    changes = (
        sa.select(
            sa.literal("change").label("kind"), change.c.id, change.c.proposal_id,
            (change.c.from_status + sa.literal("->") + change.c.to_status).label("what"), change.c.state,
            change.c.confidence.label("score"), change.c.observed_at.label("at"), sources.label("sources"),
            item.c.title, item.c.link,
        )
        .select_from(change.outerjoin(item, item.c.id == first))
        .where(change.c.state.in_(("unconfirmed", "review")))
        .order_by(change.c.observed_at, change.c.id)
    )  # fmt: skip
    matches = (
        sa.select(
            sa.literal("match").label("kind"), match.c.id, match.c.proposal_id,
            (sa.literal("reports ") + match.c.status).label("what"), sa.literal("low score").label("state"),
            match.c.score, item.c.published_at.label("at"), sa.literal(1).label("sources"), item.c.title,
            item.c.link,
        )
        .join(item, sa.and_(item.c.id == match.c.item_id, item.c.version == match.c.item_version))
        .where(match.c.score < threshold)
        .order_by(match.c.score, match.c.id)
    )  # fmt: skip
    first_part, second_part = _listing(session, changes), _listing(session, matches)
    return Listing(first_part.columns, first_part.rows + second_part.rows)


# --- timelines, for the chart -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Marker:
    at: datetime
    change_id: int
    to_status: str
    state: str
    kind: str


@dataclass(frozen=True)
class Timeline:
    """One proposal over time: its status from `start_status` through each confirmed step, every change
    (as a marker) and its reports per day."""

    proposal_id: str
    title: str
    status: str
    start_status: str
    steps: tuple[tuple[datetime, str], ...]
    markers: tuple[Marker, ...]
    volume: tuple[tuple[date, int], ...]


def timelines(*, session: Session, proposals: Sequence[str] = ()) -> list[Timeline]:
    """A `Timeline` per proposal in the configuration (or per named proposal), by id."""
    change = models.StatusChange.__table__  # type: ignore[attr-defined]
    found: list[Timeline] = []
    for row in current_status(session=session, proposals=proposals).records():
        pid = row["proposal_id"]
        changes = list(
            session.connection().execute(
                sa.select(change).where(change.c.proposal_id == pid).order_by(change.c.observed_at, change.c.id)
            )
        )
        markers = tuple(
            Marker(c.happened_at or c.observed_at, c.id, c.to_status, c.state, c.kind)
            for c in changes
        )  # fmt: skip
        steps = stage_durations(session=session, proposal=pid).records()
        from_status = {c.id: c.from_status for c in changes}
        start = from_status[steps[0]["change_id"]] if steps else row["status"]
        days = session.connection().execute(
            sa.select(PER_DAY.c.day, PER_DAY.c.reports).where(PER_DAY.c.proposal_id == pid).order_by(PER_DAY.c.day)
        )
        found.append(
            Timeline(
                proposal_id=pid,
                title=row["title"],
                status=row["status"],
                start_status=start,
                steps=tuple((step["entered_at"], step["stage"]) for step in steps),
                markers=markers,
                volume=tuple((day, int(count)) for day, count in days),
            )
        )
    return found
