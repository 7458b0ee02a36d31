"""A fetched and parsed feed -> its rows: the poll's write stage.

    Recorder.one:    bulk.save_items_bulk | match.Matcher.match (the items the parser did not match already)
                     | bulk.record_matches_bulk (status.decide, history and events)
                     + schedule.after_success/after_failure, the feed's poll row      (one transaction per feed)
    Recorder.many:   the same for several feeds in one transaction (those that came in while the one writer
                     stored the feeds before them), up to `GROUP_ITEMS` items: `groups` splits them

A feed's fault is that feed's alone: a database error while storing it is recorded on the feed (and its next
poll is left as it was, so the next run retries it), and a group that fails is stored again feed by feed.
Writes are serialised by the recorder's lock: SQLite has one writer, and its busy wait only adds delay.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from monitor import schedule
from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import DatabaseError, FetchHTTPError, MonitorError
from monitor.outcomes import FeedOutcome
from monitor.redact import redact, secrets_of
from monitor.status import ProposalState
from monitor.store import bulk, events, history, models, sources
from monitor.store.db import first_line, retrying

if TYPE_CHECKING:  # loaded by the poll only once a feed is due
    from monitor.fetch import FetchResult
    from monitor.match import Match, Matcher
    from monitor.parse import ParsedFeed
    from monitor.parse_pool import ParseOutcome


@dataclass
class Shared:
    """What the feeds stored in one transaction share while their matches are recorded: each proposal's state as
    read, and kept up to date, in it (`record_matches_bulk`'s `states`), the proposals whose rows it holds
    locked (`history.lock_proposals`: a lock lasts until the commit), the feeds' names, and the stories it
    knows of (those committed before it, as the recorder keeps them, and its own). Each is read once per
    transaction (a story once per poll), not once per feed that needs it. And the feeds' poll rows, written
    together at the end, and their report events and plain evidence (`bulk.Batch`), written before a row that
    must follow them and at the end."""

    batch: bulk.Batch  # flushed before a row that must follow its rows (a feed's health event), and at the end
    states: dict[str, ProposalState] = field(default_factory=dict)
    locked: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    stories: dict[str, int] = field(default_factory=dict)  # canonical URL -> story id (`bulk.save_items_bulk`)
    polls: list[models.FeedPoll] = field(default_factory=list)  # the feeds' poll rows, written at the commit

    def lock(self, proposal_ids: set[str], *, session: Session) -> None:
        """Lock the proposals this transaction does not hold yet (`history.lock_proposals`)."""
        history.lock_proposals(proposal_ids - self.locked, session=session)
        self.locked |= proposal_ids


GROUP_ITEMS = 2000  # items stored in one transaction at most; a feed that brings more is stored alone


def groups(
    results: Sequence[tuple[FetchResult, ParseOutcome]], most: int = GROUP_ITEMS
) -> list[list[tuple[FetchResult, ParseOutcome]]]:
    """`results` in their order, cut into groups for `Recorder.many` that bring at most `most` items each
    (or one feed that alone brings more)."""
    cut: list[list[tuple[FetchResult, ParseOutcome]]] = []
    items = 0
    for pair in results:
        size = len(getattr(pair[1], "items", ()))
        if not cut or (items + size > most and cut[-1]):
            cut.append([])
            items = 0
        cut[-1].append(pair)
        items += size
    return cut


@dataclass(frozen=True)
class Recorder:
    """Stores a poll's fetched feeds into `engine`, for run `run_id`."""

    config: Config
    engine: Engine
    clock: Clock
    run_id: int
    matcher: Matcher
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    stories: dict[str, int] = field(default_factory=dict)  # the stories of the poll's committed transactions

    def one(self, result: FetchResult, outcome: ParseOutcome) -> FeedOutcome:
        """Store one fetch result and its parse outcome, match its new and edited items and record what they
        change, all in one transaction. An unexpected error while doing so (a bug that one feed's text
        reaches) is recorded as that feed's failure: it never stops the others."""
        try:
            return self._one(result, outcome)
        except DatabaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - one feed's fault, whatever it is, never stops the others
            fault = MonitorError(f"unexpected {type(exc).__name__} while storing the feed: {exc}")
            return self._one(result, outcome, fault)

    def _one(self, result: FetchResult, outcome: ParseOutcome, fault: MonitorError | None = None) -> FeedOutcome:
        """`one`; with `fault`, record only that failure on the feed."""
        from monitor.parse import ParsedFeed

        now = self.clock()
        parsed = outcome if isinstance(outcome, ParsedFeed) and fault is None else None
        error = fault or _error(result, outcome)
        with self.write_lock:
            try:
                return retrying(lambda: self._store([(result, parsed, error)], now)[0])
            except (SQLAlchemyError, DatabaseError) as exc:
                message = redact(
                    f"database, while storing feed {result.request.source_id!r}: {first_line(exc)}",
                    secrets_of(self.config.telegram_token, self.config.database_url),
                )
                self._record_database_fault(result, now, message)
                return FeedOutcome(result.request.source_id, "failed", result.status, message)

    def many(self, results: Sequence[tuple[FetchResult, ParseOutcome]]) -> list[FeedOutcome]:
        """Store several feeds in one transaction: a poll where most feeds answer 304, or a burst of new
        feeds, commits once per group, not once per feed. A group that fails for any reason is stored again
        one feed at a time, so that a fault stays its own feed's."""
        from monitor.parse import ParsedFeed

        if len(results) == 1:
            return [self.one(*results[0])]
        now = self.clock()
        with self.write_lock:
            feeds = [
                (result, outcome if isinstance(outcome, ParsedFeed) else None, _error(result, outcome))
                for result, outcome in results
            ]
            try:
                return retrying(lambda: self._store(feeds, now))
            except Exception:  # noqa: BLE001 - each feed again, alone: its own fault is then recorded on it
                pass
        return [self.one(result, outcome) for result, outcome in results]

    def _store(
        self, feeds: Sequence[tuple[FetchResult, ParsedFeed | None, MonitorError | None]], now: datetime
    ) -> list[FeedOutcome]:
        # No autoflush: the feeds' source updates wait for the commit (a statement for all), where each query of
        # a later feed (its matches' insert, a proposal's lock) would flush them a feed at a time; their poll
        # rows are written at the end, in one insert, and their report events and plain evidence wait in
        # `shared.batch`. What a later statement must see or follow is flushed where it is added: a status
        # decision's rows (`history.apply_decisions`), a health event (`_store_failure`).
        with Session(self.engine) as session, session.no_autoflush:
            plain = [i for i, (result, parsed, error) in enumerate(feeds) if _plain_304(result, parsed, error)]
            stored = self._not_modified([feeds[i][0] for i in plain], now, session=session)
            outcomes = dict(zip(plain, stored, strict=True))
            rest = [i for i in range(len(feeds)) if i not in outcomes]
            ids = [feeds[i][0].request.source_id for i in rest]
            held = sources.load_sources(ids, session=session) if ids else []  # one query for the group
            names = {source.id: source.name for source in held}
            shared = Shared(bulk.Batch(session), names=names, stories=dict(self.stories))
            outcomes.update((i, self._store_feed(*feeds[i], now, shared, session=session)) for i in rest)
            shared.batch.flush()
            sources.record_feed_polls(shared.polls, session=session)
            del held
            session.commit()
            self.stories.update(shared.stories)  # committed: a story is never deleted
            return [outcomes[i] for i in range(len(feeds))]

    def _not_modified(self, results: Sequence[FetchResult], now: datetime, *, session: Session) -> list[FeedOutcome]:
        """Feeds that answered 304 and moved nowhere: their next poll, in bulk."""
        if not results:
            return []
        own = sources.intervals([result.request.source_id for result in results], session=session)
        answers = [
            sources.NotModified(
                result.request.source_id,
                schedule.next_poll(self.config.settings.poll, own[result.request.source_id], now, result.headers),
                int(result.elapsed * 1000),
            )
            for result in results
        ]
        sources.record_not_modified(self.run_id, answers, now, session=session)
        return [FeedOutcome(a.source_id, "not-modified", 304, next_poll_at=a.plan.next_poll_at) for a in answers]

    def _store_feed(
        self,
        result: FetchResult,
        parsed: ParsedFeed | None,
        error: MonitorError | None,
        now: datetime,
        shared: Shared,
        *,
        session: Session,
    ) -> FeedOutcome:
        """Store one feed's result, match its new and edited items and record what they change."""
        source = sources.get_source(result.request.source_id, session=session)
        assert source is not None
        if result.moved_to and error is None:  # a move to a URL that fails is not a move yet
            sources.record_move(source, result.moved_to, "permanent redirect (HTTP 301/308)", now, session=session)
        poll = models.FeedPoll(
            run_id=self.run_id,
            source_id=source.id,
            polled_at=now,
            status_code=result.status,
            duration_ms=int(result.elapsed * 1000),
            outcome="failed",
        )
        if error is not None:
            outcome = _store_failure(self.config, source, result, error, poll, now, shared, session=session)
        else:
            outcome = _store_success(
                self.config, source, result, parsed, self.matcher, poll, now, shared, session=session
            )
        poll.next_poll_at = outcome.next_poll_at
        shared.polls.append(poll)
        return outcome

    def _record_database_fault(self, result: FetchResult, now: datetime, message: str) -> None:
        """Leave a database fault on the feed's record (its next poll is unchanged, so the next run retries
        it); when even that cannot be written, the run's summary still reports it."""
        try:
            with Session(self.engine) as session:
                sources.record_store_fault(result.request.source_id, self.run_id, now, message, session=session)
                session.commit()
        except (SQLAlchemyError, DatabaseError):
            pass


def _plain_304(result: FetchResult, parsed: ParsedFeed | None, error: MonitorError | None) -> bool:
    """A 304 that brings nothing and moved nowhere: all it changes is when the feed is polled next."""
    return result.not_modified and parsed is None and error is None and result.moved_to is None


def _error(result: FetchResult, outcome: ParseOutcome) -> MonitorError | None:
    return result.error or (outcome if isinstance(outcome, MonitorError) else None)


def _store_failure(
    config: Config,
    source: models.Source,
    result: FetchResult,
    error: MonitorError,
    poll: models.FeedPoll,
    now: datetime,
    shared: Shared,
    *,
    session: Session,
) -> FeedOutcome:
    """Record a failed poll on the feed and schedule its retry; tell the admins when its health gets worse."""
    settings = config.settings.poll
    interval = schedule.base_interval(source.interval_seconds, settings)
    status = error.status if isinstance(error, FetchHTTPError) else result.status
    plan = schedule.after_failure(now, interval, source.consecutive_failures, settings, result.headers, status)
    message = redact(f"{type(error).__name__}: {error}", secrets_of(config.telegram_token, config.database_url))
    was = source.health
    sources.record_failure(source, session=session, now=now, schedule=plan, status=status, error=message)
    if plan.health in ("failing", "disabled") and was != plan.health:
        detail = {"source": source.name, "error": message, "failures": plan.consecutive_failures}
        shared.batch.flush()  # the earlier feeds' report events first
        events.add_event(f"feed-{plan.health}", now, detail, session=session, source_id=source.id)
        session.flush()  # the outbox in the order of events: before a later feed's reports (`Recorder._store`)
    poll.error = message
    return FeedOutcome(
        source.id,
        "failed",
        status,
        message,
        health=plan.health,
        next_poll_at=plan.next_poll_at,
        moved_to=result.moved_to,
    )


def _store_success(
    config: Config,
    source: models.Source,
    result: FetchResult,
    parsed: ParsedFeed | None,
    matcher: Matcher,
    poll: models.FeedPoll,
    now: datetime,
    shared: Shared,
    *,
    session: Session,
) -> FeedOutcome:
    """Store the feed's new and edited items (none when it was not modified), match them, record the status
    changes their reports cause, and schedule the next poll."""
    settings, ttl = config.settings.poll, parsed.ttl_seconds if parsed else None
    plan = schedule.next_poll(settings, source.interval_seconds, now, result.headers, ttl)
    saved = None
    if parsed:
        first = source.last_success_at is None  # none of its items can be stored: they come with a success
        saved = bulk.save_items_bulk(source.id, parsed.items, now, session=session, stories=shared.stories, first=first)
    matched = _match_changed(saved, parsed, matcher)
    # Another worker may be deciding on the same proposals: lock their rows, always in the same order.
    shared.lock({m.proposal for _row, matches in matched for m in matches}, session=session)
    changes = bulk.record_matches_bulk(
        matched, config, now, session=session, states=shared.states, names=shared.names, batch=shared.batch
    )
    warning = parsed.warning if parsed else None
    sources.record_success(
        source,
        session=session,
        now=now,
        schedule=plan,
        status=result.status,
        etag=result.headers.get("etag"),
        last_modified=result.headers.get("last-modified"),
        warning=warning,
        feed_title=parsed.title if parsed else None,
        feed_link=parsed.link if parsed else None,
    )
    from monitor.parse_pool import body_digest

    source.body_hash = (parsed.body_hash or body_digest(result)) if parsed else source.body_hash
    poll.outcome = "ok" if parsed else "not-modified"
    poll.error = warning
    poll.items_seen = len(parsed.items) if parsed else 0
    poll.items_new, poll.items_updated = (saved.new, saved.updated) if saved else (0, 0)
    return FeedOutcome(
        source.id,
        poll.outcome,
        result.status,
        warning=warning,
        items_new=poll.items_new,
        items_updated=poll.items_updated,
        changes=tuple(change.id for change in changes if change.id is not None),
        moved_to=result.moved_to,
        next_poll_at=plan.next_poll_at,
    )


def _match_changed(
    saved: bulk.SavedBatch | None, parsed: ParsedFeed | None, matcher: Matcher
) -> list[tuple[bulk.StoredItem, list[Match]]]:
    """The new and edited items with their matches: those the parser already found (a feed's first poll), the
    rest matched here."""
    from monitor.parse_pool import MatchedFeed

    known = parsed.matches_by_text() if isinstance(parsed, MatchedFeed) else {}
    matched = []
    for row, _item in saved.changed if saved else ():
        found = known.get((row.title, row.summary))  # matched without a date: the stored one decides
        if found is None:
            found = matcher.match(row.title, row.summary, row.published_at)
        matched.append((row, matcher.arisen(found, row.published_at)))
    return matched
